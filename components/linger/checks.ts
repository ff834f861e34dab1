/** verify's check of linger: the user manager (and its daemon) runs without a login. */
import type { UserExpectation } from "../verify/expected";
import type { HostFacts } from "../verify/facts";
import { Check, fail, pass } from "../verify/check";

export function lingerCheck(f: HostFacts, e: UserExpectation, needsUser: string[]): Check {
  const user = e.serviceUser;
  return f.linger
    ? pass(
        "linger.enabled",
        `Linger is on for ${user}`,
        `/var/lib/systemd/linger/${user} exists`,
        needsUser,
      )
    : fail(
        "linger.enabled",
        `Linger is on for ${user}`,
        `/var/lib/systemd/linger/${user} is missing: the user manager (and rootless Docker) stop when ${user} logs out and do not start at boot`,
        `Turn it on: sudo loginctl enable-linger ${user}.`,
        needsUser,
      );
}
