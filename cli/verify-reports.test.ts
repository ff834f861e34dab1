/**
 * What `hardened-docker verify` reports: machine formats that own stdout (--json, --junit -,
 * --sarif -), the SARIF log's shape, and stack files that cannot be read reported as that
 * host's error in every format while the other stacks are verified.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageVersion } from "./options";
import { CliIo, runVerify } from "./verify";
import { HostReport, SARIF_SCHEMA, renderSarif } from "../components/verify";
import { recordingIo } from "../test/helpers/cli-io";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE";

const check = (id: string, status: "PASS" | "WARN" | "FAIL", cause?: string) => ({
  id,
  title: `title of ${id}`,
  status,
  evidence: `saw ${id}`,
  remediation: `fix ${id}`,
  ...(cause ? { cause } : {}),
});

/** What the stubbed SSH side reports: stack `bad-host` fails a check, the others pass. */
async function stubVerify(_c: unknown, _e: unknown, o?: { name?: string }): Promise<HostReport> {
  const host = o?.name ?? "?";
  return host === "bad-host"
    ? {
        host,
        checks: [check("a.b", "PASS"), check("linger.enabled", "FAIL"), check("x.y", "WARN")],
      }
    : { host, checks: [check("a.b", "PASS")] };
}

function cli() {
  const verified: string[] = [];
  const verify = async (c: unknown, e: unknown, o?: { name?: string }) => {
    verified.push(o?.name ?? "?");
    return stubVerify(c, e, o);
  };
  return { ...recordingIo({ verify: verify as CliIo["verify"] }), verified };
}

const stackFile = (host: string, extra = "") => `config:
  hardened-docker:host: ${host}
  hardened-docker:hostKey: ${HOST_KEY}
  hardened-docker:privateKey:
    secure: v1:AAAA
${extra}`;

function stacksDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "hd-stacks-"));
  for (const [name, body] of Object.entries(files))
    writeFileSync(join(dir, `Pulumi.${name}.yaml`), body);
  return dir;
}

/** A real XML parser's count (libxml2's xmllint), or its complaint. */
function xmlCount(xml: string, xpath: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "hd-xml-")), "r.xml");
  writeFileSync(file, xml);
  const r = spawnSync("xmllint", ["--xpath", xpath, file], { encoding: "utf8" });
  return r.stderr || r.stdout.trim();
}

interface SarifLog {
  $schema: string;
  version: string;
  runs: {
    tool: {
      driver: {
        name: string;
        version: string;
        rules: { id: string; shortDescription: { text: string } }[];
      };
    };
    results: {
      ruleId: string;
      ruleIndex: number;
      level: string;
      message: { text: string };
      locations: { logicalLocations: { name: string; kind: string }[] }[];
      properties?: { remediation: string; cause?: string };
    }[];
  }[];
}

/** The shape SARIF 2.1.0 requires (sarifLog, run, tool, driver, rule, result, message). */
function expectSarif(text: string): SarifLog {
  const log = JSON.parse(text) as SarifLog;
  expect(log.$schema).toBe(SARIF_SCHEMA);
  expect(log.version).toBe("2.1.0");
  expect(log.runs).toHaveLength(1);
  const [run] = log.runs;
  expect(run.tool.driver.name).toBe("hardened-docker verify");
  expect(run.tool.driver.version).toBe(packageVersion());
  const ids = run.tool.driver.rules.map((r) => r.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const rule of run.tool.driver.rules) expect(rule.shortDescription.text).not.toBe("");
  for (const r of run.results) {
    expect(["error", "warning"]).toContain(r.level);
    expect(r.message.text).not.toBe("");
    expect(run.tool.driver.rules[r.ruleIndex].id).toBe(r.ruleId);
    expect(r.locations).toHaveLength(1);
    expect(r.locations[0].logicalLocations).toHaveLength(1);
  }
  return log;
}

