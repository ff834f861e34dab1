/**
 * .ci/run's exit: its cleanup (an EXIT trap) keeps the status of the run, whether the
 * background toolchain build still runs or ended long ago. (It once made every green run exit
 * 1: under `set -e` a failing `kill` of the finished build in the trap became the status.)
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const RUN = readFileSync(join(__dirname, "..", "..", ".ci", "run"), "utf8");
const CLEANUP = /^cleanup\(\) \{\n[\s\S]*?\n\}\ntrap cleanup EXIT$/m.exec(RUN)?.[0];

/** bash -c: set -euo pipefail, a background "build" (finished or running), the cleanup, then `body`. */
function run(body: string, buildRuns: boolean): number | null {
  const script = `set -euo pipefail
toolchain_log=$(mktemp)
${buildRuns ? "sleep 30 &" : "true &"}
toolchain=$!
${buildRuns ? "" : 'wait "$toolchain"'}
${CLEANUP}
${body}`;
  return spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 20_000 }).status;
}

test(".ci/run has its cleanup trap", () => {
  expect(CLEANUP).toBeDefined();
});

test.each([
  ["the build ended long ago", false],
  ["the build still runs", true],
])("%s: a green run exits 0, a failed one 1", (_what, buildRuns) => {
  expect(run("true", buildRuns)).toBe(0);
  expect(run("false", buildRuns)).toBe(1);
  expect(run("exit 3", buildRuns)).toBe(3);
});
