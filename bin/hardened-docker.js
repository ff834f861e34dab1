#!/usr/bin/env node
// In a checkout (cli/*.ts present) the TypeScript source runs through tsx, so it is never
// stale; an installed package runs its compiled dist/cli.
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");

const source = join(__dirname, "..", "cli", "hardened-docker.ts");
if (existsSync(source)) {
  const { spawnSync } = require("node:child_process");
  const r = spawnSync(
    process.execPath,
    [require.resolve("tsx/cli"), source, ...process.argv.slice(2)],
    { stdio: "inherit" },
  );
  process.exitCode = r.status ?? 1;
} else {
  require("../dist/cli/hardened-docker.js")
    .main(process.argv.slice(2))
    .then((code) => {
      process.exitCode = code;
    });
}
