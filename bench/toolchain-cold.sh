#!/usr/bin/env bash
# The toolchain build (test/toolchain/build.sh) from cold caches: an empty Go module cache, an
# empty Go build cache and an empty toolchain cache, all in a temp dir (the machine's own caches
# are not touched), then once more warm. Prints the seconds of each phase per tool.
#
# Usage: bench/toolchain-cold.sh [tool...]   (default: pulumi traefik)
# Needs Go >= 1.26 and the Go module proxy; takes ~20 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(pulumi traefik)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOMODCACHE=$work/mod GOCACHE=$work/build HD_TOOLCHAIN_CACHE=$work/toolchain
echo "toolchain cold build on $(nproc) cores, $(go version | cut -d' ' -f3)"
total=0
for tool in "${tools[@]}"; do
  t0=$(date +%s)
  "$here/../test/toolchain/build.sh" "$tool" >/dev/null 2>"$work/$tool.log" || {
    cat "$work/$tool.log" >&2
    exit 1
  }
  cold=$(($(date +%s) - t0))
  t0=$(date +%s)
  "$here/../test/toolchain/build.sh" "$tool" >/dev/null 2>&1
  warm=$(($(date +%s) - t0))
  total=$((total + cold))
  printf '%-8s cold %5d s (module download + build)   warm %3d s (cached binary)\n' "$tool" "$cold" "$warm"
done
printf 'total    cold %5d s\n' "$total"
