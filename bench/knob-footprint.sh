#!/usr/bin/env bash
# Where one knob lives: for each knob name, the source files (TypeScript outside tests) and
# folders that name it, then the tests and the docs, at each revision given (default: HEAD).
# A proxy for "files touched to add one knob": an existing knob's footprint is what a new one
# like it would touch. Issue 15 compares the revision before the folder move with HEAD:
#   bench/knob-footprint.sh 33be4ed HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
KNOBS=(apiVersionPrefix logLevel readWritePaths startTimeoutSeconds removeOnDestroy cpuPercent)
revs=("$@")
[ "${#revs[@]}" -gt 0 ] || revs=(HEAD)
printf '%-22s %-10s %8s %8s %6s %5s\n' knob revision sources folders tests docs
for knob in "${KNOBS[@]}"; do
  for rev in "${revs[@]}"; do
    files=$(git grep -lw "$knob" "$rev" -- '*.ts' '*.md' '*.yaml' | sed "s/^$rev://")
    src=$(grep '\.ts$' <<<"$files" | grep -v '\.test\.ts$' | grep -v '^test/' | grep -v '^bench/' || true)
    tests=$(grep -E '\.test\.ts$|^test/' <<<"$files" || true)
    docs=$(grep -E '\.md$|\.yaml$' <<<"$files" | grep -v '^CHANGELOG' || true)
    count() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }
    folders=$([ -z "$src" ] && echo 0 || xargs -n1 dirname <<<"$src" | sort -u | wc -l)
    printf '%-22s %-10s %8s %8s %6s %5s\n' "$knob" "$rev" "$(count "$src")" "$folders" \
      "$(count "$tests")" "$(count "$docs")"
  done
done
