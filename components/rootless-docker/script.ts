import { createHash } from "node:crypto";
import { shellQuote } from "../core/shell";

export type InstallMethod = "distro" | "docker-repo" | "static";
export type DistroFamily = "debian" | "rhel";

/** Where the packages step links `dockerd-rootless.sh`, whichever install method put it. */
export const ROOTLESS_SCRIPT_LINK = "/usr/local/libexec/hardened-docker/dockerd-rootless.sh";

/**
 * Packages for one distro family and install method. `fuse-overlayfs` is listed apart: the
 * script adds it only on kernels older than 5.11 (newer ones do rootless overlay natively).
 */
export function prerequisitePackages(
  family: DistroFamily,
  install: InstallMethod,
): { always: string[]; oldKernel: string[] } {
  const base =
    family === "debian"
      ? ["uidmap", "dbus-user-session", "slirp4netns", "iptables", "ca-certificates", "curl"]
      : ["shadow-utils", "slirp4netns", "iptables", "ca-certificates", "curl"];
  const engine: Record<InstallMethod, Record<DistroFamily, string[]>> = {
    distro: { debian: ["docker.io", "rootlesskit"], rhel: ["moby-engine", "rootlesskit"] },
    "docker-repo": {
      debian: ["docker-ce", "docker-ce-cli", "containerd.io", "docker-ce-rootless-extras"],
      rhel: ["docker-ce", "docker-ce-cli", "containerd.io", "docker-ce-rootless-extras"],
    },
    static: { debian: [], rhel: [] },
  };
  return { always: [...base, ...engine[install][family]], oldKernel: ["fuse-overlayfs"] };
}

export interface PackagesScriptArgs {
  readonly install: InstallMethod;
  readonly version?: string;
  readonly sha256?: string;
  readonly rootlessExtrasSha256?: string;
}

/**
 * How long the packages step waits for the dpkg lock (apt's own `DPkg::Lock::Timeout`, and the
 * retry of `dpkg --configure -a` after an interrupted run): an apt left running by a cut
 * connection, or unattended-upgrades, can hold it for minutes on a slow host (the test VM's
 * orphaned install took 210-310 s). Progress lines say how long so far.
 */
export const DPKG_LOCK_WAIT_SECONDS = 600;

function words(list: readonly string[]): string {
  return list.map(shellQuote).join(" ");
}

/**
 * Installs the prerequisites and the engine, then links dockerd-rootless.sh to a fixed path
 * the user unit runs. Detects the family from /etc/os-release; installs only what is missing.
 */
