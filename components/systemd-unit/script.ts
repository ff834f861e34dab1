import { shellQuote } from "../core/shell";
import { MANAGED_HEADER } from "./render";

export type UnitScope = "system" | "user";

export interface UnitScriptArgs {
  readonly unitName: string;
  readonly scope: UnitScope;
  /** For `user` scope: whose user manager runs the unit. */
  readonly user?: string;
  readonly enable: boolean;
  readonly start: boolean;
  /** Seconds a (re)started unit must stay active, with no restart, to count as up. @default 5 */
  readonly settleSeconds?: number;
}

export const DEFAULT_SETTLE_SECONDS = 5;

/**
 * `refuse_foreign_unit NAME`: fails when a system unit NAME exists that hardened-docker did not
 * write (ssh, containerd, a package's unit): ours start with the managed header. Run in the
 * readiness gate for every app unit (so nothing changes before a clash is found) and again
 * right before the unit is written.
 */
const REFUSE_FOREIGN_UNIT = String.raw`refuse_foreign_unit() {
  local f=/etc/systemd/system/$1
  if [ -e "$f" ] || [ -L "$f" ]; then
    [ "$(head -n 1 -- "$f" 2>/dev/null)" = ${shellQuote(MANAGED_HEADER)} ] \
      || die "$f exists and was not written by hardened-docker; choose another service name"
  elif systemctl cat -- "$1" >/dev/null 2>&1; then
    die "the unit $1 already exists on this host (systemctl cat $1); choose another service name"
  fi
}`;

/** Preflight lines for the readiness gate: none of `unitNames` is a unit we did not write. */
export function foreignUnitsPreflight(unitNames: readonly string[]): string {
  if (unitNames.length === 0) return "";
  return `${REFUSE_FOREIGN_UNIT}
for u in ${unitNames.map(shellQuote).join(" ")}; do refuse_foreign_unit "$u"; done`;
}

/**
 * `settles UNIT`: after a (re)start, UNIT stays active with no restart for `seconds` (a unit
 * that exits at once is "activating" or "failed" within a second). Uses `sc` (systemctl in
 * the unit's scope).
 */
function settlesFunction(seconds: number): string {
  return String.raw`settles() {
  local n0 i
  n0=$(sc show -p NRestarts --value "$1" 2>/dev/null || echo 0)
  for ((i = 0; i <= ${seconds}; i++)); do
    [ "$(sc show -p ActiveState --value "$1" 2>/dev/null)" = active ] || return 1
    [ "$(sc show -p NRestarts --value "$1" 2>/dev/null || echo 0)" = "$n0" ] || return 1
    [ "$i" = ${seconds} ] || sleep 1
  done
}`;
}

/** Shell lines that set `$unit_dir` and define `sc` (systemctl in the right scope). */
function scopeSetup(a: UnitScriptArgs): string {
  if (a.scope === "system") {
    return String.raw`unit_dir=/etc/systemd/system
${REFUSE_FOREIGN_UNIT}
write_unit() { refuse_foreign_unit "${"$"}{1##*/}"; write_file "$1" 0644 root root; }
sc() { systemctl "$@"; }`;
  }
  return String.raw`user=${shellQuote(a.user ?? "")}
uid=$(id -u "$user") || die "user $user does not exist"
home=$(getent passwd "$user" | cut -d: -f6)
unit_dir=$home/.config/systemd/user
# the unit file lives in the user's home: written as the user, never by root
write_unit() { write_user_file "$user" "$1" 0644; }
# the user manager exists only with linger on (or a login session)
wait_until 120 "user@$uid.service to be active" systemctl is-active --quiet "user@$uid.service"
sc() { as_user "$user" systemctl --user "$@"; }`;
}

