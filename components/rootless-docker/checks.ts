/**
 * Checks of one service user's rootless daemon and the host under it: the user's own and
 * linger's (service-user/checks.ts, linger/checks.ts) first, then the daemons, delegation,
 * daemon.json.
 */
import type { UserExpectation, VerifyExpectation } from "../verify/expected";
import { HostFacts, firstLine } from "../verify/facts";
import { Check, fail, pass, warn } from "../verify/check";
import { sliceLimitsCheck } from "../systemd-unit/checks-limits";
import { SERVICE_USER_EXISTS, serviceUserChecks } from "../service-user/checks";
import { lingerCheck } from "../linger/checks";

const CONTROLLERS = ["cpu", "cpuset", "io", "memory", "pids"];

/**
 * The checks of one service user, and (with `rootfulDaemonOff`, the host's own user's
 * expectation) of the rootful daemon, which is host-wide.
 */
export function hostChecks(
  f: HostFacts,
  e: UserExpectation & Partial<Pick<VerifyExpectation, "rootfulDaemonOff">>,
): Check[] {
  const user = e.serviceUser;
  const uid = f.user?.uid;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  checks.push(...serviceUserChecks(f, e));
  const needsUser = [SERVICE_USER_EXISTS];
  add(lingerCheck(f, e, needsUser));
  const unit = f.dockerUnit;
  const unitEvidence = `systemctl --user is-enabled/is-active docker.service: ${unit?.enabled || "?"} / ${unit?.active || "?"}; user@${uid ?? "?"}.service ${f.userManager ?? "?"}`;
  add(
    unit?.enabled === "enabled" && unit.active === "active"
      ? pass(
          "docker.user-service",
          "The user-level docker.service is enabled and active",
          unitEvidence,
          ["linger.enabled"],
        )
      : fail(
          "docker.user-service",
          "The user-level docker.service is enabled and active",
          unitEvidence,
          `Start it: sudo systemctl --user -M ${user}@ enable --now docker.service; if it fails, see journalctl --user -M ${user}@ -u docker.`,
          ["linger.enabled"],
        ),
  );
  const info = f.dockerInfo;
  const serverErrors = (info?.info?.ServerErrors as string[] | undefined) ?? [];
  const answered = info?.exit === 0 && serverErrors.length === 0 && info.info !== undefined;
  const security = (info?.info?.SecurityOptions as string[] | undefined) ?? [];
  const rootless = security.some((s) => s.includes("name=rootless"));
  const socket = uid === undefined ? "/run/user/<uid>/docker.sock" : `/run/user/${uid}/docker.sock`;
  add(
    answered && rootless
      ? pass(
          "docker.rootless",
          `docker info over ${socket} reports rootless`,
          `server ${String(info.info?.ServerVersion ?? "?")}, security options ${security.join(", ")}`,
          ["docker.user-service"],
        )
      : fail(
          "docker.rootless",
          `docker info over ${socket} reports rootless`,
          answered
            ? `the daemon answers but is not rootless: security options ${security.join(", ") || "(none)"}`
            : `docker info failed (exit ${info?.exit ?? "?"}): ${serverErrors[0] ?? firstLine(info?.message)}`,
          answered
            ? `${socket} is served by a daemon that is not rootless: stop it and start the user's: sudo systemctl --user -M ${user}@ restart docker.`
            : `Start the user daemon (sudo systemctl --user -M ${user}@ start docker) and check journalctl --user -M ${user}@ -u docker.`,
          ["docker.user-service"],
        ),
  );
  if (e.rootfulDaemonOff) {
    const bad = f.rootfulUnits.filter((u) => u.enabled !== "masked" || u.active === "active");
    const evidence = [
      ...f.rootfulUnits.map((u) => `${u.unit} ${u.enabled || "?"}/${u.active || "?"}`),
      ...(f.rootSockets.length ? [`present: ${f.rootSockets.join(", ")}`] : ["no root socket"]),
    ].join("; ");
    add(
      bad.length === 0 && f.rootSockets.length === 0 && f.rootfulUnits.length > 0
        ? pass(
            "rootful-docker.off",
            "The rootful daemon is masked and inactive, /var/run/docker.sock absent",
            evidence,
          )
        : fail(
            "rootful-docker.off",
            "The rootful daemon is masked and inactive, /var/run/docker.sock absent",
            evidence,
            "Stop and mask it: sudo systemctl disable --now docker.socket docker.service containerd.service && sudo systemctl mask docker.socket docker.service containerd.service && sudo rm -f /var/run/docker.sock.",
          ),
    );
  }
  const have = (f.delegation ?? "").split(/\s+/);
  const missing = CONTROLLERS.filter((c) => !have.includes(c));
  add(
    missing.length === 0
      ? pass(
          "cgroup.delegation",
          "cgroup controllers are delegated to the user manager",
          `controllers: ${f.delegation}`,
          ["linger.enabled"],
        )
      : fail(
          "cgroup.delegation",
          "cgroup controllers are delegated to the user manager",
          `user@${uid ?? "?"}.service controllers: ${f.delegation || "(none)"}; missing ${missing.join(" ")}`,
          `Restore /etc/systemd/system/user@.service.d/delegate.conf (Delegate=cpu cpuset io memory pids; pulumi up), then sudo systemctl daemon-reload && sudo systemctl restart user@${uid ?? "<uid>"}.service.`,
          ["linger.enabled"],
        ),
  );
  const limits = sliceLimitsCheck(f, e);
  if (limits) add(limits);
  add(daemonJsonCheck(f, e, needsUser));
  return checks;
}

function daemonJsonCheck(f: HostFacts, e: UserExpectation, needs: string[]): Check {
  const id = "docker.daemon-json";
  const title = "daemon.json matches what was declared";
  const path = `${f.user?.home ?? "~"}/.config/docker/daemon.json`;
  const fix = `Re-apply the declared file (pulumi up --replace on the daemon-json step) or restore ${path}; then restart the user daemon.`;
  const actual = f.daemonJson ?? "";
  if (actual === e.daemonJson.trimEnd()) return pass(id, title, `${path} is as rendered`, needs);
  let parsed: unknown;
  try {
    parsed = JSON.parse(actual);
  } catch {
    return fail(id, title, `${path}: ${firstLine(actual) || "empty"} (not JSON)`, fix, needs);
  }
  const want = JSON.parse(e.daemonJson) as Record<string, unknown>;
  const got = (parsed ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
  const differ = keys.filter((k) => JSON.stringify(want[k]) !== JSON.stringify(got[k]));
  if (differ.length === 0)
    return warn(id, title, `${path}: same settings, different formatting`, fix, needs);
  return fail(
    id,
    title,
    `${path} differs in ${differ
      .map(
        (k) =>
          `${k} (declared ${JSON.stringify(want[k]) ?? "unset"}, found ${JSON.stringify(got[k]) ?? "unset"})`,
      )
      .join(", ")}`,
    fix,
    needs,
  );
}