describe("SARIF", () => {
  test("a rule per check id seen, a result per check that is not PASS and per unverified host", () => {
    const log = expectSarif(
      renderSarif(
        [
          {
            host: "web-1",
            checks: [
              check("a.b", "PASS"),
              check("linger.enabled", "FAIL"),
              check("docker.user-service", "WARN", "linger.enabled"),
            ],
          },
          { host: "web-2", checks: [check("a.b", "PASS"), check("linger.enabled", "FAIL")] },
          { host: "db-1", checks: [], error: "ssh root@db-1:22: connect ECONNREFUSED" },
        ],
        { version: "9.9.9" },
      ).replace('"9.9.9"', JSON.stringify(packageVersion())),
    );
    const [run] = log.runs;
    expect(run.tool.driver.rules).toEqual([
      { id: "a.b", shortDescription: { text: "title of a.b" } },
      { id: "linger.enabled", shortDescription: { text: "title of linger.enabled" } },
      { id: "docker.user-service", shortDescription: { text: "title of docker.user-service" } },
      { id: "host.verified", shortDescription: { text: "verify could reach and probe the host" } },
    ]);
    expect(
      run.results.map((r) => [
        r.locations[0].logicalLocations[0].name,
        r.ruleId,
        r.level,
        r.message.text,
      ]),
    ).toEqual([
      ["web-1", "linger.enabled", "error", "title of linger.enabled: saw linger.enabled"],
      [
        "web-1",
        "docker.user-service",
        "warning",
        "title of docker.user-service: saw docker.user-service",
      ],
      ["web-2", "linger.enabled", "error", "title of linger.enabled: saw linger.enabled"],
      [
        "db-1",
        "host.verified",
        "error",
        "db-1 not verified: ssh root@db-1:22: connect ECONNREFUSED",
      ],
    ]);
    expect(run.results[1].properties).toEqual({
      remediation: "fix docker.user-service",
      cause: "linger.enabled",
    });
    expect(run.results[0].locations[0].logicalLocations[0].kind).toBe("resource");
  });
});

describe("machine formats own stdout", () => {
  const dir = stacksDir({ "bad-host": stackFile("10.0.0.1"), "good-host": stackFile("10.0.0.2") });
  const fleet = ["--stack", "bad-host", "--stack", "good-host", "--stacks-dir", dir];

  test("--json, --junit - and --sarif -: stdout is that document and nothing else", async () => {
    const json = cli();
    expect(await runVerify([...fleet, "--json"], json.io)).toBe(1);
    expect(JSON.parse(json.stdout()).hosts).toHaveLength(2);

    const junit = cli();
    expect(await runVerify([...fleet, "--junit", "-"], junit.io)).toBe(1);
    expect(junit.stdout()).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites/);
    expect(junit.stdout()).toMatch(/<\/testsuites>\n$/);
    expect(xmlCount(junit.stdout(), "count(//testsuite)")).toBe("2");

    const sarif = cli();
    expect(await runVerify([...fleet, "--sarif", "-"], sarif.io)).toBe(1);
    const log = expectSarif(sarif.stdout());
    expect(log.runs[0].results.map((r) => [r.ruleId, r.level])).toEqual([
      ["linger.enabled", "error"],
      ["x.y", "warning"],
    ]);

    for (const t of [json, junit, sarif]) {
      expect(t.stdout()).not.toContain("2 hosts:");
      expect(t.stdout()).not.toContain("FAIL bad-host:");
      expect(t.err).toEqual([]);
    }
  });

  test("file targets go with anything: the table stays on stdout, the files are written", async () => {
    const out = mkdtempSync(join(tmpdir(), "hd-out-"));
    const table = cli();
    const files = ["--junit", join(out, "v.xml"), "--sarif", join(out, "v.sarif")];
    expect(await runVerify([...fleet, ...files], table.io)).toBe(1);
    expect(table.stdout()).toContain("FAIL bad-host:");
    expect(table.stdout()).toMatch(/2 hosts: 1 pass, 0 warn, 1 fail, 0 not verified in/);
    expect(xmlCount(readFileSync(join(out, "v.xml"), "utf8"), "count(//testcase)")).toBe("4");
    expectSarif(readFileSync(join(out, "v.sarif"), "utf8"));

    const json = cli();
    expect(await runVerify([...fleet, "--json", ...files], json.io)).toBe(1);
    expect(JSON.parse(json.stdout()).status).toBe("FAIL");
  });
});

