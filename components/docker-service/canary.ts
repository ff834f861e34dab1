import { createHash } from "node:crypto";
import { ROLE_LABEL, SPEC_LABEL } from "../core/labels";
import { shellQuote } from "../core/shell";
/** The canary's own role label value: not the proxy, not Traefik, whatever it mounts. */
export const CANARY_ROLE = "canary";

/** A library container's spec, resolved: what the canary runs (and the spec hash covers). */
export interface CanarySpec {
  /** Role label value of the container the canary stands for (`socket-proxy`, `traefik`). */
  readonly role: string;
  /** The service user whose rootless daemon runs the container. */
  readonly user: string;
  /** The running container's name (the one to keep serving when the canary fails). */
  readonly containerName: string;
  /** Image reference or id. */
  readonly image: string;
  readonly containerUser?: string;
  readonly entrypoint?: readonly string[];
  readonly command?: readonly string[];
  /** `NAME=value` (values may span lines). */
  readonly env?: readonly string[];
  readonly tmpfs?: Readonly<Record<string, string>>;
  readonly mounts?: readonly {
    readonly source: string;
    readonly target: string;
    readonly readOnly: boolean;
  }[];
  /**
   * The container's lockdown, reproduced by the canary (all but the restart policy: a canary
   * is never restarted) and covered by the hash.
   */
  readonly lockdown: {
    readonly readOnly: boolean;
    readonly capabilities: { readonly drops: readonly string[] };
    readonly securityOpts: readonly string[];
    readonly restart: string;
  };
  readonly cpus: string;
  readonly memoryMiB: number;
  /** The health check in exec form, without the leading `CMD`. */
  readonly health: readonly string[];
  /** The health check's own timeout: one check that takes longer fails, as in Docker. */
  readonly healthTimeoutSeconds: number;
  /** How long the canary gets to pass its health check. */
  readonly timeoutSeconds: number;
  /**
   * What the canary does not reproduce (published ports, networks, labels) but the hash must
   * still cover: a change of it replaces the container, and the canary then runs for it too.
   */
  readonly rest?: unknown;
}

/**
 * sha256 (first 16 hex digits) of the container's spec: everything in `spec` but where the
 * canary runs (`user`) and for how long (`timeoutSeconds`).
 */
export function specHash(spec: CanarySpec): string {
  const covered = { ...spec, timeoutSeconds: undefined, user: undefined };
  return createHash("sha256").update(JSON.stringify(covered)).digest("hex").slice(0, 16);
}

/**
 * The canary step's script (run as root, with the prelude). A library container with a fixed
 * name must go before its replacement can start, so a replacement that never turns healthy
 * would leave the host without it. Before Pulumi replaces it, this script runs the new spec
 * once, as the service user, under another name and with no network, and waits until the
 * container's own health check (run with `docker exec`) passes:
 *
 * - healthy: the canary is removed and the replacement goes ahead;
 * - exited or still unhealthy after `timeoutSeconds`: the canary is removed, the step fails
 *   with the container's exit status and last log lines, and the running container is left as
 *   it was (Pulumi stops before the replace);
 * - nothing to protect (no running container of that name) or the running one already carries
 *   this spec's hash: nothing runs ("no change").
 *
 * A canary left behind by an interrupted run is removed first, whatever follows; one started
 * by this run is removed on every way out (the EXIT trap). Every docker call has a time limit.
 *
 * Not reproduced: published ports and networks (a port taken by something else, or a network
 * problem, still shows only when the real container starts) and labels.
 */
