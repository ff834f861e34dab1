/** What verify's probe asks of a socket proxy (verify/probe.ts assembles the one script). */
import { shellQuote } from "../core/shell";
import { SOCKET_PROXY_PORT } from "./render";

/** Requests the proxy probe sends from inside the proxy's network namespace. */
export const PROXY_PROBE_REQUESTS = {
  ping: "GET /_ping HTTP/1.1\r\nHost: verify\r\nConnection: close\r\n\r\n",
  // a body Docker cannot parse: if the proxy wrongly let it through, Docker answers 400 and
  // still creates nothing (verify never changes the host, even a broken one)
  create:
    "POST /containers/create HTTP/1.1\r\nHost: verify\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{",
} as const;

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
 * The part of `read_docker UID PROXY SUBUIDS` that probes the proxy (PROXY, with `pid` its
 * container's pid as the daemon names it). The daemon is the user's: root enters that pid's
 * network namespace only when it runs as the user or one of its subordinate uids (SUBUIDS, its
 * /etc/subuid lines; `owned_pid`), never another tenant's or the host's.
 */
export const PROXY_PROBE = String.raw`  [ -n "$2" ] || return 0
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
`;
