/**
 * The one script `verify` runs on a host (as root, through `sudo -n` for an admin login): it
 * only reads, and prints every fact the checks need in named sections, so one SSH round trip
 * gathers everything.
 *
 * Built to start few processes (on a slow host each one costs more than the rest of the
 * probe): files are read with bash builtins, every system unit's state comes from one
 * `systemctl show`, the Docker API is read by one perl process over the user's socket (root
 * may open it; perl-base is essential on Debian/Ubuntu; without perl the docker CLI is used),
 * and the slow parts run in parallel.
 */
import { AS_USER_FUNCTION, shellQuote, shellWords } from "../core/shell";
import { ROOTFUL_UNITS, dockerApiRead } from "../rootless-docker/probe";
import { OWNED_PID_FUNCTION, PROXY_PROBE } from "../socket-proxy/probe";
import { SLICE_PROBE } from "../systemd-unit/probe";
import { appUnitProbe } from "../app-service/probe";
export { DOCKER_API_LIMITS, DOCKER_API_PERL, ROOTFUL_UNITS } from "../rootless-docker/probe";
export { OWNED_PID_FUNCTION, PROXY_PROBE_REQUESTS } from "../socket-proxy/probe";
export { SLICE_FILES } from "../systemd-unit/probe";
import { ISOLATION_PROBE } from "../tenants/probe";

/** What the probe reads of one service user (the host's own, or a tenant's). */
export interface UserProbeTarget {
  /** The service user. */
  readonly user: string;
  /** App units (`<name>.service`) to read, with their EnvironmentFile when one is declared. */
  readonly units: readonly { readonly unit: string; readonly environmentFile?: string }[];
  /** Name of the socket-proxy container whose refusal of writes is probed. */
  readonly proxyContainer?: string;
  /** Read the cgroup files of its `user-<uid>.slice` (when limits are declared). @default false */
  readonly slice?: boolean;
}

export interface ProbeTarget extends UserProbeTarget {
  /**
   * How the Docker API is read: `perl` (one process, fast), `cli` (the docker CLI as the
   * service user, slow), `auto` (perl when the host has it).
   * @default "auto"
   */
  readonly dockerClient?: "auto" | "perl" | "cli";
  /**
   * Further tenants: each read as the host's own user is, its sections named
   * `tenant:<user>/<section>` (`tenantSectionPrefix`), plus the facts across tenants.
   * @default none
   */
  readonly tenants?: readonly UserProbeTarget[];
}

/** The prefix of a tenant's section names. */
export function tenantSectionPrefix(user: string): string {
  return `tenant:${user}/`;
}

/** Properties read for every system unit, in one `systemctl show`. */
const SHOW_PROPERTIES =
  "Id,LoadState,ActiveState,SubState,UnitFileState,NRestarts,InvocationID,NeedDaemonReload,DropInPaths,Environment,EnvironmentFiles,User";

/**
 * `read_docker UID PROXY SUBUIDS` (in the background): the user's Docker API facts
 * (rootless-docker/probe.ts) and, with PROXY, its proxy's answers (socket-proxy/probe.ts).
 */
function dockerReader(dockerClient: ProbeTarget["dockerClient"]): string {
  return String.raw`read_docker() {
  local out lit pid=""
${dockerApiRead(dockerClient)}${PROXY_PROBE}}
${OWNED_PID_FUNCTION}`;
}

/**
 * The bash function that reads one service user (`host`: the host's own, which also reads the
 * host-wide root sockets and rootful units). Its sections are named `<prefix><section>`.
 */
