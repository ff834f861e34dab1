/**
 * The one place where shell is generated. Every value interpolated into a script goes through
 * `shellQuote`; file bodies never do: they travel on the command's stdin.
 */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * POSIX single-quote quoting: the result, read by any POSIX shell, is exactly one word equal
 * to `value`. Words made only of characters no shell treats specially are returned as they
 * are, so generated scripts stay readable in a preview diff.
 *
 * @throws Error when `value` contains a NUL byte, which no shell argument can carry.
 */
export function shellQuote(value: string): string {
  if (value.includes("\0")) {
    throw new Error("shellQuote: a shell word cannot contain a NUL byte");
  }
  if (value === "") return "''";
  if (SAFE_WORD.test(value)) return value;
  return "'" + value.replace(/'/g, `'"'"'`) + "'";
}

/** How commands reach root on the host. */
export interface Privilege {
  /** Run the script through `sudo -n` (the login user is not root). */
  readonly sudo: boolean;
}

/**
 * `as_user USER CMD...` for bash scripts run as root: runs CMD as USER with the environment its
 * systemd user manager and rootless Docker need (sudo/runuser set neither XDG_RUNTIME_DIR nor
 * the bus address).
 */
export const AS_USER_FUNCTION = String.raw`# hd_close_fds, in a subshell about to become another user: what root holds open (pipes of
# other users' facts, the files of a step) is not handed to that user's process, which could
# reopen it through /proc/<pid>/fd. Every descriptor above 2 is closed.
hd_close_fds() {
  local f
  for f in /proc/self/fd/*; do
    f=${"$"}{f##*/}
    if [ "$f" -gt 2 ]; then eval "exec $f<&-"; fi
  done
}
as_user() {
  local u=$1 uid home; shift
  uid=$(id -u "$u"); home=$(getent passwd "$u" | cut -d: -f6)
  (hd_close_fds; cd / && runuser -u "$u" -- env -i HOME="$home" USER="$u" LOGNAME="$u" LC_ALL=C \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR="/run/user/$uid" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" \
    DOCKER_HOST="unix:///run/user/$uid/docker.sock" "$@")
}`;

/**
 * Functions every generated script may use. Kept in one block so that each script prints its
 * changes the same way: `hardened-docker: <step>: changed: <what>`, or a single
 * `hardened-docker: <step>: no change` line when it found the host already converged.
 */
const PRELUDE = String.raw`set -euo pipefail
umask 022
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
hd_changes=0
changed() { hd_changes=$((hd_changes + 1)); printf 'hardened-docker: %s: changed: %s\n' "$hd_step" "$*"; }
note() { printf 'hardened-docker: %s: %s\n' "$hd_step" "$*"; }
die() { printf 'hardened-docker: %s: error: %s\n' "$hd_step" "$*" >&2; exit 1; }
hd_prev=''
hd_exit() { local rc=$?; [ -z "$hd_prev" ] || rm -f -- "$hd_prev"; if [ "$rc" = 0 ] && [ "$hd_changes" = 0 ]; then printf 'hardened-docker: %s: no change\n' "$hd_step"; fi; return "$rc"; }
trap hd_exit EXIT
# wait_until SECONDS WHAT CMD...: poll CMD once a second until it succeeds or time runs out
# (every 15 s of waiting it prints what it waits for and for how long: pulumi up shows it)
hd_every=15
wait_until() {
  local secs=$1 what=$2 t0 now; shift 2
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    now=$(date +%s)
    [ "$now" -lt $((t0 + secs)) ] || die "timed out after $secs seconds waiting for $what"
    if [ $((now - t0)) -gt 0 ] && [ $(((now - t0) % hd_every)) = 0 ]; then note "still waiting for $what ($((now - t0)) s of $secs)"; fi
    sleep 1
  done
}
# with_progress WHAT CMD...: runs CMD (its stdout discarded, its stderr kept); while it runs,
# every 15 s prints that it is still WHAT. Returns CMD's status.
with_progress() {
  local what=$1 t0 pid n=0; shift
  t0=$(date +%s)
  "$@" >/dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1; n=$((n + 1))
    if [ $((n % hd_every)) = 0 ] && kill -0 "$pid" 2>/dev/null; then note "still $what ($(( $(date +%s) - t0 )) s)"; fi
  done
  wait "$pid"
}
# write_file PATH MODE OWNER GROUP: stdin becomes PATH, atomically, only when content, mode or
# owner differ. Sets file_changed=1 when it wrote. Never prints the content.
# shellcheck disable=SC2034 # file_changed: read by the scripts that call it
write_file() {
  local path=$1 mode=$2 owner=$3 group=$4 dir tmp
  dir=$(dirname "$path"); file_changed=0
  [ -d "$dir" ] || die "directory $dir does not exist"
  tmp=$(mktemp "$dir/.hardened-docker.XXXXXX")
  cat >"$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path" \
     && [ "$(stat -c '%a %U %G' "$path")" = "$(printf '%o' "0$mode") $owner $group" ]; then
    rm -f "$tmp"; return 0
  fi
  chown "$owner:$group" "$tmp"; chmod "$mode" "$tmp"; mv -f "$tmp" "$path"
  file_changed=1; changed "wrote $path"
}
# Files in a directory the service user controls are never touched by root: it could have
# planted a symlink, a hard link or a FIFO there, or swap one in between a check and a write.
# as_owner USER SCRIPT ARGS...: runs SCRIPT (bash) as USER, in /, with a clean environment,
# so whatever it planted leads only where it could write itself. 60 s at most.
as_owner() {
  local u=$1; shift
  (hd_close_fds; cd / && timeout 60 runuser -u "$u" -- env -i PATH=/usr/bin:/bin LC_ALL=C bash -c "$@")
}
# write_user_file USER PATH MODE: write_file for a file of USER's own, done as USER (as_owner):
# missing directories created 0700, the file replaced by rename only when content or mode
# differ. Sets file_changed=1 when it wrote. Never prints the content.
# shellcheck disable=SC2034 # file_changed: read by the scripts that call it
write_user_file() {
  local u=$1 path=$2 mode=$3 out
  out=$(as_owner "$u" '
set -euo pipefail; umask 077
path=$1 mode=$2; dir=$(dirname "$path")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.hardened-docker.XXXXXX")
cat >"$tmp"
if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s -- "$tmp" "$path" \
   && [ "$(stat -c %a -- "$path")" = "$(printf %o "0$mode")" ]; then
  rm -f -- "$tmp"; echo same
else
  chmod "$mode" "$tmp"; mv -fT -- "$tmp" "$path"; echo wrote
fi' hd "$path" "$mode") || die "could not write $path as $u: a directory on the way is not $u's own (a symlink?)"
  file_changed=0
  if [ "$out" = wrote ]; then file_changed=1; changed "wrote $path"; fi
}
# remove_user_file USER PATH [HEADER]: removes PATH as USER (as_owner); with HEADER only a
# regular file whose first line is HEADER. Prints "removed" when it removed it; fails (the
# script dies) when it could not.
remove_user_file() {
  local out
  out=$(as_owner "$1" '
if [ -L "$1" ]; then
  if [ -z "$2" ]; then rm -f -- "$1" && echo removed; fi
elif [ -f "$1" ] && { [ -z "$2" ] || [ "$(head -n 1 -- "$1")" = "$2" ]; }; then
  rm -f -- "$1" && echo removed
fi' hd "$2" "${"$"}{3:-}") || die "could not remove $2 as $1"
  printf '%s\n' "$out"
}
# keep_previous PATH [USER]: copies what PATH holds now (read as USER when given, so a link
# of USER's leads only where USER can read) into a root-only file, for restore_previous.
# Sets hd_prev_existed=1 when PATH was a regular file.
keep_previous() {
  hd_prev_existed=0
  [ -n "$hd_prev" ] || hd_prev=$(mktemp /run/.hardened-docker.prev.XXXXXX)
  if [ -n "${"$"}{2:-}" ]; then
    if as_owner "$2" '[ -f "$1" ] && [ ! -L "$1" ] && cat -- "$1"' hd "$1" >"$hd_prev"; then hd_prev_existed=1; fi
  elif [ -f "$1" ] && [ ! -L "$1" ]; then
    cat -- "$1" >"$hd_prev"; hd_prev_existed=1
  fi
}
# written_after PATH STARTED [USER]: PATH (stat as USER when given) was written after STARTED,
# systemd's ActiveEnterTimestamp of the unit that reads it: that unit runs an older version
# (a run cut between the write and the restart leaves it so; the next run must restart it)
written_after() {
  local started mtime
  [ -n "$2" ] || return 1
  started=$(date -d "$2" +%s 2>/dev/null) || return 1
  if [ -n "${"$"}{3:-}" ]; then mtime=$(as_owner "$3" 'stat -c %Y -- "$1"' hd "$1" 2>/dev/null) || return 1
  else mtime=$(stat -c %Y -- "$1" 2>/dev/null) || return 1; fi
  [ "$mtime" -gt "$started" ]
}
# restore_previous PATH MODE OWNER GROUP [USER]: puts back what keep_previous saw (removes
# PATH when it did not exist), written as USER when given.
restore_previous() {
  if [ "$hd_prev_existed" = 1 ]; then
    if [ -n "${"$"}{5:-}" ]; then write_user_file "$5" "$1" "$2" <"$hd_prev"
    else write_file "$1" "$2" "$3" "$4" <"$hd_prev"; fi
  elif [ -n "${"$"}{5:-}" ]; then
    remove_user_file "$5" "$1" >/dev/null
  else
    rm -f -- "$1"
  fi
}
${AS_USER_FUNCTION}`;

/**
 * Wraps a script body into the command string a `remote.Command` runs: bash with strict
 * mode, the prelude, and `sudo -n` when the login user is not root (there is no TTY, so a
 * password prompt would hang: `-n` makes it fail at once instead).
 *
 * @param step short name printed in every line the script reports (e.g. `service-user`)
 */
export function remoteScript(step: string, body: string, privilege: Privilege): string {
  const script = `hd_step=${shellQuote(step)}\n${PRELUDE}\n${body.trim()}\n`;
  const bash = `bash -c ${shellQuote(script)} hardened-docker`;
  return privilege.sudo ? `sudo -n -- ${bash}` : bash;
}

/** Joins words into one shell command line, quoting each. */
export function shellWords(words: readonly string[]): string {
  return words.map(shellQuote).join(" ");
}
