/**
 * The test-only engine stand-in (test/e2e/engine.ts) when a step fails: nothing after it runs,
 * and the program's applies on the outputs it never got do not crash it. A host that refuses
 * every connection (a closed loopback port) makes the first step fail at once, no VM needed.
 * (Outputs handed back as unknown read as `undefined` outside a preview, and the applies on
 * them threw: a canary script from an image never pulled, a uid from a step that never ran.)
 */
import { createServer } from "node:net";
import { ed25519KeyPair } from "../keys";
import { applyStack } from "../e2e/engine";

jest.setTimeout(120_000);

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

test("a failed first step: the apply reports it, runs nothing after it, and nothing crashes", async () => {
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => rejections.push(e);
  process.on("unhandledRejection", onRejection);
  try {
    const admin = ed25519KeyPair("unit@admin");
    const config = {
      host: "127.0.0.1",
      port: await closedPort(),
      user: "admin",
      hostKey: ed25519KeyPair("unit@host").public,
      privateKey: admin.private,
      serviceUser: "provisioner",
      deployKeys: [ed25519KeyPair("unit@deploy").public],
      // both canaries: their scripts are built from the images' ids
      socketProxy: { image: "local/haproxy:unit" },
      traefik: { image: "local/traefik:unit", httpPort: 8080, httpsPort: 8443 },
    };
    const r = await applyStack(config, ["privateKey"], {
      dockerIdentity: ed25519KeyPair("unit@docker").private,
      state: new Map(),
      commandState: new Map(),
    });
    expect(r.error?.message).toMatch(/ECONNREFUSED/);
    expect(r.commands).toEqual([]);
    expect(r.docker).toEqual([]);
    // what needs the failed step's output never registers (here: all but its first steps)
    expect(r.registered.map((x) => x.name)).not.toContain("socket-proxy-canary");
    expect(rejections).toEqual([]);
  } finally {
    process.off("unhandledRejection", onRejection);
  }
});
