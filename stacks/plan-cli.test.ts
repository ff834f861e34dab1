/**
 * `npm run plan` as an operator meets it: --help/--version/--opt=value, a did-you-mean for a
 * mistyped option or key, and every error naming its stack; it refuses what `pulumi up` would
 * refuse (a needed secret not set, a secret in clear text) while the good stacks still plan.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

jest.setTimeout(120_000);
const ROOT = join(__dirname, "..");
const run = (...args: string[]) =>
  spawnSync("npx", ["tsx", join(ROOT, "stacks", "plan-cli.ts"), ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });

/** A stacks dir with the example as host web-9 (secrets set as `secure:`) plus `extra` files. */
function stacksDir(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "hd-plan-"));
  const example = readFileSync(join(ROOT, "stacks", "Pulumi.example.yaml"), "utf8");
  writeFileSync(
    join(dir, "Pulumi.web-9.yaml"),
    `${example}
  hardened-docker:privateKey:
    secure: v1:AAAABBBBCCCC
  hardened-docker:serviceSecrets:
    provisioner:
      ADMIN_TOKEN:
        secure: v1:DDDDEEEE
`,
  );
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}
const HOST =
  "hardened-docker:host: web-9.example.net\n  hardened-docker:hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample\n  hardened-docker:serviceUser: provisioner";

test("--help and --version print and exit 0; --opt=value works", () => {
  const help = run("--help");
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: npm run plan -- --stack <host>/);
  expect(help.stdout).toMatch(/--stacks-dir <dir>/);
  const version = run("--version");
  expect(version.status).toBe(0);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  expect(version.stdout.trim()).toBe(`hardened-docker ${pkg.version}`);
  const out = mkdtempSync(join(tmpdir(), "hd-plan-out-"));
  const r = run(`--stacks-dir=${stacksDir()}`, "--stack=web-9", `--out=${out}`);
  expect([r.status, r.stderr]).toEqual([0, ""]);
  expect(existsSync(join(out, "web-9.plan.txt"))).toBe(true);
});

test("a mistyped option: a did-you-mean, one hint line, no usage dump, exit 2", () => {
  const r = run("--stak", "web-9");
  expect(r.status).toBe(2);
  expect(r.stderr).toBe(
    "plan: unknown option --stak; did you mean --stack?\nRun 'npm run plan -- --help' for the options.\n",
  );
});

test("bad stacks fail by name (YAML line, unknown key with its value, unset or clear-text secrets); good ones still plan", () => {
  const dir = stacksDir({
    "Pulumi.broken.yaml": `config:\n  ${HOST}\n   oops: [\n`,
    "Pulumi.typo.yaml": `config:\n  ${HOST}\n  hardened-docker:portDrvier: slirp4netns\n`,
    "Pulumi.nosecret.yaml": `config:\n  ${HOST}\n`,
    "Pulumi.cleartext.yaml": `config:\n  ${HOST}\n  hardened-docker:privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----"\n`,
  });
  const out = mkdtempSync(join(tmpdir(), "hd-plan-out-"));
  const r = run("--stacks-dir", dir, "--out", out, "--all");
  expect(r.status).toBe(1);
  expect(r.stderr).toContain(`plan broken: ${join(dir, "Pulumi.broken.yaml")}:4:32: `);
  expect(r.stderr).toContain(
    'plan typo: config.portDrvier: unknown key (its value: "slirp4netns"). Did you mean portDriver?',
  );
  expect(r.stderr).toContain("plan nosecret: pulumi up would refuse it: secrets not set:");
  expect(r.stderr).toContain(
    "  privateKey: pulumi config set --secret privateKey -s nosecret < <admin key file>",
  );
  expect(r.stderr).toContain(
    `plan cleartext: privateKey is in clear text in ${join(dir, "Pulumi.cleartext.yaml")}`,
  );
  expect(r.stderr).not.toContain("BEGIN OPENSSH");
  expect(r.stderr).toMatch(/plan: 4 of 5 stacks failed: broken, cleartext, nosecret, typo\n$/);
  expect(existsSync(join(out, "web-9.plan.txt"))).toBe(true);
  // a template stack (example, local) only notes what to set
  const tdir = stacksDir();
  copyFileSync(join(ROOT, "stacks", "Pulumi.local.yaml"), join(tdir, "Pulumi.local.yaml"));
  const t = run("--stacks-dir", tdir, "--out", out, "--stack", "local");
  expect(t.status).toBe(0);
  expect(t.stderr).toMatch(/^plan local: note \(a template stack\): set these before an up:/);
});
