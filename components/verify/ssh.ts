/** One command over one ssh2 connection: what `verify` and the test harness both need. */
import { Client, ConnectConfig } from "ssh2";

/** The connection itself failed (refused, timed out, auth or host key rejected). */
export class SshConnectError extends Error {}

/** The host key check of `remote.Command`: the offered key must be the pinned one, if any. */
export function hostKeyMatches(pinned: string | undefined, offered: Buffer): boolean {
  if (pinned === undefined) return true;
  const b64 = pinned.trim().split(/\s+/)[1] ?? "";
  return offered.equals(Buffer.from(b64, "base64"));
}

export interface ExecOnceOptions {
  /** Written to the command's stdin, then closed. @default "" */
  readonly stdin?: string;
  readonly timeoutMs: number;
  /** Called once authenticated, before the command is sent. */
  readonly onReady?: () => void;
  /** Called with the live client once the command runs (tests cut the connection with it). */
  readonly onStarted?: (client: Client) => void;
}

export interface ExecOnceResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Connects, runs `command`, collects its output and exit code, disconnects. */
export function execOnce(
  config: ConnectConfig,
  command: string,
  opts: ExecOnceOptions,
): Promise<ExecOnceResult> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const where = `ssh ${config.username}@${config.host}:${config.port}`;
    const finish = (e: Error | undefined, code: number | null = null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      if (e) reject(e);
      else
        resolve({
          code,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
    };
    const timer = setTimeout(
      () => finish(new Error(`${where}: timed out after ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    client
      .on("ready", () => {
        opts.onReady?.();
        client.exec(command, (e, stream) => {
          if (e) return finish(e);
          opts.onStarted?.(client);
          stream
            .on("close", (code: number | null) => finish(undefined, code))
            .on("data", (d: Buffer) => out.push(d));
          stream.stderr.on("data", (d: Buffer) => err.push(d));
          stream.end(opts.stdin ?? "");
        });
      })
      .on("error", (e) => finish(new SshConnectError(`${where}: ${e.message}`)))
      .on("close", () =>
        finish(new Error(`${where}: connection closed before the command finished`)),
      )
      .connect(config);
  });
}
