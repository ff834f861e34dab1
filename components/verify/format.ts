/**
 * The output formats of `verify`: a table for people, JSON for scripts, JUnit and SARIF for CI
 * (test reports and code scanning).
 */
import { CheckStatus, HostReport, reportStatus } from "./types";

const COLOUR: Record<CheckStatus, string> = {
  PASS: "\x1b[32m",
  WARN: "\x1b[33m",
  FAIL: "\x1b[31m",
};
const RESET = "\x1b[0m";

export interface TableOptions {
  /** ANSI colours (the CLI turns them on for a TTY). @default false */
  readonly colour?: boolean;
  /** Also list the remediation of WARN checks and the evidence of PASS checks. @default false */
  readonly verbose?: boolean;
}

function counts(report: HostReport): Record<CheckStatus, number> {
  const c = { PASS: 0, WARN: 0, FAIL: 0 };
  for (const check of report.checks) c[check.status] += 1;
  return c;
}

/** One host's report as a table: status, id, title, evidence; the fix under each FAIL/WARN. */
export function renderTable(report: HostReport, opts: TableOptions = {}): string {
  const paint = (s: CheckStatus, text: string) =>
    opts.colour ? `${COLOUR[s]}${text}${RESET}` : text;
  const lines = [`${report.host}`];
  if (report.error !== undefined) {
    lines.push(`  ${paint("FAIL", "FAIL")}  not verified: ${report.error}`);
    return lines.join("\n") + "\n";
  }
  const idWidth = Math.max(...report.checks.map((c) => c.id.length), 2);
  for (const c of report.checks) {
    lines.push(`  ${paint(c.status, c.status.padEnd(4))}  ${c.id.padEnd(idWidth)}  ${c.title}`);
    if (c.status !== "PASS" || opts.verbose)
      lines.push(`        ${" ".repeat(idWidth)}  saw: ${c.evidence}`);
    if (c.status === "FAIL" || (c.status === "WARN" && (opts.verbose || !c.cause)))
      lines.push(`        ${" ".repeat(idWidth)}  fix: ${c.remediation}`);
  }
  lines.push(`  ${summaryLine(report)}`);
  return lines.join("\n") + "\n";
}

/** `PASS web-1: 24 checks, 24 pass, 0 warn, 0 fail (0.62 s)` */
export function summaryLine(report: HostReport): string {
  const status = reportStatus(report);
  if (report.error !== undefined) return `${status} ${report.host}: not verified`;
  const c = counts(report);
  const secs = report.checkSeconds === undefined ? "" : ` (${report.checkSeconds.toFixed(2)} s)`;
  return `${status} ${report.host}: ${report.checks.length} checks, ${c.PASS} pass, ${c.WARN} warn, ${c.FAIL} fail${secs}`;
}

/** Summary of several hosts: `3 hosts: 2 pass, 0 warn, 1 fail, 0 not verified`. */
export function fleetSummary(reports: readonly HostReport[]): string {
  const by = { PASS: 0, WARN: 0, FAIL: 0 };
  let unverified = 0;
  for (const r of reports) {
    if (r.error !== undefined) unverified += 1;
    else by[reportStatus(r)] += 1;
  }
  return `${reports.length} host${reports.length === 1 ? "" : "s"}: ${by.PASS} pass, ${by.WARN} warn, ${by.FAIL} fail, ${unverified} not verified`;
}

/** Machine-readable: the reports as they are, plus each host's overall status. */
export function renderJson(reports: readonly HostReport[]): string {
  return (
    JSON.stringify(
      {
        status: reports.some((r) => reportStatus(r) === "FAIL") ? "FAIL" : "PASS",
        hosts: reports.map((r) => ({ status: reportStatus(r), ...r })),
      },
      null,
      2,
    ) + "\n"
  );
}

const xml = (s: string) =>
  s
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");

/**
 * JUnit XML: one testsuite per host, one testcase per check (classname = host). FAIL is a
 * `<failure>`, WARN a passing case with its evidence in `<system-out>`, an unverified host a
 * suite with one `<error>`.
 */
export function renderJunit(reports: readonly HostReport[]): string {
  const suites = reports.map((r) => {
    const c = counts(r);
    const time = ((r.connectSeconds ?? 0) + (r.checkSeconds ?? 0)).toFixed(3);
    if (r.error !== undefined) {
      return `  <testsuite name="${xml(r.host)}" tests="1" failures="0" errors="1" time="${time}">\n    <testcase classname="${xml(r.host)}" name="connect"><error message="${xml(r.error)}"/></testcase>\n  </testsuite>`;
    }
    const cases = r.checks.map((k) => {
      const open = `    <testcase classname="${xml(r.host)}" name="${xml(`${k.id}: ${k.title}`)}"`;
      if (k.status === "FAIL")
        return `${open}>\n      <failure message="${xml(k.evidence)}">${xml(`${k.evidence}\nfix: ${k.remediation}`)}</failure>\n    </testcase>`;
      if (k.status === "WARN")
        return `${open}>\n      <system-out>${xml(`WARN: ${k.evidence}\nfix: ${k.remediation}`)}</system-out>\n    </testcase>`;
      return `${open}/>`;
    });
    return `  <testsuite name="${xml(r.host)}" tests="${r.checks.length}" failures="${c.FAIL}" errors="0" time="${time}">\n${cases.join("\n")}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="hardened-docker verify">\n${suites.join("\n")}\n</testsuites>\n`;
}

/** The schema a `renderSarif` log names (SARIF 2.1.0, OASIS standard with errata 01). */
export const SARIF_SCHEMA =
  "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/** The rule an unverified host is reported under: it has no checks of its own. */
const NOT_VERIFIED_RULE = { id: "host.verified", title: "verify could reach and probe the host" };

export interface SarifOptions {
  /** The version of hardened-docker, as the tool's driver version. */
  readonly version: string;
}

interface SarifRule {
  readonly id: string;
  readonly shortDescription: { readonly text: string };
}

/**
 * SARIF 2.1.0: one run of the `hardened-docker verify` driver, a rule per check id seen, and a
 * result per check that is not PASS (FAIL an `error`, WARN a `warning`; the fix in
 * `properties.remediation`) or host that could not be verified (an `error`). A result's
 * location is the host, as a logical location (there is no file to point at).
 */
export function renderSarif(reports: readonly HostReport[], opts: SarifOptions): string {
  const rules: SarifRule[] = [];
  const ruleIndex = (id: string, title: string) => {
    const i = rules.findIndex((r) => r.id === id);
    return i >= 0 ? i : rules.push({ id, shortDescription: { text: title } }) - 1;
  };
  const results = reports.flatMap((r) => {
    const locations = [{ logicalLocations: [{ name: r.host, kind: "resource" }] }];
    if (r.error !== undefined) {
      const { id, title } = NOT_VERIFIED_RULE;
      return [
        {
          ruleId: id,
          ruleIndex: ruleIndex(id, title),
          level: "error",
          message: { text: `${r.host} not verified: ${r.error}` },
          locations,
        },
      ];
    }
    return r.checks.flatMap((c) => {
      const index = ruleIndex(c.id, c.title);
      if (c.status === "PASS") return [];
      return [
        {
          ruleId: c.id,
          ruleIndex: index,
          level: c.status === "FAIL" ? "error" : "warning",
          message: { text: `${c.title}: ${c.evidence}` },
          locations,
          properties: { remediation: c.remediation, ...(c.cause ? { cause: c.cause } : {}) },
        },
      ];
    });
  });
  const log = {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "hardened-docker verify", version: opts.version, rules } },
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + "\n";
}
