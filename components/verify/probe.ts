/**
 * The one script `verify` runs on a host (as root, through `sudo -n` for an admin login): it
 * only reads, and prints every fact the checks need in named sections, so one SSH round trip
 * gathers everything. Independent slow parts (docker, systemd-analyze) run in parallel.
 */
import { AS_USER_FUNCTION, shellQuote, shellWords } from "../shell";
import { SOCKET_PROXY_PORT } from "../render/socket-proxy";

export interface ProbeTarget {
  /** The service user. */
  readonly user: string;
  /** App units (`<name>.service`) to read, with their EnvironmentFile when one is declared. */
  readonly units: readonly { readonly unit: string; readonly environmentFile?: string }[];
  /** Name of the socket-proxy container whose refusal of writes is probed. */
  readonly proxyContainer?: string;
}

/** Requests the proxy probe sends from inside the proxy's network namespace. */
export const PROXY_PROBE_REQUESTS = {
  ping: "GET /_ping HTTP/1.1\r\nHost: verify\r\nConnection: close\r\n\r\n",
  // a body Docker cannot parse: if the proxy wrongly let it through, Docker answers 400 and
  // still creates nothing (verify never changes the host, even a broken one)
  create:
    "POST /containers/create HTTP/1.1\r\nHost: verify\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{",
} as const;

/**
 * The probe script. `marker` (random per run) starts every section line, so a file the probe
 * prints cannot fake a section.
 */
export function probeScript(target: ProbeTarget, marker: string): string {
  const units = target.units.map(({ unit, environmentFile }, i) => {
    const u = shellQuote(unit);
    const env = environmentFile
      ? String.raw`
  s ${shellQuote(`envfile:${unit}`)}; stat -c '%a %U %G' ${shellQuote(environmentFile)} 2>&1
  grep -E '^(DOCKER_HOST|XDG_RUNTIME_DIR)=' ${shellQuote(environmentFile)} 2>/dev/null`
      : "";
    return String.raw`
unit_${i}() {
  s ${shellQuote(`unit-file:${unit}`)}; cat /etc/systemd/system/${u} 2>&1
  s ${shellQuote(`unit-show:${unit}`)}
  systemctl show ${u} -p LoadState,ActiveState,SubState,UnitFileState,NRestarts,InvocationID,NeedDaemonReload,FragmentPath,DropInPaths,Environment,EnvironmentFiles,User 2>&1
  inv=$(systemctl show ${u} -p InvocationID --value 2>/dev/null)
  s ${shellQuote(`unit-journal:${unit}`)}
  if [ -n "$inv" ]; then journalctl --no-pager -o short-unix -n 40 _SYSTEMD_INVOCATION_ID="$inv" 2>&1; fi
  if [ "$(systemctl is-active ${u} 2>/dev/null)" != active ]; then journalctl --no-pager -o short-unix -n 40 -u ${u} 2>&1; fi${env}
}
unit_${i} >"$tmp/unit_${i}" 2>&1 &
( s ${shellQuote(`unit-security:${unit}`)}; systemd-analyze security --no-pager ${u} 2>&1 | tail -n 1 ) >"$tmp/security_${i}" 2>&1 &`;
  });
  const proxy = target.proxyContainer
    ? String.raw`
  pid=$(as_user "$user" docker inspect -f '{{.State.Pid}}' ${shellQuote(target.proxyContainer)} 2>/dev/null)
  s proxy-probe
  if [ -n "$pid" ] && [ "$pid" != 0 ]; then
    for req in ping create; do
      case $req in
        ping) msg=${shellQuote(PROXY_PROBE_REQUESTS.ping)} ;;
        create) msg=${shellQuote(PROXY_PROBE_REQUESTS.create)} ;;
      esac
      line=$(timeout 5 nsenter -t "$pid" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/${SOCKET_PROXY_PORT} && printf "%s" "$1" >&3 && head -n 1 <&3' probe "$msg" 2>&1 | tr -d '\r')
      echo "$req $line"
    done
  else
    echo "not running"
  fi`
    : "";
  return String.raw`set +e
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
M=${shellQuote(marker)}
s() { printf '\n%s %s\n' "$M" "$1"; }
${AS_USER_FUNCTION}
user=${shellQuote(target.user)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
s whoami; id -un
s passwd; getent passwd "$user"
uid=$(id -u "$user" 2>/dev/null)
if [ -z "$uid" ]; then s end; exit 0; fi
home=$(getent passwd "$user" | cut -d: -f6)
s groups; id -nG "$user"
s subuid; grep -E "^($user|$uid):" /etc/subuid
s subgid; grep -E "^($user|$uid):" /etc/subgid
s linger; if [ -e "/var/lib/systemd/linger/$user" ]; then echo yes; else echo no; fi
s user-manager; systemctl is-active "user@$uid.service"
s delegation; cat "/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers" 2>&1
s rootful
for u in docker.socket docker.service containerd.service; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null || true) $(systemctl is-active "$u" 2>/dev/null || true)"
done
for f in /var/run/docker.sock /run/docker.sock; do if [ -e "$f" ] || [ -L "$f" ]; then echo "present $f"; fi; done
s user-socket; if [ -S "/run/user/$uid/docker.sock" ]; then echo present; else echo absent; fi
s daemon-json; cat "$home/.config/docker/daemon.json" 2>&1
(
  s docker-unit
  as_user "$user" systemctl --user is-enabled docker.service 2>&1
  as_user "$user" systemctl --user is-active docker.service 2>&1
  s docker-info; as_user "$user" timeout 20 docker info --format '{{json .}}' 2>&1; echo "exit=$?"
  ids=$(as_user "$user" timeout 20 docker ps -aq --no-trunc 2>/dev/null)
  s containers; if [ -n "$ids" ]; then as_user "$user" timeout 20 docker inspect $ids 2>&1; else echo "[]"; fi
  nets=$(as_user "$user" timeout 20 docker network ls -q --no-trunc 2>/dev/null)
  s networks; if [ -n "$nets" ]; then as_user "$user" timeout 20 docker network inspect $nets 2>&1; else echo "[]"; fi${proxy}
) >"$tmp/docker" 2>&1 &
${units.join("\n")}
wait
cat "$tmp/docker"${target.units.map((_, i) => ` "$tmp/unit_${i}" "$tmp/security_${i}"`).join("")}
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
      body = [];
    } else body.push(line);
  }
  flush();
  return sections;
}

/** The words of a command line that runs the probe on stdin as root. */
export function probeCommand(sudo: boolean): string {
  return sudo ? `sudo -n -- ${shellWords(["bash", "-s"])}` : "bash -s";
}
