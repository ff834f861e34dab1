/**
 * Tenants: each tenant's own checks under `tenant.<user>.<id>`, and the checks across the
 * host's service users (its own and the tenants'): runtime directories, homes, subordinate
 * ids, and each one's Docker socket closed to the others.
 */
import { rootlessDockerSocket, userRuntimeDir } from "../rootless-docker/unit";
import type { HostFacts, SubordinateRange } from "../verify/facts";
import type { PathFacts, SocketAttempt } from "./facts";
import { Check, fail, pass, warn } from "../verify/check";

/** The id of a tenant's check: `tenant.<user>.<id>` (a Linux user name has no dot). */
export function tenantCheckId(user: string, id: string): string {
  return `tenant.${user}.${id}`;
}

/** A tenant's checks, their ids and what they build on moved under `tenant.<user>.`. */
export function asTenant(user: string, checks: readonly Check[]): Check[] {
  return checks.map((c) => ({
    ...c,
    id: tenantCheckId(user, c.id),
    needs: c.needs.map((n) => tenantCheckId(user, n)),
  }));
}

/** One of the host's service users, as the checks across them see it. */
export interface CheckedUser {
  readonly name: string;
  readonly facts: HostFacts;
  /** The id of one of its own checks (`linger.enabled` → `tenant.ci-a.linger.enabled`). */
  readonly id: (check: string) => string;
}

/** Nothing for group or others: no one but the owner (and root) may list, enter or write. */
const privateMode = (mode: number | undefined) => mode !== undefined && (mode & 0o077) === 0;
const octal = (mode: number | undefined) => (mode === undefined ? "?" : mode.toString(8));

export function isolationChecks(
  users: readonly CheckedUser[],
  paths: readonly PathFacts[],
  /** Undefined when the host has no curl. */
  sockets: readonly SocketAttempt[] | undefined,
): Check[] {
  return [
    pathCheck(users, paths, "runtime"),
    pathCheck(users, paths, "home"),
    subordinateCheck(users),
    socketCheck(users, sockets),
  ];
}

/** Users that do not exist: nothing of theirs to check, their own check says why. */
function missing(users: readonly CheckedUser[]) {
  const gone = users.filter((u) => u.facts.user === undefined);
  return {
    note: gone.length
      ? [`not checked for ${gone.map((u) => u.name).join(", ")} (no such user)`]
      : [],
    needs: gone.map((u) => u.id("service-user.exists")),
  };
}

function pathCheck(
  users: readonly CheckedUser[],
  paths: readonly PathFacts[],
  kind: "runtime" | "home",
): Check {
  const id = kind === "runtime" ? "isolation.runtime-dirs" : "isolation.homes";
  const title =
    kind === "runtime"
      ? "Each service user's /run/user/<uid> is 0700 and its own"
      : "No service user's home is open to group or others";
  const seen: string[] = [];
  const bad: string[] = [];
  const fixes: string[] = [];
  const absent: CheckedUser[] = [];
  const gone = missing(users);
  for (const u of users) {
    const user = u.facts.user;
    if (!user) continue;
    const path = kind === "runtime" ? userRuntimeDir(user.uid) : user.home;
    const p = paths.find((x) => x.user === u.name && x.kind === kind);
    if (!p || p.error !== undefined) {
      seen.push(`${u.name}: ${path} ${p?.error ? "absent" : "not read"}`);
      absent.push(u);
      continue;
    }
    const desc = `${u.name}: ${path} ${octal(p.mode)} uid ${p.owner} ${p.type}`;
    seen.push(desc);
    const problems = [
      ...(p.type !== "directory" ? [`a ${p.type}, not a directory`] : []),
      ...(kind === "runtime" && p.owner !== user.uid
        ? [`owned by uid ${p.owner}, not ${user.name}`]
        : []),
      ...(!privateMode(p.mode) ? ["group or others may enter"] : []),
    ];
    if (problems.length === 0) continue;
    bad.push(`${desc}: ${problems.join(", ")}`);
    fixes.push(
      kind === "runtime"
        ? `sudo chown ${user.name}: ${path} && sudo chmod 0700 ${path}`
        : p.type === "directory"
          ? `sudo chmod 0700 ${path}`
          : `make ${path} ${user.name}'s own directory again (not a link), mode 0700`,
    );
  }
  const evidence = [...seen, ...gone.note].join("; ") || "no service user to check";
  if (bad.length > 0) {
    return fail(
      id,
      title,
      bad.join("; "),
      kind === "runtime"
        ? `systemd-logind makes it 0700 for its user; restore it: ${fixes.join("; ")}. Then check for ACLs (getfacl; setfacl -b removes them).`
        : `Another tenant (its containers' users aside) can read what is in it: ${fixes.join("; ")}.`,
    );
  }
  if (absent.length > 0 || gone.needs.length > 0) {
    return fail(
      id,
      title,
      evidence,
      kind === "runtime"
        ? `The runtime directory exists while the user manager runs: turn linger on (sudo loginctl enable-linger ${absent.map((u) => u.name).join(" ") || "<user>"}), then verify again.`
        : "Apply the stack (pulumi up): the service user step creates the home; then verify again.",
      [
        ...gone.needs,
        ...absent.map((u) => u.id(kind === "runtime" ? "linger.enabled" : "service-user.exists")),
      ],
    );
  }
  return pass(id, title, evidence);
}

