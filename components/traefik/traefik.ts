import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type * as command from "@pulumi/command";
import {
  TRAEFIK_INTERNAL_PORT,
  TRAEFIK_WEBSECURE_PORT,
  TRAEFIK_WEB_PORT,
  dashboardUserProblem,
  traefikArgs,
  traefikDashboardLabels,
} from "./render";
import { dockerService } from "../docker-service/docker-service";
import { resolveCanary } from "../docker-service/docker-service";
import { checkKnownKeys, checkPlainObject } from "../core/validate";
import { TRAEFIK_PROXY_KEYS, TraefikArgs, resolveTraefik } from "./args";
import { rethrowAsResourceError } from "../core/resource";
import { ROLES } from "../core/labels";
export { DEFAULT_TRAEFIK_IMAGE, resolveTraefik } from "./args";
export type {
  TraefikDashboardSettings,
  TraefikSettings,
  TraefikArgs,
  ResolvedTraefik,
} from "./args";

export const TRAEFIK_TYPE = "hardened-docker:docker:Traefik";

/**
 * Traefik wired to the socket proxy: on the `web` network (where apps opt in with labels)
 * and the proxy's internal network, `providers.docker.endpoint` = the proxy, no socket mount,
 * `exposedByDefault=false`, read-only rootfs, no capabilities, CPU and memory limits. The
 * dashboard is off unless `dashboard` is set, then routed through basic auth.
 */
export class Traefik extends pulumi.ComponentResource {
  readonly network: docker.Network;
  readonly image: docker.RemoteImage;
  readonly container: docker.Container;
  /** The canary step, when `canary` is set. */
  readonly canary?: command.remote.Command;
  /** Traefik's command line (static configuration). */
  readonly args: pulumi.Output<string[]>;

  constructor(name: string, args: TraefikArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TRAEFIK_TYPE, name, {}, opts);
    const { canary: canaryArgs, ...settings } = args;
    const { s, canary } = rethrowAsResourceError(this, () => {
      const p = checkPlainObject("traefik.proxy", args.proxy);
      checkKnownKeys("traefik.proxy", p, TRAEFIK_PROXY_KEYS);
      return {
        s: resolveTraefik(settings, args.unprivilegedPortStart),
        canary: resolveCanary("traefik.canary", canaryArgs),
      };
    });
    this.args = pulumi.output(args.proxy.endpoint).apply((endpoint) =>
      traefikArgs({
        endpoint,
        network: s.networkName,
        dashboard: s.dashboard !== undefined,
        logLevel: s.logLevel,
        extraArgs: s.extraArgs,
      }),
    );
    let labels: pulumi.Input<docker.types.input.ContainerLabel[]> = [];
    if (s.dashboard && args.dashboard) {
      const dashboard = s.dashboard;
      const users = pulumi.secret(
        pulumi.output(args.dashboard.users).apply((list) => {
          list.forEach((u, i) => {
            const problem = dashboardUserProblem(`traefik.dashboard.users[${i}]`, u);
            if (problem) throw new pulumi.ResourceError(problem, this);
          });
          return list.join(",");
        }),
      );
      labels = users.apply((u) =>
        Object.entries(traefikDashboardLabels(dashboard, u)).map(([label, value]) => ({
          label,
          value,
        })),
      );
    }
    ({
      network: this.network,
      image: this.image,
      container: this.container,
      canary: this.canary,
    } = dockerService(this, name, {
      role: ROLES.traefik,
      ...(canary ? { canary } : {}),
      image: s.image,
      containerName: s.containerName,
      networkName: s.networkName,
      internal: false,
      extraNetworks: [args.proxy.networkName],
      cpus: s.cpus,
      memoryMiB: s.memoryMiB,
      healthcheck: {
        tests: [
          "CMD",
          "traefik",
          "healthcheck",
          "--ping",
          `--entrypoints.traefik.address=:${TRAEFIK_INTERNAL_PORT}`,
          "--ping.entryPoint=traefik",
        ],
        interval: "10s",
        timeout: "10s",
        retries: 3,
        startPeriod: "30s",
      },
      labels,
      container: {
        command: this.args,
        ports: [
          { internal: TRAEFIK_WEB_PORT, external: s.httpPort, ip: s.bindAddress },
          { internal: TRAEFIK_WEBSECURE_PORT, external: s.httpsPort, ip: s.bindAddress },
        ],
      },
    }));
    this.registerOutputs({ args: this.args });
  }
}
