/** What verify's probe reads of a service user's slice (verify/probe.ts runs it). */
import { shellWords } from "../core/shell";

/** The cgroup files of a user slice that carry its limits (`sliceCgroupValues`). */
export const SLICE_FILES = ["cpu.max", "memory.max", "memory.swap.max", "pids.max"] as const;

/** Prints the `slice` section: each of SLICE_FILES of the user's slice (`$uid`), or "absent". */
export const SLICE_PROBE = String.raw`
  local d=/sys/fs/cgroup/user.slice/user-$uid.slice v
  s slice
  for f in ${shellWords([...SLICE_FILES])}; do
    if [ -r "$d/$f" ]; then IFS= read -r v <"$d/$f"; printf '%s=%s\n' "$f" "$v"; else printf '%s absent\n' "$f"; fi
  done`;