function subordinateCheck(users: readonly CheckedUser[]): Check {
  const id = "isolation.subordinate-ids";
  const title =
    "The service users' subordinate uid and gid ranges do not overlap, nor hold a service user's uid";
  const show = (r: SubordinateRange) => `${r.start}-${r.start + r.count - 1}`;
  const overlaps: string[] = [];
  const seen: string[] = [];
  for (const file of ["subuid", "subgid"] as const) {
    const ranges = users.flatMap((u) => (u.facts[file] ?? []).map((r) => ({ user: u.name, r })));
    seen.push(`/etc/${file}: ${ranges.map((x) => `${x.user} ${show(x.r)}`).join(", ") || "none"}`);
    ranges.forEach((a, i) => {
      for (const b of ranges.slice(i + 1)) {
        if (a.user === b.user) continue;
        if (a.r.start < b.r.start + b.r.count && b.r.start < a.r.start + a.r.count)
          overlaps.push(`/etc/${file}: ${b.user} ${show(b.r)} overlaps ${a.user} ${show(a.r)}`);
      }
    });
  }
  // a service user's own uid inside another's subordinate uids: that one's container users
  // would be it (its files, its runtime directory, its Docker socket)
  for (const u of users) {
    const uid = u.facts.user?.uid;
    if (uid === undefined) continue;
    for (const o of users)
      for (const r of o.facts.subuid ?? [])
        if (o.name !== u.name && r.start <= uid && uid < r.start + r.count)
          overlaps.push(`/etc/subuid: ${o.name} ${show(r)} holds ${u.name}'s uid ${uid}`);
  }
  return overlaps.length === 0
    ? pass(id, title, seen.join("; "))
    : fail(
        id,
        title,
        overlaps.join("; "),
        "Overlapping ranges (or a range holding another service user's uid) map one tenant's container users onto the other's files: give one of them a free range (serviceUser.subordinateIds.start) in /etc/subuid and /etc/subgid, then remove its images and containers (unpacked with the old ids) and restart its daemon.",
      );
}

/** Verdicts (tenants/probe.ts `socket_verdict`) that mean the connect() got through. */
const GOT_IN: Record<string, string> = {
  connected: "connected and got an answer",
  refused: "connect() allowed (nothing listens)",
  timeout: "connected, no answer",
};

function socketCheck(
  users: readonly CheckedUser[],
  attempts: readonly SocketAttempt[] | undefined,
): Check {
  const id = "isolation.docker-sockets";
  const title = "No service user can connect to another's Docker socket";
  const gone = missing(users);
  if (attempts === undefined)
    return warn(
      id,
      title,
      "not tried: the host has no curl (the packages step installs it)",
      "Install it (sudo apt-get install curl) and verify again; meanwhile isolation.runtime-dirs is the proof.",
    );
  const present = users.filter((u) => u.facts.user !== undefined);
  const breaches: string[] = [];
  const unproven: string[] = [];
  const causes: string[] = [];
  const unknown: string[] = [];
  let denied = 0;
  for (const a of present)
    for (const b of present) {
      if (a === b) continue;
      const sock = rootlessDockerSocket((b.facts.user as { uid: number }).uid);
      const verdict = attempts.find((x) => x.from === a.name && x.to === b.name)?.verdict;
      if (verdict === "denied") denied++;
      else if (verdict !== undefined && verdict in GOT_IN)
        breaches.push(`${a.name} reached ${b.name}'s ${sock}: ${GOT_IN[verdict]}`);
      else if (verdict === "absent") {
        unproven.push(`${a.name} -> ${b.name}: no ${sock}`);
        causes.push(b.id("docker.rootless"));
      } else unknown.push(`${a.name} -> ${b.name}: ${verdict ?? "not tried"}`);
    }
  if (breaches.length > 0) {
    const pairs = breaches.map((x) => x.split(" reached ")[0]);
    return fail(
      id,
      title,
      breaches.join("; "),
      `A tenant on another's socket controls its daemon (and so its containers and files). Find what lets ${[...new Set(pairs)].join(", ")} in: ls -ld /run/user/<uid> /run/user/<uid>/docker.sock and getfacl of both; restore 0700 on the directory (sudo chmod 0700 /run/user/<uid>), remove ACLs (sudo setfacl -b), and check that no user is in another's group (id <user>).`,
    );
  }
  const evidence = [
    `${denied} of ${present.length * (present.length - 1)} attempts refused (Permission denied)`,
    ...unproven,
    ...unknown,
    ...gone.note,
  ].join("; ");
  if (unproven.length > 0 || gone.needs.length > 0)
    return fail(
      id,
      title,
      evidence,
      "Start the daemons that are down (see their docker.rootless checks), then verify again.",
      [...gone.needs, ...causes],
    );
  if (unknown.length > 0)
    return warn(
      id,
      title,
      evidence,
      "Run the attempt by hand to see why it did not tell: sudo runuser -u <user> -- curl -sv --unix-socket /run/user/<other uid>/docker.sock http://d/_ping.",
    );
  return pass(id, title, evidence);
}
