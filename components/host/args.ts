import type { ConnectionArgs } from "../core/connection";
import { DockerApiSettings } from "../service-user/args";
import { keysOf } from "../core/keys";
import { DockerSettings, resolveDockerSettings } from "../rootless-docker/args";
import { ServiceUserSettings } from "../service-user/args";
import { SocketProxySettings } from "../socket-proxy/args";
import { SliceLimits } from "../systemd-unit/slice-limits";
import { TraefikSettings } from "../traefik/args";
import { checkArray, checkKnownKeys, checkPlainObject } from "../core/validate";
import { AppServiceArgs } from "../app-service/args";
import {
  DeclarationChecks,
  PortRange,
  TENANT_KEYS,
  TenantArgs,
  checkAcrossTenants,
  checkTenant,
} from "../tenants/args";

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

export const HOST_KEYS = keysOf<HardenedDockerHostArgs>()({
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
