/**
 * `hardened-docker verify`'s command line: `--opt=value` and `--opt value`, `--help` and
 * `--version`, usage errors (exit 2, one line pointing at --help), and `hardened-docker` itself.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "./hardened-docker";
import { packageVersion } from "./options";
import { VERIFY_USAGE, runVerify } from "./verify";
import { HostReport, VerifyConnection, VerifyExpectation } from "../components/verify";
import { recordingIo } from "../test/helpers/cli-io";

const ROOT = join(__dirname, "..");
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE";
const SEE_HELP = "Run 'hardened-docker verify --help' for the options.\n";

type Seen = [VerifyConnection, VerifyExpectation, { name?: string; timeoutMs?: number }];

function cli() {
  const seen: Seen[] = [];
  const verify = async (c: VerifyConnection, e: VerifyExpectation, o = {}): Promise<HostReport> => {
    seen.push([c, e, o]);
    return { host: "h", checks: [] };
  };
  return { ...recordingIo({ verify }), seen };
}

describe("options", () => {
  test("--opt=value, --opt value, -i value and -ivalue are the same options", async () => {
    const spaced = cli();
    const joined = cli();
    const key = join(ROOT, "package.json"); // any readable file stands in for the key
    await runVerify(
      [
        ...["--host", "192.0.2.7", "--host-key", HOST_KEY, "--port", "2200", "--user", "admin"],
        ...["--service-user", "deployer", "--max-exposure", "2.5", "--timeout", "7", "-i", key],
      ],
      spaced.io,
    );
    await runVerify(
      [
        ...["--host=192.0.2.7", `--host-key=${HOST_KEY}`, "--port=2200", "--user=admin"],
        ...["--service-user=deployer", "--max-exposure=2.5", "--timeout=7", `-i${key}`],
      ],
      joined.io,
    );
    expect(joined.seen).toEqual(spaced.seen);
    const [c, e, o] = spaced.seen[0];
    expect({ ...c, privateKey: c.privateKey?.length }).toEqual({
      host: "192.0.2.7",
      port: 2200,
      user: "admin",
      hostKey: HOST_KEY,
      privateKey: readFileSync(key).length,
    });
    expect([e.serviceUser, e.maxExposure, o]).toEqual([
      "deployer",
      2.5,
      { name: "192.0.2.7:2200", timeoutMs: 7000 },
    ]);
  });

  test("the defaults the usage shows are the ones used", async () => {
    const t = cli();
    await runVerify(["--host", "192.0.2.7", "--host-key", HOST_KEY], t.io);
    const [c, e, o] = t.seen[0];
    expect([c.port, c.user, e.serviceUser, e.maxExposure, o.timeoutMs]).toEqual([
      22,
      "root",
      "provisioner",
      3.5,
      60_000,
    ]);
    for (const shown of [
      /--port <port> +SSH port \(default: 22\)/,
      /--user <name> .*\(default: root\)/,
      /--service-user <name> .*\(default: provisioner\)/,
      /--timeout <seconds> .*\(default: 60\)/,
      /--max-exposure <score> .*\(default: 3\.5\)/,
      /--concurrency <n> .*\(default: 8\)/,
    ])
      expect(VERIFY_USAGE).toMatch(shown);
  });

  test("--colour and --no-colour spell --color and --no-color", async () => {
    const coloured = cli();
    await runVerify(["--host", "h", "--host-key", HOST_KEY, "--colour"], {
      ...coloured.io,
      verify: async () => ({ host: "h", checks: [], error: "x" }),
    });
    expect(coloured.out.join("")).toContain("\x1b[31mFAIL");
    const plain = cli();
    await runVerify(["--host", "h", "--host-key", HOST_KEY, "--no-colour"], {
      ...plain.io,
      isTty: true,
      verify: async () => ({ host: "h", checks: [], error: "x" }),
    });
    expect(plain.out.join("")).not.toContain("\x1b[");
  });
});

describe("--help and --version", () => {
  test("verify --help and -h print the usage, listing every option, on stdout; exit 0", async () => {
    for (const argv of [["--help"], ["-h"], ["--stack", "x", "--help"]]) {
      const t = cli();
      expect(await runVerify(argv, t.io)).toBe(0);
      expect(t.out.join("")).toBe(`${VERIFY_USAGE}\n`);
      expect(t.err).toEqual([]);
    }
    for (const option of [
      "--stack <name>",
      "--all-stacks",
      "--stacks-dir <dir>",
      "--host <addr>",
      "--host-key '<type> <key>'",
      "--port <port>",
      "--user <name>",
      "--service-user <name>",
      "--socket-proxy",
      "--traefik",
      "-i, --identity <file>",
      "--concurrency <n>",
      "--timeout <seconds>",
      "--max-exposure <score>",
      "--json",
      "--junit <file>|-",
      "--sarif <file>|-",
      "-v, --verbose",
      "--no-color",
      "--color",
      "-h, --help",
      "--version",
    ])
      expect([option, VERIFY_USAGE.includes(`  ${option} `)]).toEqual([option, true]);
    expect(VERIFY_USAGE).toContain("2 for bad arguments");
  });

  test("hardened-docker --version and verify --version print the package's version", async () => {
    for (const run of [
      (io: ReturnType<typeof cli>["io"]) => main(["--version"], io),
      (io: ReturnType<typeof cli>["io"]) => main(["verify", "--version"], io),
      (io: ReturnType<typeof cli>["io"]) => runVerify(["--version"], io),
    ]) {
      const t = cli();
      expect(await run(t.io)).toBe(0);
      expect(t.out.join("")).toBe(`hardened-docker ${VERSION}\n`);
    }
  });

  test("the version is found from the compiled dist/cli too (tsconfig.build.json's layout)", () => {
    const build = JSON.parse(readFileSync(join(ROOT, "tsconfig.build.json"), "utf8"));
    const base = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8"));
    // rootDir "." and outDir "dist": cli/verify.ts compiles to dist/cli/verify.js
    expect([build.compilerOptions.rootDir, base.compilerOptions.outDir]).toEqual([".", "dist"]);
    expect(packageVersion(join(ROOT, "dist", "cli"))).toBe(VERSION);
    expect(packageVersion(join(ROOT, "cli"))).toBe(VERSION);
    expect(() => packageVersion(tmpdir())).toThrow("no package.json of hardened-docker");
  });

  test("hardened-docker --help, and a missing or unknown command (exit 2, pointing at --help)", async () => {
    const help = cli();
    expect(await main(["--help"], help.io)).toBe(0);
    expect(help.out.join("")).toMatch(/^usage: hardened-docker <command>[^]*verify/);
    for (const [argv, message] of [
      [[], "hardened-docker: name a command\n"],
      [["frob"], "hardened-docker: unknown command frob\n"],
    ] as const) {
      const t = cli();
      expect(await main(argv, t.io)).toBe(2);
      expect(t.err.join("")).toBe(`${message}Run 'hardened-docker --help' for the commands.\n`);
      expect(t.out).toEqual([]);
    }
  });
});

describe("usage errors", () => {
  test("exit 2: `verify: <reason>` and one line pointing at --help, nothing on stdout, no connection", async () => {
    for (const [argv, reason] of [
      [["--host"], "--host needs a value"],
      [["--host", "--port", "22"], "--host needs a value"],
      [["--stack", "a", "--json=yes"], "--json takes no value"],
      [["--stack", "a", "extra"], "unexpected argument extra"],
      [["--stack", "a", "-x"], "unknown option -x"],
      [["--stack", "a", "--jsno"], "unknown option --jsno; did you mean --json?"],
      [["--host", "h", "--host-key", HOST_KEY, "--timeout", "0"], "--timeout 0: want a whole"],
      [["--host", "h", "--host-key", HOST_KEY, "--concurrency", "1.5"], "--concurrency 1.5"],
      [["--stack", "a", "--traefik"], "--traefik is read from the stack file"],
      [
        ["--stack", "a", "--json", "--sarif", "-"],
        "--json and --sarif - would all write to stdout",
      ],
      [["--stack", "a", "--junit", "-", "--sarif", "-"], "--junit - and --sarif - would all"],
      [["--stack", "a", "--json", "--junit=-"], "--json and --junit - would all write to stdout"],
    ] as const) {
      const t = cli();
      expect([argv, await runVerify(argv, t.io)]).toEqual([argv, 2]);
      expect(t.err.join("")).toMatch(/^verify: .*\n/);
      expect(t.err.join("")).toContain(reason);
      expect(t.err.join("")).toMatch(new RegExp(`\n${SEE_HELP.replace(/[.()]/g, "\\$&")}$`));
      expect(t.err.join("").split("\n")).toHaveLength(3);
      expect(t.out).toEqual([]);
      expect(t.seen).toEqual([]);
    }
    // a file target goes with anything
    const file = (name: string) => join(mkdtempSync(join(tmpdir(), "hd-out-")), name);
    const ok = cli();
    const argv = ["--host", "h", "--host-key", HOST_KEY, "--json"];
    expect(
      await runVerify([...argv, "--junit", file("hd-v.xml"), "--sarif", file("hd-v.sarif")], ok.io),
    ).toBe(0);
  });
});
