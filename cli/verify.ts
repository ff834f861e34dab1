/**
 * `hardened-docker verify`: checks hosts over SSH against what their stack declares (or what a
 * default configuration declares, for a host given on the command line).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DEFAULT_MAX_EXPOSURE,
  HostReport,
  VerifyConnection,
  VerifyExpectation,
  expectationFromArgs,
  fleetSummary,
  renderJson,
  renderJunit,
  renderSarif,
  renderTable,
  reportStatus,
  resolveVerifyConnection,
  unverifiedReport,
  verifyHost,
} from "../components/verify";
import { InvalidArgument } from "../components/core/validate";
import {
  HELP_AND_VERSION,
  OptionSpec,
  OptionValues,
  UsageError,
  flag,
  integerOption,
  opt,
  packageVersion,
  readOptions,
  renderOptions,
  stringOption,
} from "./options";
import type * as StackConfig from "../stacks/config";
import { StackFileError, planInputFromStackFile, stackNames } from "../stacks/stack-file";
import { STACK_KEYS } from "../stacks/keys";

/** Every option of `verify`, under the heading the usage lists it under. */
const OPTION_GROUPS: Readonly<Record<string, readonly OptionSpec[]>> = {
  "Hosts from stack files": [
    opt("stack", "<name>", "the host of Pulumi.<name>.yaml (repeatable)", { multiple: true }),
    flag("all-stacks", "every stack but example and local"),
    opt("stacks-dir", "<dir>", "where the stack files are (default: the package's stacks/)"),
  ],
  "A host without a stack file (what a default configuration declares)": [
    opt("host", "<addr>", "the host's address"),
    opt("host-key", "'<type> <key>'", "its SSH host key (ssh-keyscan; check it out of band)"),
    opt("port", "<port>", "SSH port", { default: "22" }),
    opt("user", "<name>", "admin login (not root: needs NOPASSWD sudo)", { default: "root" }),
    opt("service-user", "<name>", "runs rootless Docker", {
      default: STACK_KEYS.serviceUser.default,
    }),
    flag("socket-proxy", "the host runs the Docker socket proxy"),
    flag("traefik", "the host runs Traefik (and the socket proxy)"),
  ],
  "How to verify": [
    opt("identity", "<file>", "private key (default: the agent, SSH_AUTH_SOCK)", { short: "i" }),
    opt("concurrency", "<n>", "hosts verified at the same time", { default: "8" }),
    opt("timeout", "<seconds>", "per host, TCP connect to last check", { default: "60" }),
    opt("max-exposure", "<score>", "app.<name>.exposure warns above it (0-10)", {
      default: String(DEFAULT_MAX_EXPOSURE),
    }),
  ],
  Output: [
    flag("json", "JSON on stdout instead of the table"),
    opt("junit", "<file>|-", "JUnit XML to a file, or to stdout instead of the table"),
    opt("sarif", "<file>|-", "SARIF 2.1.0 to a file, or to stdout instead of the table"),
    flag("verbose", "also the evidence of PASS checks and the fix of WARNs", { short: "v" }),
    flag("no-color", "no colours (default: on a terminal unless NO_COLOR)", { alias: "no-colour" }),
    flag("color", "colours even when stdout is not a terminal", { alias: "colour" }),
    ...HELP_AND_VERSION,
  ],
};

const OPTIONS: readonly OptionSpec[] = Object.values(OPTION_GROUPS).flat();

/** The usage text, generated from the option table. */
function renderUsage(): string {
  return `usage: hardened-docker verify (--stack <name>... | --all-stacks) [options]
       hardened-docker verify --host <addr> --host-key '<type> <key>' [options]

Checks each host over one SSH connection (read-only; as root through sudo -n) and prints a
table of checks. The key comes from --identity or the SSH agent (SSH_AUTH_SOCK): stack
secrets are encrypted, so the stack's privateKey is never read.

${renderOptions(OPTION_GROUPS)}

At most one of --json, --junit - and --sarif - writes to stdout, and then nothing else does.
Exit code: 0 when no check fails, 1 when one fails or a host cannot be verified (unreachable,
timed out, wrong host key, or its stack file is bad), 2 for bad arguments.`;
}

export const VERIFY_USAGE = renderUsage();

/** What a usage error prints after its message. */
const SEE_HELP = "Run 'hardened-docker verify --help' for the options.";

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTty: boolean;
  /** Injected in tests. @default verifyHost */
  readonly verify?: typeof verifyHost;
}

