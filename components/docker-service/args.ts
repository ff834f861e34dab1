/**
 * The shape every container the library runs shares: its own network, its image (pulled,
 * kept on the host), and one locked-down container on that network: read-only rootfs, no
 * capabilities, `no-new-privileges`, CPU and memory limits (no swap on top), restarted
 * always, replaced (not updated) when its spec changes, and waited on until healthy.
 */
import type { ConnectionArgs } from "../core/connection";
import { InvalidArgument, checkDockerName, checkImageRef, checkNumber } from "../core/validate";
/**
 * The shape every container the library runs shares: its own network, its image (pulled,
 * kept on the host), and one locked-down container on that network: read-only rootfs, no
 * capabilities, `no-new-privileges`, CPU and memory limits (no swap on top), restarted
 * always, replaced (not updated) when its spec changes, and waited on until healthy.
 */

/** The settings every library container exposes to users. */
export interface ServiceSettings {
  readonly image?: string;
  /** CPU limit in cores. */
  readonly cpus?: number;
  /** Memory limit (no swap on top). */
  readonly memoryMiB?: number;
  /** Also its DNS name on its networks. */
  readonly containerName?: string;
  readonly networkName?: string;
}

export type ResolvedServiceSettings = Required<ServiceSettings>;

/** Validates `ServiceSettings` under `field`, filling in `defaults`. */
export function resolveServiceSettings(
  field: string,
  args: ServiceSettings,
  defaults: ResolvedServiceSettings & { readonly minMemoryMiB: number },
): ResolvedServiceSettings {
  const memoryMiB = checkNumber(
    `${field}.memoryMiB`,
    args.memoryMiB ?? defaults.memoryMiB,
    defaults.minMemoryMiB,
    65536,
  );
  if (!Number.isInteger(memoryMiB))
    throw new InvalidArgument(`${field}.memoryMiB`, memoryMiB, "a whole number of MiB");
  return {
    image: checkImageRef(`${field}.image`, args.image ?? defaults.image),
    cpus: checkNumber(`${field}.cpus`, args.cpus ?? defaults.cpus, 0.01, 64),
    memoryMiB,
    containerName: checkDockerName(
      `${field}.containerName`,
      args.containerName ?? defaults.containerName,
    ),
    networkName: checkDockerName(`${field}.networkName`, args.networkName ?? defaults.networkName),
  };
}

/**
 * `canary` of `SocketProxy` and `Traefik`: before a change replaces the container (the old one
 * goes first: its name is fixed), the new spec runs once beside it, and the change stops there,
 * with the old container serving, when it does not pass its health check.
 */
export interface CanaryArgs {
  /** The host's admin login, as for the host steps. */
  readonly connection: ConnectionArgs;
  /** The service user whose rootless daemon runs the container. */
  readonly user: string;
  /** Seconds the new spec gets to pass its health check. @default 120 */
  readonly timeoutSeconds?: number;
}

/** How long `wait` gives a new container to turn healthy, and the canary by default. */
export const HEALTHY_TIMEOUT_SECONDS = 120;
