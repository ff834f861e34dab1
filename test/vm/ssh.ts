/**
 * SSH for the test harness (ssh2): one connection per call, the host key checked against the
 * pinned one exactly as `remote.Command` does with `connection.hostKey`.
 */
import type { Client } from "ssh2";
import { SshConnectError, execOnce, hostKeyMatches } from "../../components/verify/ssh";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA…`; undefined accepts any key (insecureIgnoreHostKey). */
  readonly hostKey?: string;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly stdin?: string;
  readonly timeoutMs?: number;
  /** Called with the live client once the command runs (tests use it to cut the connection). */
  readonly onStarted?: (client: Client) => void;
}

export { SshConnectError, hostKeyMatches };

/** Runs `command` on the target; resolves with its exit code and output. */
export function sshExec(
  target: SshTarget,
  command: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  return execOnce(
    {
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      readyTimeout: 20_000,
      hostVerifier: (key: Buffer) => hostKeyMatches(target.hostKey, key),
    },
    command,
    { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 15 * 60_000, onStarted: opts.onStarted },
  );
}

/** Like sshExec, but a non-zero exit is an error carrying the output. */
export async function sshRun(
  target: SshTarget,
  command: string,
  opts: ExecOptions = {},
): Promise<string> {
  const r = await sshExec(target, command, opts);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${command}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
