import { DockerApiSettings, resolveDockerApiSettings } from "../service-user/args";
import type { DaemonConfig } from "../rootless-docker/daemon-json";
import { PortDriver } from "../rootless-docker/unit";
import {
  ResolvedServiceUser,
  ServiceUserSettings,
  checkNotLoginUser,
  resolveServiceUser,
} from "../service-user/args";
import { SocketProxySettings, resolveSocketProxy } from "../socket-proxy/args";
import { SliceLimits } from "../systemd-unit/slice-limits";
import { TraefikSettings, resolveTraefik } from "../traefik/args";
import {
  InvalidArgument,
  checkArray,
  checkInteger,
  checkKnownKeys,
  checkPlainObject,
} from "../core/validate";
import { AppServiceArgs, checkAppService } from "../app-service/args";
import { checkSliceLimits } from "../systemd-unit/slice-limits";
import { keysOf } from "../core/keys";

/** Host ports a tenant's containers may publish (both ends included). */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * A further tenant of a host: its own service user (own subordinate ids and deploy keys),
 * rootless daemon, app services, socket proxy and Traefik. The host-wide steps (packages, the
 * rootful daemon off, cgroup delegation, sysctl, kernel modules) run once, with the first
 * tenant (the host's own `serviceUser`).
 */
export interface TenantArgs {
  readonly serviceUser: ServiceUserSettings;
  /** Keys of this tenant's daemon.json, merged over the defaults. @default the defaults */
  readonly daemonConfig?: DaemonConfig;
  /** @default "slirp4netns" */
  readonly portDriver?: PortDriver;
  /** Its app services (unit names are host-wide: unique across tenants). @default none */
  readonly services?: readonly AppServiceArgs[];
  /** @default not deployed */
  readonly socketProxy?: SocketProxySettings;
  /** @default not deployed */
  readonly traefik?: TraefikSettings;
  /** @default the SSH agent */
  readonly dockerApi?: DockerApiSettings;
  /** Limits of its `user-<uid>.slice`: its daemon and every container. @default none */
  readonly limits?: SliceLimits;
  /** Host ports its containers may publish; ranges of tenants never overlap. @default any */
  readonly ports?: PortRange;
}

/** Keys of one `TenantArgs` (stack config's tenants entries derive theirs from it). */
export const TENANT_KEYS = keysOf<TenantArgs>()({
  serviceUser: true,
  daemonConfig: true,
  portDriver: true,
  services: true,
  socketProxy: true,
  traefik: true,
  dockerApi: true,
  limits: true,
  ports: true,
});

/** What the checks across tenants need of one tenant. */
interface CheckedTenant {
  /** "" for the host's own service user, else `tenants[<i>].` */
  readonly field: string;
  readonly user: ResolvedServiceUser;
  readonly ports?: PortRange;
  /** Host ports its Traefik publishes. */
  readonly traefikPorts: readonly number[];
}

/** Validates a `PortRange` under `field`. */
export function checkPortRange(field: string, value: unknown): PortRange {
  const r = checkPlainObject(field, value);
  checkKnownKeys(field, r, keysOf<PortRange>()({ from: true, to: true }));
  const from = checkInteger(`${field}.from`, r.from, 1, 65535);
  const to = checkInteger(`${field}.to`, r.to, 1, 65535);
  if (to < from) throw new InvalidArgument(`${field}.to`, to, `a port >= from (${from})`);
  return { from, to };
}

/** One tenant's own checks (the host's own service user has `field` ""). */
export function checkTenant(
  field: string,
  t: TenantArgs,
  { loginUser, requireDeployKeys }: DeclarationChecks,
  unprivilegedPortStart: number | undefined,
  serviceNames: Set<string>,
): CheckedTenant {
  const user = resolveServiceUser(t.serviceUser, `${field}serviceUser`);
  if (loginUser !== undefined) checkNotLoginUser(`${field}serviceUser.name`, user.name, loginUser);
  resolveDockerApiSettings(t.dockerApi ?? {}, `${field}dockerApi`);
  const proxy =
    t.socketProxy === undefined
      ? undefined
      : resolveSocketProxy(t.socketProxy, `${field}socketProxy`);
  if (proxy?.enabled && requireDeployKeys !== false && user.deployKeys === undefined) {
    throw new InvalidArgument(
      `${field}serviceUser.deployKeys`,
      undefined,
      "at least one public key when socketProxy is deployed",
      "The Docker provider reaches the rootless daemon as the service user over SSH with a restricted deploy key: add its .pub line (stack key deployKeys) and load the private key into ssh-agent.",
    );
  }
  const ports = t.ports === undefined ? undefined : checkPortRange(`${field}ports`, t.ports);
  if (t.limits !== undefined) checkSliceLimits(`${field}limits`, t.limits);
  let traefikPorts: number[] = [];
  if (t.traefik !== undefined) {
    const traefik = resolveTraefik(t.traefik, unprivilegedPortStart, `${field}traefik`);
    if (traefik.enabled && !proxy?.enabled) {
      throw new InvalidArgument(
        `${field}traefik`,
        "enabled",
        "deployed only together with socketProxy (Traefik reaches Docker through it, never the socket)",
        "Add a socketProxy block (stack key socketProxy: {}) or set traefik.enabled: false.",
      );
    }
    if (traefik.enabled) traefikPorts = [traefik.httpPort, traefik.httpsPort];
    for (const [key, port] of [
      ["httpPort", traefik.httpPort],
      ["httpsPort", traefik.httpsPort],
    ] as const)
      if (traefik.enabled && ports && (port < ports.from || port > ports.to))
        throw new InvalidArgument(
          `${field}traefik.${key}`,
          port,
          `a port in ${field}ports (${ports.from}-${ports.to})`,
        );
  }
  checkArray(`${field}services`, t.services ?? []).forEach((raw, i) =>
    checkAppService(`${field}services[${i}]`, raw, user, serviceNames),
  );
  return { field, user, ports, traefikPorts };
}

/** Tenants share a host: names, ids, keys and ports must not collide. */
export function checkAcrossTenants(tenants: readonly CheckedTenant[]): void {
  const overlap = (a: [number, number], b: [number, number]) => a[0] <= b[1] && b[0] <= a[1];
  /** A declared subordinate range, first and last id; undefined when the host picks it. */
  const rangeOf = ({ user }: CheckedTenant): [number, number] | undefined =>
    user.subordinateIdStart === undefined
      ? undefined
      : [user.subordinateIdStart, user.subordinateIdStart + user.subordinateIdCount - 1];
  const keyOwner = new Map<string, string>();
  tenants.forEach((t, i) => {
    const f = t.field;
    for (const o of tenants.slice(0, i)) {
      const other = `${o.field || "the host's "}serviceUser (${o.user.name})`;
      if (t.user.name === o.user.name)
        throw new InvalidArgument(
          `${f}serviceUser.name`,
          t.user.name,
          "a name no other tenant has",
        );
      if (t.user.uid !== undefined && t.user.uid === o.user.uid)
        throw new InvalidArgument(`${f}serviceUser.uid`, t.user.uid, `a uid other than ${other}'s`);
      const mine = rangeOf(t);
      const theirs = rangeOf(o);
      if (mine && theirs && overlap(mine, theirs))
        throw new InvalidArgument(
          `${f}serviceUser.subordinateIds`,
          `${mine[0]}-${mine[1]}`,
          `a range that does not overlap ${other}'s (${theirs[0]}-${theirs[1]})`,
          "Overlapping ranges map one tenant's container users onto the other's files.",
        );
      // a uid inside another's subordinate range: that one's container users would be it
      if (theirs && t.user.uid !== undefined && overlap(theirs, [t.user.uid, t.user.uid]))
        throw new InvalidArgument(
          `${f}serviceUser.uid`,
          t.user.uid,
          `a uid outside ${other}'s subordinate range (${theirs[0]}-${theirs[1]})`,
          "A uid inside it makes one of the other's container users this user.",
        );
      if (mine && o.user.uid !== undefined && overlap(mine, [o.user.uid, o.user.uid]))
        throw new InvalidArgument(
          `${f}serviceUser.subordinateIds`,
          `${mine[0]}-${mine[1]}`,
          `a range that does not hold ${other}'s uid (${o.user.uid})`,
          "A range holding it makes one of this tenant's container users the other.",
        );
      if (t.ports && o.ports && overlap([t.ports.from, t.ports.to], [o.ports.from, o.ports.to]))
        throw new InvalidArgument(
          `${f}ports`,
          `${t.ports.from}-${t.ports.to}`,
          `a range that does not overlap ${o.field || "the host's "}ports (${o.ports.from}-${o.ports.to})`,
        );
      for (const port of t.traefikPorts)
        if (o.traefikPorts.includes(port))
          throw new InvalidArgument(
            `${f}traefik`,
            port,
            `host ports other than those of ${o.field || "the host's "}traefik (${o.traefikPorts.join(", ")})`,
          );
    }
    (t.user.deployKeys ?? []).forEach((key, j) => {
      const blob = key.split(/\s+/)[1];
      const owner = keyOwner.get(blob);
      if (owner !== undefined && owner !== t.user.name)
        throw new InvalidArgument(
          `${f}serviceUser.deployKeys[${j}]`,
          key,
          `a key no other tenant has (${owner} has it)`,
          "One key in two tenants' authorized_keys opens both daemons.",
        );
      keyOwner.set(blob, t.user.name);
    });
  });
}

/** Options of `validateHostDeclaration`. */
export interface DeclarationChecks {
  /** The SSH login user, which no service user may be; unchecked when undefined. */
  readonly loginUser?: string;
  /**
   * A deployed proxy needs a deploy key (the Docker provider's way in). `verify` does not: it
   * reads the host with the admin login, and its `--host` mode declares no keys.
   * @default true
   */
  readonly requireDeployKeys?: boolean;
}
