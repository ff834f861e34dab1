#!/usr/bin/env bash
# Benchmark: GET /containers/json latency (p50, p99) through the socket proxy vs straight to
# the rootless socket, side by side in one run, on a host hardened-docker deployed (the e2e
# suite runs it on the test VM). Logs in as the admin user; the client is bench/latency.pl,
# run by the host's own perl in a throwaway container on the proxy's network, with the socket
# mounted (test client only) and the host's /usr mounted read-only for perl.
#
#   bench/proxy-latency.sh [--ssh-port 22] [--identity KEY] [--host-key 'ssh-ed25519 AAAA...']
#                          [--service-user provisioner] [--requests 1000] admin@host
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=22 identity= hostkey= user=provisioner requests=1000
while [ $# -gt 1 ]; do
  case $1 in
    --ssh-port) port=$2; shift 2 ;;
    --identity) identity=$2; shift 2 ;;
    --host-key) hostkey=$2; shift 2 ;;
    --service-user) user=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
target=${1:?usage: proxy-latency.sh [options] admin@host}
[[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "bad --service-user" >&2; exit 2; }
[[ $requests =~ ^[0-9]+$ ]] || { echo "bad --requests" >&2; exit 2; }
ssh_opts=(-p "$port" -o BatchMode=yes)
[ -n "$identity" ] && ssh_opts+=(-i "$identity" -o IdentitiesOnly=yes)
if [ -n "$hostkey" ]; then
  ssh_opts+=(-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null
             -o "KnownHostsCommand=/bin/echo %H $hostkey")
fi
remote=$(cat <<REMOTE
set -e
uid=\$(id -u $user)
exec sudo -n runuser -u $user -- env DOCKER_HOST=unix:///run/user/\$uid/docker.sock sh -c '
  set -e
  image=\$(docker inspect -f "{{.Config.Image}}" socket-proxy)
  net=\$(docker inspect -f "{{range \\\$k, \\\$v := .NetworkSettings.Networks}}{{\\\$k}}{{end}}" socket-proxy)
  echo "proxy image \$image on network \$net; \$(nproc) CPUs, docker \$(docker version -f {{.Server.Version}})"
  echo "proxy limits: cpu.max \$(docker exec socket-proxy cat /sys/fs/cgroup/cpu.max), memory.max \$(docker exec socket-proxy cat /sys/fs/cgroup/memory.max)"
  throttled() { docker exec socket-proxy sed -n "s/^nr_throttled //p" /sys/fs/cgroup/cpu.stat; }
  before=\$(throttled)
  docker run --rm -i --network "\$net" --entrypoint /usr/bin/perl \
    --mount type=bind,src=/run/user/'\$uid'/docker.sock,dst=/var/run/docker.sock \
    --mount type=bind,src=/usr,dst=/usr,readonly \
    --mount type=bind,src=/usr/lib,dst=/lib,readonly \
    --mount type=bind,src=/usr/lib64,dst=/lib64,readonly \
    "\$image" - $requests
  echo "proxy CPU throttled \$((\$(throttled) - before)) times during the run (cpu.stat nr_throttled)"'
REMOTE
)
ssh "${ssh_opts[@]}" "$target" "$remote" <"$here/latency.pl"
