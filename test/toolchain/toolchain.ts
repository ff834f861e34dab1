/**
 * The Go-built tools of the VM suites (test/toolchain/build.sh): built from Go modules when
 * missing, reused from the cache by version otherwise. A tool that cannot be built fails the
 * suite that needs it, with build.sh's own output: it never skips.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export type ToolName = "pulumi" | "traefik";

/** Path of the tool's binary, building it first when the cache lacks it. */
export function toolchainBinary(tool: ToolName): string {
  const r = spawnSync("bash", [join(__dirname, "build.sh"), tool], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const path = new RegExp(`^${tool} (\\S+)$`, "m").exec(r.stdout ?? "")?.[1];
  if (r.status !== 0 || path === undefined)
    throw new Error(
      `test/toolchain/build.sh ${tool} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ""}): see its output above`,
    );
  return path;
}
