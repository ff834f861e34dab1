/**
 * The package as another Pulumi program sees it: build it, then compile and load a consumer
 * that imports "hardened-docker" through package.json's exports.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
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
  symlinkSync(join(root, "node_modules", "@types"), join(dir, "node_modules", "@types"));
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
