import type * as pulumi from "@pulumi/pulumi";

import {
  CanaryArgs,
  ResolvedServiceSettings,
  resolveServiceSettings,
} from "../docker-service/args";
import { ResolvedProxyPolicy, SocketProxyPolicy, resolveProxyPolicy } from "./render";
import { checkBoolean, checkKnownKeys, checkPlainObject } from "../core/validate";
import { keysOf } from "../core/keys";

/**
 * A stock haproxy image (Alpine variant: its busybox `wget` runs the health check), pinned to
 * an exact release. Pin a digest too (`…@sha256:<digest>`) once you have pulled it: tags can
 * move, digests cannot.
 */
export const DEFAULT_SOCKET_PROXY_IMAGE = "docker.io/library/haproxy:3.2.9-alpine";

export interface SocketProxySettings extends SocketProxyPolicy {
  /** @default true when the `socketProxy` block is present */
  readonly enabled?: boolean;
  /** @default "docker.io/library/haproxy:3.2.9-alpine" */
  readonly image?: string;
  /** CPU limit in cores. @default 0.15 */
  readonly cpus?: number;
  /** Memory limit (no swap on top). @default 128 */
  readonly memoryMiB?: number;
  /** Container name: also its DNS name on the network. @default "socket-proxy" */
  readonly containerName?: string;
  /** The internal network only the proxy and its clients join. @default "docker_api" */
  readonly networkName?: string;
}

export interface SocketProxyArgs extends SocketProxySettings {
  /** The rootless daemon's socket on the host, e.g. `/run/user/1001/docker.sock`. */
  readonly dockerSocket: pulumi.Input<string>;
  /**
   * Run each new spec once beside the running proxy before replacing it (a `<name>-canary`
   * host step): a spec that does not pass its health check fails the up and leaves the running
   * proxy as it was. `HardenedDockerHost` always sets it. @default none (replaced unchecked)
   */
  readonly canary?: CanaryArgs;
}

export interface ResolvedSocketProxy extends ResolvedServiceSettings {
  readonly enabled: boolean;
  readonly policy: ResolvedProxyPolicy;
}

export const SETTINGS_KEYS = keysOf<Omit<SocketProxyArgs, "canary">>()({
  enabled: true,
  allow: true,
  apiVersionPrefix: true,
  image: true,
  cpus: true,
  memoryMiB: true,
  containerName: true,
  networkName: true,
  dockerSocket: true,
});

export function resolveSocketProxy(
  args: SocketProxySettings,
  field = "socketProxy",
): ResolvedSocketProxy {
  const a = checkPlainObject(field, args);
  checkKnownKeys(field, a, SETTINGS_KEYS);
  const policy = resolveProxyPolicy(
    { allow: args.allow, apiVersionPrefix: args.apiVersionPrefix },
    field,
  );
  return {
    enabled: checkBoolean(`${field}.enabled`, args.enabled ?? true),
    policy,
    ...resolveServiceSettings(field, args, {
      image: DEFAULT_SOCKET_PROXY_IMAGE,
      cpus: 0.15,
      memoryMiB: 128,
      minMemoryMiB: 16,
      containerName: "socket-proxy",
      networkName: "docker_api",
    }),
  };
}
