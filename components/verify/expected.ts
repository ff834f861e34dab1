import { AppServiceArgs } from "../app-service/args";
import { keysOf } from "../core/keys";
import { environmentFilePath } from "../app-service/unit";
import { HardenedDockerHostArgs, validateHostDeclaration } from "../host/args";
import { checkSliceLimits } from "../systemd-unit/slice-limits";
import { PortRange, TenantArgs, checkPortRange } from "../tenants/args";
import { SOCKET_PROXY_PORT, renderSocketProxyConfig } from "../socket-proxy/render";
import { resolveDockerSettings } from "../rootless-docker/args";
import type { SliceLimits } from "../systemd-unit/slice-limits";
import { resolveServiceUser } from "../service-user/args";
import { resolveSocketProxy } from "../socket-proxy/args";
import { resolveTraefik } from "../traefik/args";
import { checkArray, checkKnownKeys, checkNumber, checkPlainObject } from "../core/validate";

/**
 * What one service user should look like (the host's own, or a tenant's): derived from its
 * declared args, never from the host.
 */
export interface UserExpectation {
  readonly serviceUser: string;
  /** The subordinate id range the service user must have at least. */
  readonly subordinateIdCount: number;
  /** daemon.json exactly as the library renders it. */
  readonly daemonJson: string;
  /** App services as declared; environment values are not needed (only whether there are any). */
  readonly services: readonly ExpectedService[];
  readonly socketProxy?: {
    readonly containerName: string;
    readonly networkName: string;
    /** The rendered haproxy configuration the container must carry. */
    readonly config: string;
  };
  readonly traefik?: { readonly containerName: string; readonly endpoint: string };
  /** Limits of its `user-<uid>.slice`, when declared: its cgroup files must hold them. */
  readonly limits?: SliceLimits;
  /** Host ports its containers may publish, when declared. */
  readonly ports?: PortRange;
  /** `systemd-analyze security` exposure above which an app unit is a WARN. */
  readonly maxExposure: number;
}

/** What a host should look like: its own service user, the host-wide parts, its tenants. */
export interface VerifyExpectation extends UserExpectation {
  /** Whether the rootful daemon must be stopped and masked (`docker.disableRootfulDaemon`). */
  readonly rootfulDaemonOff: boolean;
  /**
   * Further tenants (`tenants`), each checked like the host's own user under ids
   * `tenant.<user>.<id>`, plus the checks across tenants. Absent when there are none.
   */
  readonly tenants?: readonly UserExpectation[];
}

export interface ExpectedService {
  readonly args: AppServiceArgs;
  /** Its EnvironmentFile, when it has environment values. */
  readonly environmentFile?: string;
}

/** Options of `expectationFromArgs`. */
export interface ExpectationOptions {
  /**
   * Exposure score (0 = locked down, 10 = unprotected) above which an app unit warns. The
   * library's hardening preset scores 1.3 (measured on Debian 12, systemd 252).
   * @default 3.5
   */
  readonly maxExposure?: number;
  /**
   * The SSH login user of the host, when known (a stack's `user`): like the component, a
   * service user of that name is refused.
   */
  readonly loginUser?: string;
}

export const DEFAULT_MAX_EXPOSURE = 3.5;

/**
 * The expectation for a host declared with `args`, validated by the component's own rules
 * (`validateHostDeclaration`, across tenants included), so a stack the program would refuse
 * fails here too, naming the same field. Secret values are never needed: only which keys
 * exist.
 */
export function expectationFromArgs(
  args: Omit<HardenedDockerHostArgs, "connection">,
  opts: ExpectationOptions = {},
): VerifyExpectation {
  const o = checkPlainObject("verify options", opts);
  checkKnownKeys(
    "verify options",
    o,
    keysOf<ExpectationOptions>()({ maxExposure: true, loginUser: true }),
  );
  const maxExposure = checkNumber("maxExposure", opts.maxExposure ?? DEFAULT_MAX_EXPOSURE, 0, 10);
  validateHostDeclaration(args, { loginUser: opts.loginUser, requireDeployKeys: false });
  const docker = resolveDockerSettings(args.docker ?? {});
  const own = userExpectation("", args, docker.daemonJson, docker.unprivilegedPortStart);
  const tenants = checkArray("tenants", args.tenants ?? []).map((raw, i) => {
    const f = `tenants[${i}].`;
    const t = checkPlainObject(`tenants[${i}]`, raw) as unknown as TenantArgs;
    const { daemonJson } = resolveDockerSettings(
      { daemonConfig: t.daemonConfig, portDriver: t.portDriver },
      `tenants[${i}]`,
    );
    return userExpectation(f, t, daemonJson, docker.unprivilegedPortStart);
  });
  const { limits, ports, ...ownRest } = own;
  return {
    ...ownRest,
    rootfulDaemonOff: docker.disableRootfulDaemon,
    ...(limits ? { limits } : {}),
    ...(ports ? { ports } : {}),
    maxExposure,
    ...(tenants.length > 0 ? { tenants: tenants.map((t) => ({ ...t, maxExposure })) } : {}),
  };
}

/** One service user's expectation (`field` "" for the host's own, else `tenants[<i>].`). */
function userExpectation(
  field: string,
  args: Omit<TenantArgs, "daemonConfig" | "portDriver">,
  daemonJson: string,
  unprivilegedPortStart: number | undefined,
): Omit<UserExpectation, "maxExposure"> {
  const user = resolveServiceUser(args.serviceUser, `${field}serviceUser`);
  const proxy =
    args.socketProxy === undefined
      ? undefined
      : resolveSocketProxy(args.socketProxy, `${field}socketProxy`);
  const proxyOn = proxy?.enabled === true ? proxy : undefined;
  const traefik =
    args.traefik === undefined
      ? undefined
      : resolveTraefik(args.traefik, unprivilegedPortStart, `${field}traefik`);
  return {
    serviceUser: user.name,
    subordinateIdCount: user.subordinateIdCount,
    daemonJson,
    services: (args.services ?? []).map((svc) => {
      const hasEnv = svc.environment !== undefined && Object.keys(svc.environment).length > 0;
      return {
        args: svc,
        ...(hasEnv ? { environmentFile: environmentFilePath(svc.name) } : {}),
      };
    }),
    ...(proxyOn
      ? {
          socketProxy: {
            containerName: proxyOn.containerName,
            networkName: proxyOn.networkName,
            config: renderSocketProxyConfig(proxyOn.policy),
          },
        }
      : {}),
    ...(proxyOn && traefik?.enabled
      ? {
          traefik: {
            containerName: traefik.containerName,
            endpoint: `tcp://${proxyOn.containerName}:${SOCKET_PROXY_PORT}`,
          },
        }
      : {}),
    ...(args.limits !== undefined
      ? { limits: checkSliceLimits(`${field}limits`, args.limits) }
      : {}),
    ...(args.ports !== undefined ? { ports: checkPortRange(`${field}ports`, args.ports) } : {}),
  };
}