/** A host to verify, or a stack whose file could not be turned into one. */
type Target =
  | {
      readonly name: string;
      readonly connection: VerifyConnection;
      readonly expected: VerifyExpectation;
    }
  | { readonly name: string; readonly error: string };

interface Parsed {
  readonly stacks: readonly string[];
  readonly allStacks: boolean;
  readonly stacksDir?: string;
  readonly host?: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey?: string;
  readonly serviceUser: string;
  readonly socketProxy: boolean;
  readonly traefik: boolean;
  readonly identity?: string;
  readonly concurrency: number;
  readonly timeoutSeconds: number;
  readonly maxExposure: number;
  readonly json: boolean;
  readonly junit?: string;
  readonly sarif?: string;
  readonly verbose: boolean;
  readonly colour?: boolean;
}

/** A string option's value, else its default. */
const stringValue = (values: OptionValues, name: string) => stringOption(values, OPTIONS, name);
const integer = (values: OptionValues, name: string, min: number, max: number) =>
  integerOption(values, OPTIONS, name, min, max);

function exposure(values: OptionValues): number {
  const v = stringValue(values, "max-exposure") as string;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n > 10)
    throw new UsageError(`--max-exposure ${v}: want a number from 0 to 10`);
  return n;
}

/** Typed options with their defaults, and the rules between them. @throws UsageError */
function checkOptions(values: OptionValues): Parsed {
  const given = (name: string) => values[name] !== undefined;
  const p: Parsed = {
    stacks: (values.stack as string[] | undefined) ?? [],
    allStacks: given("all-stacks"),
    stacksDir: stringValue(values, "stacks-dir"),
    host: stringValue(values, "host"),
    port: integer(values, "port", 1, 65535),
    user: stringValue(values, "user") as string,
    hostKey: stringValue(values, "host-key"),
    serviceUser: stringValue(values, "service-user") as string,
    socketProxy: given("socket-proxy"),
    traefik: given("traefik"),
    identity: stringValue(values, "identity"),
    concurrency: integer(values, "concurrency", 1, 256),
    timeoutSeconds: integer(values, "timeout", 1, 3600),
    maxExposure: exposure(values),
    json: given("json"),
    junit: stringValue(values, "junit"),
    sarif: stringValue(values, "sarif"),
    verbose: given("verbose"),
    colour: given("no-color") ? false : given("color") ? true : undefined,
  };
  const fromStacks = p.stacks.length > 0 || p.allStacks;
  if (fromStacks && p.host !== undefined)
    throw new UsageError("--host verifies one host without a stack file: not with --stack");
  if (!fromStacks && p.host === undefined) throw new UsageError("name a --stack or a --host");
  if (!fromStacks && p.hostKey === undefined)
    throw new UsageError(
      "--host needs --host-key (ssh-keyscan -t ed25519 <host>, checked out of band)",
    );
  if (fromStacks)
    for (const name of ["port", "user", "host-key", "service-user", "socket-proxy", "traefik"])
      if (given(name)) throw new UsageError(`--${name} is read from the stack file`);
  const toStdout = [
    p.json ? "--json" : undefined,
    p.junit === "-" ? "--junit -" : undefined,
    p.sarif === "-" ? "--sarif -" : undefined,
  ].filter((f) => f !== undefined);
  if (toStdout.length > 1)
    throw new UsageError(
      `${toStdout.join(" and ")} would all write to stdout: send all but one to a file (--junit <file>, --sarif <file>)`,
    );
  return p;
}

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

type Credentials = ReturnType<typeof credentials>;

/**
 * A stack's host. A stack file that cannot be read, is not YAML, or declares what the program
 * would refuse is that host's error (naming the file), not the whole run's.
 */
function stackTarget(stack: string, p: Parsed, key: Credentials): Target {
  const dir = p.stacksDir;
  try {
    const { config } = planInputFromStackFile(stack, ...(dir ? [dir] : []));
    // a stack's secrets (its services' environment, dashboard users) are Pulumi Outputs in
    // the args: only this mode loads the Pulumi SDK; --host and the checks never do
    const { checkConfigKeys, hostArgsFromConfig, plainConfigSource } =
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require("../stacks/config") as typeof StackConfig;
    checkConfigKeys(config); // the message shows the value
    const { connection, ...rest } = hostArgsFromConfig(plainConfigSource(config));
    const target = {
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
        ...key,
      },
      expected: expectationFromArgs(rest, {
        maxExposure: p.maxExposure,
        loginUser: connection.user ?? "root",
      }),
    };
    resolveVerifyConnection(target.connection);
    return target;
  } catch (e) {
    // the file is input: whatever fails in reading it (an InvalidArgument, or a shape the
    // readers did not expect) is about that file
    if (e instanceof StackFileError) return { name: stack, error: e.message };
    const file = join(dir ?? "stacks", `Pulumi.${stack}.yaml`);
    if (e instanceof Error) return { name: stack, error: `${file}: ${e.message}` };
    throw e;
  }
}

