import {
  AppServiceArgs,
  HardenedDockerHostArgs,
  environmentFilePath,
} from "../hardened-docker-host";
import { SOCKET_PROXY_PORT, renderSocketProxyConfig } from "../render/socket-proxy";
import { resolveDockerSettings } from "../rootless-docker";
import { resolveServiceUser } from "../service-user";
import { resolveSocketProxy } from "../socket-proxy";
import { resolveTraefik } from "../traefik";
import { checkKnownKeys, checkNumber, checkPlainObject } from "../validate";

/** What a host should look like: derived from its declared args, never from the host. */
export interface VerifyExpectation {
  readonly serviceUser: string;
  /** The subordinate id range the service user must have at least. */
  readonly subordinateIdCount: number;
  /** daemon.json exactly as the library renders it. */
  readonly daemonJson: string;
  /** Whether the rootful daemon must be stopped and masked (`docker.disableRootfulDaemon`). */
  readonly rootfulDaemonOff: boolean;
  /** App services as declared; environment values are not needed (only whether there are any). */
  readonly services: readonly ExpectedService[];
  readonly socketProxy?: {
    readonly containerName: string;
    readonly networkName: string;
    /** The rendered haproxy configuration the container must carry. */
    readonly config: string;
  };
  readonly traefik?: { readonly containerName: string; readonly endpoint: string };
  /** `systemd-analyze security` exposure above which an app unit is a WARN. */
  readonly maxExposure: number;
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
}

export const DEFAULT_MAX_EXPOSURE = 3.5;

/**
 * The expectation for a host declared with `args` (the same validation as the component, so
 * a bad stack fails here too). Secret values are never needed: only which keys exist.
 */
export function expectationFromArgs(
  args: Omit<HardenedDockerHostArgs, "connection">,
  opts: ExpectationOptions = {},
): VerifyExpectation {
  const o = checkPlainObject("verify options", opts);
  checkKnownKeys("verify options", o, ["maxExposure"]);
  const user = resolveServiceUser(args.serviceUser);
  const docker = resolveDockerSettings(args.docker ?? {});
  const proxy = args.socketProxy === undefined ? undefined : resolveSocketProxy(args.socketProxy);
  const proxyOn = proxy?.enabled === true ? proxy : undefined;
  const traefik =
    args.traefik === undefined
      ? undefined
      : resolveTraefik(args.traefik, docker.unprivilegedPortStart);
  return {
    serviceUser: user.name,
    subordinateIdCount: user.subordinateIdCount,
    daemonJson: docker.daemonJson,
    rootfulDaemonOff: docker.disableRootfulDaemon,
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
    maxExposure: checkNumber("maxExposure", opts.maxExposure ?? DEFAULT_MAX_EXPOSURE, 0, 10),
  };
}