export function packagesCreateScript(a: PackagesScriptArgs): string {
  const deb = prerequisitePackages("debian", a.install);
  const rpm = prerequisitePackages("rhel", a.install);
  const version = shellQuote(a.version ?? "");
  return String.raw`
. /etc/os-release
case " ${"$"}{ID:-} ${"$"}{ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) family=debian ;;
  *" fedora "*|*" rhel "*|*" centos "*) family=rhel ;;
  *) die "unsupported distribution '${"$"}{ID:-unknown}': tested on Debian 12; Debian/Ubuntu (apt) and Fedora/RHEL (dnf, untested) are recognized" ;;
esac
kernel_major=$(uname -r | cut -d. -f1); kernel_minor=$(uname -r | cut -d. -f2)
old_kernel=0; { [ "$kernel_major" -lt 5 ] || { [ "$kernel_major" = 5 ] && [ "$kernel_minor" -lt 11 ]; }; } && old_kernel=1
# shellcheck disable=SC2034 # version: read by the docker-repo and static installs only
version=${version}
if [ "$family" = debian ]; then
  want=(${words(deb.always)}); [ "$old_kernel" = 1 ] && want+=(${words(deb.oldKernel)})
${a.install === "docker-repo" ? dockerRepoDebian() : ""}
  missing=()
  for p in "${"$"}{want[@]}"; do
    dpkg-query -W -f='${"$"}{Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  export DEBIAN_FRONTEND=noninteractive
  # a run cut off mid-install (lost connection, reboot) leaves dpkg half-configured: finish it
  if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
    # (retried: an orphaned apt from the cut run may still hold the lock for a while)
    wait_until ${DPKG_LOCK_WAIT_SECONDS} "dpkg --configure -a to get the dpkg lock" dpkg --force-confold --configure -a
    changed "finished an interrupted dpkg run"
  fi
  if [ "${"$"}{#missing[@]}" -gt 0 ]; then
    # (apt waits up to ${DPKG_LOCK_WAIT_SECONDS} s for a dpkg lock another apt holds: progress lines say so)
    with_progress "updating the apt lists (or waiting for the dpkg lock)" \
      apt-get -q -o DPkg::Lock::Timeout=${DPKG_LOCK_WAIT_SECONDS} update
    with_progress "installing ${"$"}{missing[*]} (or waiting for the dpkg lock)" \
      apt-get -q -y -o DPkg::Lock::Timeout=${DPKG_LOCK_WAIT_SECONDS} install --no-install-recommends "${"$"}{missing[@]}" \
      || die "apt-get install ${"$"}{missing[*]} failed"
    changed "installed ${"$"}{missing[*]}"
  fi
else
  want=(${words(rpm.always)}); [ "$old_kernel" = 1 ] && want+=(${words(rpm.oldKernel)})
${a.install === "docker-repo" ? dockerRepoRhel() : ""}
  missing=()
  for p in "${"$"}{want[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${"$"}{#missing[@]}" -gt 0 ]; then
    with_progress "installing ${"$"}{missing[*]}" dnf -y -q install "${"$"}{missing[@]}" \
      || die "dnf install ${"$"}{missing[*]} failed"
    changed "installed ${"$"}{missing[*]}"
  fi
fi
${a.install === "static" ? staticInstall(a) : ""}
# dockerd-rootless.sh lives in /usr/bin (docker-ce), /usr/local/bin (static) or, on Debian's
# docker.io, /usr/share/docker.io/contrib: link whichever exists to one fixed path.
src=""
for c in /usr/local/bin/dockerd-rootless.sh /usr/bin/dockerd-rootless.sh /usr/share/docker.io/contrib/dockerd-rootless.sh; do
  [ -x "$c" ] && { src=$c; break; }
done
[ -n "$src" ] || die "dockerd-rootless.sh not found after installing the packages"
link=${shellQuote(ROOTLESS_SCRIPT_LINK)}
install -d -m 0755 "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "$src" ]; then ln -sfn "$src" "$link"; changed "linked $link to $src"; fi
command -v rootlesskit >/dev/null || die "rootlesskit not found after installing the packages"
command -v newuidmap >/dev/null || die "newuidmap not found (package uidmap/shadow-utils)"
command -v dockerd >/dev/null || die "dockerd not found after installing the packages"`;
}

function dockerRepoDebian(): string {
  return String.raw`  if [ ! -f /etc/apt/sources.list.d/docker.list ]; then
    command -v curl >/dev/null || { apt-get -q update >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get -q -y install curl ca-certificates >/dev/null; }
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/$ID/gpg" -o /etc/apt/keyrings/docker.asc
    chmod 0644 /etc/apt/keyrings/docker.asc
    printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/%s %s stable\n' \
      "$(dpkg --print-architecture)" "$ID" "$VERSION_CODENAME" >/etc/apt/sources.list.d/docker.list
    apt-get -q update >/dev/null; changed "added Docker's apt repository"
  fi
  if [ -n "$version" ]; then
    pinned=$(apt-cache madison docker-ce | awk -v v="$version" '$3 ~ "^[0-9]+:" v "-" { print $3; exit }')
    [ -n "$pinned" ] || die "docker-ce $version is not in Docker's apt repository"
    for i in "${"$"}{!want[@]}"; do case "${"$"}{want[$i]}" in docker-ce|docker-ce-cli|docker-ce-rootless-extras) want[i]="${"$"}{want[$i]}=$pinned" ;; esac; done
  fi`;
}

