/**
 * The rendered plan of one host: the per-host program run under Pulumi mocks (no CLI, no
 * backend, no credential, no host), and for every resource it would register: type, name,
 * parent, dependencies and inputs (scripts, unit files, container specs), secrets redacted.
 * Deterministic: two runs on the same config give identical text, so plans diff cleanly.
 *
 * What the mocks cannot know is stated in the plan's `assumptions` (the service user's uid and
 * home come from the host at apply time; image digests from the registry).
 */
import type * as pulumiTypes from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { StackConfig } from "./stack-file";
import { STACK_KEYS } from "./keys";

export const REDACTED = "[secret]";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface PlannedResource {
  readonly type: string;
  readonly name: string;
  /** Name of the parent resource (none for the top-level component). */
  readonly parent?: string;
  /** Names of the resources it waits for, sorted. */
  readonly dependsOn: readonly string[];
  /** Inputs as the provider would receive them, secrets replaced by `[secret]`, keys sorted. */
  readonly inputs: Record<string, unknown>;
}

export interface Plan {
  readonly stack: string;
  readonly assumptions: readonly string[];
  /** Sorted by name. */
  readonly resources: readonly PlannedResource[];
}

/** A stack's config, as `planInputFromStackFile` reads it. */
export type PlanInput = StackConfig;

export interface PlanRuntime {
  /** A fresh `@pulumi/pulumi` (its runtime state is global to the module instance). */
  readonly pulumi: typeof pulumiTypes;
  /** `@pulumi/pulumi/runtime/mocks` of the same instance. */
  readonly mocks: { MockMonitor: { prototype: { registerResource: unknown } } };
  /** Loads the program (`require("./index")`) once mocks and config are set. */
  readonly loadProgram: () => unknown;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
}

/** True when `v` is a secret as the SDK serializes it (what mocks and policies receive). */
export function isSecretWrapper(v: unknown): v is { value: unknown } {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE_SIG
  );
}

/** `v` with every secret wrapper replaced by its value (as a provider receives inputs). */
export function unwrapSecrets(v: unknown): unknown {
  if (isSecretWrapper(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}

/** Replaces secret wrappers by `[secret]` (or by the value, with `keepSecrets`) and sorts keys. */
function normalise(v: unknown, keepSecrets: boolean): unknown {
  if (isSecretWrapper(v)) return keepSecrets ? normalise(v.value, true) : REDACTED;
  if (Array.isArray(v)) return v.map((x) => normalise(x, keepSecrets));
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, normalise((v as Record<string, unknown>)[k], keepSecrets)]),
    );
  return v;
}

/** Provider inputs travel JSON-encoded; decode them back for reading. */
function decodeProviderInputs(inputs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => {
      if (typeof v !== "string" || !/^[[{]|^(true|false)$/.test(v)) return [k, v];
      try {
        return [k, JSON.parse(v)];
      } catch {
        return [k, v];
      }
    }),
  );
}

/**
 * Runs the program under mocks and collects the plan. `keepSecrets` (tests only) keeps secret
 * values in clear, in memory, to prove that a secret's change is a change of one resource.
 */
