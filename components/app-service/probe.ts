/** What verify's probe reads of one app unit (verify/probe.ts assembles the one script). */
import { shellQuote } from "../core/shell";

/**
 * Reads `unit` in the background into its own pipe: its file, its journal (this invocation's,
 * and the unit's when not active), its EnvironmentFile's mode and the two variables
 * hardened-docker sets there (never the others: they may be secrets), and its exposure score.
 */
export function appUnitProbe(unit: string, environmentFile: string | undefined): string {
  const u = shellQuote(unit);
  const env = environmentFile
    ? String.raw`
    s ${shellQuote(`envfile:${unit}`)}; stat -c '%a %U %G' ${shellQuote(environmentFile)} 2>&1
    if [ -r ${shellQuote(environmentFile)} ]; then
      while IFS= read -r l || [ -n "$l" ]; do
        case $l in DOCKER_HOST=*|XDG_RUNTIME_DIR=*) printf '%s\n' "$l" ;; esac
      done <${shellQuote(environmentFile)}
    fi`
    : "";
  return String.raw`
  exec {fd}< <(
    s ${shellQuote(`unit-file:${unit}`)}; readfile /etc/systemd/system/${u}
    s ${shellQuote(`unit-journal:${unit}`)}
    iv=${"$"}{inv[${u}]}
    if [ -n "$iv" ]; then journalctl --no-pager -o short-unix -n 40 _SYSTEMD_INVOCATION_ID="$iv" 2>&1; fi
    if [ "${"$"}{act[${u}]}" != active ]; then journalctl --no-pager -o short-unix -n 40 -u ${u} 2>&1; fi${env}
    s ${shellQuote(`unit-security:${unit}`)}; systemd-analyze security --no-pager ${u} 2>&1 | tail -n 1
  ); fds+=("/dev/fd/$fd")`;
}
