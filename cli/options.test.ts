/**
 * The option table every CLI shares (cli/options.ts), and the CLIs that are not `verify` or
 * `plan` (those have their own tests): `npm run vm` and the fleet bench answer --help and
 * --version, and refuse a typo with a did-you-mean, exit 2.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { HELP_AND_VERSION, UsageError, flag, opt, readOptions, renderOptions } from "./options";

jest.setTimeout(60_000);
const ROOT = join(__dirname, "..");
const OPTIONS = [
  opt("out", "<dir>", "where", { default: "plans" }),
  flag("all", "every one"),
  flag("one", "internal", { hidden: true }),
  ...HELP_AND_VERSION,
];

test("the table parses --opt=value and --opt value, and refuses in our words", () => {
  expect(readOptions(["--out=x", "--all"], OPTIONS).values).toEqual({ out: "x", all: true });
  expect(readOptions(["--out", "x"], OPTIONS).values).toEqual({ out: "x" });
  const refusal = (argv: string[]) => {
    try {
      readOptions(argv, OPTIONS);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return (e as Error).message;
    }
    return "accepted";
  };
  expect(refusal(["--alll"])).toBe("unknown option --alll; did you mean --all?");
  expect(refusal(["--out"])).toBe("--out needs a value");
  expect(refusal(["--all=yes"])).toBe("--all takes no value");
  expect(refusal(["stray"])).toBe("unexpected argument stray");
  expect(readOptions(["stray", "--all"], OPTIONS, true).positionals).toEqual(["stray"]);
});

test("the usage lists every option but the hidden ones, with their defaults", () => {
  const text = renderOptions({ Options: OPTIONS });
  expect(text).toContain("--out <dir>  where (default: plans)");
  expect(text).toContain("-h, --help");
  expect(text).not.toContain("--one");
});

const tsx = (script: string, ...args: string[]) =>
  spawnSync("npx", ["tsx", join(ROOT, script), ...args], { cwd: ROOT, encoding: "utf8" });

test("npm run vm: --help, --version, a mistyped command", () => {
  const help = tsx("test/vm/cli.ts", "--help");
  expect([help.status, help.stdout]).toEqual([
    0,
    expect.stringMatching(/^usage: npm run vm -- <command>/),
  ]);
  expect(tsx("test/vm/cli.ts", "--version").stdout).toMatch(/^hardened-docker \d+\.\d+\.\d+\n$/);
  const typo = tsx("test/vm/cli.ts", "stauts");
  expect([typo.status, typo.stderr]).toEqual([
    2,
    "vm: unknown command stauts; did you mean status?\nRun 'npm run vm -- --help' for the commands.\n",
  ]);
});

test("the fleet bench: --help, and a bad value refused before anything starts", () => {
  expect(tsx("bench/verify-fleet.ts", "--help").stdout).toMatch(/--hosts <n> .*\(default: 20\)/);
  const bad = tsx("bench/verify-fleet.ts", "--hosts", "0");
  expect([bad.status, bad.stderr]).toEqual([
    2,
    "verify-fleet: --hosts 0: want a whole number from 1 to 200\nRun with --help for the options.\n",
  ]);
});
