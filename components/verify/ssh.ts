/** One command over one ssh2 connection: what `verify` and the test harness both need. */
import { createHash } from "node:crypto";
import { Client, ConnectConfig } from "ssh2";

/** The connection itself failed (refused, timed out, auth or host key rejected). */
export class SshConnectError extends Error {}

/** The host key check of `remote.Command`: the offered key must be the pinned one, if any. */
export function hostKeyMatches(pinned: string | undefined, offered: Buffer): boolean {
  if (pinned === undefined) return true;
  return offered.equals(pinnedKeyBlob(pinned));
}

/** The key blob of a pinned `<type> <base64>` key. */
function pinnedKeyBlob(pinned: string): Buffer {
  return Buffer.from(pinned.trim().split(/\s+/)[1] ?? "", "base64");
}

/** `SHA256:<base64 without padding>` of a public key blob, as `ssh-keygen -l` prints it. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type a public key blob names in its first field (`ssh-ed25519`, …). */
function keyTypeOf(blob: Buffer): string {
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + length).toString("latin1");
  return length > 0 && length <= 64 && /^[\x21-\x7e]+$/.test(type) ? type : "unknown key type";
}

/**
 * What OpenSSH would say for a host that offered another key than the pinned one:
 * `host key mismatch for h:22: expected SHA256:…, got SHA256:… (ssh-ed25519)`.
 */
export function hostKeyMismatchMessage(hostPort: string, pinned: string, offered: Buffer): string {
  return `host key mismatch for ${hostPort}: expected ${sha256Fingerprint(pinnedKeyBlob(pinned))}, got ${sha256Fingerprint(offered)} (${keyTypeOf(offered)})`;
}

export interface ExecOnceOptions {
  /** Written to the command's stdin, then closed. @default "" */
  readonly stdin?: string;
  /** Bounds the whole run: TCP connect, SSH handshake, authentication and the command. */
  readonly timeoutMs: number;
  /**
   * The pinned host key (`<type> <base64>`): only it is accepted, and a refusal names both
   * fingerprints. @default none: `config.hostVerifier` decides, and a refusal is ssh2's message
   */
  readonly hostKey?: string;
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

/** Where a connection stands, for a timeout to say what it was waiting for. */
type Phase = "the TCP connection" | "the SSH handshake" | "authentication" | "the command";

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
    let phase: Phase = "the TCP connection";
    let hostKeyRefusal: string | undefined;
    const where = `ssh ${config.username}@${config.host}:${config.port}`;
    const finish = (e: Error | undefined, code: number | null = null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // destroy, not end: a half-open socket (and ssh2's handshake timer) would keep the
      // process alive after a timeout
      if (e) client.destroy();
      else client.end();
      if (e) reject(e);
      else
        resolve({
          code,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
    };
    // ssh2's own timer bounds connect, handshake and authentication; ours, everything
    const readyTimeout = Math.min(config.readyTimeout ?? opts.timeoutMs, opts.timeoutMs);
    const timedOut = (ms: number) => {
      const message = `${where}: timed out after ${ms / 1000} s waiting for ${phase}`;
      return phase === "the command" ? new Error(message) : new SshConnectError(message);
    };
    const timer = setTimeout(() => finish(timedOut(opts.timeoutMs)), opts.timeoutMs);
    const pinned = opts.hostKey;
    const hostVerifier =
      pinned === undefined
        ? config.hostVerifier
        : (key: Buffer) => {
            if (hostKeyMatches(pinned, key)) return true;
            hostKeyRefusal = hostKeyMismatchMessage(`${config.host}:${config.port}`, pinned, key);
            return false;
          };
    client
      .on("connect", () => {
        phase = "the SSH handshake";
      })
      .on("handshake", () => {
        phase = "authentication";
      })
      .on("ready", () => {
        phase = "the command";
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
      .on("error", (e: Error & { level?: string }) =>
        finish(
          hostKeyRefusal !== undefined
            ? new SshConnectError(hostKeyRefusal)
            : e.level === "client-timeout"
              ? timedOut(readyTimeout)
              : new SshConnectError(`${where}: ${e.message}`),
        ),
      )
      .on("close", () =>
        finish(new Error(`${where}: connection closed before the command finished`)),
      )
      .connect({
        ...config,
        ...(hostVerifier ? { hostVerifier } : {}),
        readyTimeout,
      });
  });
}
