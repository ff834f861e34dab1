import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { ConnectionArgs, resolveConnection, sshReadinessGate } from "../core/connection";
import {
  DockerApiSettings,
  dockerApiProvider,
  resolveDockerApiSettings,
} from "../service-user/docker-api";
import { EnvironmentFile } from "../app-service/environment-file";
import { Linger } from "../linger/linger";
import type { DaemonConfig } from "../rootless-docker/daemon-json";
import { hardeningPreset } from "../systemd-unit/hardening";
import { PortDriver, rootlessDockerSocket, userRuntimeDir } from "../rootless-docker/unit";
import { UnitFileSections, UnitSection } from "../systemd-unit/render";
import {
  DockerSettings,
  RootlessDocker,
  RootlessDockerArgs,
  resolveDockerSettings,
} from "../rootless-docker/rootless-docker";
import {
  ResolvedServiceUser,
  ServiceUser,
  ServiceUserSettings,
  checkNotLoginUser,
  resolveServiceUser,
} from "../service-user/service-user";
import { SocketProxy, SocketProxySettings, resolveSocketProxy } from "../socket-proxy/socket-proxy";
import { SystemdUnit } from "../systemd-unit/systemd-unit";
import { foreignUnitsPreflight } from "../systemd-unit/script";
import {
  SliceLimits,
  renderSliceLimits,
  sliceLimitsCreateScript,
  sliceLimitsDeleteScript,
} from "../systemd-unit/slice-limits";
import { hostCommand } from "../core/host-command";
import { Traefik, TraefikSettings, resolveTraefik } from "../traefik/traefik";
import {
  InvalidArgument,
  checkAbsolutePath,
  checkArray,
  checkCommandLine,
  checkEnvKey,
  checkInteger,
  checkKnownKeys,
  checkLine,
  checkOneOf,
  checkPlainObject,
  checkServiceName,
  checkUnitName,
  rethrowAsResourceError,
  secretLineProblem,
} from "../core/validate";

export const HARDENED_DOCKER_HOST_TYPE = "hardened-docker:index:HardenedDockerHost";

/** An application service that drives the service user's rootless Docker daemon. */
export interface AppServiceArgs {
  /** Short name; the unit is `<name>.service`. */
  readonly name: string;
  /** @default "<name> (hardened-docker app service)" */
  readonly description?: string;
  /** Command line; the first word is an absolute path. */
  readonly execStart: string;
  /** @default the service user's home (read-only under the hardening preset) */
  readonly workingDirectory?: string;
  /**
   * Variables written to /etc/hardened-docker/<name>.env (0600 root:root: systemd reads it as
   * root, the service user never can), values
   * may be secrets. `DOCKER_HOST` and `XDG_RUNTIME_DIR` are set for you and cannot be
   * overridden here (so the app cannot be pointed at a root socket by accident).
   * @default none
   */
  readonly environment?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Paths the app may write to (everything else is read-only). @default none */
  readonly readWritePaths?: readonly string[];
  /** Extra units to order after (and want). @default network-online.target only */
  readonly after?: readonly string[];
  /** @default "always" */
  readonly restart?: "always" | "on-failure" | "on-abnormal" | "no";
}

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

export interface HardenedDockerHostArgs {
  readonly connection: ConnectionArgs;
  readonly serviceUser: ServiceUserSettings;
  /** @default distro packages, slirp4netns port driver, rootful daemon disabled */
  readonly docker?: DockerSettings;
  /** @default none */
  readonly services?: readonly AppServiceArgs[];
  /**
   * The socket proxy (deny-by-default haproxy in front of the rootless socket). Deployed
   * through the Docker provider, which needs `serviceUser.deployKeys`.
   * @default not deployed
   */
  readonly socketProxy?: SocketProxySettings;
  /** Traefik wired to the socket proxy (needs `socketProxy`). @default not deployed */
  readonly traefik?: TraefikSettings;
  /** How the Docker provider authenticates as the service user. @default the SSH agent */
  readonly dockerApi?: DockerApiSettings;
  /**
   * Limits of the service user's `user-<uid>.slice` (its daemon and every container; its app
   * services run in `system.slice`). @default none
   */
  readonly limits?: SliceLimits;
  /** Host ports the service user's containers may publish. @default any */
  readonly ports?: PortRange;
  /**
   * Further tenants, each with its own service user and rootless daemon (see `TenantArgs`).
   * Removing one removes only its steps. @default none
   */
  readonly tenants?: readonly TenantArgs[];
}

