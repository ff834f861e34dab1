import { shellQuote } from "../core/shell";
import { AUTHORIZED_KEYS_HEADER } from "./authorized-keys";

export interface ServiceUserScriptArgs {
  readonly name: string;
  readonly uid?: number;
  readonly shell: string;
  readonly subordinateIdStart?: number;
  readonly subordinateIdCount: number;
  /**
   * Names the host's record of which user this component manages
   * (`/var/lib/hardened-docker/service-users/<record>`), so that a rename is refused before
   * anything changes. @default no record
   */
  readonly record?: string;
}

export const SERVICE_USER_RECORDS = "/var/lib/hardened-docker/service-users";

/** The record file of a component name: anything but [A-Za-z0-9._-] becomes `_`. */
export function serviceUserRecordPath(record: string): string {
  return `${SERVICE_USER_RECORDS}/${record.replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

/**
 * Creates (or checks) the service user, its home and exactly one subuid/subgid range that
 * overlaps no other user's. Fails when the user is in the `docker` group. Prints `uid=<n>`.
 */
export function serviceUserCreateScript(a: ServiceUserScriptArgs): string {
  return String.raw`
user=${shellQuote(a.name)}; shell=${shellQuote(a.shell)}
want_uid=${shellQuote(a.uid === undefined ? "" : String(a.uid))}
want_start=${shellQuote(a.subordinateIdStart === undefined ? "" : String(a.subordinateIdStart))}
want_count=${shellQuote(String(a.subordinateIdCount))}
created=0
[ -x "$shell" ] || die "shell $shell does not exist on the host (serviceUser.shell)"
record=${shellQuote(a.record === undefined ? "" : serviceUserRecordPath(a.record))}
if [ -n "$record" ] && [ -f "$record" ]; then
  was=$(head -n 1 -- "$record")
  if [ -n "$was" ] && [ "$was" != "$user" ] && id -u "$was" >/dev/null 2>&1; then
    die "this stack's service user on this host is $was: renaming it to $user in place is refused ($was's home holds its images, containers and volumes, and its subordinate ids own their files). To move to $user: set serviceUser back to $was, run pulumi destroy (removeServiceUserOnDestroy: false keeps $was and its data), then set $user and run pulumi up"
  fi
fi
if id -u "$user" >/dev/null 2>&1; then
  # an existing account must be a dedicated one: never the login user, a system account, an
  # account with a password or one that may use sudo (its keys and, on destroy, the account
  # itself would go)
  [ "$user" != "${"$"}{SUDO_USER:-}" ] || die "$user is the SSH login user; the service user must be a dedicated account (serviceUser)"
  uid_min=$(awk '$1 == "UID_MIN" { print $2 }' /etc/login.defs 2>/dev/null); uid_min=${"$"}{uid_min:-1000}
  [ "$(id -u "$user")" -ge "$uid_min" ] || die "$user is a system account (uid $(id -u "$user") < $uid_min); the service user must be a dedicated account (serviceUser)"
  case "$(getent shadow "$user" | cut -d: -f2)" in
    '!'* | '*'*) ;;
    *) die "$user can log in with a password (or with none): it is someone's login, not a dedicated service account (serviceUser)" ;;
  esac
  if id -nG "$user" | tr ' ' '
' | grep -qxE 'sudo|wheel|admin|adm'; then
    die "$user may administer this host (group sudo/wheel/admin/adm); the service user must be a dedicated account (serviceUser)"
  fi
  if [ -n "$want_uid" ] && [ "$(id -u "$user")" != "$want_uid" ]; then
    die "user $user exists with uid $(id -u "$user"), not the declared $want_uid; set serviceUser.uid to $(id -u "$user") or remove the key"
  fi
  if [ "$(getent passwd "$user" | cut -d: -f7)" != "$shell" ]; then
    usermod --shell "$shell" "$user"; changed "set the shell of $user to $shell"
  fi
else
  if [ -n "$want_uid" ] && getent passwd "$want_uid" >/dev/null; then
    die "uid $want_uid already belongs to $(getent passwd "$want_uid" | cut -d: -f1); choose another serviceUser.uid"
  fi
  useradd --create-home --user-group --shell "$shell" ${"$"}{want_uid:+--uid "$want_uid"} "$user"
  created=1; changed "created user $user"
