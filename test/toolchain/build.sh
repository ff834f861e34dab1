#!/usr/bin/env bash
# Builds the Go programs the VM suites run for real, from Go modules (no release download is
# reachable from our CI machines), into a cache keyed by tool, version and a hash of its
# tools module:
#
#   $HD_TOOLCHAIN_CACHE/<tool>-<version>-<hash>/<binary>
#
# (default: /var/cache/hardened-docker-toolchain as root, ~/.cache/hardened-docker-toolchain
# otherwise)
#
# One tools module of ours per program (test/toolchain/<tool>/go.mod + go.sum): it requires the
# upstream module and repeats its non-local replace/exclude lines (a dependent module does not
# inherit them). CGO_ENABLED=0, -trimpath, the upstream's version variable set by -ldflags.
#
# Usage: test/toolchain/build.sh [tool...]   (default: every tool)
# Prints one line per tool, "<tool> <path-to-binary>", on stdout; progress on stderr.
# A cached binary is reused (seconds); a cold build of both takes minutes (see README, Tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${HD_TOOLCHAIN_CACHE:-}" ]; then cache=$HD_TOOLCHAIN_CACHE
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/hardened-docker-toolchain
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/hardened-docker-toolchain; fi
# The machine's own Go: never download another toolchain; the committed go.sum must be
# complete (a build never edits it).
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0

command -v go >/dev/null || {
  echo "test/toolchain/build.sh: Go is not installed (go >= 1.26 is needed to build the toolchain)" >&2
  exit 1
}

# tool | upstream module (its version is the one our go.mod requires) | package | version variable | binary
TOOLS=(
  "pulumi|github.com/pulumi/pulumi/pkg/v3|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|github.com/pulumi/pulumi/sdk/v3/go/common/version.Version|pulumi"
  "traefik|github.com/traefik/traefik/v3|github.com/traefik/traefik/v3/cmd/traefik|github.com/traefik/traefik/v3/pkg/version.Version|traefik"
)

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(pulumi traefik)

for tool in "${wanted[@]}"; do
  row=""
  for r in "${TOOLS[@]}"; do [ "${r%%|*}" = "$tool" ] && row=$r; done
  [ -n "$row" ] || {
    echo "test/toolchain/build.sh: unknown tool '$tool' (known: pulumi traefik)" >&2
    exit 2
  }
  IFS='|' read -r _ module package versionvar binary <<<"$row"
  dir="$here/$tool"
  version=$(cd "$dir" && go list -m -f '{{.Version}}' "$module")
  hash=$(cat "$dir/go.mod" "$dir/go.sum" "$0" | sha256sum | cut -c1-12)
  out="$cache/$tool-$version-$hash"
  # one build per tool at a time: a second caller (the test suite, while .ci/run builds it in
  # the background) waits for the first and reuses its binary
  mkdir -p "$cache"
  exec {lock}>"$cache/.$tool.lock"
  if ! flock -n "$lock"; then
    echo "toolchain: waiting for another build of $tool to finish" >&2
    flock "$lock"
  fi
  if [ ! -x "$out/$binary" ]; then
    echo "toolchain: building $tool $version ($package) into $out" >&2
    t0=$(date +%s)
    mkdir -p "$out.tmp"
    (cd "$dir" && go build -trimpath -ldflags "-s -w -X $versionvar=$version" -o "$out.tmp/$binary" "$package")
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "toolchain: built $tool $version in $(($(date +%s) - t0)) s" >&2
  fi
  exec {lock}>&-
  echo "$tool $out/$binary"
done