export function canaryCreateScript(spec: CanarySpec): string {
  const hash = specHash(spec);
  const canary = `${spec.containerName}-canary`;
  const envNames = (spec.env ?? []).map((e) => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e));
  for (const n of envNames)
    if (/^(DOCKER_.*|PATH|HOME|XDG_.*|LD_.*|BASH_ENV|ENV)$/.test(n))
      throw new Error(`canary: the container variable ${n} would change the docker CLI itself`);
  for (const m of spec.mounts ?? [])
    if (/[,"]/.test(m.source + m.target))
      throw new Error(
        `canary: a bind mount path with a comma or quote (${m.source}) cannot be given to --mount`,
      );
  const run: string[] = [
    "docker",
    "run",
    "-d",
    "--name",
    canary,
    "--network",
    "none",
    "--label",
    `${ROLE_LABEL}=${CANARY_ROLE}`,
    ...(spec.lockdown.readOnly ? ["--read-only"] : []),
    ...spec.lockdown.capabilities.drops.flatMap((c) => ["--cap-drop", c]),
    ...spec.lockdown.securityOpts.flatMap((o) => ["--security-opt", o]),
    "--cpus",
    spec.cpus,
    "--memory",
    `${spec.memoryMiB}m`,
    "--memory-swap",
    `${spec.memoryMiB}m`,
    ...(spec.containerUser ? ["--user", spec.containerUser] : []),
    ...Object.entries(spec.tmpfs ?? {}).flatMap(([path, opts]) => [
      "--tmpfs",
      opts ? `${path}:${opts}` : path,
    ]),
    ...(spec.mounts ?? []).flatMap((m) => [
      "--mount",
      `type=bind,source=${m.source},target=${m.target}${m.readOnly ? ",readonly" : ""}`,
    ]),
    ...envNames.flatMap((n) => ["-e", n]),
    ...(spec.entrypoint?.length ? ["--entrypoint", spec.entrypoint[0]] : []),
    spec.image,
    ...(spec.entrypoint ?? []).slice(1),
    ...(spec.command ?? []),
  ];
  // env values (multi-line: haproxy's config) reach docker run through its environment
  const q = (words: readonly string[]) => words.map(shellQuote).join(" ");
  const envPrefix = spec.env?.length ? `env ${q(spec.env)} ` : "";
  return String.raw`${canaryFunctions(spec.user, spec.containerName)}
name=${shellQuote(spec.containerName)}
want=${shellQuote(hash)} role=${shellQuote(spec.role)} limit=${spec.timeoutSeconds}
remove_leftover
running=$(dk container inspect -f '{{.State.Running}} {{index .Config.Labels "${SPEC_LABEL}"}}' "$name" 2>&1) || {
  case $running in
    *"No such container"*) note "no container $name to keep serving: the new one is waited on as it starts"; exit 0 ;;
    *) die "could not inspect $name: $(printf '%s\n' "$running" | clean 3)" ;;
  esac
}
case $running in
  "true $want") exit 0 ;;
  true\ *) ;;
  *) note "$name is not running: nothing to keep serving, the new one is waited on as it starts"; exit 0 ;;
esac
t0=$(date +%s)
# from here on, whatever happens, the canary is removed on the way out
started=1 hd_rc=0
trap 'hd_rc=$?; remove_canary; (exit "$hd_rc"); hd_exit' EXIT
out=$(as_user "$u" timeout -k 5 120 ${envPrefix}${q(run)} 2>&1) \
  || die "could not start a canary of the new $role: $(printf '%s\n' "$out" | clean 5); $name was left running as it was"
healthy=0 state=""
while :; do
  state=$(dk container inspect -f '{{.State.Status}} (exit code {{.State.ExitCode}})' "$canary" 2>&1 | clean 1) || state="gone"
  case $state in running*) ;; *) break ;; esac
  if as_user "$u" timeout -k 5 ${spec.healthTimeoutSeconds} docker exec "$canary" ${q(spec.health)} >/dev/null 2>&1; then
    healthy=1; break
  fi
  [ $(($(date +%s) - t0)) -lt "$limit" ] || break
  sleep 2
done
secs=$(($(date +%s) - t0))
if [ "$healthy" != 1 ]; then
  logs=$(dk logs --tail 12 "$canary" 2>&1 | clean 12) || true
  die "the new $role container did not pass its health check within $limit s (after $secs s: $state); $name was left running as it was. Its last log lines:
$logs"
fi
remove_canary
changed "a canary of the new $role passed its health check in $secs s: $name is replaced next"`;
}

/**
 * Shell functions of both canary scripts: `dk` (docker as the service user, 60 s at most per
 * call: the daemon is the service user's, and a stuck one must not hang the up), `clean`
 * (printable ASCII only, at most 4 KiB and N lines of 300 characters: what the daemon prints
 * is the service user's), `remove_canary` and `remove_leftover` (only a container of that name
 * that carries the canary label: an operator's own container of that name is refused, never
 * removed).
 */
function canaryFunctions(user: string, containerName: string): string {
  return String.raw`u=${shellQuote(user)} canary=${shellQuote(`${containerName}-canary`)}
started=0
dk() { as_user "$u" timeout -k 5 60 docker "$@"; }
clean() { head -c 4096 | tr -cd '\11\12\40-\176' | tail -n "$1" | cut -c1-300; }
remove_canary() {
  if [ "$started" = 1 ]; then dk rm -f "$canary" >/dev/null 2>&1 || true; started=0; fi
}
remove_leftover() {
  local label
  if label=$(dk container inspect -f '{{index .Config.Labels "${ROLE_LABEL}"}}' "$canary" 2>/dev/null); then
    [ "$label" = ${CANARY_ROLE} ] \
      || die "a container named $canary exists and is not a hardened-docker canary: rename or remove it"
    dk rm -f "$canary" >/dev/null 2>&1 || die "could not remove $canary, left by an interrupted run"
    changed "removed $canary, left by an interrupted run"
  fi
}`;
}

/**
 * The canary step's delete: a canary left by an interrupted run (it mounts what the container
 * mounts) goes with the step. A daemon that does not answer leaves nothing to remove.
 */
export function canaryDeleteScript(user: string, containerName: string): string {
  return `${canaryFunctions(user, containerName)}
if id -u "$u" >/dev/null 2>&1; then remove_leftover; fi`;
}
