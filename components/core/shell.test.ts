import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { remoteScript, shellQuote, shellWords } from "./shell";

/** bash parses `printf %s <word>`; stdout must be the original string, byte for byte. */
function roundTrip(value: string): string {
  const r = spawnSync("bash", ["-c", `printf %s ${shellQuote(value)}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe("shellQuote", () => {
  const nasty = [
    "",
    " ",
    "'",
    "''",
    '"',
    "\\",
    "$(id)",
    "`id`",
    "${HOME}",
    "a b\tc",
    "line1\nline2",
    "\r\n",
    "; rm -rf /",
    "&& true",
    "| cat",
    "> /tmp/x",
    "*",
    "?",
    "[a]",
    "~",
    "#comment",
    "!",
    "ñandú 🐳 日本",
    "-n",
    "--",
    "a'b'c",
    "'\"'\"'",
    "\u0001\u007f",
    "%s%n",
  ];
  test.each(nasty)("round-trips %j through real bash", (value) => {
    expect(roundTrip(value)).toBe(value);
  });

  test("round-trips arbitrary strings through real bash (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0")),
        (s) => {
          expect(roundTrip(s)).toBe(s);
        },
      ),
      { numRuns: 150 },
    );
  });

  test("leaves safe words readable and always yields one word", () => {
    expect(shellQuote("/usr/bin/docker")).toBe("/usr/bin/docker");
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
    expect(shellWords(["a b", "c"])).toBe("'a b' c");
  });

  test("refuses a NUL byte", () => {
    expect(() => shellQuote("a\0b")).toThrow(/NUL/);
  });
});

describe("remoteScript", () => {
  function run(
    body: string,
    stdin = "",
  ): { status: number | null; stdout: string; stderr: string } {
    const cmd = remoteScript("test-step", body, { sudo: false });
    return spawnSync("sh", ["-c", cmd], { encoding: "utf8", input: stdin });
  }

  test("uses sudo -n only when asked", () => {
    expect(remoteScript("s", "true", { sudo: true })).toMatch(/^sudo -n -- bash -c /);
    expect(remoteScript("s", "true", { sudo: false })).toMatch(/^bash -c /);
  });

  test("reports 'no change' when nothing changed, and the changes otherwise", () => {
    expect(run("true").stdout).toBe("hardened-docker: test-step: no change\n");
    expect(run('changed "did a thing"').stdout).toBe(
      "hardened-docker: test-step: changed: did a thing\n",
    );
  });

  test("fails on the first failing command (strict mode) and says why with die", () => {
    const r = run("false\nchanged never");
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain("never");
    const d = run('die "broken thing"');
    expect(d.status).toBe(1);
    expect(d.stderr).toContain("hardened-docker: test-step: error: broken thing");
    expect(d.stdout).not.toContain("no change");
  });

  test("write_file writes stdin once, then reports no change; fixes a changed mode", () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-write-"));
    const file = join(dir, "f.conf");
    const body = `write_file ${shellQuote(file)} 0640 "$(id -un)" "$(id -gn)"`;
    const first = run(body, "content\n");
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`changed: wrote ${file}`);
    expect(readFileSync(file, "utf8")).toBe("content\n");
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(run(body, "content\n").stdout).toBe("hardened-docker: test-step: no change\n");
    spawnSync("chmod", ["0644", file]);
    expect(run(body, "content\n").stdout).toContain("changed: wrote");
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(run(body, "other\n").stdout).toContain("changed: wrote");
    expect(readFileSync(file, "utf8")).toBe("other\n");
  });

  test("wait_until gives up with a clear message", () => {
    const r = run("wait_until 1 'the moon' false");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("timed out after 1 seconds waiting for the moon");
  });

  test("long waits say what they wait for, and for how long (every 15 s; 1 s here)", () => {
    const waited = run("hd_every=1; wait_until 4 'the tide' false");
    expect(waited.status).toBe(1);
    // (a loaded machine may skip a second: at least one line, each with its elapsed time)
    expect(waited.stdout).toMatch(
      /^(hardened-docker: test-step: still waiting for the tide \([1-3] s of 4\)\n)+$/,
    );
    const slow = run(
      "hd_every=1; with_progress 'copying the moon' sh -c 'echo hidden; sleep 2.5; echo err >&2'",
    );
    expect(slow.status).toBe(0);
    expect(slow.stdout).toMatch(/^hardened-docker: test-step: still copying the moon \(\d s\)\n/);
    expect(slow.stdout).not.toContain("hidden");
    expect(slow.stderr).toBe("err\n");
    expect(run("with_progress 'failing' false").status).toBe(1);
  });
});
