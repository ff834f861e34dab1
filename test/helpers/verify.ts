import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CheckResult,
  HostReport,
  VerifyExpectation,
  evaluateChecks,
  expectationFromArgs,
  parseFacts,
  parseSections,
  renderJson,
} from "../../components/verify";
import type { AppServiceArgs, HardenedDockerHostArgs, TenantArgs } from "../../components";

export interface Probe {
  readonly marker: string;
  readonly stdout: string;
}

/** The fixture app as the e2e declares it (test/e2e/host.test.ts, bench/verify-fleet.ts). */
export const E2E_SERVICE: AppServiceArgs = {
  name: "provisioner",
  description: "Tenant provisioner (e2e fixture)",
  execStart: "/usr/bin/perl /opt/provisioner/server.pl",
  workingDirectory: "/opt/provisioner",
  environment: { PORT: "3000", ADMIN_TOKEN: "not-needed" },
};

/** What the e2e stack declares, with or without the socket proxy. */
export function e2eExpectation(withProxy = true): VerifyExpectation {
  return expectationFromArgs({
    serviceUser: { name: "provisioner" },
    docker: { daemonConfig: { icc: false } },
    services: [E2E_SERVICE],
    ...(withProxy ? { socketProxy: { image: "local/haproxy:e2e" } } : {}),
  });
}

/** A probe output recorded on the test VM (test/fixtures/verify/<name>.json). */
export function loadProbe(name: string): Probe {
  return JSON.parse(
    readFileSync(join(__dirname, "..", "fixtures", "verify", `${name}.json`), "utf8"),
  ) as Probe;
}

/** The probe with one section's body replaced (synthetic variations of a real recording). */
export function withSection(probe: Probe, section: string, body: string): Probe {
  const head = `${probe.marker} ${section}\n`;
  const start = probe.stdout.indexOf(head);
  if (start < 0) {
    // a section this recording lacks (newer probe): added before the end marker
    const end = probe.stdout.indexOf(`\n${probe.marker} end`);
    if (end < 0) throw new Error(`no section ${section} and no end in the probe`);
    return {
      ...probe,
      stdout: `${probe.stdout.slice(0, end)}\n${head}${body}${probe.stdout.slice(end)}`,
    };
  }
  const from = start + head.length;
  const next = probe.stdout.indexOf(`\n${probe.marker} `, from);
  return { ...probe, stdout: `${probe.stdout.slice(0, from)}${body}${probe.stdout.slice(next)}` };
}

export function sectionOf(probe: Probe, section: string): string {
  const s = parseSections(probe.stdout, probe.marker).get(section);
  if (s === undefined) throw new Error(`no section ${section}`);
  return s;
}

export function evaluateProbe(probe: Probe, expected = e2eExpectation()): CheckResult[] {
  return evaluateChecks(
    parseFacts(parseSections(probe.stdout, probe.marker), expected.serviceUser),
    expected,
  );
}

/** `{ id: status }` of the checks that are not PASS. */
export function notPassing(checks: readonly CheckResult[]): Record<string, string> {
  return Object.fromEntries(checks.filter((c) => c.status !== "PASS").map((c) => [c.id, c.status]));
}

/** Every recorded probe (test/fixtures/verify/*.json, but the README). */
export const RECORDED_PROBES = [
  "converged",
  "daemon-stopped",
  "docker-group",
  "env-root-socket",
  "env-wrong-host",
  "envfile-644",
  "linger-off",
  "rootful-started",
  "socket-mount",
  "unit-edited",
] as const;

/**
 * Expectations of hosts without tenants, by name: the e2e stack with and without the proxy,
 * with Traefik, with a low exposure limit, and what `verify --host` declares by default.
 */
export function noTenantExpectations(): Record<string, VerifyExpectation> {
  return {
    e2e: e2eExpectation(),
    "e2e-no-proxy": e2eExpectation(false),
    "e2e-traefik": expectationFromArgs({
      serviceUser: { name: "provisioner" },
      docker: { daemonConfig: { icc: false }, unprivilegedPortStart: 80 },
      services: [E2E_SERVICE],
      socketProxy: { image: "local/haproxy:e2e" },
      traefik: {},
    }),
    "e2e-exposure-1": { ...e2eExpectation(), maxExposure: 1 },
    "cli-host-default": expectationFromArgs({ serviceUser: { name: "provisioner" } }),
  };
}

