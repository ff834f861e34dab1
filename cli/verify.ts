/**
 * `hardened-docker verify`: checks hosts over SSH against what their stack declares (or what a
 * default configuration declares, for a host given on the command line).
 */
import { readFileSync, writeFileSync } from "node:fs";
import {
  HostReport,
  VerifyConnection,
  VerifyExpectation,
  expectationFromArgs,
  fleetSummary,
  renderJson,
  renderJunit,
  renderTable,
  reportStatus,
  resolveVerifyConnection,
  verifyHost,
} from "../components/verify";
import { InvalidArgument } from "../components/validate";
import { checkConfigKeys, hostArgsFromConfig, plainConfigSource } from "../stacks/config";
import { planInputFromStackFile, stackNames } from "../stacks/stack-file";

export const VERIFY_USAGE = `usage: hardened-docker verify [--stack <host>]... | --all-stacks
                              | --host <addr> [--port 22] [--user root] --host-key '<type> <key>'
                                [--service-user provisioner] [--socket-proxy] [--traefik]
       [--identity <private key file>] [--stacks-dir stacks] [--concurrency 8] [--timeout 60]
       [--max-exposure 3.5] [--json] [--junit <file>|-] [--verbose] [--no-color]

Checks each host over one SSH connection (read-only; as root through sudo -n) and prints a
table of checks. The key comes from --identity or the SSH agent (SSH_AUTH_SOCK): stack
secrets are encrypted, so the stack's privateKey is never read. Exit code: 0 when no check
fails, 1 when one fails or a host cannot be verified, 2 for bad arguments.`;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTty: boolean;
  /** Injected in tests. @default verifyHost */
  readonly verify?: typeof verifyHost;
}

interface Target {
  readonly name: string;
  readonly connection: VerifyConnection;
  readonly expected: VerifyExpectation;
}

class UsageError extends Error {}

interface Parsed {
  stacks: string[];
  allStacks: boolean;
  stacksDir?: string;
  host?: string;
  port?: number;
  user?: string;
  hostKey?: string;
  serviceUser?: string;
  socketProxy: boolean;
  traefik: boolean;
  identity?: string;
  concurrency: number;
  timeoutSeconds: number;
  maxExposure?: number;
  json: boolean;
  junit?: string;
  verbose: boolean;
  colour?: boolean;
}

