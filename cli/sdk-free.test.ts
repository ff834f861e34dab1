/**
 * `hardened-docker verify`, verify's engine and the policy pack's rules load no Pulumi SDK
 * (it is ~800 modules and most of the CLI's start-up time): what they share with the
 * components (validation, args, renderers, checks) lives in modules that do not import it.
 * Only `verify --stack` loads it, to read a stack's secrets the way the program does.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..");

/** The modules loading `module` pulls in: all of them, and those of `@pulumi/*`. */
function loads(module: string): { all: number; pulumi: string[] } {
  const r = spawnSync(
    process.execPath,
    [
      "-r",
      "tsx/cjs",
      "-e",
      `const before = new Set(Object.keys(require.cache));
       require(${JSON.stringify(join(ROOT, module))});
       const loaded = Object.keys(require.cache).filter((k) => !before.has(k));
       console.log(JSON.stringify({ all: loaded.length,
         pulumi: loaded.filter((k) => k.includes("node_modules/@pulumi/")) }));`,
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as { all: number; pulumi: string[] };
}

test.each(["cli/hardened-docker.ts", "components/verify/index.ts", "policy/policies.ts"])(
  "%s loads no @pulumi module",
  (module) => {
    const { all, pulumi } = loads(module);
    expect(pulumi).toEqual([]);
    expect(all).toBeLessThan(300);
  },
);

test("the check is real: the components' entry loads the SDK", () => {
  expect(loads("components/index.ts").pulumi.length).toBeGreaterThan(50);
});
