import { spawnSync } from "node:child_process";

/**
 * shellcheck's findings (gcc format, one per line) on a bash script; "" when clean.
 * Excluded everywhere: SC2016 (single-quoted `$`: the scripts hand literal code to `bash -c`,
 * `as_owner` and `runuser`, on purpose) and SC1091 (`. /etc/os-release` exists on the host,
 * not here). Any other exception is a `# shellcheck disable=...` beside the code, with why.
 */
export function shellcheck(script: string): string {
  const r = spawnSync("shellcheck", ["-s", "bash", "-f", "gcc", "-e", "SC2016,SC1091", "-"], {
    input: script,
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return r.status === 0 ? "" : (r.stdout || r.stderr || `exit ${r.status}`).trim();
}

/**
 * The bash script inside a command line of `remoteScript` (`[sudo -n -- ]bash -c '<script>'
 * hardened-docker`), unquoted by a real shell.
 */
export function innerScript(commandLine: string): string {
  const inner = commandLine
    .replace(/^sudo -n true 2>\/dev\/null \|\| \{[^}]*\}; /, "")
    .replace(/^sudo -n -- /, "");
  if (!/^bash -c '/.test(inner) || !inner.endsWith(" hardened-docker"))
    throw new Error(`not a remoteScript command line: ${inner.slice(0, 80)}`);
  const r = spawnSync(
    "sh",
    ["-c", inner.replace(/^bash -c /, "printf %s ").replace(/ hardened-docker$/, "")],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}