function dockerRepoRhel(): string {
  return String.raw`  if [ ! -f /etc/yum.repos.d/docker-ce.repo ]; then
    repo_os=$ID; [ "$ID" = fedora ] || repo_os=rhel
    url="https://download.docker.com/linux/$repo_os/docker-ce.repo"
    dnf -y -q install dnf-plugins-core >/dev/null 2>&1 || true
    dnf config-manager --add-repo "$url" >/dev/null 2>&1 || dnf config-manager addrepo --from-repofile="$url" \
      || die "could not add Docker's dnf repository"
    changed "added Docker's dnf repository"
  fi
  if [ -n "$version" ]; then
    for i in "${"$"}{!want[@]}"; do case "${"$"}{want[$i]}" in docker-ce|docker-ce-cli|docker-ce-rootless-extras) want[i]="${"$"}{want[$i]}-3:$version" ;; esac; done
  fi`;
}

function staticInstall(a: PackagesScriptArgs): string {
  return String.raw`sha_docker=${shellQuote(a.sha256 ?? "")}; sha_extras=${shellQuote(a.rootlessExtrasSha256 ?? "")}
arch=$(uname -m); case "$arch" in x86_64|aarch64) ;; *) die "no static Docker build for $arch" ;; esac
if [ "$(/usr/local/bin/dockerd --version 2>/dev/null | sed -n 's/^Docker version \([0-9.]*\),.*/\1/p')" != "$version" ] \
   || [ ! -x /usr/local/bin/dockerd-rootless.sh ]; then
  work=$(mktemp -d); trap 'rm -rf "$work"; hd_exit' EXIT
  base="https://download.docker.com/linux/static/stable/$arch"
  curl -fsSL -o "$work/docker.tgz" "$base/docker-$version.tgz" || die "download of docker-$version.tgz failed"
  curl -fsSL -o "$work/extras.tgz" "$base/docker-rootless-extras-$version.tgz" || die "download of docker-rootless-extras-$version.tgz failed"
  echo "$sha_docker  $work/docker.tgz" | sha256sum -c --quiet - || die "docker-$version.tgz does not match docker.sha256"
  echo "$sha_extras  $work/extras.tgz" | sha256sum -c --quiet - || die "docker-rootless-extras-$version.tgz does not match docker.rootlessExtrasSha256"
  tar -xzf "$work/docker.tgz" -C "$work"; tar -xzf "$work/extras.tgz" -C "$work"
  install -m 0755 "$work"/docker/* "$work"/docker-rootless-extras/* /usr/local/bin/
  changed "installed the static Docker $version binaries into /usr/local/bin"
fi`;
}

export const PACKAGES_DELETE_SCRIPT = `note "packages are kept: removing Docker from a host is left to its operator"`;

const ROOTFUL_UNITS = ["docker.socket", "docker.service", "containerd.service"];
const ROOTFUL_STATE = "/var/lib/hardened-docker/rootful-docker.state";

/**
 * Stops and masks the rootful daemon (docker.socket, docker.service, containerd.service) and
 * removes /var/run/docker.sock, so nothing can fall back to it. The state found the first
 * time is recorded so that destroy can put it back.
 */
export function rootfulOffCreateScript(): string {
  return String.raw`
state=${shellQuote(ROOTFUL_STATE)}
install -d -m 0755 "$(dirname "$state")"
if [ ! -f "$state" ]; then
  for u in ${words(ROOTFUL_UNITS)}; do
    printf '%s %s %s\n' "$u" "$(systemctl is-enabled "$u" 2>/dev/null || true)" "$(systemctl is-active "$u" 2>/dev/null || true)"
  done >"$state.tmp"; mv "$state.tmp" "$state"
fi
for u in ${words(ROOTFUL_UNITS)}; do
  if systemctl is-active --quiet "$u"; then systemctl stop "$u"; changed "stopped $u"; fi
  if [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" != masked ]; then
    systemctl mask "$u" >/dev/null 2>&1; changed "masked $u"
  fi
done
for s in /var/run/docker.sock /run/docker.sock; do
  if [ -e "$s" ] || [ -L "$s" ]; then rm -f "$s"; changed "removed $s"; fi
done`;
}

