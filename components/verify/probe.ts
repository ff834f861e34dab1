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
import { SOCKET_PROXY_PORT } from "../socket-proxy/render";
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

/** The cgroup files of a user slice that carry its limits (`sliceCgroupValues`). */
export const SLICE_FILES = ["cpu.max", "memory.max", "memory.swap.max", "pids.max"] as const;

/** System units whose state the probe reads (with the user manager and the app units). */
export const ROOTFUL_UNITS = ["docker.socket", "docker.service", "containerd.service"] as const;

/** Properties read for every system unit, in one `systemctl show`. */
const SHOW_PROPERTIES =
  "Id,LoadState,ActiveState,SubState,UnitFileState,NRestarts,InvocationID,NeedDaemonReload,DropInPaths,Environment,EnvironmentFiles,User";

/** Requests the proxy probe sends from inside the proxy's network namespace. */
export const PROXY_PROBE_REQUESTS = {
  ping: "GET /_ping HTTP/1.1\r\nHost: verify\r\nConnection: close\r\n\r\n",
  // a body Docker cannot parse: if the proxy wrongly let it through, Docker answers 400 and
  // still creates nothing (verify never changes the host, even a broken one)
  create:
    "POST /containers/create HTTP/1.1\r\nHost: verify\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{",
} as const;

/** Bounds on one Docker API answer read by the probe (the socket is in the user's hands). */
export const DOCKER_API_LIMITS = { seconds: 15, bytes: 64 * 1024 * 1024 } as const;

/**
 * Reads the Docker API over the unix socket (HTTP/1.0: no chunked bodies): /info, every
 * container's inspect document, the networks, and the proxy container's pid. The socket
 * lives in the service user's runtime directory, so whatever answers is evidence, not trust:
 * each answer is cut at DOCKER_API_LIMITS (a fake daemon that streams forever or never
 * finishes cannot grow this root process or hold it).
 */