function parseArgs(argv: readonly string[]): Parsed {
  const p: Parsed = {
    stacks: [],
    allStacks: false,
    socketProxy: false,
    traefik: false,
    concurrency: 8,
    timeoutSeconds: 60,
    json: false,
    verbose: false,
  };
  const value = (i: number, flag: string) => {
    const v = argv[i];
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const int = (v: string, flag: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`${flag} ${v}: want a whole number from ${min} to ${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--stack":
        p.stacks.push(value(++i, a));
        break;
      case "--all-stacks":
        p.allStacks = true;
        break;
      case "--stacks-dir":
        p.stacksDir = value(++i, a);
        break;
      case "--host":
        p.host = value(++i, a);
        break;
      case "--port":
        p.port = int(value(++i, a), a, 1, 65535);
        break;
      case "--user":
        p.user = value(++i, a);
        break;
      case "--host-key":
        p.hostKey = value(++i, a);
        break;
      case "--service-user":
        p.serviceUser = value(++i, a);
        break;
      case "--socket-proxy":
        p.socketProxy = true;
        break;
      case "--traefik":
        p.traefik = true;
        break;
      case "--identity":
      case "-i":
        p.identity = value(++i, a);
        break;
      case "--concurrency":
        p.concurrency = int(value(++i, a), a, 1, 256);
        break;
      case "--timeout":
        p.timeoutSeconds = int(value(++i, a), a, 1, 3600);
        break;
      case "--max-exposure": {
        const v = value(++i, a);
        const n = Number(v);
        if (!/^\d+(\.\d+)?$/.test(v) || n > 10)
          throw new UsageError(`--max-exposure ${v}: want a number from 0 to 10`);
        p.maxExposure = n;
        break;
      }
      case "--json":
        p.json = true;
        break;
      case "--junit":
        p.junit = value(++i, a);
        break;
      case "--verbose":
      case "-v":
        p.verbose = true;
        break;
      case "--no-color":
      case "--no-colour":
        p.colour = false;
        break;
      case "--color":
      case "--colour":
        p.colour = true;
        break;
      default:
        throw new UsageError(`unknown argument ${a}`);
    }
  }
  const fromStacks = p.stacks.length > 0 || p.allStacks;
  if (fromStacks && p.host !== undefined)
    throw new UsageError("--host verifies one host without a stack file: not with --stack");
  if (!fromStacks && p.host === undefined) throw new UsageError("name a --stack or a --host");
  if (!fromStacks && p.hostKey === undefined)
    throw new UsageError(
      "--host needs --host-key (ssh-keyscan -t ed25519 <host>, checked out of band)",
    );
  if (fromStacks)
    for (const flag of ["port", "user", "hostKey", "serviceUser"] as const)
      if (p[flag] !== undefined)
        throw new UsageError(
          `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is read from the stack file`,
        );
  return p;
}

const exposureOption = (p: Parsed) =>
  p.maxExposure === undefined ? {} : { maxExposure: p.maxExposure };

/** The key: --identity, else the agent. Never the stack's encrypted privateKey. */
function credentials(p: Parsed, env: CliIo["env"]): Pick<VerifyConnection, "privateKey" | "agent"> {
  if (p.identity !== undefined) {
    try {
      return { privateKey: readFileSync(p.identity) };
    } catch (e) {
      throw new UsageError(`--identity ${p.identity}: ${(e as Error).message}`);
    }
  }
  if (env.SSH_AUTH_SOCK) return { agent: env.SSH_AUTH_SOCK };
  throw new UsageError(
    "no key: pass --identity <file> or start ssh-agent (SSH_AUTH_SOCK is unset)",
  );
}

function stackTarget(stack: string, dir: string | undefined, p: Parsed, env: CliIo["env"]): Target {
  const { config } = planInputFromStackFile(stack, ...(dir ? [dir] : []));
  checkConfigKeys(Object.keys(config));
  const { connection, ...rest } = hostArgsFromConfig(plainConfigSource(config));
  return {
    name: stack,
    connection: {
      host: connection.host,
      ...(connection.port !== undefined ? { port: connection.port } : {}),
      ...(connection.user !== undefined ? { user: connection.user } : {}),
      ...(connection.hostKey !== undefined ? { hostKey: connection.hostKey } : {}),
      ...(connection.insecureIgnoreHostKey !== undefined
        ? { insecureIgnoreHostKey: connection.insecureIgnoreHostKey }
        : {}),
      ...(connection.sudo !== undefined ? { sudo: connection.sudo } : {}),
      ...credentials(p, env),
    },
    expected: expectationFromArgs(rest, exposureOption(p)),
  };
}

function targets(p: Parsed, env: CliIo["env"]): Target[] {
  if (p.host !== undefined) {
    return [
      {
        name: `${p.host}:${p.port ?? 22}`,
        connection: {
          host: p.host,
          ...(p.port !== undefined ? { port: p.port } : {}),
          ...(p.user !== undefined ? { user: p.user } : {}),
          hostKey: p.hostKey,
          ...credentials(p, env),
        },
        expected: expectationFromArgs(
          {
            serviceUser: { name: p.serviceUser ?? "provisioner" },
            // what the ports need for Traefik's defaults (80/443); verify does not check the sysctl
            ...(p.traefik ? { docker: { unprivilegedPortStart: 80 } } : {}),
            ...(p.socketProxy || p.traefik ? { socketProxy: {} } : {}),
            ...(p.traefik ? { traefik: {} } : {}),
          },
          exposureOption(p),
        ),
      },
    ];
  }
  const known = stackNames(...(p.stacksDir ? [p.stacksDir] : []));
  const names = p.allStacks
    ? known.filter((n) => n !== "example" && n !== "local")
    : [...new Set(p.stacks)];
  for (const s of names)
    if (!known.includes(s))
      throw new UsageError(
        `no Pulumi.${s}.yaml in ${p.stacksDir ?? "stacks"} (have: ${known.join(", ") || "none"})`,
      );
  if (names.length === 0)
    throw new UsageError("no host stacks to verify (example and local are skipped)");
  return names.map((s) => stackTarget(s, p.stacksDir, p, env));
}

/** Every target's connection validated before the first one is dialled. */
function validated(list: Target[]): Target[] {
  for (const t of list) resolveVerifyConnection(t.connection);
  return list;
}

/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The whole command; returns the exit code. */
export async function runVerify(argv: readonly string[], io: CliIo): Promise<number> {
  let p: Parsed;
  let list: Target[];
  try {
    p = parseArgs(argv);
    list = validated(targets(p, io.env));
  } catch (e) {
    if (e instanceof UsageError || e instanceof InvalidArgument) {
      io.stderr(`verify: ${e.message}\n\n${VERIFY_USAGE}\n`);
      return 2;
    }
    throw e;
  }
  const verify = io.verify ?? verifyHost;
  const t0 = performance.now();
  let reports: HostReport[];
  try {
    reports = await mapLimit(list, p.concurrency, (t) =>
      verify(t.connection, t.expected, { name: t.name, timeoutMs: p.timeoutSeconds * 1000 }),
    );
  } catch (e) {
    if (e instanceof InvalidArgument) {
      io.stderr(`verify: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const seconds = (performance.now() - t0) / 1000;
  const colour = p.colour ?? (io.isTty && io.env.NO_COLOR === undefined);
  if (p.json) io.stdout(renderJson(reports));
  else {
    for (const r of reports) io.stdout(renderTable(r, { colour, verbose: p.verbose }) + "\n");
    if (reports.length > 1) io.stdout(`${fleetSummary(reports)} in ${seconds.toFixed(2)} s\n`);
  }
  if (p.junit !== undefined) {
    const xml = renderJunit(reports);
    if (p.junit === "-") io.stdout(xml);
    else writeFileSync(p.junit, xml);
  }
  return reports.some((r) => reportStatus(r) === "FAIL") ? 1 : 0;
}
