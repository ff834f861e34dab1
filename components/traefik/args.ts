import type * as pulumi from "@pulumi/pulumi";

import { TraefikDashboardArgs, checkTraefikDashboard, checkTraefikExtraArgs } from "./render";
import {
  CanaryArgs,
  ResolvedServiceSettings,
  resolveServiceSettings,
} from "../docker-service/args";
import {
  InvalidArgument,
  checkArray,
  checkBoolean,
  checkKnownKeys,
  checkOneOf,
  checkPlainObject,
  checkPort,
} from "../core/validate";
import { isOutput } from "../core/output";
import { keysOf } from "../core/keys";

/**
 * Traefik >= 3.6.1 negotiates Docker API >= 1.44 (Docker Engine 29 refuses older clients),
 * pinned to an exact release. Add a digest (`…@sha256:<digest>`) once you have pulled it.
 */
export const DEFAULT_TRAEFIK_IMAGE = "docker.io/library/traefik:v3.6.2";

export interface TraefikDashboardSettings extends TraefikDashboardArgs {
  /**
   * htpasswd lines (`user:$2y$…`, from `htpasswd -nbB user password`), handled as secrets.
   * Required: the dashboard is never served without authentication.
   */
  readonly users: pulumi.Input<pulumi.Input<string>[]>;
}

export interface TraefikSettings {
  /** @default true when the `traefik` block is present */
  readonly enabled?: boolean;
  /** @default "docker.io/library/traefik:v3.6.2" */
  readonly image?: string;
  /**
   * Host port for the `web` entrypoint. Below 1024 the rootless daemon can publish it only
   * when `docker.unprivilegedPortStart` is at most this port.
   * @default 80
   */
  readonly httpPort?: number;
  /** Host port for the `websecure` entrypoint. @default 443 */
  readonly httpsPort?: number;
  /** Host address the ports are published on. @default "0.0.0.0" */
  readonly bindAddress?: string;
  /** The dashboard, behind basic auth. @default off */
  readonly dashboard?: TraefikDashboardSettings;
  /** @default "INFO" */
  readonly logLevel?: "DEBUG" | "INFO" | "WARN" | "ERROR";
  /** More static configuration (`--key=value`). @default none */
  readonly extraArgs?: readonly string[];
  /** CPU limit in cores. @default 0.5 */
  readonly cpus?: number;
  /** Memory limit (no swap on top). @default 256 */
  readonly memoryMiB?: number;
  /** @default "traefik" */
  readonly containerName?: string;
  /** The network Traefik and the apps it routes to share. @default "web" */
  readonly networkName?: string;
}

export interface TraefikArgs extends TraefikSettings {
  /** The socket proxy: its endpoint and internal network (from `SocketProxy`). */
  readonly proxy: {
    readonly endpoint: pulumi.Input<string>;
    readonly networkName: pulumi.Input<string>;
  };
  /**
   * The rootless daemon's `net.ipv4.ip_unprivileged_port_start` (RootlessDocker's
   * `unprivilegedPortStart`), so a port it cannot publish fails now, not at container start.
   * @default 1024 (the kernel default)
   */
  readonly unprivilegedPortStart?: number;
  /**
   * Run each new spec once beside the running Traefik before replacing it (a `<name>-canary`
   * host step, without published ports or networks): a spec that does not pass its health
   * check fails the up and leaves the running Traefik as it was. `HardenedDockerHost` always
   * sets it. @default none (replaced unchecked)
   */
  readonly canary?: CanaryArgs;
}

export interface ResolvedTraefik extends ResolvedServiceSettings {
  readonly enabled: boolean;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly bindAddress: string;
  readonly dashboard?: TraefikDashboardArgs;
  readonly logLevel: "DEBUG" | "INFO" | "WARN" | "ERROR";
  readonly extraArgs: string[];
}

export const KEYS = keysOf<Omit<TraefikArgs, "canary">>()({
  enabled: true,
  image: true,
  httpPort: true,
  httpsPort: true,
  bindAddress: true,
  dashboard: true,
  logLevel: true,
  extraArgs: true,
  cpus: true,
  memoryMiB: true,
  containerName: true,
  networkName: true,
  proxy: true,
  unprivilegedPortStart: true,
});

/** The keys of `TraefikArgs.proxy`. */
export const TRAEFIK_PROXY_KEYS = keysOf<TraefikArgs["proxy"]>()({
  endpoint: true,
  networkName: true,
});

/**
 * Validates Traefik settings. `unprivilegedPortStart` is the rootless daemon's setting
 * (undefined: the kernel default 1024), so a port it cannot publish is an error now, not a
 * container that fails to start later.
 */
export function resolveTraefik(
  args: TraefikSettings,
  unprivilegedPortStart: number | undefined,
  field = "traefik",
): ResolvedTraefik {
  const a = checkPlainObject(field, args);
  checkKnownKeys(field, a, KEYS);
  const httpPort = checkPort(`${field}.httpPort`, args.httpPort ?? 80);
  const httpsPort = checkPort(`${field}.httpsPort`, args.httpsPort ?? 443);
  if (httpPort === httpsPort)
    throw new InvalidArgument(`${field}.httpsPort`, httpsPort, "a port other than httpPort");
  const start = unprivilegedPortStart ?? 1024;
  for (const [key, port] of [
    ["httpPort", httpPort],
    ["httpsPort", httpsPort],
  ] as const) {
    if (port < start) {
      throw new InvalidArgument(
        `${field}.${key}`,
        port,
        `a port the rootless daemon may publish (>= ${start}, net.ipv4.ip_unprivileged_port_start)`,
        `Set docker.unprivilegedPortStart to ${Math.min(httpPort, httpsPort)} (stack key unprivilegedPortStart) or choose a port >= ${start}.`,
      );
    }
  }
  const bindAddress = args.bindAddress ?? "0.0.0.0";
  if (!/^(\d{1,3}\.){3}\d{1,3}$|^::$|^::1$/.test(bindAddress))
    throw new InvalidArgument(`${field}.bindAddress`, bindAddress, "an IPv4 address, :: or ::1");
  let dashboard: TraefikDashboardArgs | undefined;
  if (args.dashboard !== undefined) {
    dashboard = checkTraefikDashboard(`${field}.dashboard`, args.dashboard);
    const users = args.dashboard.users as unknown;
    if (users === undefined)
      throw new InvalidArgument(
        `${field}.dashboard.users`,
        undefined,
        "at least one htpasswd line",
        "The dashboard is never served without authentication.",
      );
    if (!isOutput(users) && checkArray(`${field}.dashboard.users`, users).length === 0)
      throw new InvalidArgument(`${field}.dashboard.users`, [], "at least one htpasswd line");
  }
  return {
    enabled: checkBoolean(`${field}.enabled`, args.enabled ?? true),
    httpPort,
    httpsPort,
    bindAddress,
    dashboard,
    logLevel: checkOneOf(`${field}.logLevel`, args.logLevel ?? "INFO", [
      "DEBUG",
      "INFO",
      "WARN",
      "ERROR",
    ] as const),
    extraArgs: checkTraefikExtraArgs(`${field}.extraArgs`, args.extraArgs ?? []),
    ...resolveServiceSettings(field, args, {
      image: DEFAULT_TRAEFIK_IMAGE,
      cpus: 0.5,
      memoryMiB: 256,
      minMemoryMiB: 32,
      containerName: "traefik",
      networkName: "web",
    }),
  };
}