/**
 * The JSON report (`renderJson`) of every recorded probe against every no-tenant expectation,
 * each host named `<probe>/<expectation>`. Kept in fixtures/verify/reports-without-tenants.json
 * as verify printed it before tenants existed.
 */
export function noTenantReports(): string {
  const reports: HostReport[] = [];
  for (const probe of RECORDED_PROBES)
    for (const [name, expected] of Object.entries(noTenantExpectations()))
      reports.push({ host: `${probe}/${name}`, checks: evaluateProbe(loadProbe(probe), expected) });
  return renderJson(reports);
}

/** A tenant made from the recorded service user: its name, uid and subordinate range. */
export interface SyntheticTenant {
  readonly name: string;
  readonly uid: number;
  readonly subStart: number;
}

export const TENANT_A: SyntheticTenant = { name: "ci-a", uid: 1002, subStart: 231072 };
export const TENANT_B: SyntheticTenant = { name: "ci-b", uid: 1003, subStart: 296608 };

/** Sections every user has but a tenant's copy leaves out: host-wide, or the app's units. */
const NOT_A_TENANTS =
  /^(whoami|root-sockets|end|unit-file:.*|unit-journal:.*|unit-security:.*|envfile:.*)$/;

/**
 * A probe output with tenants, made from a recording: the host's own sections as recorded;
 * each tenant's a copy of the recorded service user's (provisioner, uid 1001), without its
 * app's units, renamed to the tenant's name, uid and subordinate range, under
 * `tenant:<name>/`; and the sections across tenants, by default as on a host where they are
 * isolated (runtime directories and homes 0700, every socket attempt denied).
 */
export function withTenants(
  probe: Probe,
  tenants: readonly SyntheticTenant[],
  across: { paths?: string; sockets?: string } = {},
): Probe {
  const sections = parseSections(probe.stdout, probe.marker);
  const out: string[] = [];
  const section = (name: string, body: string) => out.push(`\n${probe.marker} ${name}\n${body}`);
  for (const [name, body] of sections) if (name !== "end") section(name, body);
  for (const t of tenants) {
    for (const [name, body] of sections) {
      if (NOT_A_TENANTS.test(name)) continue;
      section(
        `tenant:${t.name}/${name}`,
        body
          .replace(/provisioner/g, t.name)
          .replace(/\b1001\b/g, String(t.uid))
          .replace(/\b165536\b/g, String(t.subStart)),
      );
    }
  }
  const users = [{ name: "provisioner", uid: 1001 }, ...tenants];
  section(
    "isolation-paths",
    across.paths ??
      users
        .flatMap((u) => [
          `${u.name} runtime 700 ${u.uid} directory`,
          `${u.name} home 700 ${u.uid} directory`,
        ])
        .join("\n"),
  );
  section(
    "isolation-sockets",
    across.sockets ??
      users
        .flatMap((a) => users.filter((b) => b !== a).map((b) => `${a.name} ${b.name} denied`))
        .join("\n"),
  );
  section("end", "");
  return { ...probe, stdout: out.join("") + "\n" };
}

/**
 * The e2e stack (e2eExpectation) with tenants made like `withTenants`' (icc off and the
 * e2e proxy, as the recorded user has; no app services), plus `extra` for each.
 */
export function tenantExpectation(
  tenants: readonly SyntheticTenant[],
  extra: (t: SyntheticTenant) => Partial<TenantArgs> = () => ({}),
  host: Partial<Omit<HardenedDockerHostArgs, "connection">> = {},
): VerifyExpectation {
  return expectationFromArgs({
    serviceUser: { name: "provisioner" },
    docker: { daemonConfig: { icc: false } },
    services: [E2E_SERVICE],
    socketProxy: { image: "local/haproxy:e2e" },
    ...host,
    tenants: tenants.map((t) => ({
      serviceUser: { name: t.name },
      daemonConfig: { icc: false },
      socketProxy: { image: "local/haproxy:e2e" },
      ...extra(t),
    })),
  });
}

/** The checks of `probe` (with tenants) against `expected`. */
export function evaluateTenants(probe: Probe, expected: VerifyExpectation): CheckResult[] {
  return evaluateChecks(
    parseFacts(
      parseSections(probe.stdout, probe.marker),
      expected.serviceUser,
      (expected.tenants ?? []).map((t) => t.serviceUser),
    ),
    expected,
  );
}