/** Unmasks the rootful units and restores the enabled/active state recorded before. */
export function rootfulOffDeleteScript(): string {
  return String.raw`
state=${shellQuote(ROOTFUL_STATE)}
[ -f "$state" ] || { note "no recorded state of the rootful daemon; leaving it as it is"; exit 0; }
while read -r u enabled _; do
  if [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" = masked ]; then systemctl unmask "$u" >/dev/null 2>&1; changed "unmasked $u"; fi
  if [ "$enabled" = enabled ]; then systemctl enable "$u" >/dev/null 2>&1; changed "re-enabled $u"; fi
done <"$state"
# start what ran before, containerd first (the file lists docker.socket first)
while read -r u _ active; do
  [ "$active" = active ] || continue
  if systemctl start "$u"; then changed "started $u again"
  else note "could not start $u again; see journalctl -u $u"; fi
done < <(tac "$state")
rm -f "$state"`;
}

const DELEGATE_DROP_IN = "/etc/systemd/system/user@.service.d/delegate.conf";

/**
 * With the delegation drop-in in place: restarts the user's manager once when it runs without
 * the delegated controllers (or without a session bus, e.g. dbus-user-session just installed).
 * Expects `$user`.
 */
const USER_MANAGER_DELEGATION = String.raw`uid=$(id -u "$user") || die "user $user does not exist"
if systemctl is-active --quiet "user@$uid.service"; then
  ctl=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers
  have=$(cat "$ctl" 2>/dev/null || true)
  missing=""
  for c in cpu cpuset io memory pids; do case " $have " in *" $c "*) ;; *) missing="$missing $c" ;; esac; done
  if [ -n "$missing" ] || [ ! -S "/run/user/$uid/bus" ]; then
    systemctl restart "user@$uid.service"
    wait_until 120 "user@$uid.service to be active" systemctl is-active --quiet "user@$uid.service"
    changed "restarted user@$uid.service so that it gets the delegated cgroup controllers and its session bus"
  fi
fi`;

/**
 * Writes the cgroup delegation drop-in for user@.service (stdin). systemd applies it only to
 * user managers started afterwards, so when the service user's manager runs without the
 * controllers (or without a session bus, e.g. dbus-user-session just installed), it is
 * restarted once; on the first apply no container runs yet.
 */
export function delegationCreateScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
install -d -m 0755 "$(dirname ${shellQuote(DELEGATE_DROP_IN)})"
write_file ${shellQuote(DELEGATE_DROP_IN)} 0644 root root
if [ "$file_changed" = 1 ]; then systemctl daemon-reload; fi
${USER_MANAGER_DELEGATION}`;
}

/**
 * A further tenant's delegation: the host-wide drop-in is the first tenant's step; this one
 * only makes sure the tenant's own manager runs with the delegated controllers. Its delete
 * leaves the drop-in (the other tenants need it).
 */
export function tenantDelegationCreateScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
[ -f ${shellQuote(DELEGATE_DROP_IN)} ] || die "${DELEGATE_DROP_IN} is missing: the host's first tenant writes it (its cgroup delegation step)"
${USER_MANAGER_DELEGATION}`;
}

export function delegationDeleteScript(): string {
  return String.raw`
if [ -f ${shellQuote(DELEGATE_DROP_IN)} ]; then
  rm -f ${shellQuote(DELEGATE_DROP_IN)}; systemctl daemon-reload; changed "removed ${DELEGATE_DROP_IN}"
fi`;
}

