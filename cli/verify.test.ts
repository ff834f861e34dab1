/**
 * `hardened-docker verify` without a host: argument handling, stack files read into
 * expectations and connections, parallel runs with a concurrency limit, exit codes, and the
 * three output formats.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mapLimit, runVerify } from "./verify";
import {
  HostReport,
  VerifyConnection,
  VerifyExpectation,
  fleetSummary,
  renderJson,
  renderJunit,
  renderTable,
} from "../components/verify";

const ROOT = join(__dirname, "..");
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE";

const pass = (id: string) => ({
  id,
  title: `title of ${id}`,
  status: "PASS" as const,
  evidence: `saw ${id}`,
  remediation: "Nothing to do.",
});
const failed: HostReport = {
  host: "web-1",
  checks: [
    pass("service-user.exists"),
    {
      id: "linger.enabled",
      title: "Linger is on for provisioner",
      status: "FAIL",
      evidence: "/var/lib/systemd/linger/provisioner is missing",
      remediation: "Turn it on: sudo loginctl enable-linger provisioner.",
    },
    {
      id: "docker.user-service",
      title: "The user-level docker.service is enabled and active",
      status: "WARN",
      evidence: "inactive (follows from linger.enabled)",
      remediation: "Start it.",
      cause: "linger.enabled",
    },
  ],
  connectSeconds: 0.2,
  checkSeconds: 0.61,
};
const healthy: HostReport = { host: "web-2", checks: [pass("a.b")], checkSeconds: 0.5 };
const unreachable: HostReport = {
  host: "db<1>",
  checks: [],
  error: 'ssh: connect ECONNREFUSED & "x"',
};

function io(
  verify?: (
    c: VerifyConnection,
    e: VerifyExpectation,
    o?: { name?: string },
  ) => Promise<HostReport>,
) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void err.push(t),
      env: { SSH_AUTH_SOCK: "/tmp/agent.sock" },
      isTty: false,
      ...(verify ? { verify } : {}),
    },
  };
}

function stacksDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "hd-stacks-"));
  for (const [name, body] of Object.entries(files))
    writeFileSync(join(dir, `Pulumi.${name}.yaml`), body);
  return dir;
}
const stackFile = (host: string, extra = "") => `config:
  hardened-docker:host: ${host}
  hardened-docker:port: "2222"
  hardened-docker:user: admin
  hardened-docker:hostKey: ${HOST_KEY}
  hardened-docker:privateKey:
    secure: v1:AAAA
  hardened-docker:serviceUser: deployer
${extra}`;

describe("output formats", () => {
  test("table: FAIL shows evidence and fix, a consequence WARN names its cause, summary counts", () => {
    const t = renderTable(failed);
    expect(t).toContain("FAIL  linger.enabled");
    expect(t).toContain("fix: Turn it on: sudo loginctl enable-linger provisioner.");
    expect(t).toContain("saw: inactive (follows from linger.enabled)");
    expect(t).not.toContain("fix: Start it."); // the fix is the root cause's
    expect(t).toContain("FAIL web-1: 3 checks, 1 pass, 1 warn, 1 fail (0.61 s)");
    expect(t).not.toContain("\x1b[");
    expect(renderTable(failed, { colour: true })).toContain("\x1b[31mFAIL\x1b[0m");
    expect(renderTable(unreachable)).toContain("not verified: ssh: connect ECONNREFUSED");
  });

  test("JSON: every check with its status; the overall status FAIL when one host fails", () => {
    const j = JSON.parse(renderJson([failed, healthy])) as {
      status: string;
      hosts: (HostReport & { status: string })[];
    };
    expect(j.status).toBe("FAIL");
    expect(j.hosts.map((h) => [h.host, h.status])).toEqual([
      ["web-1", "FAIL"],
      ["web-2", "PASS"],
    ]);
    expect(j.hosts[0].checks[2]).toEqual(failed.checks[2]);
    expect(JSON.parse(renderJson([healthy])).status).toBe("PASS");
  });

  test("JUnit: a suite per host, FAIL as failure, unverified host as error, escaped, well-formed", () => {
    const x = renderJunit([failed, healthy, unreachable]);
    expect(x).toContain('<testsuite name="web-1" tests="3" failures="1" errors="0"');
    expect(x).toContain('<failure message="/var/lib/systemd/linger/provisioner is missing">');
    expect(x).toContain("<system-out>WARN: inactive (follows from linger.enabled)");
    expect(x).toContain('<testsuite name="db&lt;1&gt;" tests="1" failures="0" errors="1"');
    expect(x).toContain("ECONNREFUSED &amp; &quot;x&quot;");
    const dir = mkdtempSync(join(tmpdir(), "hd-junit-"));
    writeFileSync(join(dir, "r.xml"), x);
    // a real XML parser (libxml2's xmllint; .ci/run installs libxml2-utils)
    const r = spawnSync("xmllint", ["--xpath", "count(//testcase)", join(dir, "r.xml")], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("5");
  });

  test("fleet summary", () => {
    expect(fleetSummary([failed, healthy, unreachable])).toBe(
      "3 hosts: 1 pass, 0 warn, 1 fail, 1 not verified",
    );
  });
});

describe("the command", () => {
  test("bad arguments exit 2 with the reason and where the usage is, before any connection", async () => {
    const verify = jest.fn();
    for (const [argv, reason] of [
      [[], "name a --stack or a --host"],
      [["--host", "h"], "--host needs --host-key"],
      [["--stack", "x", "--host", "h"], "not with --stack"],
      [["--host", "h", "--host-key", HOST_KEY, "--port", "99999"], "--port 99999"],
      [["--frobnicate"], "unknown option --frobnicate"],
      [["--host", "h", "--host-key", HOST_KEY, "--max-exposure", "11"], "--max-exposure 11"],
      [["--stack", "nope"], "no Pulumi.nope.yaml"],
      [["--stack", "example", "--user", "root"], "--user is read from the stack file"],
      [["--host", "h", "--host-key", "not-a-key"], "connection.hostKey"],
    ] as const) {
      const t = io(verify);
      expect([argv, await runVerify(argv, t.io)]).toEqual([argv, 2]);
      expect(t.err.join("")).toContain(reason);
      expect(t.err.join("")).toMatch(/\nRun 'hardened-docker verify --help' for the options\.\n$/);
      expect(t.err.join("")).not.toContain("usage:");
    }
    const noKey = io(verify);
    expect(await runVerify(["--host", "h", "--host-key", HOST_KEY], { ...noKey.io, env: {} })).toBe(
      2,
    );
    expect(noKey.err.join("")).toContain("pass --identity <file> or start ssh-agent");
    expect(verify).not.toHaveBeenCalled();
  });

  test("--stack reads the stack file: connection from it, key from --identity, expectation from its config", async () => {
    const dir = stacksDir({
      "web-1": stackFile(
        "10.0.0.5",
        `  hardened-docker:daemonConfig:
    log-opts:
      max-size: 50m
  hardened-docker:services:
    - name: app
      execStart: /usr/bin/app
      secretEnvironment: [TOKEN]
  hardened-docker:serviceSecrets:
    secure: v1:BBBB
  hardened-docker:deployKeys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE deploy
  hardened-docker:socketProxy: {}
  hardened-docker:traefik:
    httpPort: 8080
    httpsPort: 8443
`,
      ),
    });
    const key = join(dir, "id");
    writeFileSync(key, "KEY");
    const seen: [VerifyConnection, VerifyExpectation][] = [];
    const t = io(async (c, e, o) => {
      seen.push([c, e]);
      return { host: o?.name ?? "?", checks: [pass("x")] };
    });
    expect(
      await runVerify(["--stack", "web-1", "--stacks-dir", dir, "--identity", key], t.io),
    ).toBe(0);
    const [c, e] = seen[0];
    expect({ ...c, privateKey: String(c.privateKey) }).toEqual({
      host: "10.0.0.5",
      port: 2222,
      user: "admin",
      hostKey: HOST_KEY,
      privateKey: "KEY",
    });
    expect(e.serviceUser).toBe("deployer");
    expect(JSON.parse(e.daemonJson)["log-opts"]["max-size"]).toBe("50m");
    expect(e.services.map((s) => [s.args.name, s.environmentFile])).toEqual([
      ["app", "/etc/hardened-docker/app.env"],
    ]);
    expect(e.socketProxy?.containerName).toBe("socket-proxy");
    expect(e.socketProxy?.config).toContain("frontend docker_api");
    expect(e.traefik).toEqual({ containerName: "traefik", endpoint: "tcp://socket-proxy:2375" });
    expect(t.out.join("")).toContain("PASS web-1: 1 checks");
  });

  test("--host: a default configuration (no services, no proxy unless asked), the agent's key", async () => {
    const seen: [VerifyConnection, VerifyExpectation][] = [];
    const t = io(async (c, e) => {
      seen.push([c, e]);
      return healthy;
    });
    await runVerify(["--host", "192.0.2.7", "--host-key", HOST_KEY, "--user", "admin"], t.io);
    await runVerify(
      ["--host", "192.0.2.7", "--host-key", HOST_KEY, "--traefik", "--max-exposure", "2.5"],
      t.io,
    );
    expect(seen[0][0]).toEqual({
      host: "192.0.2.7",
      port: 22,
      user: "admin",
      hostKey: HOST_KEY,
      agent: "/tmp/agent.sock",
    });
    expect(seen[0][1]).toMatchObject({
      serviceUser: "provisioner",
      services: [],
      rootfulDaemonOff: true,
    });
    expect(seen[0][1].socketProxy).toBeUndefined();
    expect(seen[1][1].socketProxy?.containerName).toBe("socket-proxy");
    expect(seen[1][1].traefik?.endpoint).toBe("tcp://socket-proxy:2375");
    expect([seen[0][1].maxExposure, seen[1][1].maxExposure]).toEqual([3.5, 2.5]);
  });

  test("several stacks: in parallel up to --concurrency, reports in order, summary, exit 1 on a FAIL, --json, --junit file", async () => {
    const names = ["a", "b", "c", "d", "e"];
    const dir = stacksDir(
      Object.fromEntries([...names, "example", "local"].map((n) => [n, stackFile(`${n}.test`)])),
    );
    let running = 0;
    let peak = 0;
    const t = io(async (_c, _e, o) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 20));
      running--;
      return o?.name === "c" ? { ...failed, host: "c" } : { ...healthy, host: o?.name ?? "?" };
    });
    const junit = join(dir, "verify.xml");
    const code = await runVerify(
      ["--all-stacks", "--stacks-dir", dir, "--concurrency", "2", "--junit", junit],
      t.io,
    );
    expect(code).toBe(1);
    expect(peak).toBe(2);
    const out = t.out.join("");
    expect(out.indexOf("PASS a:")).toBeLessThan(out.indexOf("FAIL c:"));
    expect(out).toMatch(/5 hosts: 4 pass, 0 warn, 1 fail, 0 not verified in \d+\.\d\d s/);
    expect(out).not.toContain("example");
    expect(readFileSync(junit, "utf8")).toContain('<testsuite name="e"');
    const j = io(async (_c, _e, o) => ({ ...healthy, host: o?.name ?? "?" }));
    expect(
      await runVerify(["--stack", "a", "--stack", "b", "--stacks-dir", dir, "--json"], j.io),
    ).toBe(0);
    expect(JSON.parse(j.out.join("")).hosts.map((h: HostReport) => h.host)).toEqual(["a", "b"]);
  });

  test("mapLimit never runs more than the limit and keeps order", async () => {
    let running = 0;
    let peak = 0;
    const r = await mapLimit([5, 1, 4, 2, 3], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((res) => setTimeout(res, n * 3));
      running--;
      return n * 10;
    });
    expect(r).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(3);
  });

  test("npx hardened-docker verify --help and --version work from the package's bin", () => {
    const bin = (...argv: string[]) =>
      spawnSync(process.execPath, [join(ROOT, "bin", "hardened-docker.js"), ...argv], {
        encoding: "utf8",
      });
    const help = bin("verify", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("usage: hardened-docker verify");
    const version = bin("--version");
    expect([version.status, version.stdout]).toEqual([
      0,
      `hardened-docker ${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version}\n`,
    ]);
  });
});
