/**
 * `npm run plan -- --stack <host> [--stack <host2>] | --all [--out plans] [--stdout]`
 *
 * Writes `<out>/<host>.plan.txt` and `<out>/<host>.plan.json`: every resource the host's stack
 * would register, with its inputs (scripts, unit files, container specs), secrets redacted.
 * Needs no Pulumi CLI, backend or credential: encrypted (`secure:`) values and a missing
 * `privateKey` are replaced by placeholders that never reach the output.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { PlanInput, collectPlan, renderPlanText } from "./plan";

const ROOT = join(__dirname, "..");
const PREFIX = "hardened-docker:";
/** A syntactically valid stand-in for a bcrypt htpasswd line (the real ones are secret). */
const PLACEHOLDER_USER = `plan:$2y$05$${".".repeat(53)}`;

/** Stack names that have a `stacks/Pulumi.<name>.yaml`. */
export function stackNames(dir = join(ROOT, "stacks")): string[] {
  return readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort();
}

/**
 * A stack file's config as the program would see it, with every secret (encrypted in the
 * file, or missing) replaced by a placeholder the program accepts.
 */
export function planInputFromStackFile(stack: string, dir = join(ROOT, "stacks")): PlanInput {
  const doc = parse(readFileSync(join(dir, `Pulumi.${stack}.yaml`), "utf8")) as {
    config?: Record<string, unknown>;
  } | null;
  const config: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (!key.startsWith(PREFIX)) continue;
    const k = key.slice(PREFIX.length);
    const secure = value && typeof value === "object" && "secure" in (value as object);
    if (secure) secretKeys.add(k);
    else config[k] = value;
  }
  config.privateKey = "plan-placeholder-private-key";
  secretKeys.add("privateKey");
  if (secretKeys.has("serviceSecrets") || hasSecretEnvironment(config)) {
    const secrets: Record<string, Record<string, string>> = {};
    for (const svc of (config.services as { name?: string; secretEnvironment?: string[] }[]) ??
      []) {
      for (const v of svc.secretEnvironment ?? [])
        (secrets[String(svc.name)] ??= {})[v] = "plan-placeholder";
    }
    config.serviceSecrets = secrets;
    secretKeys.add("serviceSecrets");
  }
  const traefik = config.traefik as { dashboard?: unknown } | undefined;
  if (secretKeys.has("traefikDashboardUsers") || traefik?.dashboard !== undefined) {
    config.traefikDashboardUsers = [PLACEHOLDER_USER];
    secretKeys.add("traefikDashboardUsers");
  }
  return { stack, config, secretKeys: [...secretKeys].sort() };
}

function hasSecretEnvironment(config: Record<string, unknown>): boolean {
  return ((config.services as { secretEnvironment?: unknown[] }[] | undefined) ?? []).some(
    (s) => (s.secretEnvironment ?? []).length > 0,
  );
}

function usage(message?: string): never {
  if (message) console.error(`plan: ${message}`);
  console.error(
    "usage: npm run plan -- --stack <host> [--stack <host>...] | --all [--out <dir>] [--stdout]",
  );
  process.exit(2);
}

async function planOne(stack: string, out: string, toStdout: boolean): Promise<void> {
  const input = planInputFromStackFile(stack);
  /* eslint-disable @typescript-eslint/no-require-imports */
  const plan = await collectPlan(
    {
      pulumi: require("@pulumi/pulumi"),
      mocks: require("@pulumi/pulumi/runtime/mocks"),
      loadProgram: () => require("./index"),
    },
    input,
  );
  /* eslint-enable @typescript-eslint/no-require-imports */
  const text = renderPlanText(plan);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${stack}.plan.txt`), text);
  writeFileSync(join(out, `${stack}.plan.json`), `${JSON.stringify(plan, null, 2)}\n`);
  if (toStdout) process.stdout.write(text);
  else
    console.log(
      `plan ${stack}: ${plan.resources.length} resources -> ${join(out, `${stack}.plan.txt`)}, ${join(out, `${stack}.plan.json`)}`,
    );
}

async function main(argv: string[]): Promise<void> {
  const stacks: string[] = [];
  let all = false;
  let one = false;
  let out = join(ROOT, "plans");
  let toStdout = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") stacks.push(argv[++i] ?? usage("--stack needs a name"));
    else if (a === "--all") all = true;
    else if (a === "--out") out = argv[++i] ?? usage("--out needs a directory");
    else if (a === "--stdout") toStdout = true;
    else if (a === "--one") one = true;
    else usage(`unknown argument ${a}`);
  }
  const known = stackNames();
  if (all) stacks.push(...known);
  if (stacks.length === 0) usage();
  for (const s of stacks)
    if (!known.includes(s))
      usage(`no stacks/Pulumi.${s}.yaml (have: ${known.join(", ") || "none"})`);
  if (one || stacks.length === 1) return planOne(stacks[0], out, toStdout);
  // one process per stack: the SDK's runtime state is per process
  let failed = 0;
  for (const s of stacks) {
    const r = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        __filename,
        "--one",
        "--stack",
        s,
        "--out",
        out,
        ...(toStdout ? ["--stdout"] : []),
      ],
      { stdio: "inherit" },
    );
    if (r.status !== 0) failed++;
  }
  if (failed) {
    console.error(`plan: ${failed} of ${stacks.length} stacks failed`);
    process.exit(1);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`plan: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