function userProbe(
  fn: string,
  t: UserProbeTarget,
  prefix: string,
  host: boolean,
  tenants: boolean,
): string {
  const units = t.units.map((u) => u.unit);
  const rootful = host ? `${shellWords([...ROOTFUL_UNITS])} ` : "";
  const perUnit = t.units.map(({ unit, environmentFile }) => appUnitProbe(unit, environmentFile));
  const slice = t.slice ? SLICE_PROBE : "";
  // each app unit's invocation and state, for its journal
  const unitStates = String.raw`
  local -A inv=() act=()
  id=""
  while IFS= read -r l; do
    case $l in
      Id=*) id=${"$"}{l#Id=} ;;
      InvocationID=*) inv[$id]=${"$"}{l#InvocationID=} ;;
      ActiveState=*) act[$id]=${"$"}{l#ActiveState=} ;;
    esac
  done <<<"$show"`;
  return String.raw`${fn}() {
  local P=${shellQuote(prefix)} user=${shellQuote(t.user)} line="" l uid gid home show id="" f
  local -A sub=()
  while IFS= read -r l; do case $l in "$user":*) line=$l; break ;; esac; done </etc/passwd
  [ -n "$line" ] || line=$(getent passwd "$user")
  s passwd; printf '%s\n' "$line"
  if [ -z "$line" ]; then
    ${host ? `# no service user: the host-wide facts only\n    root_sockets; s units-show; show_units ${rootful.trim()}; ` : ""}return
  fi
  IFS=: read -r _ _ uid gid _ home _ <<<"$line"
${
  tenants
    ? `  users+=("$user"); uids[$user]=$uid; homes[$user]=$home
`
    : ""
}  for f in subuid subgid; do
    while IFS= read -r l; do case $l in "$user":*|"$uid":*) sub[$f]+=$l$'\n' ;; esac; done </etc/$f
  done
  exec {fd}< <(read_docker "$uid" ${shellQuote(t.proxyContainer ?? "")} "${"$"}{sub[subuid]}"); fds+=("/dev/fd/$fd")
  # daemon.json is the user's file: read AS the user (a link to a root-only file shows nothing,
  # a FIFO is not read), at most 1 MiB, within 10 s
  exec {fd}< <(s docker-unit; as_user "$user" systemctl --user show docker.service -p UnitFileState -p ActiveState -p ActiveEnterTimestamp --timestamp=unix 2>&1
    s daemon-json; as_user "$user" timeout 10 bash -c 'if [ -f "$1" ] && [ -r "$1" ]; then head -c 1048576 -- "$1"; else echo "cannot read $1"; fi' probe "$home/.config/docker/daemon.json" 2>&1); fds+=("/dev/fd/$fd")
  s groups
  while IFS=: read -r g _ id members; do
    if [ "$id" = "$gid" ] || [[ ",$members," == *",$user,"* ]]; then printf '%s ' "$g"; fi
  done </etc/group; echo
  for f in subuid subgid; do s "$f"; printf '%s' "${"$"}{sub[$f]}"; done
  s linger; if [ -e "/var/lib/systemd/linger/$user" ]; then echo yes; else echo no; fi
  s delegation; readfile "/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers"${slice}
  ${host ? "root_sockets\n  " : ""}s user-socket; if [ -S "/run/user/$uid/docker.sock" ]; then echo present; else echo absent; fi
  show=$(show_units ${rootful}"user@$uid.service"${units.length > 0 ? ` ${shellWords(units)}` : ""})
  s units-show; printf '%s\n' "$show"${perUnit.length > 0 ? unitStates : ""}${perUnit.join("")}
}`;
}

/**
 * The probe script. `marker` (random per run) starts every section line, so a file the probe
 * prints cannot fake a section. Slow parts run in the background from the start, each into
 * its own pipe (no temp files); their outputs are copied out in a fixed order at the end. Each
 * user is read by its own function; a tenant's sections carry its prefix, and what a tenant's
 * processes print never carries the marker (they never see it), so no tenant can forge a
 * section, its own or another's.
 */
export function probeScript(target: ProbeTarget, marker: string): string {
  const tenants = target.tenants ?? [];
  const fns = [
    userProbe("user_0", target, "", true, tenants.length > 0),
    ...tenants.map((t, i) =>
      userProbe(`user_${i + 1}`, t, tenantSectionPrefix(t.user), false, true),
    ),
  ];
  return String.raw`set +e
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
M=${shellQuote(marker)}
P=""
s() { printf '\n%s %s%s\n' "$M" "$P" "$1"; }
readfile() { local body; if [ -r "$1" ]; then IFS= read -r -d '' body <"$1"; printf '%s' "$body"; else echo "cannot read $1"; fi; }
${AS_USER_FUNCTION}
s whoami; echo "$EUID"
root_sockets() {
  s root-sockets
  for f in /var/run/docker.sock /run/docker.sock; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done
}
show_units() { systemctl show "$@" -p ${SHOW_PROPERTIES} 2>&1; }
${dockerReader(target.dockerClient)}
fds=()${tenants.length > 0 ? "\n# every user that exists, for the checks across tenants\nusers=()\ndeclare -A uids=() homes=()" : ""}
${fns.join("\n")}
${fns.map((_, i) => `user_${i}`).join("\n")}${tenants.length > 0 ? `\n${ISOLATION_PROBE}` : ""}
# (cat with no file would read stdin: only when something runs)
if [ "${"$"}{#fds[@]}" -gt 0 ]; then cat "${"$"}{fds[@]}"; fi
s end
`;
}

/** The probe's output split into its sections. A missing `end` means the probe was cut short. */
export function parseSections(output: string, marker: string): Map<string, string> {
  const sections = new Map<string, string>();
  const prefix = `${marker} `;
  let name: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (name !== undefined) sections.set(name, body.join("\n").replace(/^\n+|\n+$/g, ""));
  };
  for (const line of output.split("\n")) {
    if (line.startsWith(prefix)) {
      flush();
      name = line.slice(prefix.length).trim();
      // the marker is secret to root: a section twice means someone forged one
      if (sections.has(name))
        throw new Error(`the probe's output has the section ${name} twice: a forged answer?`);
      body = [];
    } else body.push(line);
  }
  flush();
  return sections;
}

/**
 * The command line that runs the probe, sent on stdin, as root under `timeout`: when verify
 * gives up on the host, the probe and everything it started (one process group) end too, a
 * few seconds later at most, whatever the service user made them wait on. The script is read
 * whole before it runs, and runs with stdin on /dev/null: under `bash -s` a service user's
 * process started by the probe held the pipe bash reads its commands from, and could have
 * written commands of its own into it, run as root.
 */
export function probeCommand(sudo: boolean, timeoutSeconds = 60): string {
  const run = `timeout -k 5 ${Math.max(1, Math.ceil(timeoutSeconds))} bash -c 'p=$(cat) && exec </dev/null && eval "$p"'`;
  return sudo ? `sudo -n -- ${run}` : run;
}
