/** PASS: as declared. WARN: worth a look, or not checkable because a check it needs failed. FAIL: not hardened. */
export type CheckStatus = "PASS" | "WARN" | "FAIL";

export interface CheckResult {
  /** Stable id (`linger.enabled`, `app.<name>.unit-file`, …): scripts and CI may key on it. */
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** What the probe saw, in one or a few lines. */
  readonly evidence: string;
  /** How to fix it, in one or two sentences (also set on PASS, for the record). */
  readonly remediation: string;
  /**
   * Set when the check would FAIL only because `cause` failed first (e.g. the daemon is down
   * because linger is off): reported as WARN, so that the FAIL points at the root cause.
   */
  readonly cause?: string;
}

export interface HostReport {
  /** The name the report is known by (the stack name, or host:port). */
  readonly host: string;
  readonly checks: readonly CheckResult[];
  /** Seconds to connect and authenticate. */
  readonly connectSeconds?: number;
  /** Seconds from connected to every check evaluated (the target is 1.5 s). */
  readonly checkSeconds?: number;
  /** Set when the host could not be verified at all (no connection, sudo refused, …). */
  readonly error?: string;
}

/**
 * The report of a host that could not be verified at all: no checks, and `error` says why (no
 * connection, a refused host key, a timeout, or a stack file that cannot be read).
 */
export function unverifiedReport(host: string, error: string, connectSeconds?: number): HostReport {
  return {
    host,
    checks: [],
    ...(connectSeconds !== undefined ? { connectSeconds } : {}),
    error,
  };
}

/** FAIL when any check fails or the host could not be verified. */
export function reportStatus(report: HostReport): CheckStatus {
  if (report.error !== undefined) return "FAIL";
  if (report.checks.some((c) => c.status === "FAIL")) return "FAIL";
  return report.checks.some((c) => c.status === "WARN") ? "WARN" : "PASS";
}