const MODULES_FILE = "/etc/modules-load.d/60-hardened-docker.conf";

/** The modules-load.d body: one kernel module a line. */
export function renderKernelModules(modules: readonly string[]): string {
  return `# Managed by hardened-docker (Pulumi). Kernel modules the rootless daemon needs but cannot load.\n${modules.join("\n")}\n`;
}

/**
 * Writes /etc/modules-load.d/60-hardened-docker.conf (stdin) so the modules load at every
 * boot, and loads them now. A rootless daemon cannot run modprobe itself.
 */
export function kernelModulesCreateScript(modules: readonly string[]): string {
  return String.raw`
write_file ${shellQuote(MODULES_FILE)} 0644 root root
modules=(${words(modules)})
for m in "${"$"}{modules[@]}"; do
  if ! grep -q "^$m " /proc/modules; then modprobe "$m"; changed "loaded kernel module $m"; fi
done`;
}

export function kernelModulesDeleteScript(): string {
  return String.raw`
if [ -f ${shellQuote(MODULES_FILE)} ]; then
  rm -f ${shellQuote(MODULES_FILE)}; changed "removed ${MODULES_FILE} (modules stay loaded until reboot)"
fi`;
}

const SYSCTL_FILE = "/etc/sysctl.d/60-hardened-docker-unprivileged-ports.conf";

export function sysctlCreateScript(): string {
  return String.raw`
write_file ${shellQuote(SYSCTL_FILE)} 0644 root root
if [ "$file_changed" = 1 ]; then sysctl -q -p ${shellQuote(SYSCTL_FILE)}; fi`;
}

export function sysctlDeleteScript(): string {
  return String.raw`
if [ -f ${shellQuote(SYSCTL_FILE)} ]; then
  rm -f ${shellQuote(SYSCTL_FILE)}; sysctl -q -w net.ipv4.ip_unprivileged_port_start=1024
  changed "removed ${SYSCTL_FILE}; unprivileged ports start at 1024 again"
fi`;
}

/** The sysctl file body for `unprivilegedPortStart`. */
export function renderSysctl(unprivilegedPortStart: number): string {
  return `# Managed by hardened-docker (Pulumi). Lets rootless Docker publish ports from ${unprivilegedPortStart}.\nnet.ipv4.ip_unprivileged_port_start = ${unprivilegedPortStart}\n`;
}

/** Writes ~/.config/docker/daemon.json (stdin) and restarts the user daemon if it runs. */
export function daemonJsonCreateScript(user: string, timeoutSeconds: number): string {
  return String.raw`
user=${shellQuote(user)}
uid=$(id -u "$user") || die "user $user does not exist"
home=$(getent passwd "$user" | cut -d: -f6)
f=$home/.config/docker/daemon.json
keep_previous "$f" "$user"
write_user_file "$user" "$f" 0600
running() {
  systemctl is-active --quiet "user@$uid.service" && as_user "$user" systemctl --user is-active --quiet docker.service
}
# up: the daemon answers and its unit stayed active (dockerd exits at once on a bad daemon.json)
up() {
  local deadline=$(( $(date +%s) + ${timeoutSeconds} ))
  until as_user "$user" docker version >/dev/null 2>&1; do
    as_user "$user" systemctl --user is-failed --quiet docker.service && return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}
# also when the daemon started before the file was written (a run cut before the restart)
if running && { [ "$file_changed" = 1 ] || written_after "$f" \
     "$(as_user "$user" systemctl --user show -p ActiveEnterTimestamp --value docker.service)" "$user"; }; then
  since=$(date '+%Y-%m-%d %H:%M:%S')
  if as_user "$user" systemctl --user restart docker.service 2>&1 && up; then
    changed "restarted the rootless daemon (daemon.json changed)"
  else
    # the daemon's own words, from its journal (dockerd names the directive it refuses)
    sleep 1
    said=$(journalctl --no-pager -q -o cat _UID="$uid" --since "$since" 2>/dev/null       | grep -iE 'daemon\.json|unable to configure|invalid|directive|error|failed|unknown' | tail -n 5 || true)
    printf '%s\n' "$said" >&2
    restore_previous "$f" 0600 "" "" "$user"
    as_user "$user" systemctl --user reset-failed docker.service 2>/dev/null || true
    as_user "$user" systemctl --user restart docker.service 2>&1 || true
    if up; then
      die "the rootless daemon refused the new daemon.json (daemonConfig; the daemon said: ${"$"}{said:-nothing in its journal}); restored the previous daemon.json and restarted the daemon on it"
    fi
    die "the rootless daemon refused the new daemon.json (daemonConfig; the daemon said: ${"$"}{said:-nothing in its journal}); restored the previous daemon.json, but the daemon does not come up on it either"
  fi
fi`;
}

