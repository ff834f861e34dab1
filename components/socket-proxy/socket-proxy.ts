import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type * as command from "@pulumi/command";
import {
  CanaryArgs,
  ResolvedServiceSettings,
  dockerService,
  resolveCanary,
  resolveServiceSettings,
} from "../docker-service/docker-service";
import {
  ResolvedProxyPolicy,
  SOCKET_PROXY_HEALTH_PORT,
  SOCKET_PROXY_PORT,
  SocketProxyPolicy,
  renderSocketProxyConfig,
  resolveProxyPolicy,
} from "./render";
import {
  checkBoolean,
  checkKnownKeys,
  checkPlainObject,
  rethrowAsResourceError,
} from "../core/validate";
import { keysOf } from "../core/keys";

export const SOCKET_PROXY_TYPE = "hardened-docker:docker:SocketProxy";

/**
 * A stock haproxy image (Alpine variant: its busybox `wget` runs the health check), pinned to
 * an exact release. Pin a digest too (`…@sha256:<digest>`) once you have pulled it: tags can
 * move, digests cannot.
 */
export const DEFAULT_SOCKET_PROXY_IMAGE = "docker.io/library/haproxy:3.2.9-alpine";
/** A small tmpfs, the only writable path in the container: the config is written there. */
export const SOCKET_PROXY_RUN_DIR = "/run/socket-proxy";
export const SOCKET_PROXY_CONFIG_PATH = `${SOCKET_PROXY_RUN_DIR}/haproxy.cfg`;
/** The environment variable carrying the rendered config into the container. */
export const SOCKET_PROXY_CONFIG_ENV = "HD_SOCKET_PROXY_CONFIG";
/** The container's entrypoint: write the config from the environment, then become haproxy. */
export const SOCKET_PROXY_START = `umask 077 && printf '%s' "$${SOCKET_PROXY_CONFIG_ENV}" > ${SOCKET_PROXY_CONFIG_PATH} && exec haproxy -db -f ${SOCKET_PROXY_CONFIG_PATH}`;

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

const SETTINGS_KEYS = keysOf<Omit<SocketProxyArgs, "canary">>()({
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

/**
 * The only container that touches the Docker socket: stock haproxy with the rendered,
 * deny-by-default allowlist, on an internal network (no route out, no published port),
 * socket bound read-only, read-only rootfs, no capabilities, CPU and memory limits.
 *
 * It runs as container root on purpose: under rootless Docker, container root is the
 * service user on the host (the socket's owner); any other container user maps to a
 * subordinate uid that cannot open the socket. `:ro` on the socket bind stops writes to the
 * socket file, not API calls: the allowlist is what limits those.
 *
 * The config travels with the container, in its environment: the entrypoint writes it to a
 * small tmpfs and execs haproxy. No file is left on the host, and it works with a read-only
 * rootfs (the provider's `uploads` does not: Docker refuses to extract into a read-only
 * rootfs, measured on the test VM). The config holds no secret; `docker inspect` shows it.
 */
export class SocketProxy extends pulumi.ComponentResource {
  readonly network: docker.Network;
  readonly image: docker.RemoteImage;
  readonly container: docker.Container;
  /** The canary step, when `canary` is set. */
  readonly canary?: command.remote.Command;
  /**
   * `tcp://<containerName>:2375`, reachable from containers on the network. An output of the
   * container: whatever uses it waits until the proxy runs (and is healthy).
   */
  readonly endpoint: pulumi.Output<string>;
  readonly networkName: string;
  /** The rendered haproxy configuration. */
  readonly config: string;

  constructor(name: string, args: SocketProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super(SOCKET_PROXY_TYPE, name, {}, opts);
    const { canary: canaryArgs, ...settings } = args;
    const { s, canary } = rethrowAsResourceError(this, () => ({
      s: resolveSocketProxy(settings),
      canary: resolveCanary("socketProxy.canary", canaryArgs),
    }));
    this.config = renderSocketProxyConfig(s.policy);
    this.networkName = s.networkName;
    ({
      network: this.network,
      image: this.image,
      container: this.container,
      canary: this.canary,
    } = dockerService(this, name, {
      role: "socket-proxy",
      ...(canary ? { canary } : {}),
      image: s.image,
      containerName: s.containerName,
      networkName: s.networkName,
      internal: true,
      aliases: [s.containerName],
      cpus: s.cpus,
      memoryMiB: s.memoryMiB,
      // generous timeout and start period: a probe is an exec in the container, which took
      // seconds on a loaded, emulated test VM (with 3 s, becoming healthy took up to 115 s there)
      healthcheck: {
        tests: [
          "CMD",
          "wget",
          "-q",
          "-O",
          "/dev/null",
          `http://127.0.0.1:${SOCKET_PROXY_HEALTH_PORT}/healthz`,
        ],
        interval: "10s",
        timeout: "10s",
        retries: 3,
        startPeriod: "30s",
      },
      container: {
        user: "0:0",
        entrypoints: ["/bin/sh", "-c", SOCKET_PROXY_START],
        envs: [`${SOCKET_PROXY_CONFIG_ENV}=${this.config}`],
        tmpfs: { [SOCKET_PROXY_RUN_DIR]: "rw,noexec,nosuid,nodev,size=1m,mode=0700" },
        mounts: [
          {
            type: "bind",
            source: args.dockerSocket,
            target: "/var/run/docker.sock",
            readOnly: true,
          },
        ],
      },
    }));
    this.endpoint = this.container.name.apply((n) => `tcp://${n}:${SOCKET_PROXY_PORT}`);
    this.registerOutputs({ endpoint: this.endpoint, networkName: this.networkName });
  }
}