/** The one host of --host, with a default configuration; its connection validated. */
function hostTarget(host: string, p: Parsed, key: Credentials): Target {
  const connection: VerifyConnection = {
    host,
    port: p.port,
    user: p.user,
    ...(p.hostKey !== undefined ? { hostKey: p.hostKey } : {}),
    ...key,
  };
  resolveVerifyConnection(connection);
  const expected = expectationFromArgs(
    {
      serviceUser: { name: p.serviceUser },
      // what the ports need for Traefik's defaults (80/443); verify does not check the sysctl
      ...(p.traefik ? { docker: { unprivilegedPortStart: 80 } } : {}),
      ...(p.socketProxy || p.traefik ? { socketProxy: {} } : {}),
      ...(p.traefik ? { traefik: {} } : {}),
    },
    { maxExposure: p.maxExposure, loginUser: p.user },
  );
  return { name: `${host}:${p.port}`, connection, expected };
}

/** @throws UsageError or InvalidArgument for what the command line got wrong. */
function targets(p: Parsed, env: CliIo["env"]): Target[] {
  if (p.host !== undefined) return [hostTarget(p.host, p, credentials(p, env))];
  let known: string[];
  try {
    known = stackNames(...(p.stacksDir ? [p.stacksDir] : []));
  } catch (e) {
    throw new UsageError(`--stacks-dir ${p.stacksDir ?? "stacks"}: ${(e as Error).message}`);
  }
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
  const key = credentials(p, env);
  return names.map((s) => stackTarget(s, p, key));
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

/** The table and fleet summary unless a machine format owns stdout; then the reports. */
function writeReports(p: Parsed, reports: HostReport[], seconds: number, io: CliIo): void {
  if (!p.json && p.junit !== "-" && p.sarif !== "-") {
    const colour = p.colour ?? (io.isTty && io.env.NO_COLOR === undefined);
    for (const r of reports) io.stdout(renderTable(r, { colour, verbose: p.verbose }) + "\n");
    if (reports.length > 1) io.stdout(`${fleetSummary(reports)} in ${seconds.toFixed(2)} s\n`);
  }
  if (p.json) io.stdout(renderJson(reports));
  const files: [string | undefined, () => string][] = [
    [p.junit, () => renderJunit(reports)],
    [p.sarif, () => renderSarif(reports, { version: packageVersion() })],
  ];
  for (const [target, render] of files) {
    if (target === "-") io.stdout(render());
    else if (target !== undefined) writeFileSync(target, render());
  }
}

/** The whole command; returns the exit code. */
export async function runVerify(argv: readonly string[], io: CliIo): Promise<number> {
  let p: Parsed;
  let list: Target[];
  try {
    const { values } = readOptions(argv, OPTIONS);
    if (values.help) {
      io.stdout(`${VERIFY_USAGE}\n`);
      return 0;
    }
    if (values.version) {
      io.stdout(`hardened-docker ${packageVersion()}\n`);
      return 0;
    }
    p = checkOptions(values);
    list = targets(p, io.env);
  } catch (e) {
    if (e instanceof UsageError || e instanceof InvalidArgument) {
      io.stderr(`verify: ${e.message}\n${SEE_HELP}\n`);
      return 2;
    }
    throw e;
  }
  const verify = io.verify ?? verifyHost;
  const timeoutMs = p.timeoutSeconds * 1000;
  const t0 = performance.now();
  const reports = await mapLimit(list, p.concurrency, async (t) =>
    "error" in t
      ? unverifiedReport(t.name, t.error)
      : verify(t.connection, t.expected, { name: t.name, timeoutMs }),
  );
  writeReports(p, reports, (performance.now() - t0) / 1000, io);
  return reports.some((r) => reportStatus(r) === "FAIL") ? 1 : 0;
}
