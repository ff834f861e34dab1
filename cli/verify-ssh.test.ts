/**
 * `hardened-docker verify --host` against real sockets on 127.0.0.1: an SSH server (ssh2's)
 * with another host key than the pinned one, and a TCP server that accepts and never speaks.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { AddressInfo, Server as TcpServer, Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server as SshServer, utils } from "ssh2";
import { ed25519KeyPair } from "../test/keys";
import { runVerify } from "./verify";
import { hostKeyMismatchMessage } from "../components/verify/ssh";
import { recordingIo } from "../test/helpers/cli-io";

const ROOT = join(__dirname, "..");
/** A key nobody serves: what the command line pins. */
const PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE";

function cli() {
  // never dialled: the host key is refused (or the server hangs) before authentication
  return recordingIo({ env: { SSH_AUTH_SOCK: "/nonexistent/agent.sock" } });
}

const listen = (server: TcpServer | SshServer): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
const close = (server: TcpServer | SshServer) =>
  new Promise<void>((resolve) => server.close(() => resolve()));

/** What OpenSSH's own ssh-keygen -l prints as the fingerprint of a public key line. */
function opensshFingerprint(publicKey: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "hd-fp-")), "key.pub");
  writeFileSync(file, `${publicKey}\n`);
  const r = spawnSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  return r.stdout.split(" ")[1];
}

describe("the pinned host key", () => {
  const served = ed25519KeyPair();
  let server: SshServer;
  let port: number;
  beforeAll(async () => {
    server = new SshServer({ hostKeys: [served.private] }, (client) => {
      client.on("authentication", (ctx) => ctx.reject()).on("error", () => undefined);
    });
    port = await listen(server);
  });
  afterAll(() => close(server));

  test("another key is refused, and the error names both fingerprints as OpenSSH does", async () => {
    const t = cli();
    const code = await runVerify(
      ["--host", "127.0.0.1", "--port", String(port), "--host-key", PINNED],
      t.io,
    );
    expect(code).toBe(1);
    const expected = opensshFingerprint(PINNED);
    const got = opensshFingerprint(served.public);
    expect([expected, got]).toEqual([
      expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
      expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
    ]);
    expect(t.out.join("")).toContain(
      `not verified: host key mismatch for 127.0.0.1:${port}: expected ${expected}, got ${got} (ssh-ed25519)\n`,
    );
  });

  test("the message names each key type and its fingerprint as ssh-keygen -l does", () => {
    for (const offered of [
      utils.generateKeyPairSync("rsa", { bits: 2048 }).public,
      utils.generateKeyPairSync("ecdsa", { bits: 256 }).public,
      served.public,
    ]) {
      const [type, b64] = offered.split(" ");
      expect(hostKeyMismatchMessage("h:22", PINNED, Buffer.from(b64, "base64"))).toBe(
        `host key mismatch for h:22: expected ${opensshFingerprint(PINNED)}, got ${opensshFingerprint(offered)} (${type})`,
      );
    }
  });

  test("the served key passes the key exchange: the run gets as far as authentication", async () => {
    const t = cli();
    const hostKey = served.public.split(" ").slice(0, 2).join(" ");
    const code = await runVerify(
      ["--host", "127.0.0.1", "--port", String(port), "--host-key", hostKey],
      t.io,
    );
    expect(code).toBe(1);
    const out = t.out.join("");
    expect(out).not.toContain("mismatch");
    expect(out).toMatch(/not verified: ssh root@127\.0\.0\.1:\d+: .*(auth|agent|ENOENT)/i);
  });
});

/**
 * A TCP server that accepts and never speaks. `reads`: it reads (and so sees the client hang
 * up); a server that does not read never answers a half-close either, like a hung sshd.
 */
async function silentServer(reads: boolean) {
  const sockets: Socket[] = [];
  const closedAt: Promise<number>[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    closedAt.push(new Promise((resolve) => s.on("close", () => resolve(performance.now()))));
    s.on("error", () => undefined);
    if (reads) s.resume();
  });
  const port = await listen(server);
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await close(server);
  };
  return { port, closedAt, stop };
}

/** `p`, or `otherwise` if it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("--timeout", () => {
  test("bounds the whole host: against a server that never speaks, the host ends in time, the connection closed", async () => {
    const silent = await silentServer(true);
    try {
      const t = cli();
      const t0 = performance.now();
      const code = await runVerify(
        [
          "--host",
          "127.0.0.1",
          "--port",
          String(silent.port),
          "--host-key",
          PINNED,
          "--timeout",
          "3",
        ],
        t.io,
      );
      const seconds = (performance.now() - t0) / 1000;
      expect(code).toBe(1);
      expect(seconds).toBeGreaterThanOrEqual(2.9);
      expect(seconds).toBeLessThan(6);
      expect(t.out.join("")).toContain(
        `127.0.0.1:${silent.port}\n  FAIL  not verified: ssh root@127.0.0.1:${silent.port}: timed out after 3 s waiting for the SSH handshake`,
      );
      expect(silent.closedAt).toHaveLength(1);
      const closedAt = await within(silent.closedAt[0], 1000, Infinity);
      expect((closedAt - t0) / 1000).toBeLessThan(6);
    } finally {
      await silent.stop();
    }
  });

  test("the command's process exits right after its report (nothing of the connection keeps it alive)", async () => {
    const silent = await silentServer(false);
    try {
      const child = spawn(
        process.execPath,
        [
          join(ROOT, "bin", "hardened-docker.js"),
          ...["verify", "--host", "127.0.0.1", "--port", String(silent.port)],
          ...["--host-key", PINNED, "--timeout", "3"],
        ],
        { env: { ...process.env, SSH_AUTH_SOCK: "/nonexistent/agent.sock" } },
      );
      let stdout = "";
      let reportedAt = Infinity;
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (/not verified/.test(stdout)) reportedAt = Math.min(reportedAt, performance.now());
      });
      const exit = new Promise<[number | null, number]>((resolve) =>
        child.on("exit", (code) => resolve([code, performance.now()])),
      );
      const [code, exitedAt] = await within(exit, 30_000, [null, Infinity]);
      if (exitedAt === Infinity) child.kill();
      // before: ssh2's own 20 s handshake timer outlived the report by some 17 s
      expect((exitedAt - reportedAt) / 1000).toBeLessThan(2);
      expect(code).toBe(1);
      expect(stdout).toContain("timed out after 3 s waiting for the SSH handshake");
    } finally {
      await silent.stop();
    }
  }, 40_000);
});
