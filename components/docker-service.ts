/**
 * The shape every container the library runs shares: its own network, its image (pulled,
 * kept on the host), and one locked-down container on that network: read-only rootfs, no
 * capabilities, `no-new-privileges`, CPU and memory limits (no swap on top), restarted
 * always, replaced (not updated) when its spec changes, and waited on until healthy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { InvalidArgument, checkDockerName, checkImageRef, checkNumber } from "./validate";

/** Label every library container carries, so `verify` and policies can recognise it. */
export const ROLE_LABEL = "dev.hardened-docker.role";

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

export interface DockerServiceSpec {
  /** Value of the role label (`socket-proxy`, `traefik`). */
  readonly role: string;
  readonly image: string;
  readonly containerName: string;
  readonly networkName: string;
  /** An internal network has no route out and Docker publishes no port on it. */
  readonly internal: boolean;
  /** DNS aliases on the service's own network. @default none */
  readonly aliases?: readonly string[];
  /** Further networks to join (by name). @default none */
  readonly extraNetworks?: readonly pulumi.Input<string>[];
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly healthcheck: docker.types.input.ContainerHealthcheck;
  readonly labels?: pulumi.Input<docker.types.input.ContainerLabel[]>;
  /** The rest of the container: command, env, mounts, ports, user, tmpfs. */
  readonly container: Omit<
    docker.ContainerArgs,
    | "name"
    | "image"
    | "networksAdvanced"
    | "networkMode"
    | "readOnly"
    | "capabilities"
    | "securityOpts"
    | "cpus"
    | "memory"
    | "memorySwap"
    | "restart"
    | "healthcheck"
    | "labels"
    | "privileged"
  >;
}

export interface DockerService {
  readonly network: docker.Network;
  readonly image: docker.RemoteImage;
  readonly container: docker.Container;
}

/** Registers `<name>-network`, `<name>-image` and `<name>-container` under `parent`. */
export function dockerService(
  parent: pulumi.Resource,
  name: string,
  spec: DockerServiceSpec,
): DockerService {
  const network = new docker.Network(
    `${name}-network`,
    { name: spec.networkName, driver: "bridge", ...(spec.internal ? { internal: true } : {}) },
    { parent },
  );
  const image = new docker.RemoteImage(
    `${name}-image`,
    { name: spec.image, keepLocally: true },
    { parent },
  );
  const labels = pulumi
    .output(spec.labels ?? [])
    .apply((l) => [{ label: ROLE_LABEL, value: spec.role }, ...l]);
  const container = new docker.Container(
    `${name}-container`,
    {
      ...spec.container,
      name: spec.containerName,
      image: image.imageId,
      // no networkMode: the provider creates on the default bridge, then disconnects it and
      // connects these networks before the container starts
      networksAdvanced: [
        { name: network.name, ...(spec.aliases ? { aliases: [...spec.aliases] } : {}) },
        ...(spec.extraNetworks ?? []).map((n) => ({ name: n })),
      ],
      readOnly: true,
      capabilities: { drops: ["ALL"] },
      securityOpts: ["no-new-privileges:true"],
      cpus: String(spec.cpus),
      memory: spec.memoryMiB,
      memorySwap: spec.memoryMiB,
      restart: "always",
      mustRun: true,
      healthcheck: spec.healthcheck,
      labels,
      wait: true,
      waitTimeout: 120,
    },
    // a fixed name: the old container must go before the new one can be created
    { parent, dependsOn: [network], deleteBeforeReplace: true },
  );
  return { network, image, container };
}
