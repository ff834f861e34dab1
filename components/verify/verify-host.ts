import { randomBytes } from "node:crypto";
import { keysOf } from "../core/keys";
import type { ConnectConfig } from "ssh2";
import { execOnce, hostKeyMatches } from "./ssh";
import { resolveCauses } from "./check";
import { appChecks } from "../app-service/checks";
import { containerChecks } from "../socket-proxy/checks";
import { hostChecks } from "../rootless-docker/checks";
import { CheckedUser, asTenant, isolationChecks, tenantCheckId } from "../tenants/checks";
import type { UserExpectation, VerifyExpectation } from "./expected";
import { HostFacts, parseFacts } from "./facts";
import { ProbeTarget, UserProbeTarget, parseSections, probeCommand, probeScript } from "./probe";
import { CheckResult, HostReport, unverifiedReport } from "./types";
import {
  InvalidArgument,
  checkLogin,
  checkInteger,
  checkKnownKeys,
  checkOneOf,
  checkPlainObject,
} from "../core/validate";

/** How `verify` reaches a host: the admin login, as for the components, but plain values. */
export interface VerifyConnection {
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default "root" */
  readonly user?: string;
  /** Private key (OpenSSH or PEM). Without it, the SSH agent is used. */
  readonly privateKey?: string | Buffer;
  /** Path of the agent's socket. @default $SSH_AUTH_SOCK, read by the CLI, never here */
  readonly agent?: string;
  /** The host's public key (`ssh-ed25519 AAAA…`). Required unless insecureIgnoreHostKey. */
  readonly hostKey?: string;
  /** @default false */
  readonly insecureIgnoreHostKey?: boolean;
  /** @default true unless user is root */
  readonly sudo?: boolean;
}

const VERIFY_CONNECTION_KEYS = keysOf<VerifyConnection>()({
  host: true,
  port: true,
  user: true,
  privateKey: true,
  agent: true,
  hostKey: true,
  insecureIgnoreHostKey: true,
  sudo: true,
});

export interface VerifyOptions {
  /** Name the report carries. @default "<host>:<port>" */
  readonly name?: string;
  /**
   * Give up on the host after this long: TCP connect, SSH handshake, authentication and the
   * probe together. @default 60000
   */
  readonly timeoutMs?: number;
  /** How the probe reads the Docker API (see `ProbeTarget.dockerClient`). @default "auto" */
  readonly dockerClient?: "auto" | "perl" | "cli";
  /** Receives the probe's raw output (tests record fixtures with it). @default none */
  readonly onProbeOutput?: (probe: { marker: string; stdout: string; stderr: string }) => void;
}

/**
 * Evaluates every check from the probe's facts. Pure. The host's own service user's checks
 * keep their ids; with tenants, each tenant's come next under `tenant.<user>.<id>`, then the
 * checks across them (`isolation.*`).
 */
export function evaluateChecks(facts: HostFacts, expected: VerifyExpectation): CheckResult[] {
  const tenants = expected.tenants ?? [];
  const tenantFacts = (name: string) =>
    facts.tenants?.get(name) ?? parseFacts(new Map([["end", ""]]), name);
  const users: CheckedUser[] = [
    { name: expected.serviceUser, facts, id: (check) => check },
    ...tenants.map((t) => ({
      name: t.serviceUser,
      facts: tenantFacts(t.serviceUser),
      id: (check: string) => tenantCheckId(t.serviceUser, check),
    })),
  ];
  const uids = users.flatMap((u) => (u.facts.user ? [u.facts.user.uid] : []));
  const userChecks = (f: HostFacts, e: UserExpectation) => {
    const others = uids.filter((uid) => uid !== f.user?.uid);
    return [...hostChecks(f, e), ...appChecks(f, e), ...containerChecks(f, e, others)];
  };
  return resolveCauses([
    ...userChecks(facts, expected),
    ...tenants.flatMap((t) => asTenant(t.serviceUser, userChecks(tenantFacts(t.serviceUser), t))),
    ...(tenants.length > 0
      ? isolationChecks(
          users,
          facts.isolation?.paths ?? [],
          facts.isolation ? facts.isolation.sockets : [],
        )
      : []),
  ]);
}

