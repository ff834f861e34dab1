import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { ConnectionArgs, resolveConnection } from "../core/connection";
import { dockerApiProvider } from "../service-user/docker-api";
import { resolveDockerApiSettings } from "../service-user/args";
import { EnvironmentFile } from "../app-service/environment-file";
import { Linger } from "../linger/linger";
import { rootlessDockerSocket } from "../rootless-docker/unit";
import { RootlessDocker } from "../rootless-docker/rootless-docker";
import { DockerSettings, RootlessDockerArgs } from "../rootless-docker/args";
import { ServiceUser } from "../service-user/service-user";
import { SocketProxy } from "../socket-proxy/socket-proxy";
import { SystemdUnit } from "../systemd-unit/systemd-unit";
import {
  renderSliceLimits,
  sliceLimitsCreateScript,
  sliceLimitsDeleteScript,
} from "../systemd-unit/slice-limits";
import { hostCommand } from "../core/host-command";
import { Traefik } from "../traefik/traefik";
import { TenantArgs } from "./args";
import { appServiceUnit, environmentFilePath } from "../app-service/unit";

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

export function buildTenant(t: TenantArgs, p: TenantPlacement): TenantResources {
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