export function daemonJsonDeleteScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
id -u "$user" >/dev/null 2>&1 || exit 0
f=$(getent passwd "$user" | cut -d: -f6)/.config/docker/daemon.json
removed=$(remove_user_file "$user" "$f")
if [ "$removed" = removed ]; then changed "removed $f"; fi`;
}

/**
 * Waits until the rootless daemon answers (no fixed sleep: a slow host takes longer than the
 * setup tool's 3 s), checks it reports rootless, and makes the `rootless` CLI context current.
 */
export function daemonReadyCreateScript(
  user: string,
  timeoutSeconds: number,
  packagesScript = "",
): string {
  // the packages step's script, as a digest: when it changes (a dockerVersion change), this
  // step runs again and moves a daemon still running the old binaries onto the new ones
  const packages = createHash("sha256").update(packagesScript).digest("hex").slice(0, 16);
  return String.raw`
# packages: ${packages}
user=${shellQuote(user)}
uid=$(id -u "$user") || die "user $user does not exist"
sock=/run/user/$uid/docker.sock
wait_until ${timeoutSeconds} "the rootless daemon to answer on $sock" as_user "$user" docker version
running=$(as_user "$user" docker version --format '{{.Server.Version}}' 2>/dev/null || true)
installed=$(as_user "$user" dockerd --version 2>/dev/null | sed -nE 's/^Docker version ([^ ,]+).*/\1/p')
if [ -n "$installed" ] && [ -n "$running" ] && [ "$installed" != "$running" ]; then
  as_user "$user" systemctl --user restart docker.service
  wait_until ${timeoutSeconds} "the rootless daemon to answer on $sock" as_user "$user" docker version
  changed "restarted the rootless daemon onto the installed Docker $installed (it ran $running)"
fi
as_user "$user" docker info --format '{{json .SecurityOptions}}' | grep -q 'name=rootless' \
  || die "the daemon on $sock does not report rootless mode"
if ! as_user "$user" docker context inspect rootless >/dev/null 2>&1; then
  as_user "$user" docker context create rootless --description "rootless daemon (hardened-docker)" \
    --docker "host=unix://$sock" >/dev/null
  changed "created the docker context rootless"
fi
# (docker context show is newer than Debian 12's docker 20.10: read the current one from ls)
current=$(as_user "$user" env -u DOCKER_HOST docker context ls --format '{{if .Current}}{{.Name}}{{end}}' | tr -d '[:space:]')
if [ "$current" != rootless ]; then
  as_user "$user" env -u DOCKER_HOST docker context use rootless >/dev/null; changed "made rootless the current docker context"
fi
note "dockerHost=unix://$sock"`;
}

export function daemonReadyDeleteScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
id -u "$user" >/dev/null 2>&1 || exit 0
if as_user "$user" docker context inspect rootless >/dev/null 2>&1; then
  as_user "$user" env -u DOCKER_HOST docker context use default >/dev/null 2>&1 || true
  as_user "$user" env -u DOCKER_HOST docker context rm -f rootless >/dev/null; changed "removed the docker context rootless"
fi`;
}
