/**
 * SSH for the test harness (ssh2): one connection per call, the host key checked against the
 * pinned one exactly as `remote.Command` does with `connection.hostKey`.
 */
import { Client } from "ssh2";
import { hostKeyMatches } from "../../components/verify/verify-host";

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

export class SshConnectError extends Error {}

export { hostKeyMatches };

/** Runs `command` on the target; resolves with its exit code and output. */
export function sshExec(
  target: SshTarget,
  command: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let stdout = "";
    let stderr = "";
    let settled = false;
    const finish = (err: Error | undefined, code: number | null = null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      if (err) reject(err);
      else resolve({ code, stdout, stderr });
    };
    const timer = setTimeout(
      () => finish(new Error(`ssh ${target.user}@${target.host}:${target.port}: timed out`)),
      opts.timeoutMs ?? 15 * 60_000,
    );
    client
      .on("ready", () => {
        client.exec(command, (err, stream) => {
          if (err) return finish(err);
          opts.onStarted?.(client);
          stream
            .on("close", (code: number | null) => finish(undefined, code))
            .on("data", (d: Buffer) => (stdout += d.toString("utf8")));
          stream.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
          stream.end(opts.stdin ?? "");
        });
      })
      .on("error", (err) =>
        finish(
          new SshConnectError(`ssh ${target.user}@${target.host}:${target.port}: ${err.message}`),
        ),
      )
      .on("close", () =>
        finish(
          new Error(
            `ssh ${target.user}@${target.host}:${target.port}: connection closed before the command finished`,
          ),
        ),
      )
      .connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: target.privateKey,
        readyTimeout: 20_000,
        hostVerifier: (key: Buffer) => hostKeyMatches(target.hostKey, key),
      });
  });
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
