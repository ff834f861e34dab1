import type * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../core/connection";
import { DaemonConfig, renderDaemonJson } from "./daemon-json";
import { PortDriver } from "./unit";
import { InstallMethod } from "./script";
import {
  InvalidArgument,
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkOneOf,
  checkPlainObject,
  checkSha256,
  checkVersion,
} from "../core/validate";
import { keysOf } from "../core/keys";

export interface DockerSettings {
  /**
   * `distro`: the distribution's packages (Debian/Ubuntu docker.io + rootlesskit, Fedora
   * moby-engine). `docker-repo`: Docker's repository (docker-ce + docker-ce-rootless-extras).
   * `static`: Docker's static binaries at a pinned `version`, checked against `sha256` and
   * `rootlessExtrasSha256`.
   * @default "distro"
   */
  readonly install?: InstallMethod;
  /** Engine version: required for `static`, optional pin for `docker-repo`. */
  readonly version?: string;
  /** SHA-256 of `docker-<version>.tgz` (static only, required there). */
  readonly sha256?: string;
  /** SHA-256 of `docker-rootless-extras-<version>.tgz` (static only, required there). */
  readonly rootlessExtrasSha256?: string;
  /**
   * Keys of the rootless daemon's daemon.json, merged over the defaults.
   * @default { "log-driver": "json-file", "log-opts": { "max-size": "10m", "max-file": "3" }, "no-new-privileges": true } (icc stays Docker's default, on)
   */
  readonly daemonConfig?: DaemonConfig;
  /**
   * Sets `net.ipv4.ip_unprivileged_port_start` so rootless containers can publish ports
   * from this number (80 lets Traefik bind 80/443). Host-wide: any user may then bind them.
   * @default unset: the kernel default (1024) stays
   */
  readonly unprivilegedPortStart?: number;
  /**
   * rootlesskit port driver. `slirp4netns` keeps client source IPs (what access logs and IP
   * allowlists need); `builtin` is faster but every client appears as the gateway.
   * @default "slirp4netns"
   */
  readonly portDriver?: PortDriver;
  /**
   * Stop and mask the rootful docker.service, docker.socket and containerd.service and remove
   * /var/run/docker.sock, so nothing falls back to a root daemon. Destroy restores them.
   * @default true
   */
  readonly disableRootfulDaemon?: boolean;
  /** How long to wait for the rootless daemon to answer. @default 180 */
  readonly startTimeoutSeconds?: number;
}

export interface RootlessDockerArgs extends DockerSettings {
  readonly connection: ConnectionArgs;
  /** The service user that runs the daemon (must exist, with linger on). */
  readonly user: string;
  /** Its uid (for the socket path in `dockerHost`). */
  readonly uid: pulumi.Input<number>;
  /**
   * Also run the host-wide steps: packages, cgroup delegation, sysctl, kernel modules, the
   * rootful daemon off. A host's further tenants share them (false): their daemons get only
   * daemon.json, the unit and the readiness check, and a check that their user manager has
   * the delegated controllers. Pass the same install settings (a new Docker version restarts
   * every daemon). @default true
   */
  readonly hostWide?: boolean;
  /** Kernel modules the host's other daemons need loaded (host-wide steps). @default none */
  readonly extraKernelModules?: readonly string[];
}

export interface ResolvedDockerSettings {
  readonly install: InstallMethod;
  readonly version?: string;
  readonly sha256?: string;
  readonly rootlessExtrasSha256?: string;
  readonly daemonJson: string;
  /** Kernel modules the daemon config needs loaded at boot (br_netfilter for icc: false). */
  readonly kernelModules: readonly string[];
  readonly unprivilegedPortStart?: number;
  readonly portDriver: PortDriver;
  readonly disableRootfulDaemon: boolean;
  readonly startTimeoutSeconds: number;
}

export const DOCKER_KEYS = keysOf<DockerSettings>()({
  install: true,
  version: true,
  sha256: true,
  rootlessExtrasSha256: true,
  daemonConfig: true,
  unprivilegedPortStart: true,
  portDriver: true,
  disableRootfulDaemon: true,
  startTimeoutSeconds: true,
});

