/**
 * The package as another Pulumi program sees it: build it, then compile and load a consumer
 * that imports "hardened-docker" through package.json's exports.
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(__dirname, "..", "..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

const CONSUMER = `
import * as pulumi from "@pulumi/pulumi";
import { HardenedDockerHost, SystemdUnit, shellQuote, renderSystemdUnit, renderDaemonJson, verifyHost, expectationFromArgs } from "hardened-docker";
import type { HardenedDockerHostArgs, SystemdUnitArgs } from "hardened-docker";

const args: HardenedDockerHostArgs = {
  connection: { host: "web-1.example.net", user: "admin", privateKey: pulumi.secret("k"), hostKey: "ssh-ed25519 AAAA" },
  serviceUser: { name: "provisioner" },
  services: [{ name: "api", execStart: "/usr/bin/node /srv/api.js" }],
};
const unit: SystemdUnitArgs = { connection: args.connection, unitName: "x.service", sections: { Service: { ExecStart: "/bin/true" } } };
const expected = expectationFromArgs({ serviceUser: args.serviceUser, services: args.services });
export const used = [HardenedDockerHost, SystemdUnit, shellQuote("a b"), renderSystemdUnit({}), renderDaemonJson(), args, unit, verifyHost, expected];
`;

test("builds, and a consumer program compiles and loads against the package", () => {
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
    cwd: root,
    stdio: "pipe",
  });
  const dir = mkdtempSync(join(tmpdir(), "hd-consumer-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "hardened-docker"));
  symlinkSync(join(root, "node_modules", "@pulumi"), join(dir, "node_modules", "@pulumi"));
  // the consumer's own @types/node only: the package must bring every other type it needs
  mkdirSync(join(dir, "node_modules", "@types"));
  symlinkSync(
    join(root, "node_modules", "@types", "node"),
    join(dir, "node_modules", "@types", "node"),
  );
  writeFileSync(join(dir, "index.ts"), CONSUMER);
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "ES2022",
        module: "commonjs",
        moduleResolution: "node",
        esModuleInterop: true,
        outDir: "out",
        types: ["node"],
      },
      files: ["index.ts"],
    }),
  );
  execFileSync(process.execPath, [tsc, "-p", dir], { cwd: dir, stdio: "pipe" });
  const loaded = execFileSync(
    process.execPath,
    [
      "-e",
      'const m = require("hardened-docker"); console.log(typeof m.HardenedDockerHost, typeof m.SystemdUnit, m.shellQuote("a b"), typeof m.verifyHost)',
    ],
    { cwd: dir, encoding: "utf8" },
  );
  expect(loaded.trim()).toBe("function function 'a b' function");
  // the compiled command line, as an installed package's bin runs it (no tsx, no sources)
  const help = execFileSync(
    process.execPath,
    [
      "-e",
      `require(${JSON.stringify(join(root, "dist", "cli", "hardened-docker.js"))}).main(["verify", "--help"]).then((c) => (process.exitCode = c))`,
    ],
    { cwd: dir, encoding: "utf8" },
  );
  expect(help).toContain("usage: hardened-docker verify");
}, 120_000);

/** Files under `dir` (recursively) whose name ends with `suffix`. */
function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? filesUnder(join(dir, e.name), suffix)
      : e.name.endsWith(suffix)
        ? [join(dir, e.name)]
        : [],
  );
}

test("what the published files import resolves from the package's own dependencies (not its devDependencies)", () => {
  // runs after the build above
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    files: string[];
    dependencies: Record<string, string>;
  };
  const deps = new Set(Object.keys(pkg.dependencies));
  const missing = new Set<string>();
  for (const dir of pkg.files.filter((f) => f.startsWith("dist/")))
    for (const file of [
      ...filesUnder(join(root, dir), ".d.ts"),
      ...filesUnder(join(root, dir), ".js"),
    ]) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/(?:from |import\(|require\()"([^"./][^"]*)"/g)) {
        const spec = m[1];
        if (spec.startsWith("node:") || builtinModules.includes(spec.split("/")[0])) continue;
        const name = spec.startsWith("@")
          ? spec.split("/").slice(0, 2).join("/")
          : spec.split("/")[0];
        // a .d.ts needs the package's types: its own, or @types/<name> among the dependencies
        const typesOf = `@types/${name.replace(/^@([^/]+)\//, "$1__")}`;
        const ok =
          deps.has(name) && (!file.endsWith(".d.ts") || deps.has(typesOf) || hasOwnTypes(name));
        if (!ok) missing.add(`${file.slice(root.length + 1)}: ${spec}`);
      }
    }
  expect([...missing]).toEqual([]);
});

/** True when the installed package ships its own declarations (a types field, or main's .d.ts). */
function hasOwnTypes(name: string): boolean {
  const dir = join(root, "node_modules", name);
  const p = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
    main?: string;
    types?: string;
    typings?: string;
    exports?: unknown;
  };
  if (p.types ?? p.typings) return true;
  if (JSON.stringify(p.exports ?? {}).includes('"types"')) return true;
  return existsSync(join(dir, (p.main ?? "index.js").replace(/\.js$/, "") + ".d.ts"));
}