export async function collectPlan(
  rt: PlanRuntime,
  input: PlanInput,
  opts: { keepSecrets?: boolean; settleMs?: number } = {},
): Promise<Plan> {
  const user =
    typeof input.config.serviceUser === "string"
      ? input.config.serviceUser
      : STACK_KEYS.serviceUser.default;
  const uid = typeof input.config.serviceUserUid === "number" ? input.config.serviceUserUid : 1001;
  const home = `/home/${user}`;
  const assumptions = [
    `the service user ${user} has uid ${uid} and home ${home}` +
      (input.config.serviceUserUid === undefined
        ? " (placeholder: the real values are reported by the host at apply time)"
        : ""),
    "images are referenced by name; the provider resolves their digest at apply time",
    `secret values are shown as ${REDACTED}; a change of a secret does not show here`,
  ];
  const deps = new Map<string, { parent: string; dependsOn: string[]; type: string }>();
  const inputs = new Map<string, Record<string, unknown>>();
  const urnNames = new Map<string, string>();
  const proto = rt.mocks.MockMonitor.prototype as {
    registerResource: (req: RegisterRequest, cb: (err: unknown, res: unknown) => void) => unknown;
  };
  const original = proto.registerResource;
  let started = 0;
  let finished = 0;
  proto.registerResource = function (this: unknown, req, cb) {
    started++;
    lastActivity = Date.now();
    const name = req.getName();
    deps.set(name, {
      type: req.getType(),
      parent: req.getParent(),
      dependsOn: req.getDependenciesList(),
    });
    return original.call(this, req, (err: unknown, res: unknown) => {
      const urn = (res as { getUrn?: () => string } | undefined)?.getUrn?.();
      if (urn) urnNames.set(urn, name);
      finished++;
      lastActivity = Date.now();
      cb(err, res);
    });
  };
  let lastActivity = Date.now();
  let failure: unknown;
  await rt.pulumi.runtime.setMocks(
    {
      newResource(args) {
        lastActivity = Date.now();
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type === "command:remote:Command") {
          state.stdout = args.name.endsWith("-service-user-account")
            ? `uid=${uid}\nhome=${home}\n`
            : "";
          state.stderr = "";
        }
        if (args.type === "docker:index/remoteImage:RemoteImage") state.imageId = args.inputs.name;
        const raw = args.type.startsWith("pulumi:providers:")
          ? decodeProviderInputs(args.inputs)
          : args.inputs;
        inputs.set(args.name, normalise(raw, opts.keepSecrets ?? false) as Record<string, unknown>);
        return { id: `${args.name}-id`, state };
      },
      call: (a) => a.inputs,
    },
    "hardened-docker",
    input.stack,
    false,
  );
  const cfg: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.config))
    cfg[`hardened-docker:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  rt.pulumi.runtime.setAllConfig(
    cfg,
    input.secretKeys.map((k) => `hardened-docker:${k}`),
  );
  const onRejection = (e: unknown) => (failure ??= e);
  process.on("unhandledRejection", onRejection);
  try {
    try {
      rt.loadProgram();
    } catch (e) {
      failure = e;
    }
    // registrations resolve asynchronously: done when every registration started has
    // finished and nothing new arrived for a while (or the program failed)
    const deadline = Date.now() + 60_000;
    while (
      !failure &&
      !(started > 0 && started === finished && Date.now() - lastActivity >= (opts.settleMs ?? 200))
    ) {
      if (Date.now() > deadline) throw new Error("the program did not finish registering in 60 s");
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    process.off("unhandledRejection", onRejection);
    proto.registerResource = original;
  }
  if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
  const resources = [...deps.entries()]
    .map(([name, d]) => ({
      type: d.type,
      name,
      ...(d.parent && urnNames.get(d.parent) ? { parent: urnNames.get(d.parent) } : {}),
      dependsOn: d.dependsOn.map((u) => urnNames.get(u) ?? u).sort(),
      inputs: inputs.get(name) ?? {},
    }))
    .filter((r) => r.type !== "pulumi:pulumi:Stack")
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { stack: input.stack, assumptions, resources };
}

/** The plan as readable text: one block per resource, multi-line strings as they are. */
export function renderPlanText(plan: Plan): string {
  const head = [
    `# hardened-docker plan of stack ${plan.stack}: ${plan.resources.length} resources`,
    ...plan.assumptions.map((a) => `# assumes: ${a}`),
    "",
  ];
  const blocks = plan.resources.map((r) => {
    const meta = [
      `== ${r.type} ${r.name}`,
      ...(r.parent ? [`   parent: ${r.parent}`] : []),
      ...(r.dependsOn.length ? [`   depends on: ${r.dependsOn.join(", ")}`] : []),
    ];
    const body = Object.keys(r.inputs).length
      ? stringify(r.inputs, { lineWidth: 0, blockQuote: "literal" })
          .trimEnd()
          .split("\n")
          .map((l) => `   ${l}`)
      : [];
    return [...meta, ...body, ""].join("\n");
  });
  return head.join("\n") + blocks.join("\n");
}

export interface ResourceChange {
  readonly name: string;
  readonly change: "added" | "removed" | "changed";
  /** Top-level input keys (and `dependsOn`/`parent`) that differ. */
  readonly fields: readonly string[];
}

/** What differs between two plans of the same host, by resource. */
export function diffPlans(before: Plan, after: Plan): ResourceChange[] {
  const a = new Map(before.resources.map((r) => [r.name, r]));
  const b = new Map(after.resources.map((r) => [r.name, r]));
  const out: ResourceChange[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name);
    const y = b.get(name);
    if (!x) out.push({ name, change: "added", fields: [] });
    else if (!y) out.push({ name, change: "removed", fields: [] });
    else {
      const keys = [...new Set([...Object.keys(x.inputs), ...Object.keys(y.inputs)])].sort();
      const fields = keys.filter(
        (k) => JSON.stringify(x.inputs[k]) !== JSON.stringify(y.inputs[k]),
      );
      if (JSON.stringify(x.dependsOn) !== JSON.stringify(y.dependsOn)) fields.push("dependsOn");
      if (x.parent !== y.parent) fields.push("parent");
      if (fields.length) out.push({ name, change: "changed", fields });
    }
  }
  return out;
}
