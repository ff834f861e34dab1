/**
 * `sudo npx tsx bench/verify-fleet.ts [--hosts 20] [--concurrency 20] [--rounds 3]
 *   [--probe test/unit/fixtures/verify/converged.json]`
 *
 * Times `hardened-docker verify --all-stacks` over a fleet of stand-in hosts on this machine:
 * one real sshd per host on a loopback port (test/e2e/fake-fleet.ts), each answering with a
 * probe output recorded on the converged test VM, and one stack file per host declaring what
 * that VM was given. Prints the wall time of each round and each host's connect and check
 * times. Exits 1 unless every host passes. Needs root (sshd).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runVerify } from "../cli/verify";
import { HostReport } from "../components/verify";
import { RecordedProbe, startFakeFleet } from "../test/e2e/fake-fleet";

const ROOT = join(__dirname, "..");

/** The stack the recorded VM was converged with (see test/e2e/host.test.ts). */
const stackBody = (port: number, hostKey: string) => `config:
  hardened-docker:host: 127.0.0.1
  hardened-docker:port: "${port}"
  hardened-docker:user: root
  hardened-docker:hostKey: ${hostKey}
  hardened-docker:privateKey:
    secure: v1:not-read-by-verify
  hardened-docker:serviceUser: provisioner
  hardened-docker:daemonConfig:
    icc: false
  hardened-docker:services:
    - name: provisioner
      description: Tenant provisioner (e2e fixture)
      execStart: /usr/bin/perl /opt/provisioner/server.pl
      workingDirectory: /opt/provisioner
      environment:
        PORT: "3000"
      secretEnvironment: [ADMIN_TOKEN]
  hardened-docker:serviceSecrets:
    secure: v1:not-read-by-verify
  hardened-docker:deployKeys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE deploy
  hardened-docker:socketProxy:
    image: local/haproxy:e2e
`;

export interface FleetRun {
  readonly wallSeconds: number;
  readonly reports: HostReport[];
  readonly exitCode: number;
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

/** Starts the fleet, runs `rounds` timed `verify --all-stacks`, stops the fleet. */
export async function benchFleet(
  hosts: number,
  concurrency: number,
  rounds: number,
  probe: RecordedProbe,
): Promise<FleetRun[]> {
  const fleet = await startFakeFleet(hosts, probe);
  try {
    const dir = mkdtempSync(join(tmpdir(), "hd-fleet-stacks-"));
    fleet.hosts.forEach((h, i) =>
      writeFileSync(
        join(dir, `Pulumi.host-${String(i + 1).padStart(2, "0")}.yaml`),
        stackBody(h.port, h.hostKey),
      ),
    );
    writeFileSync(join(dir, "id"), fleet.privateKey, { mode: 0o600 });
    const runs: FleetRun[] = [];
    for (let r = 0; r < rounds; r++) {
      let json = "";
      const t0 = performance.now();
      const exitCode = await runVerify(
        [
          "--all-stacks",
          "--stacks-dir",
          dir,
          "--identity",
          join(dir, "id"),
          "--concurrency",
          String(concurrency),
          "--json",
        ],
        {
          stdout: (t) => void (json += t),
          stderr: (t) => void process.stderr.write(t),
          env: {},
          isTty: false,
        },
      );
      const wallSeconds = (performance.now() - t0) / 1000;
      runs.push({
        wallSeconds,
        exitCode,
        reports: (JSON.parse(json) as { hosts: HostReport[] }).hosts,
      });
    }
    return runs;
  } finally {
    fleet.stop();
  }
}

export function describeRun(run: FleetRun): string {
  const connect = run.reports.map((r) => r.connectSeconds ?? NaN);
  const check = run.reports.map((r) => r.checkSeconds ?? NaN);
  const failing = run.reports.filter(
    (r) => r.error !== undefined || r.checks.some((c) => c.status !== "PASS"),
  );
  return (
    `${run.reports.length} hosts in ${run.wallSeconds.toFixed(2)} s (exit ${run.exitCode}); ` +
    `per host connect p50 ${pct(connect, 50).toFixed(3)} s max ${Math.max(...connect).toFixed(3)} s, ` +
    `checks p50 ${pct(check, 50).toFixed(3)} s max ${Math.max(...check).toFixed(3)} s; ` +
    `${failing.length} not all-PASS${failing.length ? `: ${failing.map((r) => r.error ?? r.host).join(", ")}` : ""}`
  );
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
  };
  const hosts = Number(opt("--hosts", "20"));
  const probeFile = opt("--probe", join(ROOT, "test/unit/fixtures/verify/converged.json"));
  const probe = JSON.parse(readFileSync(probeFile, "utf8")) as RecordedProbe;
  const runs = await benchFleet(
    hosts,
    Number(opt("--concurrency", String(hosts))),
    Number(opt("--rounds", "3")),
    probe,
  );
  runs.forEach((r, i) => console.log(`round ${i + 1}: ${describeRun(r)}`));
  if (runs.some((r) => r.exitCode !== 0)) process.exitCode = 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
