import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { resolveConnection, sshReadinessGate } from "../core/connection";
import { Linger } from "../linger/linger";
import { RootlessDocker } from "../rootless-docker/rootless-docker";
import { resolveDockerSettings } from "../rootless-docker/args";
import { ServiceUser } from "../service-user/service-user";
import { SocketProxy } from "../socket-proxy/socket-proxy";
import { SystemdUnit } from "../systemd-unit/systemd-unit";
import { foreignUnitsPreflight } from "../systemd-unit/script";
import { Traefik } from "../traefik/traefik";
import { checkPlainObject } from "../core/validate";
import { environmentValueProblem } from "../app-service/args";
import { Tenant, buildTenant } from "../tenants/tenant";
import { HardenedDockerHostArgs, validateHostDeclaration } from "./args";
import { rethrowAsResourceError } from "../core/resource";
import { DockerSettings, SHARED_DOCKER_KEYS } from "../rootless-docker/args";
export { validateHostDeclaration } from "./args";
export type { HardenedDockerHostArgs } from "./args";

export const HARDENED_DOCKER_HOST_TYPE = "hardened-docker:index:HardenedDockerHost";

/** Validates everything a host's args hold; throws `InvalidArgument` naming the field. */
export function validateHardenedDockerHostArgs(args: HardenedDockerHostArgs): void {
  checkPlainObject("args", args);
  const conn = resolveConnection(args.connection);
  validateHostDeclaration(args, { loginUser: conn.user });
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
    const hostDocker: Record<string, unknown> = { ...args.docker };
    const shared = Object.fromEntries(
      SHARED_DOCKER_KEYS.filter((k) => hostDocker[k] !== undefined).map((k) => [k, hostDocker[k]]),
    ) as Pick<DockerSettings, (typeof SHARED_DOCKER_KEYS)[number]>;
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