const RESERVED_ENV = ["DOCKER_HOST", "XDG_RUNTIME_DIR"];
/**
 * Units an app service must never be named after (its unit would replace the host's own).
 * Any other existing unit that hardened-docker did not write is refused at apply time.
 */
export const SYSTEM_UNITS = [
  "docker",
  "containerd",
  "ssh",
  "sshd",
  "dbus",
  "cron",
  "systemd-journald",
  "systemd-logind",
  "systemd-networkd",
  "systemd-resolved",
  "systemd-timesyncd",
  "systemd-udevd",
  "getty",
  "user",
  "user-runtime-dir",
  "networking",
  "NetworkManager",
  "rsyslog",
  "polkit",
  "udev",
  "apparmor",
  "ufw",
  "nftables",
  "fail2ban",
  "unattended-upgrades",
  "snapd",
  "chrony",
];
const SERVICE_KEYS = [
  "name",
  "description",
  "execStart",
  "workingDirectory",
  "environment",
  "readWritePaths",
  "after",
  "restart",
];

/** Keys of one `TenantArgs` (stack config's tenants entries derive theirs from it). */
export const TENANT_KEYS = [
  "serviceUser",
  "daemonConfig",
  "portDriver",
  "services",
  "socketProxy",
  "traefik",
  "dockerApi",
  "limits",
  "ports",
] as const satisfies readonly (keyof TenantArgs)[];

/** What the checks across tenants need of one tenant. */
interface CheckedTenant {
  /** "" for the host's own service user, else `tenants[<i>].` */
  readonly field: string;
  readonly user: ResolvedServiceUser;
  readonly ports?: PortRange;
  /** Host ports its Traefik publishes. */
  readonly traefikPorts: readonly number[];
}

