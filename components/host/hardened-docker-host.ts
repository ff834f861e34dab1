import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { ConnectionArgs, resolveConnection, sshReadinessGate } from "../core/connection";
import { DockerApiSettings } from "../service-user/docker-api";
import { Linger } from "../linger/linger";
import { keysOf } from "../core/keys";
import {
  DockerSettings,
  RootlessDocker,
  resolveDockerSettings,
} from "../rootless-docker/rootless-docker";
import { ServiceUser, ServiceUserSettings } from "../service-user/service-user";
import { SocketProxy, SocketProxySettings } from "../socket-proxy/socket-proxy";
import { SystemdUnit } from "../systemd-unit/systemd-unit";
import { foreignUnitsPreflight } from "../systemd-unit/script";
import { SliceLimits } from "../systemd-unit/slice-limits";
import { Traefik, TraefikSettings } from "../traefik/traefik";
import {
  checkArray,
  checkKnownKeys,
  checkPlainObject,
  rethrowAsResourceError,
} from "../core/validate";
import { AppServiceArgs, environmentValueProblem } from "../app-service/args";
import {
  DeclarationChecks,
  PortRange,
  TENANT_KEYS,
  TenantArgs,
  checkAcrossTenants,
  checkTenant,
} from "../tenants/args";
import { Tenant, buildTenant } from "../tenants/tenant";

export const HARDENED_DOCKER_HOST_TYPE = "hardened-docker:index:HardenedDockerHost";

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

const HOST_KEYS = keysOf<HardenedDockerHostArgs>()({
  connection: true,
  serviceUser: true,
  docker: true,
  services: true,
  socketProxy: true,
  traefik: true,
  dockerApi: true,
  limits: true,
  ports: true,
  tenants: true,
});

/** Validates everything a host's args hold; throws `InvalidArgument` naming the field. */
export function validateHardenedDockerHostArgs(args: HardenedDockerHostArgs): void {
  checkPlainObject("args", args);
  const conn = resolveConnection(args.connection);
  validateHostDeclaration(args, { loginUser: conn.user });
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
  checkKnownKeys("args", a, HOST_KEYS);
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
    // the install and its settings are the host's; the daemon's own settings the tenant's
    const {
      daemonConfig: _d,
      portDriver: _p,
      disableRootfulDaemon: _r,
      ...shared
    } = args.docker ?? {};
    let previous: pulumi.Resource = this.docker;
    this.tenants = tenants.map((t) => {
      const tenant = new Tenant(
        `${name}-${t.serviceUser.name}`,
        t,
        {
          connection: args.connection,
          after: [this.ready, this.docker, previous],
          docker: {
            ...shared,
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