/**
 * Writes the unit from stdin, reloads systemd when it changed, enables it, and starts it (or
 * restarts it when its content changed while it was running). Idempotent: a second run with
 * the same unit reports no change.
 *
 * Health-gated: a unit this run started or restarted must stay active, without a restart, for
 * `settleSeconds`. When it does not, the previous unit file is put back (and the unit restarted
 * on it when it ran before), or a unit that did not exist before is stopped and removed again;
 * the script then fails with systemd's own status of the unit. The host keeps what it ran.
 */
export function unitCreateScript(a: UnitScriptArgs): string {
  const unit = shellQuote(a.unitName);
  const owner = a.scope === "user" ? ' "" "" "$user"' : " root root";
  const keepAs = a.scope === "user" ? ' "$user"' : "";
  const lines = [
    scopeSetup(a),
    `unit=${unit}`,
    `keep_previous "$unit_dir/$unit"${keepAs}`,
    `was_active=0; if sc is-active --quiet "$unit" 2>/dev/null; then was_active=1; fi`,
    `write_unit "$unit_dir/$unit"`,
    // a unit running from an older file than the one on disk (a run cut between the write
    // and the restart) is as changed as a file this run wrote
    `stale=0; if [ "$was_active" = 1 ] && [ "$file_changed" = 0 ] && written_after "$unit_dir/$unit" "$(sc show -p ActiveEnterTimestamp --value "$unit" 2>/dev/null)"${keepAs}; then stale=1; fi`,
    // also when the unit is not enabled or not running: the manager may hold a stale view of it
    // (a unit directory swapped and put back by the service user leaves its unit "masked")
    `if [ "$file_changed" = 1 ] || [ "$stale" = 1 ] || [ "$(sc show -p NeedDaemonReload --value "$unit" 2>/dev/null)" = yes ] || ! sc is-enabled --quiet "$unit" 2>/dev/null || ! sc is-active --quiet "$unit" 2>/dev/null; then sc daemon-reload; fi`,
  ];
  if (a.enable) {
    lines.push(
      `if ! sc is-enabled --quiet "$unit" 2>/dev/null; then sc enable "$unit" 2>&1; changed "enabled $unit"; fi`,
    );
  }
  if (a.start) {
    const settle = a.settleSeconds ?? DEFAULT_SETTLE_SECONDS;
    lines.push(String.raw`${settlesFunction(settle)}
# roll_back WHAT: the unit did not come up; put the host back as it was, then fail
roll_back() {
  local status
  status=$(sc status --no-pager --full --lines=15 "$unit" 2>&1 || true)
  printf '%s\n' "$status" >&2
  if [ "$file_changed" = 1 ] && [ "$hd_prev_existed" = 1 ]; then
    restore_previous "$unit_dir/$unit" 0644${owner}
    sc daemon-reload
    if [ "$was_active" = 1 ]; then
      sc restart "$unit" 2>&1 || true
      if settles "$unit"; then die "$unit $1 did not stay up for ${settle} s (systemd's status above); restored its previous unit file and restarted it: the previous version is running"; fi
      die "$unit $1 did not stay up for ${settle} s (systemd's status above); restored its previous unit file, but that does not come up either"
    fi
    sc stop "$unit" 2>&1 || true
    die "$unit $1 did not stay up for ${settle} s (systemd's status above); restored its previous unit file (it was not running before)"
  elif [ "$hd_prev_existed" = 0 ]; then
    sc disable --now "$unit" 2>&1 || true
    restore_previous "$unit_dir/$unit" 0644${owner}
    sc daemon-reload
    die "$unit $1 did not stay up for ${settle} s (systemd's status above); stopped and removed the new unit again"
  fi
  die "$unit $1 did not stay up for ${settle} s (systemd's status above)"
}
if [ "$was_active" = 1 ] && sc is-active --quiet "$unit"; then
  if [ "$file_changed" = 1 ] || [ "$stale" = 1 ]; then
    sc restart "$unit" 2>&1 || roll_back "restarted on its new unit file"
    settles "$unit" || roll_back "restarted on its new unit file"
    changed "restarted $unit (its unit file changed)"
  fi
else
  sc start "$unit" 2>&1 || roll_back "started"
  settles "$unit" || roll_back "started"
  changed "started $unit"
fi`);
  }
  return lines.join("\n");
}