/** What the probe reads for `expected` (the host's own service user and each tenant). */
export function probeTarget(
  expected: VerifyExpectation,
  dockerClient: ProbeTarget["dockerClient"] = "auto",
): ProbeTarget {
  const user = (e: UserExpectation): UserProbeTarget => ({
    user: e.serviceUser,
    units: e.services.map((s) => ({
      unit: `${s.args.name}.service`,
      ...(s.environmentFile ? { environmentFile: s.environmentFile } : {}),
    })),
    ...(e.socketProxy ? { proxyContainer: e.socketProxy.containerName } : {}),
    ...(e.limits ? { slice: true } : {}),
  });
  return {
    ...user(expected),
    dockerClient: checkOneOf("dockerClient", dockerClient, ["auto", "perl", "cli"] as const),
    ...(expected.tenants?.length ? { tenants: expected.tenants.map(user) } : {}),
  };
}

/**
 * Validates connection args (throws `InvalidArgument`); what ssh2 gets, plus whether to sudo
 * and the pinned host key (undefined only with insecureIgnoreHostKey).
 */
export function resolveVerifyConnection(
  c: VerifyConnection,
): ConnectConfig & { sudo: boolean; hostKey?: string } {
  const o = checkPlainObject("connection", c);
  checkKnownKeys("connection", o, VERIFY_CONNECTION_KEYS);
  const { host, port, user, hostKey, sudo } = checkLogin("connection", c, {
    pinHostKey: "Pass --host-key 'ssh-ed25519 AAAA…' (or hostKey in the stack file).",
    rootNeededFor: "the probe reads root-only files",
  });
  if (c.privateKey === undefined && c.agent === undefined) {
    throw new InvalidArgument(
      "connection.privateKey",
      undefined,
      "a private key or an SSH agent",
      "Pass --identity <file>, or load the key into ssh-agent (SSH_AUTH_SOCK).",
    );
  }
  return {
    host,
    port,
    username: user,
    ...(c.privateKey !== undefined ? { privateKey: c.privateKey } : {}),
    ...(c.agent !== undefined ? { agent: c.agent } : {}),
    hostVerifier: (key: Buffer) => hostKeyMatches(hostKey, key),
    sudo,
    ...(hostKey !== undefined ? { hostKey } : {}),
  };
}

/**
 * Proves over SSH that a host is what `expected` declares, and says how to fix what is not.
 * One SSH connection, one command (the probe script, as root through `sudo -n`); it only
 * reads. Never throws for a host problem: an unreachable host is a report with `error`.
 *
 * @throws InvalidArgument for bad connection args (before anything is sent).
 */
export async function verifyHost(
  connection: VerifyConnection,
  expected: VerifyExpectation,
  opts: VerifyOptions = {},
): Promise<HostReport> {
  const { sudo, hostKey, ...config } = resolveVerifyConnection(connection);
  const name = opts.name ?? `${config.host}:${config.port}`;
  const timeoutMs = checkInteger("timeoutMs", opts.timeoutMs ?? 60_000, 1000, 3_600_000);
  const marker = `@@hd-verify-${randomBytes(8).toString("hex")}@@`;
  const script = probeScript(probeTarget(expected, opts.dockerClient), marker);
  const t0 = performance.now();
  let connectedAt: number | undefined;
  try {
    const out = await execOnce(config, probeCommand(sudo, timeoutMs / 1000), {
      stdin: script,
      timeoutMs,
      ...(hostKey !== undefined ? { hostKey } : {}),
      onReady: () => {
        connectedAt = performance.now();
      },
    });
    opts.onProbeOutput?.({ marker, stdout: out.stdout, stderr: out.stderr });
    const sections = parseSections(out.stdout, marker);
    if (!sections.has("whoami")) {
      const hint = /sudo/.test(out.stderr)
        ? ` (${config.username} needs a NOPASSWD sudo rule: verify runs its read-only probe as root)`
        : "";
      throw new Error(`the probe did not run: exit ${out.code}: ${out.stderr.trim()}${hint}`);
    }
    const facts = parseFacts(
      sections,
      expected.serviceUser,
      (expected.tenants ?? []).map((t) => t.serviceUser),
    );
    if (!facts.complete) throw new Error(`the probe was cut short: ${out.stderr.trim()}`);
    const checks = evaluateChecks(facts, expected);
    const done = performance.now();
    return {
      host: name,
      checks,
      connectSeconds: ((connectedAt ?? done) - t0) / 1000,
      checkSeconds: (done - (connectedAt ?? t0)) / 1000,
    };
  } catch (err) {
    return unverifiedReport(
      name,
      (err as Error).message,
      connectedAt === undefined ? undefined : (connectedAt - t0) / 1000,
    );
  }
}
