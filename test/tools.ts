/**
 * The system tools the unit tests run for real (haproxy runs the generated proxy config,
 * systemd-analyze verifies the rendered units, jq and xmllint parse the JSON and JUnit output, shellcheck reads every generated script),
 * checked once, before any test: run as root with apt, they are installed; otherwise the run
 * fails at once with the exact command to install them. Jest's globalSetup for `npm test`.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Tool -> the Debian package that ships it. */
export const UNIT_TEST_TOOLS: Readonly<Record<string, string>> = {
  haproxy: "haproxy",
  "systemd-analyze": "systemd",
  jq: "jq",
  xmllint: "libxml2-utils",
  "ssh-keygen": "openssh-client",
  ssh: "openssh-client",
  bash: "bash",
  shellcheck: "shellcheck",
};

const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;

/** The tools missing here, and the apt command that installs them. */
export function missingTools(tools = UNIT_TEST_TOOLS): { missing: string[]; install: string } {
  const missing = Object.keys(tools).filter((t) => !has(t));
  const packages = [...new Set(missing.map((t) => tools[t]))].sort();
  return {
    missing,
    install: `apt-get update && apt-get install -y --no-install-recommends ${packages.join(" ")}`,
  };
}

/** Installs what is missing (as root, with apt, unless HD_NO_INSTALL is set) or throws. */
export function ensureTools(tools = UNIT_TEST_TOOLS, env = process.env): void {
  const { missing, install } = missingTools(tools);
  if (missing.length === 0) return;
  const root = process.getuid?.() === 0;
  if (root && has("apt-get") && env.HD_NO_INSTALL === undefined) {
    process.stderr.write(`npm test: installing ${missing.join(", ")}: ${install}\n`);
    const r = spawnSync("sh", ["-c", install], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (r.status === 0 && missingTools(tools).missing.length === 0) return;
  }
  throw new Error(
    `npm test needs ${missing.join(", ")}, missing here. Install them with:\n  sudo sh -c '${install}'\n(run npm test as root and it installs them itself)`,
  );
}

/**
 * One temporary directory per run, as TMPDIR for every test (the workers inherit it), mode
 * 1777 like /tmp so tests that drop to another user behave as there; `test/tmp-teardown.ts`
 * removes it when the run ends, so `npm test` leaves nothing in /tmp (it left ~100 dirs a run).
 */
export function runTmpDir(env = process.env): string {
  const dir = mkdtempSync(join(env.TMPDIR ?? tmpdir(), "hd-npm-test-"));
  chmodSync(dir, 0o1777);
  env.HD_TEST_TMPDIR = dir;
  env.TMPDIR = dir;
  return dir;
}

export default function globalSetup(): void {
  ensureTools();
  runTmpDir();
}