/**
 * The settings a host's further tenants take from the host (one install, one kernel): every
 * `DockerSettings` key but the daemon's own, which each tenant sets for itself, and the
 * rootful daemon's, which is host-wide. The compiler makes a new key land in one of the two.
 */
export const SHARED_DOCKER_KEYS = keysOf<
  Omit<DockerSettings, "daemonConfig" | "portDriver" | "disableRootfulDaemon">
>()({
  install: true,
  version: true,
  sha256: true,
  rootlessExtrasSha256: true,
  startTimeoutSeconds: true,
  unprivilegedPortStart: true,
});

/** What `RootlessDockerArgs` adds to `DockerSettings`. */
export const ARGS_KEYS = keysOf<Omit<RootlessDockerArgs, keyof DockerSettings>>()({
  connection: true,
  user: true,
  uid: true,
  hostWide: true,
  extraKernelModules: true,
});

export function resolveDockerSettings(
  args: DockerSettings,
  field = "docker",
): ResolvedDockerSettings {
  const a = checkPlainObject(field, args);
  checkKnownKeys(field, a, [...DOCKER_KEYS, ...ARGS_KEYS]);
  const install = checkOneOf(`${field}.install`, args.install ?? "distro", [
    "distro",
    "docker-repo",
    "static",
  ] as const);
  const version =
    args.version === undefined ? undefined : checkVersion(`${field}.version`, args.version);
  const sha256 =
    args.sha256 === undefined ? undefined : checkSha256(`${field}.sha256`, args.sha256);
  const extras =
    args.rootlessExtrasSha256 === undefined
      ? undefined
      : checkSha256(`${field}.rootlessExtrasSha256`, args.rootlessExtrasSha256);
  if (install === "static") {
    if (!version)
      throw new InvalidArgument(
        `${field}.version`,
        undefined,
        "a pinned version for install: static",
        "Set e.g. version: 27.5.1.",
      );
    if (!sha256)
      throw new InvalidArgument(
        `${field}.sha256`,
        undefined,
        "the SHA-256 of docker-<version>.tgz for install: static",
        "Refusing to run unverified binaries as the daemon.",
      );
    if (!extras)
      throw new InvalidArgument(
        `${field}.rootlessExtrasSha256`,
        undefined,
        "the SHA-256 of docker-rootless-extras-<version>.tgz for install: static",
      );
  } else {
    if (install === "distro" && version) {
      throw new InvalidArgument(
        `${field}.version`,
        version,
        "unset for install: distro (the distribution decides)",
        "Use install: docker-repo or static to pin a version.",
      );
    }
    if (sha256 || extras) {
      throw new InvalidArgument(
        sha256 ? `${field}.sha256` : `${field}.rootlessExtrasSha256`,
        sha256 ?? extras,
        "unset unless install is static",
      );
    }
  }
  const daemonJson = renderDaemonJson(
    (args.daemonConfig ?? {}) as DaemonConfig,
    `${field}.daemonConfig`,
  );
  const unprivilegedPortStart =
    args.unprivilegedPortStart === undefined
      ? undefined
      : checkInteger(`${field}.unprivilegedPortStart`, args.unprivilegedPortStart, 0, 1024);
  // icc: false makes dockerd restrict the default bridge with br_netfilter, which a rootless
  // daemon cannot modprobe: measured on the test VM, it then fails to start after a reboot.
  const kernelModules =
    (JSON.parse(daemonJson) as DaemonConfig).icc === false ? ["br_netfilter"] : [];
  return {
    install,
    version,
    kernelModules,
    sha256,
    rootlessExtrasSha256: extras,
    daemonJson,
    unprivilegedPortStart,
    portDriver: checkOneOf(`${field}.portDriver`, args.portDriver ?? "slirp4netns", [
      "builtin",
      "slirp4netns",
    ] as const),
    disableRootfulDaemon: checkBoolean(
      `${field}.disableRootfulDaemon`,
      args.disableRootfulDaemon ?? true,
    ),
    startTimeoutSeconds: checkInteger(
      `${field}.startTimeoutSeconds`,
      args.startTimeoutSeconds ?? 180,
      10,
      3600,
    ),
  };
}
