/**
 * verify on the test VM: the stack file the CLI reads, the break-one-thing table, and a
 * poll until verify is all-PASS. Used by host.test.ts (which owns the VM).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { runVerify } from "../../cli/verify";
import {
  CheckResult,
  HostReport,
  VerifyConnection,
  VerifyExpectation,
  expectationFromArgs,
  renderTable,
  verifyHost,
} from "../../components/verify";
import { hostArgsFromConfig, plainConfigSource } from "../../stacks/config";

const SECRET_PLACEHOLDER = { secure: "v1:verify-never-reads-stack-secrets" };

/**
 * Writes `stacks/Pulumi.<name>.yaml` as an operator's stack file would hold `config` (secrets
 * encrypted: verify must not need them). Returns the stacks directory.
 */
export function writeStackFile(
  name: string,
  config: Record<string, unknown>,
  secretKeys: string[],
): string {
  const dir = join(mkdtempSync(join(tmpdir(), "hd-verify-")), "stacks");
  mkdirSync(dir);
  const entries = Object.entries(config).map(([k, v]) => [
    `hardened-docker:${k}`,
    secretKeys.includes(k) ? SECRET_PLACEHOLDER : v,
  ]);
  writeFileSync(
    join(dir, `Pulumi.${name}.yaml`),
    stringify({ config: Object.fromEntries(entries) }),
  );
  return dir;
}

/** `hardened-docker verify --stack <name> --json`, as a user runs it. */
export async function verifyCli(
  argv: string[],
): Promise<{ code: number; reports: HostReport[]; text: string }> {
  let out = "";
  let err = "";
  const code = await runVerify(argv, {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: {},
    isTty: false,
  });
  if (code === 2) throw new Error(`verify refused its arguments: ${err}`);
  return argv.includes("--json")
    ? { code, reports: (JSON.parse(out) as { hosts: HostReport[] }).hosts, text: out }
    : { code, reports: [], text: out };
}

/** What the stack config declares, through the same path as the CLI. */
export function expectationOf(config: Record<string, unknown>): VerifyExpectation {
  return expectationFromArgs(hostArgsFromConfig(plainConfigSource(config)));
}

export const failingIds = (r: HostReport) =>
  r.checks.filter((c) => c.status === "FAIL").map((c) => c.id);
export const notPassing = (r: HostReport): CheckResult[] =>
  r.checks.filter((c) => c.status !== "PASS");

/** Verifies until every check passes (a restarted daemon and a proxy turning healthy take time). */
export async function verifyUntilAllPass(
  connection: VerifyConnection,
  expected: VerifyExpectation,
  timeoutMs: number,
): Promise<{ report: HostReport; seconds: number }> {
  const t0 = Date.now();
  for (;;) {
    const report = await verifyHost(connection, expected, { name: "e2e" });
    if (report.error === undefined && notPassing(report).length === 0)
      return { report, seconds: (Date.now() - t0) / 1000 };
    if (Date.now() - t0 > timeoutMs) {
      // what is not PASS first, one line each (a CI log cut in the middle keeps it)
      const short = report.error
        ? [`error: ${report.error}`]
        : notPassing(report).map((c) => `${c.status} ${c.id}: ${c.evidence.split("\n")[0]}`);
      throw new Error(
        `verify still not all-PASS after ${timeoutMs / 1000} s:\n${short.join("\n")}\n${renderTable(report)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

export interface Breakage {
  readonly name: string;
  /** Shell run as the admin (sudo -n where needed) to break the host. */
  readonly breakIt: string;
  /** The one check that must FAIL. */
  readonly id: string;
  /** The command the check's remediation must contain; the test then runs exactly it. */
  readonly fix: string;
  /** Run instead of `fix` when the fix is not a shell command (a re-apply). */
  readonly undo?: string;
}

const AS_PROVISIONER =
  "sudo -n runuser -u provisioner -- env XDG_RUNTIME_DIR=/run/user/1001 DOCKER_HOST=unix:///run/user/1001/docker.sock";

/** The seven breakages of the issue, each with the fix its remediation names. */
export const BREAKAGES: readonly Breakage[] = [
  {
    name: "linger off",
    breakIt: "sudo -n loginctl disable-linger provisioner",
    id: "linger.enabled",
    fix: "sudo loginctl enable-linger provisioner",
  },
  {
    name: "rootful docker started",
    breakIt:
      "sudo -n systemctl unmask docker.socket docker.service containerd.service && sudo -n systemctl start docker.service",
    id: "rootful-docker.off",
    fix: "sudo systemctl disable --now docker.socket docker.service containerd.service && sudo systemctl mask docker.socket docker.service containerd.service && sudo rm -f /var/run/docker.sock",
  },
  {
    name: "service user added to docker",
    breakIt: "sudo -n usermod -aG docker provisioner",
    id: "service-user.not-in-docker-group",
    fix: "sudo gpasswd -d provisioner docker",
  },
  {
    name: "a container mounting the socket",
    breakIt: `${AS_PROVISIONER} docker run -d --name rogue -v /run/user/1001/docker.sock:/var/run/docker.sock local/busybox:latest sleep 86400`,
    id: "containers.socket-mounts",
    fix: "sudo -u provisioner env DOCKER_HOST=unix:///run/user/1001/docker.sock docker rm -f rogue",
  },
  {
    name: "unit file edited",
    breakIt:
      "echo '# a local edit' | sudo -n tee -a /etc/systemd/system/provisioner.service >/dev/null",
    id: "app.provisioner.unit-file",
    fix: "pulumi up --replace",
    // what that re-apply does to the file (the combined test below re-applies for real)
    undo: "sudo -n sed -i '/^# a local edit$/d' /etc/systemd/system/provisioner.service && sudo -n systemctl daemon-reload",
  },
  {
    name: "EnvironmentFile chmod 644",
    breakIt: "sudo -n chmod 644 /etc/hardened-docker/provisioner.env",
    id: "app.provisioner.environment-file",
    fix: "sudo chown root:root /etc/hardened-docker/provisioner.env && sudo chmod 0600 /etc/hardened-docker/provisioner.env",
  },
  {
    name: "daemon stopped",
    breakIt: "sudo -n systemctl --user -M provisioner@ stop docker.service",
    id: "docker.user-service",
    fix: "sudo systemctl --user -M provisioner@ enable --now docker.service",
  },
];
