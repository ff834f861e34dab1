import type { CheckResult, CheckStatus } from "./types";

/** A check result before causes are resolved: `needs` names the checks it builds on. */
export interface Check extends Omit<CheckResult, "cause"> {
  readonly needs: readonly string[];
}

const make =
  (status: CheckStatus) =>
  (
    id: string,
    title: string,
    evidence: string,
    remediation: string,
    needs: readonly string[] = [],
  ): Check => ({ id, title, status, evidence, remediation, needs });

const failOrWarn = { FAIL: make("FAIL"), WARN: make("WARN") };
export const fail = failOrWarn.FAIL;
export const warn = failOrWarn.WARN;

/** A PASS: its remediation says nothing needs doing. */
export function pass(
  id: string,
  title: string,
  evidence: string,
  needs: readonly string[] = [],
): Check {
  return make("PASS")(id, title, evidence, "Nothing to do.", needs);
}

/**
 * Turns the FAIL of a check whose prerequisite (transitively) failed into a WARN naming that
 * root cause, so that a report with one broken thing has exactly one FAIL.
 */
export function resolveCauses(checks: readonly Check[]): CheckResult[] {
  const byId = new Map(checks.map((c) => [c.id, c]));
  const rootCause = (c: Check, seen: Set<string>): string | undefined => {
    for (const need of c.needs) {
      const n = byId.get(need);
      if (!n || seen.has(need)) continue;
      seen.add(need);
      if (n.status === "FAIL") return rootCause(n, seen) ?? n.id;
      const deeper = rootCause(n, seen);
      if (deeper) return deeper;
    }
    return undefined;
  };
  return checks.map(({ needs: _needs, ...c }) => {
    if (c.status !== "FAIL") return c;
    const cause = rootCause(byId.get(c.id) as Check, new Set([c.id]));
    return cause
      ? { ...c, status: "WARN" as const, evidence: `${c.evidence} (follows from ${cause})`, cause }
      : c;
  });
}
