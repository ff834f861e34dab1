import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { ConnectionArgs, resolveConnection, sshReadinessGate } from "./connection";
import { DockerApiSettings, dockerApiProvider, resolveDockerApiSettings } from "./docker-api";
import { EnvironmentFile } from "./environment-file";
import { Linger } from "./linger";
import { hardeningPreset } from "./render/hardening";
import { rootlessDockerSocket, userRuntimeDir } from "./render/rootless-docker-unit";
import { UnitFileSections, UnitSection } from "./render/systemd-unit";
import { DockerSettings, RootlessDocker, resolveDockerSettings } from "./rootless-docker";
import {
  ServiceUser,
  ServiceUserSettings,
  checkNotLoginUser,
  resolveServiceUser,
} from "./service-user";
import { SocketProxy, SocketProxySettings, resolveSocketProxy } from "./socket-proxy";
import { SystemdUnit } from "./systemd-unit";
import { foreignUnitsPreflight } from "./scripts/systemd";
import { Traefik, TraefikSettings, resolveTraefik } from "./traefik";
import {
  InvalidArgument,
  checkAbsolutePath,
  checkArray,
  checkCommandLine,
  checkEnvKey,
  checkKnownKeys,
  checkLine,
  checkOneOf,
  checkPlainObject,
  checkServiceName,
  checkUnitName,
  rethrowAsResourceError,
  secretLineProblem,
} from "./validate";

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

