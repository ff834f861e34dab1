/**
 * The shape every container the library runs shares: its own network, its image (pulled,
 * kept on the host), and one locked-down container on that network: read-only rootfs, no
 * capabilities, `no-new-privileges`, CPU and memory limits (no swap on top), restarted
 * always, replaced (not updated) when its spec changes, and waited on until healthy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import { hostCommand } from "../core/host-command";
import { ROLE_LABEL, SPEC_LABEL } from "../core/labels";
import { CanarySpec, canaryCreateScript, canaryDeleteScript, specHash } from "./canary";
import { CanaryArgs, HEALTHY_TIMEOUT_SECONDS } from "./args";
/**
 * The shape every container the library runs shares: its own network, its image (pulled,
 * kept on the host), and one locked-down container on that network: read-only rootfs, no
 * capabilities, `no-new-privileges`, CPU and memory limits (no swap on top), restarted
 * always, replaced (not updated) when its spec changes, and waited on until healthy.
 */
import { HostConnection, resolveConnection } from "../core/connection";
import { checkInteger, checkKnownKeys, checkLinuxName, checkPlainObject } from "../core/validate";
import { keysOf } from "../core/keys";
export { HEALTHY_TIMEOUT_SECONDS } from "./args";
export { resolveServiceSettings } from "./args";
export type { ServiceSettings, ResolvedServiceSettings, CanaryArgs } from "./args";

export { ROLE_LABEL } from "../core/labels";

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
  /** Run a canary of each new spec first (a `<name>-canary` host step). @default none */
  readonly canary?: CanaryHost;
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
  /** The step that runs a new spec once before the container is replaced, when asked for. */
  readonly canary?: command.remote.Command;
}

/**
 * Every library container: read-only rootfs, no capabilities, no new privileges, restarted.
 * The canary runs with the same (but the restart policy).
 */
const LOCKED_DOWN = {
  readOnly: true,
  capabilities: { drops: ["ALL"] },
  securityOpts: ["no-new-privileges:true"],
  restart: "always",
};

/** `["CMD", ...argv]` without `CMD`: the canary runs it with `docker exec`, no shell. */
function healthExec(h: docker.types.input.ContainerHealthcheck): string[] {
  const tests = h.tests as string[];
  if (tests[0] !== "CMD")
    throw new Error(`dockerService: health checks are exec form ("CMD", ...), not ${tests[0]}`);
  return tests.slice(1);
}

/** Seconds of a Docker duration in whole seconds or minutes (`10s`, `2m`). */
export function durationSeconds(d: string): number {
  const m = /^(\d+)(s|m)$/.exec(d);
  if (!m) throw new Error(`dockerService: ${d} is not a duration in s or m`);
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
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
  const c = spec.container;
  // every input of the container but its labels, resolved: what the canary runs and the spec
  // label's hash covers
  const resolved = pulumi
    .output({
      image: image.imageId,
      user: c.user,
      entrypoints: c.entrypoints,
      command: c.command,
      envs: c.envs,
      tmpfs: c.tmpfs,
      mounts: c.mounts,
      ports: c.ports,
      network: network.name,
      extraNetworks: spec.extraNetworks ?? [],
    })
    .apply((v): CanarySpec => ({
      role: spec.role,
      user: spec.canary?.user ?? "",
      containerName: spec.containerName,
      image: v.image,
      ...(v.user ? { containerUser: v.user } : {}),
      ...(v.entrypoints ? { entrypoint: v.entrypoints } : {}),
      ...(v.command ? { command: v.command } : {}),
      ...(v.envs ? { env: v.envs } : {}),
      ...(v.tmpfs ? { tmpfs: v.tmpfs } : {}),
      ...(v.mounts
        ? {
            mounts: v.mounts.map((m) => {
              if (m.type !== "bind")
                throw new Error(
                  `dockerService: the canary reproduces bind mounts only, not ${m.type}`,
                );
              return { source: m.source ?? "", target: m.target, readOnly: m.readOnly ?? false };
            }),
          }
        : {}),
      lockdown: LOCKED_DOWN,
      cpus: String(spec.cpus),
      memoryMiB: spec.memoryMiB,
      health: healthExec(spec.healthcheck),
      healthTimeoutSeconds: durationSeconds(String(spec.healthcheck.timeout ?? "30s")),
      timeoutSeconds: spec.canary?.timeoutSeconds ?? HEALTHY_TIMEOUT_SECONDS,
      rest: {
        ports: v.ports ?? [],
        network: v.network,
        aliases: spec.aliases ?? [],
        extraNetworks: v.extraNetworks,
        internal: spec.internal,
        healthcheck: spec.healthcheck,
      },
    }));
  const labels = pulumi
    .all([spec.labels ?? [], resolved])
    .apply(([l, r]) => [
      { label: ROLE_LABEL, value: spec.role },
      { label: SPEC_LABEL, value: specHash(r) },
      ...l,
    ]);
  const canary = spec.canary
    ? hostCommand(
        `${name}-canary`,
        spec.canary.connection,
        {
          step: `${spec.role} canary`,
          create: resolved.apply(canaryCreateScript),
          delete: canaryDeleteScript(spec.canary.user, spec.containerName),
        },
        { parent, dependsOn: [image, network] },
      )
    : undefined;
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
      ...LOCKED_DOWN,
      cpus: String(spec.cpus),
      memory: spec.memoryMiB,
      memorySwap: spec.memoryMiB,
      mustRun: true,
      healthcheck: spec.healthcheck,
      labels,
      wait: true,
      waitTimeout: HEALTHY_TIMEOUT_SECONDS,
    },
    // a fixed name: the old container must go before the new one can be created; the canary
    // (when asked for) has proven the new spec turns healthy before that
    { parent, dependsOn: [network, ...(canary ? [canary] : [])], deleteBeforeReplace: true },
  );
  return { network, image, container, ...(canary ? { canary } : {}) };
}

/**
 * Where a canary of a new spec runs before the container is replaced (see
 * `canaryCreateScript`): the host's admin login and the service user whose daemon it is.
 */
export interface CanaryHost {
  readonly connection: HostConnection;
  readonly user: string;
  /** How long the canary gets to pass the health check. @default 120 */
  readonly timeoutSeconds?: number;
}

/** Validates `CanaryArgs` under `field`; undefined (no canary) stays undefined. */
export function resolveCanary(field: string, args: CanaryArgs | undefined): CanaryHost | undefined {
  if (args === undefined) return undefined;
  const a = checkPlainObject(field, args);
  checkKnownKeys(
    field,
    a,
    keysOf<CanaryArgs>()({ connection: true, user: true, timeoutSeconds: true }),
  );
  return {
    connection: resolveConnection(args.connection, `${field}.connection`),
    user: checkLinuxName(`${field}.user`, args.user),
    timeoutSeconds: checkInteger(
      `${field}.timeoutSeconds`,
      args.timeoutSeconds ?? HEALTHY_TIMEOUT_SECONDS,
      5,
      3600,
    ),
  };
}
