/**
 * TEST-ONLY stand-in for the Pulumi engine (the CLI cannot be installed here). Never shipped.
 *
 * It runs the real per-host program (stacks/index.ts) under `pulumi.runtime.setMocks` with a
 * given stack config, and the mock's `newResource` PERFORMS each `command:remote:Command`:
 * its `create` runs over SSH (ssh2) with the resource's own `connection` (host key pinned when
 * set), its `stdin` written to the command, and stdout/stderr returned as the outputs.
 *
 * Reproduced engine semantics:
 * - dependency order: the SDK registers a resource only after everything it depends on (by
 *   `dependsOn` or by using its outputs) has been registered, and our `newResource` returns
 *   only when the command finished, so commands run in the order the program forces;
 * - a failing command fails the apply and no command after it runs;
 * - destroy runs the `delete` scripts of what was created, in reverse order;
 * - secrets: inputs arrive unwrapped, as the provider sees them.
 * - with `ApplyOptions.commandState` (kept by the caller across applies), the provider's diff
 *   rules of `@pulumi/command` 1.2.1: an unchanged command is left alone; a change of
 *   `triggers` replaces it (its old `delete` with its old connection, then `create`:
 *   `deleteBeforeReplace`); a change of any other input is an update (`update`, else `create`,
 *   with the new connection); a command no longer in the program has its `delete` run after
 *   everything else, newest first. A failed create/update leaves the state as it was, so the
 *   next apply tries again. Without `commandState`, every apply runs every `create` (a first
 *   `pulumi up` each time: the scripts' own idempotence makes a second apply a no-op).
 * Not reproduced: parallelism between independent resources and the provider's dial retries.
 *
 * Docker resources (`@pulumi/docker` Network, RemoteImage, Container) are performed through
 * the Docker API of the provider they name, reached like the real provider does: SSH to the
 * provider's `ssh://user@host:port` with the host key its ssh options pin, as the service user
 * whose deploy key is forced onto `docker system dial-stdio` (see docker-engine.ts). For
 * those, a minimal state IS kept (`ApplyOptions.state`): an unchanged resource is left alone,
 * a changed one is replaced, as the engine would after a diff.
 */
import * as pulumiTypes from "@pulumi/pulumi";
import { Client } from "ssh2";
import { sshExec } from "../vm/ssh";
import { unwrapSecrets as unwrap } from "../../stacks/plan";
import { commandAction } from "../../stacks/changes";
import { DockerEngine, DockerState, PerformedDocker, isDockerResource } from "./docker-engine";

