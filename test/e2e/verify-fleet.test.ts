/**
 * verify across a fleet: 20 stand-in hosts on this machine (real sshd instances on loopback
 * ports answering with a probe output recorded on the test VM, see fake-fleet.ts), verified
 * in parallel by the CLI from 20 stack files. Also: a wrong host key and a closed port are
 * reports with an error (exit 1), never a hang or a crash. Needs root and sshd.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchFleet, describeRun } from "../../bench/verify-fleet";
import { verifyHost } from "../../components/verify";
import { RecordedProbe, startFakeFleet } from "./fake-fleet";
import { e2eExpectation } from "../helpers/verify";

jest.setTimeout(5 * 60_000);
const probe = JSON.parse(
  readFileSync(join(__dirname, "..", "fixtures", "verify", "converged.json"), "utf8"),
) as RecordedProbe;

test("20 hosts verified in parallel by `verify --all-stacks`: every host passes", async () => {
  const runs = await benchFleet(20, 20, 3, probe);
  runs.forEach((r, i) => console.log(`fleet round ${i + 1}: ${describeRun(r)}`));
  for (const r of runs) {
    expect(r.exitCode).toBe(0);
    expect(r.reports).toHaveLength(20);
    for (const report of r.reports) {
      expect(report.error).toBeUndefined();
      expect(report.checks.filter((c) => c.status !== "PASS")).toEqual([]);
    }
  }
  // one host alone, for comparison
  const [one] = await benchFleet(1, 1, 1, probe);
  console.log(`one host: ${describeRun(one)}`);
  expect(one.exitCode).toBe(0);
});

test("a wrong host key and a closed port: a report with the reason; the key from an agent works", async () => {
  const fleet = await startFakeFleet(1, probe, 23100);
  try {
    const [host] = fleet.hosts;
    const base = { host: "127.0.0.1", port: host.port, privateKey: fleet.privateKey };
    const wrongKey = await verifyHost(
      {
        ...base,
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE",
      },
      e2eExpectation(),
    );
    expect(wrongKey.checks).toEqual([]);
    expect(wrongKey.error).toMatch(
      /host key mismatch for 127\.0\.0\.1:\d+: expected SHA256:\S+, got SHA256:\S+ \(\S+\)/,
    );
    const closed = await verifyHost({ ...base, port: 1, hostKey: host.hostKey }, e2eExpectation());
    expect(closed.error).toMatch(/ECONNREFUSED/);
    const right = await verifyHost({ ...base, hostKey: host.hostKey }, e2eExpectation());
    expect(right.error).toBeUndefined();
    // the key from an SSH agent instead (what the CLI uses without --identity)
    const dir = mkdtempSync(join(tmpdir(), "hd-agent-"));
    const sock = join(dir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++)
        await new Promise((r) => setTimeout(r, 100));
      writeFileSync(join(dir, "id"), fleet.privateKey, { mode: 0o600 });
      execFileSync("ssh-add", [join(dir, "id")], {
        env: { ...process.env, SSH_AUTH_SOCK: sock },
        stdio: "pipe",
      });
      const viaAgent = await verifyHost(
        { host: "127.0.0.1", port: host.port, hostKey: host.hostKey, agent: sock },
        e2eExpectation(),
      );
      expect(viaAgent.error).toBeUndefined();
      expect(viaAgent.checks.filter((c) => c.status !== "PASS")).toEqual([]);
    } finally {
      agent.kill();
    }
  } finally {
    fleet.stop();
  }
});
