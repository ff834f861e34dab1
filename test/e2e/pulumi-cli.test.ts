/**
 * The real Pulumi CLI (built from its Go module by test/toolchain) on this project, as far as
 * it runs here: stacks, config and its validation against Pulumi.yaml's schema. `preview` and
 * `up` stop where the CLI loads the Node.js language host: that plugin and the command
 * provider cannot be built from the Go module proxy (README, Tests). No VM.
 *
 * Each test works in a temp project dir (the repo's Pulumi.yaml, its program linked in, a
 * stack file written by the CLI) with its own PULUMI_HOME and a file backend inside it: the
 * README's `pulumi login --local` is `login file://<dir>/state` here, because the CLI resolves
 * `--local` (file://~) through the user database, not $HOME, and would use root's ~/.pulumi.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ed25519KeyPair } from "../keys";
import { parse } from "yaml";
import { toolchainBinary } from "../toolchain/toolchain";
import { CONFIG_KEYS } from "../../stacks/config";
import { planInIsolation } from "../helpers/plan";
import { planInputFromStackFile } from "../../stacks/stack-file";

const ROOT = join(__dirname, "..", "..");
jest.setTimeout(20 * 60_000);

let pulumi: string;
beforeAll(() => {
  pulumi = toolchainBinary("pulumi");
});

/** A fresh project dir and a `pulumi` runner confined to it. */
function project() {
  const dir = mkdtempSync(join(tmpdir(), "hd-pulumi-cli-"));
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  mkdirSync(join(dir, "stacks"));
  // the program (main: stacks/index.ts) must exist for preview to get to the plugin step
  symlinkSync(join(ROOT, "stacks", "index.ts"), join(dir, "stacks", "index.ts"));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    PULUMI_HOME: join(dir, ".pulumi"),
    PULUMI_CONFIG_PASSPHRASE: "e2e passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
  const run = (args: string[], input?: string) => {
    const r = spawnSync(pulumi, args, { cwd: dir, env, input, encoding: "utf8" });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const ok = (args: string[], input?: string) => {
    const r = run(args, input);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")}: exit ${r.code}\n${r.out}`);
    return r.out;
  };
  mkdirSync(join(dir, "state"));
  const login = () => ok(["login", `file://${join(dir, "state")}`]);
  return { run, ok, login, stackFile: (s: string) => join(dir, "stacks", `Pulumi.${s}.yaml`) };
}

const adminKey = ed25519KeyPair("e2e@admin");
const deployKey = ed25519KeyPair("e2e@deploy");
const tenantKey = ed25519KeyPair("e2e@tenant");
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL+CyTxpx/yaPBZOPQywyZ23w02anHNAMhhCRWaM2sS5";
const HTPASSWD = `admin:$apr1$e2esalt1$${"A".repeat(22)}`;

/**
 * One `pulumi config set` per documented key (paths into the object keys, secrets with
 * --secret), as the README tells an operator to write them. Values are valid together.
 */
const SETS: { key: (typeof CONFIG_KEYS)[number]; args: string[]; stdin?: string }[] = [
  { key: "host", args: ["host", "web-1.example.net"] },
  { key: "port", args: ["port", "2222"] },
  { key: "user", args: ["user", "admin"] },
  { key: "sudo", args: ["sudo", "true"] },
  { key: "privateKey", args: ["--secret", "privateKey"], stdin: adminKey.private },
  { key: "hostKey", args: ["hostKey", HOST_KEY] },
  { key: "insecureIgnoreHostKey", args: ["insecureIgnoreHostKey", "false"] },
  { key: "serviceUser", args: ["serviceUser", "provisioner"] },
  { key: "serviceUserUid", args: ["serviceUserUid", "1500"] },
  { key: "serviceUserShell", args: ["serviceUserShell", "/bin/sh"] },
  { key: "subordinateIdStart", args: ["subordinateIdStart", "200000"] },
  { key: "subordinateIdCount", args: ["subordinateIdCount", "65536"] },
  { key: "removeServiceUserOnDestroy", args: ["removeServiceUserOnDestroy", "false"] },
  { key: "serviceUserLimits", args: ["--path", "serviceUserLimits.cpuPercent", "200"] },
  { key: "serviceUserLimits", args: ["--path", "serviceUserLimits.memoryMiB", "2048"] },
  { key: "serviceUserPorts", args: ["--path", "serviceUserPorts.from", "80"] },
  { key: "serviceUserPorts", args: ["--path", "serviceUserPorts.to", "443"] },
  { key: "dockerInstall", args: ["dockerInstall", "static"] },
  { key: "dockerVersion", args: ["dockerVersion", "27.5.1"] },
  { key: "dockerSha256", args: ["dockerSha256", "a".repeat(64)] },
  { key: "dockerRootlessExtrasSha256", args: ["dockerRootlessExtrasSha256", "b".repeat(64)] },
  { key: "daemonConfig", args: ["--path", 'daemonConfig["log-opts"]["max-size"]', "20m"] },
  // stored as the number 5; Docker wants "5": the stack mapping takes it as text
  { key: "daemonConfig", args: ["--path", 'daemonConfig["log-opts"]["max-file"]', "5"] },
  { key: "daemonConfig", args: ["--path", 'daemonConfig["live-restore"]', "true"] },
  { key: "unprivilegedPortStart", args: ["unprivilegedPortStart", "80"] },
  { key: "portDriver", args: ["portDriver", "slirp4netns"] },
  { key: "disableRootfulDaemon", args: ["disableRootfulDaemon", "true"] },
  { key: "services", args: ["--path", "services[0].name", "provisioner"] },
  { key: "services", args: ["--path", "services[0].execStart", "/usr/bin/node /opt/p/server.js"] },
  { key: "services", args: ["--path", "services[0].environment.PORT", "3000"] },
  { key: "services", args: ["--path", "services[0].secretEnvironment[0]", "ADMIN_TOKEN"] },
  { key: "services", args: ["--path", "services[0].readWritePaths[0]", "/var/lib/provisioner"] },
  {
    key: "serviceSecrets",
    args: ["--secret", "--path", "serviceSecrets.provisioner.ADMIN_TOKEN", "s3cret"],
  },
  { key: "deployKeys", args: ["--path", "deployKeys[0]", deployKey.public] },
  { key: "dockerIdentityFile", args: ["dockerIdentityFile", "/home/ci/.ssh/deploy_ed25519"] },
  { key: "socketProxy", args: ["--path", "socketProxy.allow[0]", "traefik"] },
  { key: "socketProxy", args: ["--path", "socketProxy.cpus", "0.2"] },
  { key: "socketProxy", args: ["--path", "socketProxy.memoryMiB", "96"] },
  { key: "traefik", args: ["--path", "traefik.httpPort", "80"] },
  { key: "traefik", args: ["--path", "traefik.httpsPort", "443"] },
  { key: "traefik", args: ["--path", "traefik.cpus", "0.75"] },
  { key: "traefik", args: ["--path", "traefik.dashboard.host", "traefik.example.net"] },
  {
    key: "traefikDashboardUsers",
    args: ["--secret", "--path", "traefikDashboardUsers[0]", HTPASSWD],
  },
  { key: "tenants", args: ["--path", "tenants[0].serviceUser.name", "ci-a"] },
  { key: "tenants", args: ["--path", "tenants[0].serviceUser.deployKeys[0]", tenantKey.public] },
  { key: "tenants", args: ["--path", "tenants[0].daemonConfig.icc", "false"] },
  { key: "tenants", args: ["--path", "tenants[0].services[0].name", "ci-a-runner"] },
  { key: "tenants", args: ["--path", "tenants[0].services[0].execStart", "/usr/local/bin/run"] },
  { key: "tenants", args: ["--path", "tenants[0].socketProxy.cpus", "0.1"] },
  { key: "tenants", args: ["--path", "tenants[0].traefik.httpPort", "8080"] },
  { key: "tenants", args: ["--path", "tenants[0].traefik.httpsPort", "8443"] },
  { key: "tenants", args: ["--path", "tenants[0].limits.memoryMiB", "512"] },
  { key: "tenants", args: ["--path", "tenants[0].ports.from", "8000"] },
  { key: "tenants", args: ["--path", "tenants[0].ports.to", "8999"] },
  { key: "tenants", args: ["--path", "tenants[0].traefik.dashboard.host", "ci-a.example.net"] },
  {
    key: "tenantDashboardUsers",
    args: ["--secret", "--path", "tenantDashboardUsers.ci-a[0]", HTPASSWD],
  },
];

test("the CLI is the one built from Go modules, at the version test/toolchain pins", () => {
  const { ok } = project();
  const pinned = /github\.com\/pulumi\/pulumi\/pkg\/v3 (v\S+)/.exec(
    readFileSync(join(ROOT, "test", "toolchain", "pulumi", "go.mod"), "utf8"),
  )?.[1];
  expect(ok(["version"]).trim()).toBe(pinned);
});

test("quick start as the README has it: the example copied, stack select --create, keys set", () => {
  const { ok, login, stackFile } = project();
  login();
  copyFileSync(join(ROOT, "stacks", "Pulumi.example.yaml"), stackFile("web-1"));
  ok(["stack", "select", "--create", "web-1"]);
  ok(["config", "set", "--secret", "privateKey", "-s", "web-1"], adminKey.private);
  const deployPub = ed25519KeyPair("qs@deploy").public;
  ok(["config", "set", "--path", "deployKeys[0]", "-s", "web-1", deployPub]);
  // the file kept (its keys and comments), with the encryption salt the CLI added
  const text = readFileSync(stackFile("web-1"), "utf8");
  expect(text).toMatch(/^encryptionsalt: /m);
  expect(text).toContain("# --- service user");
  expect(
    (parse(text) as { config: Record<string, unknown> }).config["hardened-docker:deployKeys"],
  ).toEqual([deployPub]);
  // encrypted in the file, readable back with the passphrase
  const doc = parse(readFileSync(stackFile("web-1"), "utf8")) as {
    config: Record<string, unknown>;
  };
  expect(doc.config["hardened-docker:privateKey"]).toEqual({ secure: expect.any(String) });
  expect(readFileSync(stackFile("web-1"), "utf8")).not.toContain("PRIVATE KEY");
  expect(ok(["config", "get", "privateKey", "-s", "web-1"])).toBe(adminKey.private);
  // and our plan reads what the CLI wrote
  expect(planInputFromStackFile("web-1", join(stackFile("web-1"), "..")).config.host).toBe(
    "web-1.example.net",
  );
});

test("every documented key can be set with `pulumi config set`, the CLI validates the stack against Pulumi.yaml's schema, and the program accepts the result", async () => {
  expect([...new Set(SETS.map((s) => s.key))].sort()).toEqual([...CONFIG_KEYS].sort());
  const { ok, run, login, stackFile } = project();
  login();
  ok(["stack", "init", "web-1"]);
  for (const s of SETS) ok(["config", "set", ...s.args], s.stdin);
  // preview passes config validation and stops only where the Node.js language host is needed
  const preview = run(["preview", "-s", "web-1"]);
  expect(preview.code).not.toBe(0);
  expect(preview.out).toMatch(/no language plugin 'pulumi-language-nodejs' found/);
  expect(preview.out).not.toMatch(/validating stack config/);
  // the stack file as the CLI wrote it, planned by the program: every value accepted
  const input = planInputFromStackFile("web-1", join(stackFile("web-1"), ".."));
  const plan = await planInIsolation(input, true); // keepSecrets: the env file shows
  const container = (name: string) =>
    JSON.stringify(plan.resources.find((r) => r.name === name)?.inputs ?? null);
  // what the CLI stored as other types than the program takes, taken as the operator meant:
  // cpus "0.2" (a string inside an object) as a number, PORT 3000 and max-file 5 as text
  expect(input.config.socketProxy).toMatchObject({ cpus: "0.2" });
  expect(container("web-1-socket-proxy-container")).toContain('"cpus":"0.2"');
  expect(container("web-1-socket-proxy-container")).toContain('"memory":96');
  expect(container("web-1-traefik-container")).toContain('"cpus":"0.75"');
  expect(input.config.services).toMatchObject([{ environment: { PORT: 3000 } }]);
  expect(JSON.stringify(plan)).toContain('PORT=\\"3000\\"');
  expect(input.config.daemonConfig).toMatchObject({ "log-opts": { "max-file": 5 } });
  expect(JSON.stringify(plan)).toMatch(/max-file\\?"?: ?\\?"5\\?"/);
});

test("a value of the wrong type is refused by the CLI's schema check before anything runs", () => {
  const { ok, run, login } = project();
  login();
  ok(["stack", "init", "web-1"]);
  ok(["config", "set", "host", "web-1.example.net"]);
  ok(["config", "set", "--secret", "privateKey"], adminKey.private);
  ok(["config", "set", "port", "twenty-two"]);
  const preview = run(["preview", "-s", "web-1"]);
  expect(preview.code).not.toBe(0);
  expect(preview.out).toMatch(/configuration key 'port' must be of type 'integer'/);
});