export interface PerformedCommand {
  readonly name: string;
  readonly create: string;
  readonly delete?: string;
  readonly connection: {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    hostKey?: string;
  };
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** What the stand-in did with a command, under the provider's diff rules. */
export type CommandAction = "create" | "update" | "replace" | "same" | "delete";

interface CommandRecord {
  readonly inputs: Record<string, unknown>;
  readonly stdout: string;
  readonly stderr: string;
}
/** Commands of earlier applies by name (the stand-in's state of `command:remote:Command`s). */
export type CommandState = Map<string, CommandRecord>;

export interface ApplyResult {
  readonly commands: PerformedCommand[];
  /** With `commandState`: each command's action, in the order they were decided. */
  readonly actions: { name: string; action: CommandAction }[];
  /** Every resource the program registered, commands or not (type and name). */
  readonly registered: { type: string; name: string }[];
  readonly error?: Error;
  /** The program's stack outputs, when the apply finished. */
  readonly outputs?: Record<string, unknown>;
  /** Docker resources created, replaced or kept by this apply, in order. */
  readonly docker: PerformedDocker[];
  readonly seconds: number;
}

export interface ApplyOptions {
  /** Cut the SSH connection of the command named `name` after `afterMs` (fault injection). */
  readonly cut?: { readonly name: string; readonly afterMs: number };
  /** The deploy key's private half (what ssh-agent would hold for the Docker provider). */
  readonly dockerIdentity?: string;
  /** Docker resources of earlier applies (kept across applies by the caller). */
  readonly state?: DockerState;
  /** Commands of earlier applies: with it, the provider's diff rules apply (see above). */
  readonly commandState?: CommandState;
}

/**
 * What a registration after a failure gets: an answer that never comes. The engine stops at
 * the first failed step: nothing after it is performed, and nothing computed from the outputs
 * it never produced is evaluated. Under mocks outside a preview, an output handed back as
 * unknown reads as `undefined` (`deserializeProperty` in the SDK's `runtime/rpc.js`), so the
 * program's applies would run on `undefined` and throw (a canary script from an image id
 * never pulled, a uid parsed from a step that never ran). A registration left pending keeps
 * its dependents from being evaluated at all, as under the engine.
 */
const stopped = (): Promise<never> => new Promise<never>(() => undefined);

/**
 * Applies the stack program with `config` (keys without the project prefix; objects are
 * JSON-encoded as the CLI does) and `secretKeys` naming the secret ones.
 */
export async function applyStack(
  config: Record<string, unknown>,
  secretKeys: string[],
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const t0 = Date.now();
  const commands: PerformedCommand[] = [];
  const actions: { name: string; action: CommandAction }[] = [];
  const registeredCommands = new Set<string>();
  const registered: { type: string; name: string }[] = [];
  let pending = 0;
  let lastActivity = Date.now();
  let error: Error | undefined;
  let programExports: Record<string, unknown> | undefined;
  const dockerEngine = new DockerEngine(opts.dockerIdentity, opts.state ?? new Map());

  jest.isolateModules(() => {
    // a fresh SDK instance per apply: its runtime state (config, mocks, stack) is global
    const pulumi = require("@pulumi/pulumi") as typeof pulumiTypes; // eslint-disable-line @typescript-eslint/no-require-imports
    void pulumi.runtime.setMocks(
      {
        async newResource(args) {
          registered.push({ type: args.type, name: args.name });
          lastActivity = Date.now();
          const state: Record<string, unknown> = { ...args.inputs };
          if (args.type === "pulumi:providers:docker") {
            dockerEngine.addProvider(args.name, unwrap(args.inputs) as Record<string, unknown>);
            return { id: args.name, state };
          }
          if (isDockerResource(args.type)) {
            pending++;
            try {
              if (error) return stopped();
              return await dockerEngine.perform(
                args.type,
                args.name,
                args.provider,
                unwrap(args.inputs) as Record<string, unknown>,
              );
            } catch (e) {
              error ??= e as Error;
              return stopped();
            } finally {
              pending--;
              lastActivity = Date.now();
            }
          }
          if (args.type !== "command:remote:Command") return { id: args.name, state };
          pending++;
          try {
            if (error) return stopped();
            const inputs = unwrap(args.inputs) as Record<string, unknown>;
            const connection = inputs.connection as PerformedCommand["connection"];
            registeredCommands.add(args.name);
            const prior = opts.commandState?.get(args.name);
            let action: CommandAction = "create";
            if (prior) action = commandAction(prior.inputs, inputs) ?? "same";
            if (opts.commandState) actions.push({ name: args.name, action });
            if (prior && action === "same")
              return {
                id: args.name,
                state: { ...state, stdout: prior.stdout, stderr: prior.stderr },
              };
            if (prior && action === "replace" && prior.inputs.delete) {
              const old = prior.inputs.connection as PerformedCommand["connection"];
              const d = await sshExec(old, prior.inputs.delete as string);
              if (d.code !== 0)
                throw new Error(
                  `${args.name} (delete before replace) failed (exit ${d.code}):\n${d.stdout}${d.stderr}`,
                );
            }
            const script =
              (action === "update" && (inputs.update as string | undefined)) ||
              (inputs.create as string);
            const started = Date.now();
            const cut = opts.cut?.name === args.name ? opts.cut : undefined;
            const r = await sshExec(
              {
                host: connection.host,
                port: connection.port,
                user: connection.user,
                privateKey: connection.privateKey,
                hostKey: connection.hostKey,
              },
              script,
              {
                stdin: inputs.stdin as string | undefined,
                onStarted: cut ? (c: Client) => setTimeout(() => c.end(), cut.afterMs) : undefined,
              },
            );
            const performed = {
              name: args.name,
              create: inputs.create as string,
              delete: inputs.delete as string | undefined,
              connection,
              stdout: r.stdout,
              stderr: r.stderr,
              seconds: (Date.now() - started) / 1000,
            };
            if (r.code !== 0)
              throw new Error(`${args.name} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
            opts.commandState?.set(args.name, { inputs, stdout: r.stdout, stderr: r.stderr });
            commands.push(performed);
            return { id: args.name, state: { ...state, stdout: r.stdout, stderr: r.stderr } };
          } catch (e) {
            // Like the engine, stop: nothing after a failure runs, nothing evaluates on it
            error ??= e as Error;
            return stopped();
          } finally {
            pending--;
            lastActivity = Date.now();
          }
        },
        call: (a) => a.inputs,
      },
      "hardened-docker",
      "e2e",
      false,
    );
    const cfg: Record<string, string> = {};
    for (const [k, v] of Object.entries(config))
      cfg[`hardened-docker:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(
      cfg,
      secretKeys.map((k) => `hardened-docker:${k}`),
    );
    try {
      programExports = require("../../stacks/index"); // eslint-disable-line @typescript-eslint/no-require-imports
    } catch (e) {
      error = e as Error;
    }
  });

  // Done when nothing runs and nothing new registered for a while: an output can resolve
  // before later, independent resources run, so outputs alone do not mean the apply ended.
  let outputs: Record<string, unknown> | undefined;
  if (programExports) void resolveOutputs(programExports).then((o) => (outputs = o));
  while (!(
    pending === 0 &&
    Date.now() - lastActivity > 2000 &&
    (outputs !== undefined || error !== undefined)
  )) {
    await new Promise((r) => setTimeout(r, 200));
  }
  // commands no longer in the program: deleted last, newest first (as the engine does)
  if (opts.commandState && !error) {
    for (const [name, prior] of [...opts.commandState.entries()].reverse()) {
      if (registeredCommands.has(name)) continue;
      const started = Date.now();
      const connection = prior.inputs.connection as PerformedCommand["connection"];
      actions.push({ name, action: "delete" });
      if (prior.inputs.delete) {
        const d = await sshExec(connection, prior.inputs.delete as string);
        if (d.code !== 0) {
          error = new Error(`delete of ${name} failed (exit ${d.code}):\n${d.stdout}${d.stderr}`);
          break;
        }
        commands.push({
          name,
          create: prior.inputs.create as string,
          delete: prior.inputs.delete as string,
          connection,
          stdout: d.stdout,
          stderr: d.stderr,
          seconds: (Date.now() - started) / 1000,
        });
      }
      opts.commandState.delete(name);
    }
  }
  dockerEngine.end();
  return {
    commands,
    actions,
    registered,
    error,
    outputs,
    docker: dockerEngine.performed,
    seconds: (Date.now() - t0) / 1000,
  };
}

async function resolveOutputs(exports: Record<string, unknown>): Promise<Record<string, unknown>> {
  const pairs = await Promise.all(
    Object.entries(exports).map(
      ([k, v]) =>
        new Promise<[string, unknown]>((res) =>
          v && typeof (v as { apply?: unknown }).apply === "function"
            ? (v as pulumiTypes.Output<unknown>).apply((x) => res([k, x]))
            : res([k, v]),
        ),
    ),
  );
  return Object.fromEntries(pairs);
}

/**
 * Destroys what applies created: the Docker resources in `state` first (they were created
 * last), newest first, then the `delete` scripts of the commands in reverse order. Stops at
 * the first failure.
 */
export async function destroyStack(
  commands: readonly PerformedCommand[],
  state?: DockerState,
  dockerIdentity?: string,
): Promise<{ name: string; stdout: string; seconds: number }[]> {
  const out: { name: string; stdout: string; seconds: number }[] = [];
  if (state && state.size > 0) {
    const engine = new DockerEngine(dockerIdentity, state);
    try {
      for (const d of await engine.destroyAll())
        out.push({ name: d.name, stdout: `deleted ${d.type}`, seconds: d.seconds });
    } finally {
      engine.end();
    }
  }
  for (const c of [...commands].reverse()) {
    if (!c.delete) continue;
    const t0 = Date.now();
    const r = await sshExec(c.connection, c.delete);
    if (r.code !== 0)
      throw new Error(`delete of ${c.name} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    out.push({ name: c.name, stdout: r.stdout, seconds: (Date.now() - t0) / 1000 });
  }
  return out;
}