/** Stops, disables and removes the unit; reloads systemd. Safe when already gone. */
export function unitDeleteScript(a: UnitScriptArgs): string {
  const unit = `unit=${shellQuote(a.unitName)}`;
  if (a.scope === "system")
    return String.raw`${scopeSetup(a)}
${unit}
if [ -f "$unit_dir/$unit" ]; then
  sc disable --now "$unit" 2>&1 || true
  rm -f "$unit_dir/$unit"; sc daemon-reload
  changed "stopped, disabled and removed $unit"
fi`;
  // the unit file is in the user's home: checked and removed as the user, never by root
  return String.raw`user=${shellQuote(a.user ?? "")}
if ! id -u "$user" >/dev/null 2>&1; then note "user $user is gone; nothing to remove"; exit 0; fi
uid=$(id -u "$user"); home=$(getent passwd "$user" | cut -d: -f6); unit_dir=$home/.config/systemd/user
if systemctl is-active --quiet "user@$uid.service"; then sc() { as_user "$user" systemctl --user "$@"; }; else sc() { :; }; fi
${unit}
if sc is-enabled --quiet "$unit" 2>/dev/null || sc is-active --quiet "$unit" 2>/dev/null; then
  sc disable --now "$unit" 2>&1 || true
fi
removed=$(remove_user_file "$user" "$unit_dir/$unit")
if [ "$removed" = removed ]; then
  sc daemon-reload
  changed "stopped, disabled and removed $unit"
fi`;
}

export interface EnvironmentFileScriptArgs {
  readonly path: string;
  /** A system unit to try-restart when the file changed (the unit that reads it). */
  readonly restartUnit?: string;
}

/**
 * Writes an EnvironmentFile from stdin, mode 0600 root:root; never prints its content. When it
 * changed and `restartUnit` runs, the unit is restarted and must settle (see unitCreateScript);
 * when it does not, the previous file is put back and the unit restarted on it, and the script
 * fails with systemd's status of the unit.
 */
export function environmentFileCreateScript(a: EnvironmentFileScriptArgs): string {
  const head = String.raw`
path=${shellQuote(a.path)}
dir=$(dirname "$path")
[ -d "$dir" ] || { install -d -m 0755 -o root -g root "$dir"; changed "created $dir"; }`;
  if (!a.restartUnit)
    return `${head}
write_file "$path" 0600 root root`;
  const unit = shellQuote(a.restartUnit);
  return String.raw`${head}
unit=${unit}
sc() { systemctl "$@"; }
${settlesFunction(DEFAULT_SETTLE_SECONDS)}
keep_previous "$path"
write_file "$path" 0600 root root
if sc is-active --quiet "$unit" && { [ "$file_changed" = 1 ] \
   || written_after "$path" "$(sc show -p ActiveEnterTimestamp --value "$unit")"; }; then
  if sc restart "$unit" 2>&1 && settles "$unit"; then
    changed "restarted $unit (its environment changed)"
  else
    sc status --no-pager --full --lines=15 "$unit" >&2 || true
    restore_previous "$path" 0600 root root
    sc restart "$unit" 2>&1 || true
    if settles "$unit"; then
      die "$unit did not stay up for ${DEFAULT_SETTLE_SECONDS} s with its new environment (systemd's status above); restored the previous $path and restarted it: the previous version is running"
    fi
    die "$unit did not stay up for ${DEFAULT_SETTLE_SECONDS} s with its new environment (systemd's status above); restored the previous $path, but it does not come up either"
  fi
fi`;
}

export function environmentFileDeleteScript(path: string): string {
  return String.raw`
path=${shellQuote(path)}
if [ -e "$path" ]; then rm -f "$path"; changed "removed $path"; fi`;
}
