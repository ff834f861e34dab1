/**
 * The probe's part across tenants (only with tenants): how each user's runtime directory and
 * home look to root, and whether one tenant can connect to another's Docker socket. Runs after
 * every user's function, which fills `users`, `uids` and `homes`.
 */

/** How long one tenant's attempt on another's socket may take (curl's --max-time). */
export const SOCKET_ATTEMPT_SECONDS = 5;

/**
 * How a tenant tries another's socket (then the socket's path and the URL): `-q` first, so no
 * ~/.curlrc of the tenant's is read; `-v`, because only its verbose lines say why connect()
 * failed (Permission denied, No such file or directory, Connection refused).
 */
export const SOCKET_ATTEMPT_CURL = `curl -q -sv -o /dev/null --max-time ${SOCKET_ATTEMPT_SECONDS} --unix-socket`;

/**
 * `socket_verdict RC OUTPUT`: curl's exit status and verbose output (`-sv`) as one word.
 * `denied`: connect() was refused for permissions (the isolation holds); `connected`,
 * `refused` (a socket nobody listens on, but one the user may connect to), `timeout`
 * (connected, no answer): the isolation does not hold; `absent`: no such socket (or directory);
 * `no-curl`, `failed`, `curl-exit-<n>`: nothing learnt.
 */
export const SOCKET_VERDICT_FUNCTION = String.raw`socket_verdict() {
  case $1 in
    7)
      case $2 in
        *": Permission denied"*) echo denied ;;
        *": No such file or directory"*) echo absent ;;
        *": Connection refused"*) echo refused ;;
        *) echo failed ;;
      esac ;;
    0) echo connected ;;
    28|124) echo timeout ;;
    126|127) echo no-curl ;;
    *) echo "curl-exit-$1" ;;
  esac
}`;

/**
 * Root lstat()s each runtime directory and home: their parents (/run/user, /home) are root's,
 * so a tenant cannot swap the path for another one (and stat does not follow a link). Each
 * tenant then tries the others' sockets AS itself (runuser, `curl -q`: no ~/.curlrc). What its
 * curl prints is its own to forge: only root's one-word verdict of it reaches the output, and
 * never the marker. A tenant could hide its own access that way, never fake another's: the
 * modes root reads are the proof, the attempt is the end-to-end evidence.
 */
export const ISOLATION_PROBE = String.raw`${SOCKET_VERDICT_FUNCTION}
try_socket() {
  local out rc
  out=$(as_user "$1" timeout 10 ${SOCKET_ATTEMPT_CURL} "/run/user/${"$"}{uids[$2]}/docker.sock" http://d/_ping 2>&1 | head -c 4096; printf '\nrc=%s' "${"$"}{PIPESTATUS[0]}")
  rc=${"$"}{out##*rc=}
  [[ $rc =~ ^[0-9]+$ ]] || rc=1
  printf '%s %s %s\n' "$1" "$2" "$(socket_verdict "$rc" "$out")"
}
exec {fd}< <(
  s isolation-paths
  for u in "${"$"}{users[@]}"; do
    printf '%s runtime %s\n' "$u" "$(stat -c '%a %u %F' -- "/run/user/${"$"}{uids[$u]}" 2>&1)"
    printf '%s home %s\n' "$u" "$(stat -c '%a %u %F' -- "${"$"}{homes[$u]}" 2>&1)"
  done
  s isolation-sockets
  if ! command -v curl >/dev/null; then
    echo "no curl"
  else
    pfds=()
    for a in "${"$"}{users[@]}"; do
      for b in "${"$"}{users[@]}"; do
        if [ "$a" != "$b" ]; then exec {pfd}< <(try_socket "$a" "$b"); pfds+=("/dev/fd/$pfd"); fi
      done
    done
    if [ "${"$"}{#pfds[@]}" -gt 0 ]; then cat "${"$"}{pfds[@]}"; fi
  fi
); fds+=("/dev/fd/$fd")`;
