/** Checks of the app units: state, drift, exposure, EnvironmentFile, and how they reach Docker. */
import { appServiceUnit } from "./unit";
import { renderSystemdUnit } from "../systemd-unit/render";
import { rootlessDockerSocket } from "../rootless-docker/unit";
import type { ExpectedService, UserExpectation } from "../verify/expected";
import type { HostFacts, UnitFacts } from "../verify/facts";
import { Check, fail, pass, warn } from "../verify/check";
import { firstLine } from "../verify/facts";

/**
 * The runbook's three failure modes: what the app logs, what it means, how to fix it. `fix`
 * gets the service user, its socket and the unit.
 */
export const FAILURE_MODES = [
  {
    id: "root-socket",
    pattern: /permission denied[^\n]*\/(?:var\/)?run\/docker\.sock/i,
    meaning: "the service points at the root daemon's socket (/var/run/docker.sock)",
  },
  {
    id: "user-socket-missing",
    pattern:
      /\/run\/user\/\d+\/docker\.sock[^\n]*no such file|no such file[^\n]*\/run\/user\/\d+\/docker\.sock/i,
    meaning: "the user daemon is not up, or linger is off",
  },
  {
    id: "wrong-environment",
    pattern: /Cannot connect to the Docker daemon/i,
    meaning: "the unit's environment does not lead to the user daemon",
  },
] as const;

export function appChecks(f: HostFacts, e: UserExpectation): Check[] {
  return e.services.flatMap((svc) => {
    const unit = `${svc.args.name}.service`;
    const facts = f.units.get(unit);
    return facts ? serviceChecks(f, e, svc, unit, facts) : notChecked(svc, unit);
  });
}

/** The app's checks when the probe could not read its unit (no service user). */
function notChecked(svc: ExpectedService, unit: string): Check[] {
  const ids: [string, string][] = [
    ["active", `${unit} is enabled and active`],
    ["unit-file", `${unit} matches the rendered unit`],
    ["exposure", `${unit} exposure (systemd-analyze security)`],
    ...(svc.environmentFile
      ? ([["environment-file", `${svc.environmentFile} is 0600 root:root`]] as [string, string][])
      : []),
    ["docker-connection", `${unit} reaches the rootless daemon (runbook failure modes)`],
  ];
  return ids.map(([what, title]) =>
    fail(
      `app.${svc.args.name}.${what}`,
      title,
      "not checked: the probe stopped early (no service user)",
      "Apply the stack (pulumi up), then verify again.",
      ["service-user.exists"],
    ),
  );
}