describe("a stack file that cannot be used is that host's error", () => {
  const dir = stacksDir({
    "good-host": stackFile("10.0.0.2"),
    "malformed-yaml": "config:\n  hardened-docker:host: [unclosed\n  hardened-docker:port: 22\n",
    "not-a-mapping": "config:\n  - 1\n  - 2\n",
    "unknown-key": stackFile("10.0.0.3", "  hardened-docker:hots: 10.0.0.4\n"),
    "invalid-value": stackFile("10.0.0.5", '  hardened-docker:port: "99999"\n'),
    "services-not-a-list": stackFile("10.0.0.7", "  hardened-docker:services: 5\n"),
    "zz-good-host": stackFile("10.0.0.6"),
  });
  symlinkSync(join(dir, "nowhere"), join(dir, "Pulumi.unreadable.yaml"));
  mkdirSync(join(dir, "Pulumi.a-directory.yaml"));
  const file = (stack: string) => join(dir, `Pulumi.${stack}.yaml`);
  const broken: Record<string, RegExp> = {
    "a-directory": new RegExp(`^${file("a-directory")}: EISDIR`),
    "malformed-yaml": new RegExp(`^${file("malformed-yaml")}:3:3: Flow sequence`),
    "not-a-mapping": new RegExp(`^${file("not-a-mapping")}: config: want a mapping`),
    unreadable: new RegExp(`^${file("unreadable")}: ENOENT`),
    "unknown-key": new RegExp(`^${file("unknown-key")}: config\\.hots: `),
    "invalid-value": new RegExp(`^${file("invalid-value")}: .*port.*99999`),
    "services-not-a-list": new RegExp(
      `^${file("services-not-a-list")}: services: 5 is not valid: a list`,
    ),
  };
  const all = ["--all-stacks", "--stacks-dir", dir];

  test("the table: every broken stack named with its file, the good ones verified; exit 1", async () => {
    const t = cli();
    expect(await runVerify(all, t.io)).toBe(1);
    expect(t.verified).toEqual(["good-host", "zz-good-host"]);
    const out = t.stdout();
    for (const [stack, error] of Object.entries(broken)) {
      const line = out.split("\n")[out.split("\n").indexOf(stack) + 1];
      expect([stack, line]).toEqual([stack, expect.stringMatching(/^ {2}FAIL {2}not verified: /)]);
      expect([stack, line.replace(/^ {2}FAIL {2}not verified: /, "")]).toEqual([
        stack,
        expect.stringMatching(error),
      ]);
    }
    expect(out).toMatch(/9 hosts: 2 pass, 0 warn, 0 fail, 7 not verified in/);
    expect(t.err).toEqual([]);
  });

  test("--json, --junit, --sarif: the same errors, as those formats report an unverified host", async () => {
    const json = cli();
    expect(await runVerify([...all, "--json"], json.io)).toBe(1);
    const hosts = JSON.parse(json.stdout()).hosts as (HostReport & { status: string })[];
    for (const [stack, error] of Object.entries(broken))
      expect(hosts.find((h) => h.host === stack)).toEqual({
        host: stack,
        status: "FAIL",
        checks: [],
        error: expect.stringMatching(error),
      });

    const junit = cli();
    expect(await runVerify([...all, "--junit", "-"], junit.io)).toBe(1);
    const xml = junit.stdout();
    expect(xmlCount(xml, "count(//testcase/error)")).toBe("7");
    expect(xmlCount(xml, 'string(//testsuite[@name="malformed-yaml"]//error/@message)')).toMatch(
      broken["malformed-yaml"],
    );

    const sarif = cli();
    expect(await runVerify([...all, "--sarif", "-"], sarif.io)).toBe(1);
    const results = expectSarif(sarif.stdout()).runs[0].results;
    for (const [stack, error] of Object.entries(broken)) {
      const r = results.find((x) => x.locations[0].logicalLocations[0].name === stack);
      expect([r?.ruleId, r?.level]).toEqual(["host.verified", "error"]);
      expect(r?.message.text.replace(`${stack} not verified: `, "")).toMatch(error);
    }
  });

  test("--stack a --stack b: a broken b does not stop a; an unknown name is still a usage error", async () => {
    const t = cli();
    const argv = ["--stack", "malformed-yaml", "--stack", "good-host", "--stacks-dir", dir];
    expect(await runVerify(argv, t.io)).toBe(1);
    expect(t.verified).toEqual(["good-host"]);
    expect(t.stdout()).toContain("PASS good-host:");
    const unknown = cli();
    expect(await runVerify(["--stack", "nope", "--stacks-dir", dir], unknown.io)).toBe(2);
    expect(unknown.err.join("")).toContain("no Pulumi.nope.yaml");
  });
});
