import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type * as command from "@pulumi/command";
import { dockerService } from "../docker-service/docker-service";
import { resolveCanary } from "../docker-service/docker-service";
import { SOCKET_PROXY_HEALTH_PORT, SOCKET_PROXY_PORT, renderSocketProxyConfig } from "./render";
import { SocketProxyArgs, resolveSocketProxy } from "./args";
import { rethrowAsResourceError } from "../core/resource";
import { SOCKET_PROXY_RUN_DIR, SOCKET_PROXY_CONFIG_ENV, SOCKET_PROXY_START } from "./render";
import { ROLES } from "../core/labels";
export { DEFAULT_SOCKET_PROXY_IMAGE, resolveSocketProxy } from "./args";
export type { SocketProxySettings, SocketProxyArgs, ResolvedSocketProxy } from "./args";

export const SOCKET_PROXY_TYPE = "hardened-docker:docker:SocketProxy";

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
      role: ROLES.socketProxy,
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