export const DOCKER_API_PERL = String.raw`# no modules: loading Socket/IO::Socket costs more than the requests on a slow host.
# AF_UNIX = 1, SOCK_STREAM = 1 (Linux on x86 and arm); sockaddr_un = family + path.
# M: the marker; P: the section prefix (a tenant's), both from root's environment; U: the uid
# whose runtime directory holds the socket
my ($sock, $proxy, $secs, $max) = @ARGV; my $m = $ENV{M}; my $p = defined $ENV{P} ? $ENV{P} : "";
# run as root, connect() is done as U (its gid, no other group): a link it put in its own
# directory leads only to a socket it could connect to itself, never to another's or root's
sub connect_as {
  my ($c, $addr) = @_;
  my $u = $ENV{U};
  return connect($c, $addr) unless defined $u && $u =~ /^\d+$/ && $< == 0;
  my $g = (getpwuid($u))[3]; $g = $u unless defined $g;
  $) = "$g $g"; $> = $u;
  die "could not become uid $u to connect\n" unless $> == $u;
  my $ok = connect($c, $addr); my $err = $!;
  $> = 0; $) = "0 0";
  die "could not become root again\n" unless $> == 0;
  $! = $err; return $ok;
}
$secs ||= ${DOCKER_API_LIMITS.seconds}; $max ||= ${DOCKER_API_LIMITS.bytes};
sub section { print "\n$m $p$_[0]\n" }
# every answer counts against one budget too: many large answers cannot add up
my ($spent, $total) = (0, 4 * $max);
sub get {
  my ($c, $r) = (undef, "");
  my $ok = eval {
    local $SIG{ALRM} = sub { die "no complete answer within $secs s\n" };
    alarm $secs;
    socket($c, 1, 1, 0) && connect_as($c, pack("S Z108", 1, $sock))
      or die "Cannot connect to the Docker daemon at unix://$sock: $!\n";
    syswrite($c, "GET $_[0] HTTP/1.0\r\nHost: docker\r\n\r\n");
    while (sysread($c, my $buf, 65536)) {
      $r .= $buf; $spent += length($buf);
      die "answer over $max bytes\n" if length($r) > $max;
      die "answers over $total bytes in all\n" if $spent > $total;
    }
    alarm 0; 1;
  };
  alarm 0; close $c if $c;
  if (!$ok) { chomp(my $e = $@); return (0, $e =~ /^Cannot connect/ ? $e : "Docker API $_[0]: $e") }
  my ($head, $body) = split /\r\n\r\n/, $r, 2;
  my ($code) = (defined $head ? $head : "") =~ m{^HTTP/1\.[01] (\d{3})};
  $body = "" unless defined $body; $body =~ s/\s+\z//;
  return ($code || 0, $body);
}
my ($code, $body) = get("/info");
section("docker-info"); print "$body\nexit=", ($code == 200 ? 0 : 1), "\n";
($code, $body) = get("/containers/json?all=1");
section("containers");
if ($code != 200) { print "docker ps failed: $body\n" } else {
  my @docs; my $pid = 0;
  my %seen;
  for my $id (grep { !$seen{$_}++ } $body =~ /"Id":"([0-9a-f]{64})"/g) {
    my ($c2, $b2) = get("/containers/$id/json");
    next unless $c2 == 200;
    push @docs, $b2;
    if ($proxy ne "" && $b2 =~ m{"Name":"/\Q$proxy\E"} && $b2 =~ /"Pid":(\d+)/) { $pid = $1 }
  }
  print "[", join(",", @docs), "]\n";
  section("proxy-pid"); print "$pid\n";
  # device:inode of every mount source and of every API socket and the directories above it,
  # as root sees them: a hard link or another path to a socket is the same inode
  section("mount-ids");
  my %src; for my $d (@docs) { $src{$1} = 1 while $d =~ /"Source":"((?:[^"\\]|\\.)*)"/g }
  for my $p (sort keys %src) { my @s = stat($p); print "$s[0]:$s[1] $p\n" if @s }
  section("socket-ids");
  (my $rt = $sock) =~ s{/docker\.sock\z}{};
  for my $p ($sock, "$rt/docker/containerd/containerd.sock", "/run/docker.sock", "/var/run/docker.sock",
             "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock") {
    my $q = $p;
    while ($q ne "") { my @s = stat($q); print "$s[0]:$s[1] $q\n" if @s; $q =~ s{/[^/]*\z}{}; }
  }
  my @r = stat("/"); print "$r[0]:$r[1] /\n" if @r;
}
($code, $body) = get("/networks");
section("networks"); print(($code == 200 ? $body : "docker network ls failed: $body"), "\n");
`;

/**
 * The same facts through the docker CLI, as the user (for hosts without perl). Root prints the
 * section lines itself: the marker never reaches a process of the user's, which could read it
 * (its command line, its environment) and forge sections.
 */
const DOCKER_API_CLI = String.raw`dk() { as_user "$user" timeout 30 docker "$@" 2>&1 | head -c ${DOCKER_API_LIMITS.bytes}; return "${"$"}{PIPESTATUS[0]}"; }
s docker-info; dk info --format '{{json .}}'; echo "exit=$?"
ids=$(dk ps -aq --no-trunc); rc=$?
s containers
# shellcheck disable=SC2086 # $ids: hex ids (checked), one word each
if [ "$rc" != 0 ] || ! [[ $ids =~ ^[0-9a-f[:space:]]*$ ]]; then echo "docker ps failed: $ids"
elif [ -n "$ids" ]; then dk inspect $ids; else echo "[]"; fi
nets=$(dk network ls -q --no-trunc); rc=$?
s networks
# shellcheck disable=SC2086 # $nets: hex ids (checked), one word each
if [ "$rc" != 0 ] || ! [[ $nets =~ ^[0-9a-f[:space:]]*$ ]]; then echo "docker network ls failed: $nets"
elif [ -n "$nets" ]; then dk network inspect $nets; else echo "[]"; fi
s proxy-pid
if [ -n "$1" ]; then dk inspect -f '{{.State.Pid}}' "$1" | grep -xE '[0-9]+' || echo 0; else echo 0; fi`;

