import { checkInteger, checkKnownKeys, checkPlainObject } from "../core/validate";
import { shellQuote } from "../core/shell";
import { keysOf } from "../core/keys";

/**
 * Limits on one service user's `user-<uid>.slice`: what its systemd user manager runs (its
 * rootless daemon, containerd, every container) shares them. Its system-level app services run
 * in `system.slice` and are not counted.
 */
export interface SliceLimits {
  /** CPU time per second, in percent of one CPU (`CPUQuota=`; 150 = one and a half CPUs). */
  readonly cpuPercent?: number;
  /**
   * Memory in MiB (`MemoryMax=`, and `MemorySwapMax=0` so the limit is not met by swapping):
   * over it, the kernel's OOM killer picks a process inside the slice, never outside.
   */
  readonly memoryMiB?: number;
  /** Processes and threads (`TasksMax=`). */
  readonly tasks?: number;
}

/** Validates `SliceLimits` under `field`. */
export function checkSliceLimits(field: string, value: unknown): SliceLimits {
  const l = checkPlainObject(field, value);
  checkKnownKeys(
    field,
    l,
    keysOf<SliceLimits>()({ cpuPercent: true, memoryMiB: true, tasks: true }),
  );
  return {
    ...(l.cpuPercent !== undefined
      ? { cpuPercent: checkInteger(`${field}.cpuPercent`, l.cpuPercent, 1, 100_000) }
      : {}),
    ...(l.memoryMiB !== undefined
      ? { memoryMiB: checkInteger(`${field}.memoryMiB`, l.memoryMiB, 128, 16_777_216) }
      : {}),
    ...(l.tasks !== undefined
      ? { tasks: checkInteger(`${field}.tasks`, l.tasks, 64, 4_194_304) }
      : {}),
  };
}

const HEADER = "# Managed by hardened-docker (Pulumi): limits of this service user's slice.";
const DROP_IN_NAME = "60-hardened-docker-limits.conf";

/** The drop-in body: `[Slice]` with the limits that are set. */
export function renderSliceLimits(l: SliceLimits): string {
  const lines = [HEADER, "[Slice]"];
  if (l.cpuPercent !== undefined) lines.push(`CPUQuota=${l.cpuPercent}%`);
  if (l.memoryMiB !== undefined) lines.push(`MemoryMax=${l.memoryMiB}M`, "MemorySwapMax=0");
  if (l.tasks !== undefined) lines.push(`TasksMax=${l.tasks}`);
  return lines.join("\n") + "\n";
}

/**
 * The cgroup files the set limits end up in, and their values (`cpu.max` is quota and period
 * in microseconds; systemd's period is 100 ms). A limit left unset keeps systemd's default
 * (a user slice has logind's `TasksMax`) and is not listed.
 */
export function sliceCgroupValues(l: SliceLimits): Record<string, string> {
  return {
    ...(l.cpuPercent !== undefined ? { "cpu.max": `${l.cpuPercent * 1000} 100000` } : {}),
    ...(l.memoryMiB !== undefined
      ? { "memory.max": String(l.memoryMiB * 1024 * 1024), "memory.swap.max": "0" }
      : {}),
    ...(l.tasks !== undefined ? { "pids.max": String(l.tasks) } : {}),
  };
}

/** The drop-in's settings as `systemctl set-property` words. */
function properties(l: SliceLimits): string[] {
  return renderSliceLimits(l)
    .split("\n")
    .filter((x) => /^[A-Za-z]+=/.test(x));
}

/** Every property the drop-in (and the create's `set-property --runtime`) can set. */
const PROPERTY_NAMES = properties({ cpuPercent: 1, memoryMiB: 1, tasks: 1 }).map(
  (p) => p.split("=")[0],
);

/**
 * Shell that checks the running slice's cgroup files against the limits. systemd applies a
 * changed drop-in to running units at `daemon-reload`; should the slice still run with other
 * values, they are applied at once (`systemctl set-property --runtime`) and checked again.
 * Expects `$slice`.
 */
function applyNow(l: SliceLimits): string {
  const checks = Object.entries(sliceCgroupValues(l))
    .map(([f, v]) => `has ${f} ${shellQuote(v)} || return 1`)
    .join("\n  ");
  // without swap accounting the kernel shows no memory.swap.max: nothing to swap to
  return String.raw`cg=/sys/fs/cgroup/user.slice/$slice
has() {
  local got
  got=$(cat "$cg/$1" 2>/dev/null) || { [ "$1" = memory.swap.max ]; return; }
  [ "$got" = "$2" ]
}
applied() {
  ${checks || ":"}
}
if [ ! -d "$cg" ]; then
  note "$slice does not run (nothing of the user runs): the limits apply when it starts"
elif ! applied; then
  systemctl set-property --runtime "$slice" ${properties(l).map(shellQuote).join(" ")}
  applied || die "$slice runs without the limits even after systemctl set-property: $(cd "$cg" && head -n 1 cpu.max memory.max pids.max 2>&1 | tr '\n' ' ')"
  changed "applied the limits to the running $slice"
fi`;
}

/**
 * Writes the slice drop-in (stdin) for `user`'s slice, reloads systemd when it changed, and
 * makes sure the running slice has the limits (its cgroup files are the proof).
 */
export function sliceLimitsCreateScript(user: string, l: SliceLimits): string {
  return String.raw`
user=${shellQuote(user)}
uid=$(id -u "$user") || die "user $user does not exist"
slice=user-$uid.slice
install -d -m 0755 "/etc/systemd/system/$slice.d"
write_file "/etc/systemd/system/$slice.d/${DROP_IN_NAME}" 0644 root root
if [ "$file_changed" = 1 ]; then systemctl daemon-reload; fi
${applyNow(l)}`;
}

/** Removes the drop-in (the running slice gets the defaults back at the reload). */
export function sliceLimitsDeleteScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
uid=$(id -u "$user" 2>/dev/null) || { note "user $user does not exist: no slice to lift limits from"; exit 0; }
slice=user-$uid.slice
f="/etc/systemd/system/$slice.d/${DROP_IN_NAME}"
reload=0
if [ -f "$f" ]; then
  rm -f "$f"; rmdir --ignore-fail-on-non-empty "$(dirname "$f")"; reload=1
  changed "removed $f"
fi
# what the create's fallback (set-property --runtime) wrote: it outranks /etc until a reboot
for p in ${PROPERTY_NAMES.join(" ")}; do
  rt="/run/systemd/system.control/$slice.d/50-$p.conf"
  if [ -f "$rt" ]; then rm -f "$rt"; reload=1; changed "removed $rt"; fi
done
# at daemon-reload the running slice gets systemd's defaults back
if [ "$reload" = 1 ]; then systemctl daemon-reload; fi`;
}