function serviceChecks(
  f: HostFacts,
  e: UserExpectation,
  svc: ExpectedService,
  unit: string,
  u: UnitFacts,
): Check[] {
  const id = (what: string) => `app.${svc.args.name}.${what}`;
  const user = e.serviceUser;
  const checks: Check[] = [];
  const installed = u.show.LoadState === "loaded";
  const state = `${u.show.ActiveState ?? "?"} (${u.show.SubState ?? "?"}), ${u.show.UnitFileState ?? "?"}, ${u.show.NRestarts ?? "?"} restarts`;
  checks.push(
    u.show.ActiveState === "active" && u.show.UnitFileState === "enabled"
      ? pass(id("active"), `${unit} is enabled and active`, state)
      : fail(
          id("active"),
          `${unit} is enabled and active`,
          state,
          `sudo systemctl enable --now ${unit}; see journalctl -u ${unit} for why it stopped.`,
          ["docker.user-service", id("unit-file")],
        ),
  );

  if (!installed) {
    checks.push(
      fail(
        id("unit-file"),
        `${unit} matches the rendered unit`,
        `not installed (LoadState ${u.show.LoadState || "?"}): ${firstLine(u.file)}`,
        "Apply the stack (pulumi up): the unit step writes, enables and starts it.",
      ),
    );
  } else if (f.user) {
    const expected = renderSystemdUnit(appServiceUnit(svc.args, user, f.user.uid, f.user.home));
    const dropIns = (u.show.DropInPaths ?? "").trim();
    const diff = lineDiff(expected, u.file.endsWith("\n") ? u.file : `${u.file}\n`);
    const drift = [
      ...(diff ? [diff] : []),
      ...(dropIns ? [`drop-ins change it: ${dropIns}`] : []),
      ...(u.show.NeedDaemonReload === "yes" ? ["changed on disk since systemd loaded it"] : []),
    ];
    checks.push(
      drift.length === 0
        ? pass(
            id("unit-file"),
            `${unit} matches the rendered unit`,
            `/etc/systemd/system/${unit} is as rendered`,
          )
        : fail(
            id("unit-file"),
            `${unit} matches the rendered unit`,
            drift.join("; "),
            `Someone edited it: re-apply the rendered unit (pulumi up --replace on the ${svc.args.name} unit step)${dropIns ? " and remove the drop-ins" : ""}, then sudo systemctl daemon-reload && sudo systemctl restart ${unit}.`,
            ["service-user.exists"],
          ),
    );
  }

  const exposureId = id("exposure");
  const exposureTitle = `${unit} exposure (systemd-analyze security) at most ${e.maxExposure}`;
  checks.push(
    u.exposure === undefined
      ? warn(
          exposureId,
          exposureTitle,
          `no score: ${u.exposureLine || "no output"}`,
          "Run systemd-analyze security " + unit + " on the host to see why.",
        )
      : u.exposure <= e.maxExposure
        ? pass(exposureId, exposureTitle, u.exposureLine)
        : warn(
            exposureId,
            exposureTitle,
            u.exposureLine,
            `Restore the hardening preset (unit drift?) or tighten it; systemd-analyze security ${unit} lists each setting.`,
          ),
  );

  if (svc.environmentFile) {
    const envFile = svc.environmentFile;
    const want = "600 root root";
    const env = u.environmentFile;
    const problems = [
      ...(env?.stat !== want ? [`${envFile}: ${env?.stat || "missing"} (want ${want})`] : []),
      ...(env?.overrides.length
        ? [`sets ${env.overrides.map((l) => l.split("=")[0]).join(", ")}`]
        : []),
    ];
    checks.push(
      problems.length === 0
        ? pass(id("environment-file"), `${envFile} is 0600 root:root`, `${envFile}: ${env?.stat}`)
        : fail(
            id("environment-file"),
            `${envFile} is 0600 root:root`,
            problems.join("; "),
            [
              ...(env?.stat !== want
                ? [
                    `It holds secrets only root may read (systemd reads it as root): sudo chown root:root ${envFile} && sudo chmod 0600 ${envFile}.`,
                  ]
                : []),
              ...(env?.overrides.length
                ? [`Remove DOCKER_HOST/XDG_RUNTIME_DIR from it: the unit sets them.`]
                : []),
            ].join(" "),
          ),
    );
  }
  checks.push(
    installed
      ? connectionCheck(f, u, id("docker-connection"), unit, user, svc.environmentFile)
      : fail(
          id("docker-connection"),
          `${unit} reaches the rootless daemon (runbook failure modes)`,
          "the unit is not installed",
          "Apply the stack (pulumi up).",
          [id("unit-file")],
        ),
  );
  return checks;
}