/** Validates `SliceLimits` under `field`. */
export function checkSliceLimits(field: string, value: unknown): SliceLimits {
  const l = checkPlainObject(field, value);
  checkKnownKeys(field, l, ["cpuPercent", "memoryMiB", "tasks"]);
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

/** Validates a `PortRange` under `field`. */
export function checkPortRange(field: string, value: unknown): PortRange {
  const r = checkPlainObject(field, value);
  checkKnownKeys(field, r, ["from", "to"]);
  const from = checkInteger(`${field}.from`, r.from, 1, 65535);
  const to = checkInteger(`${field}.to`, r.to, 1, 65535);
  if (to < from) throw new InvalidArgument(`${field}.to`, to, `a port >= from (${from})`);
  return { from, to };
}

/** One tenant's own checks (the host's own service user has `field` ""). */
function checkTenant(
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
  checkArray(`${field}services`, t.services ?? []).forEach((raw, i) => {
    const f = `${field}services[${i}]`;
    const svc = checkPlainObject(f, raw) as unknown as AppServiceArgs;
    checkKnownKeys(f, svc as unknown as Record<string, unknown>, SERVICE_KEYS);
    const name = checkServiceName(`${f}.name`, svc.name);
    if (serviceNames.has(name))
      throw new InvalidArgument(
        `${f}.name`,
        name,
        "a name no other service uses (unit names are host-wide, across tenants)",
      );
    if (SYSTEM_UNITS.includes(name))
      throw new InvalidArgument(
        `${f}.name`,
        name,
        "a name that is not one of the host's own units (docker, containerd, ssh, cron, ...)",
        `${name}.service would replace it. Name the unit after your app; an existing unit of that name that hardened-docker did not write is also refused on the host.`,
      );
    serviceNames.add(name);
    if (svc.description !== undefined) checkLine(`${f}.description`, svc.description);
    checkCommandLine(`${f}.execStart`, svc.execStart);
    if (svc.workingDirectory !== undefined)
      checkAbsolutePath(`${f}.workingDirectory`, svc.workingDirectory);
    for (const key of Object.keys(checkPlainObject(`${f}.environment`, svc.environment ?? {}))) {
      checkEnvKey(`${f}.environment.${key}`, key);
      if (RESERVED_ENV.includes(key)) {
        throw new InvalidArgument(
          `${f}.environment.${key}`,
          key,
          `a variable other than ${RESERVED_ENV.join(" and ")}`,
          `hardened-docker sets it to ${user.name}'s rootless daemon; remove it.`,
        );
      }
    }
    checkArray(`${f}.readWritePaths`, svc.readWritePaths ?? []).forEach((p, j) =>
      checkAbsolutePath(`${f}.readWritePaths[${j}]`, p),
    );
    checkArray(`${f}.after`, svc.after ?? []).forEach((u, j) =>
      checkUnitName(`${f}.after[${j}]`, u),
    );
    if (svc.restart !== undefined)
      checkOneOf(`${f}.restart`, svc.restart, [
        "always",
        "on-failure",
        "on-abnormal",
        "no",
      ] as const);
  });
  return { field, user, ports, traefikPorts };
}

/** Tenants share a host: names, ids, keys and ports must not collide. */
function checkAcrossTenants(tenants: readonly CheckedTenant[]): void {
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

/** Validates everything a host's args hold; throws `InvalidArgument` naming the field. */
export function validateHardenedDockerHostArgs(args: HardenedDockerHostArgs): void {
  checkPlainObject("args", args);
  const conn = resolveConnection(args.connection);
  validateHostDeclaration(args, { loginUser: conn.user });
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

/**
 * Validates what a host's args declare, the connection aside (`verify` checks a stack's
 * declaration with these same rules): each service user, service, proxy, Traefik, limits and
 * ports, and across tenants (names, uids, subordinate ranges, deploy keys, port ranges,
 * Traefik's host ports, service names).
 */
export function validateHostDeclaration(
  args: Omit<HardenedDockerHostArgs, "connection"> & { readonly connection?: unknown },
  checks: DeclarationChecks = {},
): void {
  const { loginUser, requireDeployKeys = true } = checks;
  const a = checkPlainObject("args", args);
  checkKnownKeys("args", a, [
    "connection",
    "serviceUser",
    "docker",
    "services",
    "socketProxy",
    "traefik",
    "dockerApi",
    "limits",
    "ports",
    "tenants",
  ]);
  const dockerSettings = resolveDockerSettings(args.docker ?? {});
  const serviceNames = new Set<string>();
  const checked = [
    checkTenant(
      "",
      { ...args, daemonConfig: undefined },
      { loginUser, requireDeployKeys },
      dockerSettings.unprivilegedPortStart,
      serviceNames,
    ),
  ];
  checkArray("tenants", args.tenants ?? []).forEach((raw, i) => {
    const f = `tenants[${i}]`;
    const t = checkPlainObject(f, raw) as unknown as TenantArgs;
    checkKnownKeys(f, t as unknown as Record<string, unknown>, TENANT_KEYS);
    resolveDockerSettings({ daemonConfig: t.daemonConfig, portDriver: t.portDriver }, f);
    checked.push(
      checkTenant(
        `${f}.`,
        t,
        { loginUser, requireDeployKeys },
        dockerSettings.unprivilegedPortStart,
        serviceNames,
      ),
    );
  });
  checkAcrossTenants(checked);
}

/**
 * Checks one environment value (possibly a secret, known only at run time). Returns the error
 * message, which never contains the value, or undefined when it is valid.
 */
export function environmentValueProblem(
  service: string,
  key: string,
  value: unknown,
): string | undefined {
  return secretLineProblem(`services(${service}).environment.${key}`, value);
}

/** Path of a service's EnvironmentFile on the host. */
export function environmentFilePath(serviceName: string): string {
  return `/etc/hardened-docker/${serviceName}.env`;
}

/**
 * The unit of an app service: runs as the service user, points `DOCKER_HOST` at its rootless
 * daemon, waits for that socket, and gets the hardening preset.
 */
export function appServiceUnit(
  svc: AppServiceArgs,
  user: string,
  uid: number,
  home: string,
): UnitFileSections {
  const after = ["network-online.target", ...(svc.after ?? [])];
  const runtimeDir = userRuntimeDir(uid);
  const socket = rootlessDockerSocket(uid);
  const service: Record<string, UnitSection[string]> = {
    Type: "simple",
    User: user,
    Group: user,
    WorkingDirectory: svc.workingDirectory ?? home,
    Environment: [`DOCKER_HOST=unix://${socket}`, `XDG_RUNTIME_DIR=${runtimeDir}`],
  };
  if (svc.environment && Object.keys(svc.environment).length > 0)
    service.EnvironmentFile = environmentFilePath(svc.name);
  // After a reboot the user's daemon starts in parallel: wait for its socket, not a fixed time.
  service.ExecStartPre = `/usr/bin/timeout 120 /bin/sh -c 'until [ -S ${socket} ]; do sleep 1; done'`;
  service.ExecStart = svc.execStart;
  service.Restart = svc.restart ?? "always";
  service.RestartSec = 5;
  Object.assign(service, hardeningPreset(svc.readWritePaths ?? []));
  return {
    Unit: {
      Description: svc.description ?? `${svc.name} (hardened-docker app service)`,
      After: after.join(" "),
      Wants: after.join(" "),
      // Restart=always must never give up after a burst of failures (e.g. during a reboot)
      StartLimitIntervalSec: 0,
    },
    Service: service,
    Install: { WantedBy: "multi-user.target" },
  };
}

export const TENANT_TYPE = "hardened-docker:host:Tenant";

/** What one tenant consists of on the host (the host's own service user's, or a `Tenant`'s). */
export interface TenantResources {
  readonly serviceUserName: string;
  readonly uid: pulumi.Output<number>;
  /** `unix:///run/user/<uid>/docker.sock` */
  readonly dockerHost: pulumi.Output<string>;
  readonly serviceUser: ServiceUser;
  readonly linger: Linger;
  readonly docker: RootlessDocker;
  readonly services: readonly SystemdUnit[];
  /** The slice limits step, when `limits` is set. */
  readonly limits?: command.remote.Command;
  /** The Docker provider for this tenant's rootless daemon (when a proxy is deployed). */
  readonly dockerProvider?: docker.Provider;
  readonly socketProxy?: SocketProxy;
  readonly traefik?: Traefik;
  /** `tcp://socket-proxy:2375` on the proxy's internal network, when deployed. */
  readonly proxyEndpoint?: pulumi.Output<string>;
}

/** Where a tenant's resources go, and what of the host they share. */
export interface TenantPlacement {
  readonly parent: pulumi.Resource;
  /** Prefix of every resource name. */
  readonly prefix: string;
  readonly connection: ConnectionArgs;
  /** What the service user step waits for. */
  readonly after: readonly pulumi.Resource[];
  /** Its `RootlessDocker` settings: the host's install method, its own daemon settings. */
  readonly docker: DockerSettings & Pick<RootlessDockerArgs, "hostWide" | "extraKernelModules">;
}

function buildTenant(t: TenantArgs, p: TenantPlacement): TenantResources {
  const { parent, prefix: name, connection } = p;
  const conn = resolveConnection(connection);
  const serviceUser = new ServiceUser(
    `${name}-service-user`,
    { connection, ...t.serviceUser },
    { parent, dependsOn: [...p.after] },
  );
  const user = serviceUser.userName;
  const uid = serviceUser.uid;
  const linger = new Linger(
    `${name}-linger`,
    { connection, user },
    { parent, dependsOn: [serviceUser] },
  );
  const limits = t.limits
    ? hostCommand(
        `${name}-limits`,
        conn,
        {
          step: "slice limits",
          create: sliceLimitsCreateScript(user, t.limits),
          delete: sliceLimitsDeleteScript(user),
          stdin: renderSliceLimits(t.limits),
        },
        { parent, dependsOn: [linger] },
      )
    : undefined;
  const rootless = new RootlessDocker(
    `${name}-docker`,
    { connection, user, uid, ...p.docker },
    { parent, dependsOn: [linger] },
  );
  const services = (t.services ?? []).map((svc) => {
    const unitName = `${svc.name}.service`;
    const deps: pulumi.Resource[] = [rootless];
    if (svc.environment && Object.keys(svc.environment).length > 0) {
      deps.push(
        new EnvironmentFile(
          `${name}-${svc.name}-env`,
          {
            connection,
            path: environmentFilePath(svc.name),
            values: svc.environment,
            restartUnit: unitName,
          },
          { parent, dependsOn: [rootless] },
        ),
      );
    }
    return new SystemdUnit(
      `${name}-${svc.name}`,
      {
        connection,
        unitName,
        sections: pulumi
          .all([uid, serviceUser.home])
          .apply(([u, home]) => appServiceUnit(svc, user, u, home)),
      },
      { parent, dependsOn: deps },
    );
  });
  const parts: TenantResources = {
    serviceUserName: user,
    uid,
    dockerHost: rootless.dockerHost,
    serviceUser,
    linger,
    docker: rootless,
    services,
    ...(limits ? { limits } : {}),
  };
  const proxySettings =
    t.socketProxy && t.socketProxy.enabled !== false ? t.socketProxy : undefined;
  if (!proxySettings) return parts;
  const dockerProvider = dockerApiProvider(
    `${name}-docker-api`,
    conn,
    user,
    resolveDockerApiSettings(t.dockerApi ?? {}),
    {
      parent,
      dependsOn: [rootless, ...(serviceUser.deployKeys ? [serviceUser.deployKeys] : [])],
    },
  );
  const dockerOpts = { parent, providers: { docker: dockerProvider } };
  const socketProxy = new SocketProxy(
    `${name}-socket-proxy`,
    {
      ...proxySettings,
      dockerSocket: uid.apply(rootlessDockerSocket),
      canary: { connection, user },
    },
    dockerOpts,
  );
  const traefik =
    t.traefik && t.traefik.enabled !== false
      ? new Traefik(
          `${name}-traefik`,
          {
            ...t.traefik,
            proxy: { endpoint: socketProxy.endpoint, networkName: socketProxy.network.name },
            unprivilegedPortStart: p.docker.unprivilegedPortStart,
            canary: { connection, user },
          },
          { ...dockerOpts, dependsOn: [socketProxy] },
        )
      : undefined;
  return {
    ...parts,
    dockerProvider,
    socketProxy,
    proxyEndpoint: socketProxy.endpoint,
    ...(traefik ? { traefik } : {}),
  };
}

/**
 * A further tenant of a `HardenedDockerHost` (an entry of its `tenants`): made by the host,
 * which runs the host-wide steps once. Its children are named `<host>-<user>-...`.
 */
export class Tenant extends pulumi.ComponentResource implements TenantResources {
  readonly serviceUserName: string;
  readonly uid: pulumi.Output<number>;
  readonly dockerHost: pulumi.Output<string>;
  readonly serviceUser: ServiceUser;
  readonly linger: Linger;
  readonly docker: RootlessDocker;
  readonly services: readonly SystemdUnit[];
  readonly limits?: command.remote.Command;
  readonly dockerProvider?: docker.Provider;
  readonly socketProxy?: SocketProxy;
  readonly traefik?: Traefik;
  readonly proxyEndpoint?: pulumi.Output<string>;

  constructor(
    name: string,
    args: TenantArgs,
    host: Omit<TenantPlacement, "parent" | "prefix">,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(TENANT_TYPE, name, {}, opts);
    const parts = buildTenant(args, { ...host, parent: this, prefix: name });
    this.serviceUserName = parts.serviceUserName;
    this.uid = parts.uid;
    this.dockerHost = parts.dockerHost;
    this.serviceUser = parts.serviceUser;
    this.linger = parts.linger;
    this.docker = parts.docker;
    this.services = parts.services;
    this.limits = parts.limits;
    this.dockerProvider = parts.dockerProvider;
    this.socketProxy = parts.socketProxy;
    this.traefik = parts.traefik;
    this.proxyEndpoint = parts.proxyEndpoint;
    this.registerOutputs({
      serviceUserName: this.serviceUserName,
      uid: this.uid,
      dockerHost: this.dockerHost,
      proxyEndpoint: this.proxyEndpoint,
    });
  }
}

/**
 * One hardened Docker host: SSH readiness gate, service user, linger, rootless Docker, and
 * the app services, in that order. Its args map 1:1 onto a host's stack config.
 */
export class HardenedDockerHost extends pulumi.ComponentResource {
  readonly serviceUserName: string;
  readonly uid: pulumi.Output<number>;
  /** `unix:///run/user/<uid>/docker.sock` */
  readonly dockerHost: pulumi.Output<string>;
  readonly ready: command.remote.Command;
  readonly serviceUser: ServiceUser;
  readonly linger: Linger;
  readonly docker: RootlessDocker;
  readonly services: readonly SystemdUnit[];
  /** The Docker provider for this host's rootless daemon (when a proxy is deployed). */
  readonly dockerProvider?: docker.Provider;
  readonly socketProxy?: SocketProxy;
  readonly traefik?: Traefik;
  /** `tcp://socket-proxy:2375` on the proxy's internal network, when deployed. */
  readonly proxyEndpoint?: pulumi.Output<string>;
  /** The slice limits step of the host's own service user, when `limits` is set. */
  readonly limits?: command.remote.Command;
  /** The further tenants, in the order of `tenants`. */
  readonly tenants: readonly Tenant[];

  constructor(name: string, args: HardenedDockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super(HARDENED_DOCKER_HOST_TYPE, name, {}, opts);
    const conn = rethrowAsResourceError(this, () => {
      validateHardenedDockerHostArgs(args);
      return resolveConnection(args.connection);
    });
    const tenants = args.tenants ?? [];
    const allServices = [...(args.services ?? []), ...tenants.flatMap((t) => t.services ?? [])];
    // Secret env values are only known at run time: validate them before the gate resolves,
    // so a bad one stops the deployment before the first command reaches the host.
    const secretValues = allServices.flatMap((svc) =>
      Object.entries(svc.environment ?? {}).map(([k, v]) =>
        pulumi.output(v).apply((value) => {
          const problem = environmentValueProblem(svc.name, k, value);
          if (problem) throw new pulumi.ResourceError(problem, this);
          return true;
        }),
      ),
    );
    const inputsChecked = pulumi.all(secretValues).apply(() => "valid");
    // the gate's triggers carry the check result: it cannot register until the values pass
    // an app unit must not take over one of the host's own: found before anything changes
    this.ready = sshReadinessGate(
      `${name}-ssh-ready`,
      conn,
      { parent: this },
      [inputsChecked],
      foreignUnitsPreflight(allServices.map((s) => `${s.name}.service`)),
    );
    // the host-wide steps run with the first tenant, loading every tenant's kernel modules
    const own = resolveDockerSettings(args.docker ?? {});
    const extraKernelModules = tenants
      .flatMap((t) => resolveDockerSettings({ daemonConfig: t.daemonConfig }).kernelModules)
      .filter((m) => !own.kernelModules.includes(m));
    const primary = buildTenant(args, {
      parent: this,
      prefix: name,
      connection: args.connection,
      after: [this.ready],
      docker: {
        ...(args.docker ?? {}),
        ...(extraKernelModules.length ? { extraKernelModules } : {}),
      },
    });
    this.serviceUser = primary.serviceUser;
    this.serviceUserName = primary.serviceUserName;
    this.uid = primary.uid;
    this.linger = primary.linger;
    this.docker = primary.docker;
    this.dockerHost = primary.dockerHost;
    this.services = primary.services;
    this.limits = primary.limits;
    this.dockerProvider = primary.dockerProvider;
    this.socketProxy = primary.socketProxy;
    this.traefik = primary.traefik;
    this.proxyEndpoint = primary.proxyEndpoint;
    // further tenants after the host-wide steps, one account at a time (each takes the next
    // free subordinate id range)
    const hostDocker = args.docker ?? {};
    let previous: pulumi.Resource = this.docker;
    this.tenants = tenants.map((t) => {
      const tenant = new Tenant(
        `${name}-${t.serviceUser.name}`,
        t,
        {
          connection: args.connection,
          after: [this.ready, this.docker, previous],
          docker: {
            install: hostDocker.install,
            version: hostDocker.version,
            sha256: hostDocker.sha256,
            rootlessExtrasSha256: hostDocker.rootlessExtrasSha256,
            startTimeoutSeconds: hostDocker.startTimeoutSeconds,
            unprivilegedPortStart: hostDocker.unprivilegedPortStart,
            daemonConfig: t.daemonConfig,
            portDriver: t.portDriver,
            hostWide: false,
          },
        },
        { parent: this },
      );
      previous = tenant.serviceUser;
      return tenant;
    });
    this.registerOutputs({
      serviceUserName: this.serviceUserName,
      uid: this.uid,
      dockerHost: this.dockerHost,
      proxyEndpoint: this.proxyEndpoint,
    });
  }
}
