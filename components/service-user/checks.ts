/** verify's checks of a service user: it exists, is not in the docker group, has its ids. */
import type { UserExpectation } from "../verify/expected";
import type { HostFacts } from "../verify/facts";
import { Check, fail, pass } from "../verify/check";

/** The id of the check every other check of a user needs. */
export const SERVICE_USER_EXISTS = "service-user.exists";

export function serviceUserChecks(f: HostFacts, e: UserExpectation): Check[] {
  const user = e.serviceUser;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  add(
    f.user
      ? pass(
          SERVICE_USER_EXISTS,
          `Service user ${user} exists`,
          `uid ${f.user.uid}, home ${f.user.home}`,
        )
      : fail(
          SERVICE_USER_EXISTS,
          `Service user ${user} exists`,
          `getent passwd ${user}: no such user`,
          "Apply the stack (pulumi up): the service user step creates it.",
        ),
  );
  const needsUser = [SERVICE_USER_EXISTS];
  add(
    f.groups.includes("docker")
      ? fail(
          "service-user.not-in-docker-group",
          `${user} is not in the docker group`,
          `id -nG ${user}: ${f.groups.join(" ")}`,
          `Remove it: sudo gpasswd -d ${user} docker. The docker group is root on any host running the rootful daemon.`,
          needsUser,
        )
      : pass(
          "service-user.not-in-docker-group",
          `${user} is not in the docker group`,
          `id -nG ${user}: ${f.groups.join(" ") || "(none)"}`,
          needsUser,
        ),
  );
  const ranges = (name: string, r: HostFacts["subuid"]) =>
    `${name}: ${r.length === 0 ? "no range" : r.map((x) => `${x.start}:${x.count}`).join(", ")}`;
  const idsOk = (r: HostFacts["subuid"]) => r.length === 1 && r[0].count >= e.subordinateIdCount;
  const idsEvidence = `${ranges("/etc/subuid", f.subuid)}; ${ranges("/etc/subgid", f.subgid)}`;
  add(
    idsOk(f.subuid) && idsOk(f.subgid)
      ? pass(
          "service-user.subordinate-ids",
          "One subordinate uid and gid range, large enough",
          idsEvidence,
          needsUser,
        )
      : fail(
          "service-user.subordinate-ids",
          "One subordinate uid and gid range, large enough",
          `${idsEvidence} (want exactly one of at least ${e.subordinateIdCount} each)`,
          `Leave exactly one line for ${user} in /etc/subuid and /etc/subgid with a count of at least ${e.subordinateIdCount}, then restart the user daemon (systemctl --user -M ${user}@ restart docker).`,
          needsUser,
        ),
  );
  return checks;
}
