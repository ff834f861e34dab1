/**
 * Real haproxy on loopback in front of a recording upstream on a unix socket: what the socket
 * proxy's rendered configuration does, measured instead of assumed. Needs Debian's `haproxy`
 * (`.ci/run` installs it); a missing binary fails the suite, it never skips.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SocketProxyPolicy, renderSocketProxyConfig } from "../../components";

export const HAPROXY = "haproxy";

export function requireHaproxy(): void {
  if (spawnSync(HAPROXY, ["-v"]).status !== 0) {
    throw new Error("haproxy is not installed: apt-get install haproxy (.ci/run does this)");
  }
}

/** `haproxy -c` on a config text: status and everything it printed. */
export function haproxyCheck(config: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "hd-haproxy-c-"));
  try {
    const file = join(dir, "haproxy.cfg");
    writeFileSync(file, config);
    const r = spawnSync(HAPROXY, ["-c", "-f", file], { encoding: "utf8" });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly id?: string;
}

/** Free TCP port on 127.0.0.1 (bound then released). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** One running haproxy + recording upstream; `stop()` ends both and removes the files. */
export class ProxyUnderTest {
  log = "";
  private constructor(
    /** Every request the upstream received, health checks included. */
    readonly seen: Seen[],
    readonly port: number,
    readonly healthPort: number,
    private readonly dir: string,
    private readonly upstream: http.Server,
    private readonly proc: ChildProcess,
    private readonly events: Set<http.ServerResponse>,
  ) {}

  /** `/events` streams the upstream still holds open (with `holdEvents`). */
  get openEvents(): number {
    return this.events.size;
  }

  /**
   * `holdEvents`: the upstream's `/events` streams never end (a real daemon with no events),
   * and `openEvents()` counts the ones still open on the upstream side.
   */
  static async start(
    policy: SocketProxyPolicy,
    opts: { holdEvents?: boolean } = {},
  ): Promise<ProxyUnderTest> {
    requireHaproxy();
    const dir = mkdtempSync(join(tmpdir(), "hd-proxy-"));
    const socket = join(dir, "docker.sock");
    const seen: Seen[] = [];
    const openEvents = new Set<http.ServerResponse>();
    const upstream = http.createServer((req, res) => {
      const id = req.headers["x-corpus-id"];
      seen.push({ method: req.method ?? "", url: req.url ?? "", id: id as string | undefined });
      req.resume();
      if (/\/events(\?|$)/.test(req.url ?? "")) {
        // a stream that stays idle between two events
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"status":"start"}\n');
        if (opts.holdEvents) {
          openEvents.add(res);
          res.on("close", () => openEvents.delete(res));
        } else setTimeout(() => res.end('{"status":"die"}\n'), 400);
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "api-version": "1.44" });
      res.end(req.method === "HEAD" ? undefined : `{"upstream":true}`);
    });
    await new Promise<void>((resolve) => upstream.listen(socket, resolve));
    const [port, healthPort] = [await freePort(), await freePort()];
    const config = renderSocketProxyConfig(policy, {
      listen: `127.0.0.1:${port}`,
      upstream: socket,
      healthListen: `127.0.0.1:${healthPort}`,
    });
    const cfg = join(dir, "haproxy.cfg");
    writeFileSync(cfg, config);
    const proc = spawn(HAPROXY, ["-db", "-f", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    const p = new ProxyUnderTest(seen, port, healthPort, dir, upstream, proc, openEvents);
    proc.stdout?.on("data", (d: Buffer) => (p.log += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (p.log += d.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await rawRequest(
        p.healthPort,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        1000,
      ).catch(() => "");
      if (r.startsWith("HTTP/1.1 200")) break;
      if (proc.exitCode !== null || Date.now() > deadline) {
        await p.stop();
        throw new Error(`haproxy did not come up (exit ${proc.exitCode}):\n${p.log}`);
      }
      await new Promise((r2) => setTimeout(r2, 50));
    }
    return p;
  }

  /** Sends raw bytes on a fresh connection; resolves with everything received. */
  send(raw: string | Buffer, timeoutMs = 2000): Promise<string> {
    return rawRequest(this.port, raw, timeoutMs);
  }

  reached(id: string): Seen[] {
    return this.seen.filter((s) => s.id === id);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await exited;
    }
    for (const res of this.events) res.destroy();
    await new Promise((r) => this.upstream.close(r));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Writes `raw` to 127.0.0.1:port and collects the reply until close or `timeoutMs`. */
export function rawRequest(port: number, raw: string | Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let data = "";
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on("connect", () => sock.write(raw));
    sock.on("data", (d) => (data += d.toString("latin1")));
    sock.on("error", (e) => {
      clearTimeout(timer);
      if (data) resolve(data);
      else reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

/** Status codes of every response in `reply`, in order. */
export function statuses(reply: string): number[] {
  return [...reply.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
}