/** Validates everything a host's args hold; throws `InvalidArgument` naming the field. */
export function validateHardenedDockerHostArgs(args: HardenedDockerHostArgs): void {
  const a = checkPlainObject("args", args);
  checkKnownKeys("args", a, [
    "connection",
    "serviceUser",
    "docker",
    "services",
    "socketProxy",
    "traefik",
    "dockerApi",
  ]);
  const conn = resolveConnection(args.connection);
  const user = resolveServiceUser(args.serviceUser);
  checkNotLoginUser("serviceUser.name", user.name, conn.user);
  const dockerSettings = resolveDockerSettings(args.docker ?? {});
  resolveDockerApiSettings(args.dockerApi ?? {});
  const proxy = args.socketProxy === undefined ? undefined : resolveSocketProxy(args.socketProxy);
  if (proxy?.enabled && user.deployKeys === undefined) {
    throw new InvalidArgument(
      "serviceUser.deployKeys",
      undefined,
      "at least one public key when socketProxy is deployed",
      "The Docker provider reaches the rootless daemon as the service user over SSH with a restricted deploy key: add its .pub line (stack key deployKeys) and load the private key into ssh-agent.",
    );
  }
  if (args.traefik !== undefined) {
    const traefik = resolveTraefik(args.traefik, dockerSettings.unprivilegedPortStart);
    if (traefik.enabled && !proxy?.enabled) {
      throw new InvalidArgument(
        "traefik",
        "enabled",
        "deployed only together with socketProxy (Traefik reaches Docker through it, never the socket)",
        "Add a socketProxy block (stack key socketProxy: {}) or set traefik.enabled: false.",
      );
    }
  }
  const names = new Set<string>();
  checkArray("services", args.services ?? []).forEach((raw, i) => {
    const f = `services[${i}]`;
    const svc = checkPlainObject(f, raw) as unknown as AppServiceArgs;
    checkKnownKeys(f, svc as unknown as Record<string, unknown>, SERVICE_KEYS);
    const name = checkServiceName(`${f}.name`, svc.name);
    if (names.has(name))
      throw new InvalidArgument(`${f}.name`, name, "a name no other service uses");
    if (SYSTEM_UNITS.includes(name))
      throw new InvalidArgument(
        `${f}.name`,
        name,
        "a name that is not one of the host's own units (docker, containerd, ssh, cron, ...)",
        `${name}.service would replace it. Name the unit after your app; an existing unit of that name that hardened-docker did not write is also refused on the host.`,
      );
    names.add(name);
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

  constructor(name: string, args: HardenedDockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super(HARDENED_DOCKER_HOST_TYPE, name, {}, opts);
    const conn = rethrowAsResourceError(this, () => {
      validateHardenedDockerHostArgs(args);
      return resolveConnection(args.connection);
    });
    // Secret env values are only known at run time: validate them before the gate resolves,
    // so a bad one stops the deployment before the first command reaches the host.
    const secretValues = (args.services ?? []).flatMap((svc) =>
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
      foreignUnitsPreflight((args.services ?? []).map((s) => `${s.name}.service`)),
    );
    this.serviceUser = new ServiceUser(
      `${name}-service-user`,
      { connection: args.connection, ...args.serviceUser },
      { parent: this, dependsOn: [this.ready] },
    );
    this.serviceUserName = this.serviceUser.userName;
    this.uid = this.serviceUser.uid;
    this.linger = new Linger(
      `${name}-linger`,
      { connection: args.connection, user: this.serviceUserName },
      { parent: this, dependsOn: [this.serviceUser] },
    );
    this.docker = new RootlessDocker(
      `${name}-docker`,
      {
        connection: args.connection,
        user: this.serviceUserName,
        uid: this.uid,
        ...(args.docker ?? {}),
      },
      { parent: this, dependsOn: [this.linger] },
    );
    this.dockerHost = this.docker.dockerHost;
    const user = this.serviceUserName;
    this.services = (args.services ?? []).map((svc) => {
      const unitName = `${svc.name}.service`;
      const deps: pulumi.Resource[] = [this.docker];
      if (svc.environment && Object.keys(svc.environment).length > 0) {
        deps.push(
          new EnvironmentFile(
            `${name}-${svc.name}-env`,
            {
              connection: args.connection,
              path: environmentFilePath(svc.name),
              values: svc.environment,
              restartUnit: unitName,
            },
            { parent: this, dependsOn: [this.docker] },
          ),
        );
      }
      return new SystemdUnit(
        `${name}-${svc.name}`,
        {
          connection: args.connection,
          unitName,
          sections: pulumi
            .all([this.uid, this.serviceUser.home])
            .apply(([uid, home]) => appServiceUnit(svc, user, uid, home)),
        },
        { parent: this, dependsOn: deps },
      );
    });
    const proxySettings =
      args.socketProxy && args.socketProxy.enabled !== false ? args.socketProxy : undefined;
    if (proxySettings) {
      this.dockerProvider = dockerApiProvider(
        `${name}-docker-api`,
        conn,
        user,
        resolveDockerApiSettings(args.dockerApi ?? {}),
        {
          parent: this,
          dependsOn: [
            this.docker,
            ...(this.serviceUser.deployKeys ? [this.serviceUser.deployKeys] : []),
          ],
        },
      );
      const dockerOpts = { parent: this, providers: { docker: this.dockerProvider } };
      this.socketProxy = new SocketProxy(
        `${name}-socket-proxy`,
        {
          ...proxySettings,
          dockerSocket: this.uid.apply(rootlessDockerSocket),
          canary: { connection: args.connection, user },
        },
        dockerOpts,
      );
      this.proxyEndpoint = this.socketProxy.endpoint;
      if (args.traefik && args.traefik.enabled !== false) {
        this.traefik = new Traefik(
          `${name}-traefik`,
          {
            ...args.traefik,
            proxy: {
              endpoint: this.socketProxy.endpoint,
              networkName: this.socketProxy.network.name,
            },
            unprivilegedPortStart: args.docker?.unprivilegedPortStart,
            canary: { connection: args.connection, user },
          },
          { ...dockerOpts, dependsOn: [this.socketProxy] },
        );
      }
    }
    this.registerOutputs({
      serviceUserName: this.serviceUserName,
      uid: this.uid,
      dockerHost: this.dockerHost,
      proxyEndpoint: this.proxyEndpoint,
    });
  }
}
