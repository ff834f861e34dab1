/**
 * `sudo npx tsx bench/verify-fleet.ts [--hosts 20] [--concurrency 20] [--rounds 3]
 *   [--probe test/fixtures/verify/converged.json] [--help]`
 *
 * Times `hardened-docker verify --all-stacks` over a fleet of stand-in hosts on this machine:
 * one real sshd per host on a loopback port (test/e2e/fake-fleet.ts), each answering with a
 * probe output recorded on the converged test VM, and one stack file per host declaring what
 * that VM was given. Prints the wall time of each round and each host's connect and check
 * times. Exits 1 unless every host passes. Needs root (sshd).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  HELP_AND_VERSION,
  OptionSpec,
  UsageError,
  integerOption,
  opt,
  packageVersion,
  readOptions,
  renderOptions,
  stringOption,
} from "../cli/options";
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

const OPTIONS: readonly OptionSpec[] = [
  opt("hosts", "<n>", "stand-in hosts (local sshd instances)", { default: "20" }),
  opt("concurrency", "<n>", "verify --concurrency (default: as many as hosts)"),
  opt("rounds", "<n>", "how many times the fleet is verified", { default: "3" }),
  opt("probe", "<file>", "a recorded probe output the hosts answer with", {
    default: "test/fixtures/verify/converged.json",
  }),
  ...HELP_AND_VERSION,
];
const USAGE = `usage: sudo npx tsx bench/verify-fleet.ts [options]

${renderOptions({ Options: OPTIONS })}`;

async function main(argv: string[]): Promise<number> {
  let hosts: number, concurrency: number, rounds: number, probeFile: string;
  try {
    const { values } = readOptions(argv, OPTIONS);
    if (values.help || values.version) {
      console.log(values.help ? USAGE : `hardened-docker ${packageVersion()}`);
      return 0;
    }
    hosts = integerOption(values, OPTIONS, "hosts", 1, 200);
    concurrency =
      values.concurrency === undefined
        ? hosts
        : integerOption(values, OPTIONS, "concurrency", 1, 256);
    rounds = integerOption(values, OPTIONS, "rounds", 1, 100);
    // the default is in this repository; a path given is taken from where you are
    probeFile =
      typeof values.probe === "string"
        ? resolve(values.probe)
        : join(ROOT, stringOption(values, OPTIONS, "probe") as string);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`verify-fleet: ${e.message}\nRun with --help for the options.`);
    return 2;
  }
  const probe = JSON.parse(readFileSync(probeFile, "utf8")) as RecordedProbe;
  const runs = await benchFleet(hosts, concurrency, rounds, probe);
  runs.forEach((r, i) => console.log(`round ${i + 1}: ${describeRun(r)}`));
  return runs.some((r) => r.exitCode !== 0) ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