/**
 * `owned_pid PID UID SUBUIDS`: whether PID runs as UID or a uid of the SUBUIDS ranges (its
 * /etc/subuid lines), by the real uid in /proc/PID/status.
 */
export const OWNED_PID_FUNCTION = String.raw`owned_pid() {
  local l u="" _name start count
  while IFS= read -r l; do case $l in Uid:*) read -r _ u _ <<<"$l"; break ;; esac; done 2>/dev/null <"/proc/$1/status"
  [[ $u =~ ^[0-9]+$ ]] || return 1
  [ "$u" = "$2" ] && return 0
  while IFS=: read -r _name start count; do
    if [[ $start =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] && [ "$u" -ge "$start" ] && [ "$u" -lt $((start + count)) ]; then return 0; fi
  done <<<"$3"
  return 1
}`;

/**
 * `read_docker UID PROXY SUBUIDS` (in the background): the user's Docker API facts and, with
 * PROXY, its proxy's answers. The daemon names the proxy's pid, and the daemon is the user's:
 * root enters that pid's network namespace only when it runs as the user or one of its
 * subordinate uids (SUBUIDS, its /etc/subuid lines), never another tenant's or the host's.
 */
function dockerReader(dockerClient: ProbeTarget["dockerClient"]): string {
  const perlFirst = { auto: "command -v perl >/dev/null", perl: "true", cli: "false" }[
    dockerClient ?? "auto"
  ];
  return String.raw`read_docker() {
  local out lit pid=""
  if ${perlFirst}; then
    # the marker in perl's environment (readable by root only), never on its command line
    out=$(U=$1 P=$P M=$M perl -e ${shellQuote(DOCKER_API_PERL)} "/run/user/$1/docker.sock" "$2" 2>&1)
  else
    out=$(cli() { ${DOCKER_API_CLI}
    }; cli "$2")
  fi
  printf '%s\n' "$out"
  lit="$M ${"$"}{P}proxy-pid"$'\n'
  if [[ $out == *"$lit"* ]]; then pid=${"$"}{out#*"$lit"}; pid=${"$"}{pid%%$'\n'*}; fi
  [[ $pid =~ ^[0-9]+$ ]] || pid=""
  [ -n "$2" ] || return 0
  s proxy-probe
  if [ -z "$pid" ] || [ "$pid" = 0 ]; then
    echo "not running"
  elif ! owned_pid "$pid" "$1" "$3"; then
    for msg in GET POST; do echo "$msg not probed: pid $pid runs as neither $user nor one of its subordinate uids"; done
  else
    nsenter -t "$pid" -n bash -c '
      for msg in "$1" "$2"; do
        if exec 3<>/dev/tcp/127.0.0.1/${SOCKET_PROXY_PORT}; then
          printf "%s" "$msg" >&3; line=""; IFS= read -r -t 5 line <&3; exec 3<&-
          printf "%s %s\n" "${"$"}{msg%% *}" "$line"
        else echo "${"$"}{msg%% *} no connection"; fi
      done' probe ${shellQuote(PROXY_PROBE_REQUESTS.ping)} ${shellQuote(PROXY_PROBE_REQUESTS.create)} 2>&1
  fi
}
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
  const perUnit = t.units.map(({ unit, environmentFile }) => {
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
  });
  const slice = t.slice
    ? String.raw`
  local d=/sys/fs/cgroup/user.slice/user-$uid.slice v
  s slice
  for f in ${shellWords([...SLICE_FILES])}; do
    if [ -r "$d/$f" ]; then IFS= read -r v <"$d/$f"; printf '%s=%s\n' "$f" "$v"; else printf '%s absent\n' "$f"; fi
  done`
    : "";
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