/** The runbook's failure modes, diagnosed from the unit's environment, the socket and its log. */
function connectionCheck(
  f: HostFacts,
  u: UnitFacts,
  id: string,
  unit: string,
  user: string,
  envFile: string | undefined,
): Check {
  const title = `${unit} reaches the rootless daemon (runbook failure modes)`;
  const uid = f.user?.uid;
  const want = uid === undefined ? undefined : `unix://${rootlessDockerSocket(uid)}`;
  const fromUnit = /(?:^|\s)DOCKER_HOST=(\S+)/.exec(u.show.Environment ?? "")?.[1];
  const fromFile = u.environmentFile?.overrides
    .find((l) => l.startsWith("DOCKER_HOST="))
    ?.slice("DOCKER_HOST=".length)
    .replace(/^"(.*)"$/, "$1");
  const effective = fromFile ?? fromUnit;
  const where = fromFile !== undefined ? `${envFile}` : `the unit's Environment=`;
  // errors logged before the daemon last came up are explained by it having been down
  const since = f.dockerUnit?.active === "active" ? f.dockerUnit.since : undefined;
  const logged = u.journal
    .filter((line) => since === undefined || !(journalTime(line) < since))
    .map((line) => ({ line, mode: FAILURE_MODES.find((m) => m.pattern.test(line)) }))
    .filter((x) => x.mode !== undefined);
  const last = logged[logged.length - 1];
  const log = last ? `; its log: ${stripJournalPrefix(last.line)}` : "";
  const reapply =
    fromFile !== undefined
      ? `Remove DOCKER_HOST from ${envFile} (the unit sets DOCKER_HOST=${want ?? "unix:///run/user/<uid>/docker.sock"}), then sudo systemctl restart ${unit}.`
      : `Re-apply the rendered unit (it sets DOCKER_HOST=${want ?? "unix:///run/user/<uid>/docker.sock"}), then sudo systemctl daemon-reload && sudo systemctl restart ${unit}.`;
  if (effective === undefined || /^unix:\/\/\/(?:var\/)?run\/docker\.sock$/.test(effective)) {
    return fail(
      id,
      title,
      `DOCKER_HOST ${effective === undefined ? "unset (the client falls back to /var/run/docker.sock)" : `= ${effective} (${where})`}: "permission denied ... /var/run/docker.sock" = ${FAILURE_MODES[0].meaning}${log}`,
      reapply,
    );
  }
  if (want !== undefined && effective !== want) {
    return fail(
      id,
      title,
      `DOCKER_HOST = ${effective} (${where}), not ${want}: "Cannot connect to the Docker daemon" = ${FAILURE_MODES[2].meaning}${log}`,
      reapply,
    );
  }
  if (f.userSocket === false) {
    return fail(
      id,
      title,
      `${rootlessDockerSocket(uid ?? 0)} does not exist: "no such file ... /run/user/${uid}/docker.sock" = ${FAILURE_MODES[1].meaning}${log}`,
      `Turn linger on (sudo loginctl enable-linger ${user}) and start the daemon (sudo systemctl --user -M ${user}@ start docker).`,
      ["docker.user-service"],
    );
  }
  if (last) {
    return warn(
      id,
      title,
      `DOCKER_HOST = ${effective}, socket present; but its current run logged: ${stripJournalPrefix(last.line)} (= ${last.mode?.meaning})`,
      `The environment is right now; if the error recurs, check the daemon (systemctl --user -M ${user}@ status docker) and restart ${unit}.`,
    );
  }
  return pass(
    id,
    title,
    `DOCKER_HOST = ${effective}, socket present, no Docker connection error in its log`,
  );
}

/** The epoch seconds of a `journalctl -o short-unix` line (NaN when it has none). */
export function journalTime(line: string): number {
  const m = /^(\d+\.\d+) /.exec(line);
  return m ? Number(m[1]) : NaN;
}

/** `1700000000.123456 host prog[pid]: message` → `message` (journalctl -o short-unix). */
export function stripJournalPrefix(line: string): string {
  return line.replace(/^\d+\.\d+ \S+ [^:]+: /, "").trim();
}

/** A short description of how `actual` differs from `expected`, line by line; "" when equal. */
export function lineDiff(expected: string, actual: string): string {
  if (expected === actual) return "";
  const want = expected.split("\n");
  const got = actual.split("\n");
  const missing = want.filter((l) => !got.includes(l) && l !== "");
  const extra = got.filter((l) => !want.includes(l) && l !== "");
  const parts = [
    ...extra.slice(0, 3).map((l) => `+ ${l}`),
    ...missing.slice(0, 3).map((l) => `- ${l}`),
  ];
  const more = extra.length + missing.length - parts.length;
  return parts.length === 0
    ? "same lines in a different order or spacing"
    : `${parts.join(" | ")}${more > 0 ? ` (+${more} more)` : ""}`;
}