fi
uid=$(id -u "$user"); group=$(id -gn "$user"); home=$(getent passwd "$user" | cut -d: -f6)
if [ ! -d "$home" ]; then
  install -d -m 0700 -o "$user" -g "$group" "$home"; changed "created home $home"
fi
# the home is the service user's alone (Debian's useradd makes it 0755): no other user, another
# tenant included, reads its files; changed as the user, so a link there leads nowhere of root's
# (the user's processes never get this step's stdout, which carries the uid and home report)
if [ "$(as_owner "$user" 'stat -c %a -- "$1"' hd "$home" 2>/dev/null)" != 700 ]; then
  as_owner "$user" 'chmod 0700 -- "$1"' hd "$home" >/dev/null 2>&1 || die "could not make $home private (0700)"
  changed "set $home to 0700 (no other user reads it)"
fi
if id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
  die "$user is in the docker group, which gives root on this host through the rootful socket; remove it (gpasswd -d $user docker) and apply again"
fi
# ranges of this user: by name or by numeric uid (both forms are valid in /etc/subuid)
ranges_of() { awk -F: -v u="$user" -v id="$uid" 'NF == 3 && ($1 == u || $1 == id)' "$1"; }
# ids_held DB START COUNT: the accounts of DB (passwd, group) other than $user whose own id lies
# in START..START+COUNT-1, as "name (id), name (id)"
ids_held() {
  getent "$1" | awk -F: -v u="$user" -v s="$2" -v c="$3" '$1 != u && $3 >= s && $3 < s + c { printf "%s%s (%s)", sep, $1, $3; sep = ", " }'
}
ensure_range() {
  local file=$1 n start count others db=passwd held holder own
  [ "$file" = /etc/subuid ] || db=group
  [ -f "$file" ] || { install -m 0644 /dev/null "$file"; changed "created $file"; }
  n=$(ranges_of "$file" | wc -l)
  if [ "$n" -gt 1 ]; then
    die "$user has $n ranges in $file, exactly one is needed; delete the extra lines by hand (keep the one its images were unpacked with)"
  fi
  if [ "$n" = 1 ]; then
    IFS=: read -r _ start count < <(ranges_of "$file")
    if [ "$created" = 1 ]; then
      # useradd's automatic range, seconds old: replaced when another start is declared, or
      # when it holds an account's id (useradd only avoids other ranges)
      if { [ -n "$want_start" ] && [ "$start" != "$want_start" ]; } || [ -n "$(ids_held "$db" "$start" "$count")" ]; then
        sed -i "/^$user:/d" "$file"; n=0
      fi
    elif [ -n "$want_start" ] && [ "$start" != "$want_start" ]; then
      die "$user already has the range $start:$count in $file, not the declared start $want_start; set serviceUser.subordinateIds.start to it or change the file by hand"
    fi
  fi
  if [ "$n" = 0 ]; then
    if [ -n "$want_start" ]; then start=$want_start
    else
      start=$(awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$file")
      # past every account's id in the way (an id in the range would be one of its container users)
      start=$(getent "$db" | awk -F: '{ print $3 }' | sort -n \
        | awk -v s="$start" -v c="$want_count" '$1 >= s && $1 < s + c { s = $1 + 1 } END { print s }')
    fi
    printf '%s:%s:%s\n' "$user" "$start" "$want_count" >>"$file"
    changed "added $user:$start:$want_count to $file"
  fi
  IFS=: read -r _ start count < <(ranges_of "$file")
  [ "$count" -ge "$want_count" ] || die "the range $start:$count in $file has fewer than $want_count ids; widen it by hand"
  others=$(awk -F: -v u="$user" -v id="$uid" -v s="$start" -v c="$count" \
    'NF == 3 && $1 != u && $1 != id && $2 < s + c && s < $2 + $3 { printf "%s ", $0 }' "$file")
  [ -z "$others" ] || die "the range $start:$count of $user in $file overlaps $others; give one of them another range"
  # no account's own id in it: a container user of $user mapped onto that id would be that account
  held=$(ids_held "$db" "$start" "$count")
  [ -z "$held" ] || die "the range $start:$count of $user in $file holds the $db id of $held: a container user of $user would be that account; give $user another range (serviceUser.subordinateIds.start) or that account another id"
  # nor its own id in another's range, for the same reason the other way round
  if [ "$db" = passwd ]; then own=$uid; else own=$(id -g "$user"); fi
  holder=$(awk -F: -v u="$user" -v id="$uid" -v o="$own" \
    'NF == 3 && $1 != u && $1 != id && $2 <= o && o < $2 + $3 { printf "%s%s", sep, $1; sep = ", " }' "$file")
  [ -z "$holder" ] || die "$user's id $own lies in the range of $holder in $file: a container user of $holder would be $user; give $user another id (serviceUser.uid) or $holder another range"
}
ensure_range /etc/subuid
ensure_range /etc/subgid
if [ -n "$record" ] && [ "$(head -n 1 -- "$record" 2>/dev/null || true)" != "$user" ]; then
  install -d -m 0700 -o root -g root "$(dirname "$record")"
  printf '%s\n' "$user" >"$record.tmp"; mv -f "$record.tmp" "$record"
  changed "recorded $user as this stack's service user in $record"
fi
printf 'uid=%s\nhome=%s\n' "$uid" "$home"`;
}

export function serviceUserDeleteScript(
  name: string,
  removeOnDestroy: boolean,
  record?: string,
): string {
  const forget =
    record === undefined
      ? ""
      : `\nrecord=${shellQuote(serviceUserRecordPath(record))}
if [ -f "$record" ]; then rm -f "$record"; changed "removed the record $record"; fi`;
  if (!removeOnDestroy) {
    return `note ${shellQuote(`kept user ${name}, its home and its Docker data (serviceUser.removeOnDestroy is false)`)}${forget}`;
  }
  return String.raw`
user=${shellQuote(name)}
if id -u "$user" >/dev/null 2>&1; then
  loginctl disable-linger "$user" 2>/dev/null || true
  loginctl terminate-user "$user" 2>/dev/null || true
  pkill -KILL -u "$user" 2>/dev/null || true
  userdel --remove "$user" 2>/dev/null || userdel "$user"
  changed "removed user $user and its home"
fi
for f in /etc/subuid /etc/subgid; do
  if [ -f "$f" ] && grep -q "^$user:" "$f"; then sed -i "/^$user:/d" "$f"; changed "removed the range of $user from $f"; fi
done${forget}`;
}

export function lingerCreateScript(name: string, timeoutSeconds: number): string {
  return String.raw`
user=${shellQuote(name)}
uid=$(id -u "$user") || die "user $user does not exist"
if [ ! -e "/var/lib/systemd/linger/$user" ]; then
  loginctl enable-linger "$user"; changed "enabled linger for $user"
fi
# "activating" lasts seconds on a slow host: wait for active, not for the bus socket
wait_until ${timeoutSeconds} "user@$uid.service to be active" systemctl is-active --quiet "user@$uid.service"
wait_until 30 "/run/user/$uid" test -d "/run/user/$uid"`;
}

export function lingerDeleteScript(name: string): string {
  return String.raw`
user=${shellQuote(name)}
if [ -e "/var/lib/systemd/linger/$user" ]; then
  loginctl disable-linger "$user"; changed "disabled linger for $user"
fi`;
}

/**
 * Writes the service user's authorized_keys (stdin), ~/.ssh 0700 and the file 0600, AS the
 * user (write_user_file): whatever it planted in its home (symlinks, a swapped temp file)
 * leads only where it could write itself.
 */
export function deployKeysCreateScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
home=$(getent passwd "$user" | cut -d: -f6)
[ -d "$home" ] || die "home of $user not found"
case "$(as_owner "$user" 'mkdir -p -m 0700 -- "$1" && if [ "$(stat -c %a -- "$1")" != 700 ]; then chmod 0700 -- "$1" && echo fixed; fi' hd "$home/.ssh")" in
  fixed) changed "set $home/.ssh to 0700" ;;
esac
write_user_file "$user" "$home/.ssh/authorized_keys" 0600`;
}

/** Removes the authorized_keys file the create script wrote (the user may stay). */
export function deployKeysDeleteScript(user: string): string {
  return String.raw`
user=${shellQuote(user)}
home=$(getent passwd "$user" | cut -d: -f6) || { note "user $user is gone"; exit 0; }
removed=$(remove_user_file "$user" "$home/.ssh/authorized_keys" ${shellQuote(AUTHORIZED_KEYS_HEADER)})
if [ "$removed" = removed ]; then
  changed "removed the deploy keys of $user"
fi`;
}
