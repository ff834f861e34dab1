/**
 * hardened-docker's policy pack: what must never reach a host, refused at `pulumi preview`
 * before review (`pulumi preview --policy-pack policy`). Every policy is mandatory. Policies
 * read resource inputs by type token, so they also judge resources the library did not create.
 *
 * A container may keep a writable rootfs or its capabilities only with a reason, given as a
 * label (it then shows in every diff): `dev.hardened-docker.exception.read-write-rootfs` and
 * `dev.hardened-docker.exception.capabilities`.
 */
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { exposesApiSocket } from "../components/socket-proxy/exposure";
import { ROLES, ROLE_LABEL, hasRole } from "../components/core/labels";

export const CONTAINER = "docker:index/container:Container";
export const REMOTE_COMMAND = "command:remote:Command";
export const COPY_TO_REMOTE = "command:remote:CopyToRemote";
export const DOCKER_PROVIDER = "pulumi:providers:docker";
export { ROLE_LABEL };
export const EXCEPTION_LABEL = "dev.hardened-docker.exception.";

type Report = (message: string, urn?: string) => void;
interface Mount {
  type?: string;
  source?: string;
  target?: string;
  readOnly?: boolean;
}
interface Volume {
  hostPath?: string;
  containerPath?: string;
  readOnly?: boolean;
}
interface ContainerProps {
  image?: string;
  mounts?: Mount[];
  volumes?: Volume[];
  privileged?: boolean;
  memory?: number;
  cpus?: string;
  cpuQuota?: number;
  readOnly?: boolean;
  capabilities?: { drops?: string[]; adds?: string[] };
  labels?: { label: string; value: string }[];
  command?: string[];
  entrypoints?: string[];
  envs?: string[];
}

function labels(c: ContainerProps): Record<string, string> {
  return Object.fromEntries((c.labels ?? []).map((l) => [l.label, l.value]));
}
// the rule verify applies on the host, without the uid (unknown at preview): any user's
// runtime directory counts
const isSocket = (path: string | undefined) => !!path && exposesApiSocket(path.trim());

function forContainers(check: (c: ContainerProps, report: Report) => void) {
  return (args: ResourceValidationArgs, report: Report) => {
    if (args.type === CONTAINER) check(args.props as ContainerProps, report);
  };
}

export const noDockerSocketMount: ResourceValidationPolicy = {
  name: "no-docker-socket-mount",
  description:
    "Only the socket proxy mounts the Docker socket, and then read-only: the socket is root on the daemon.",
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    const proxy = hasRole(labels(c), ROLES.socketProxy);
    const binds = [
      ...(c.mounts ?? []).map((m) => ({ source: m.source, readOnly: m.readOnly })),
      ...(c.volumes ?? []).map((v) => ({ source: v.hostPath, readOnly: v.readOnly })),
    ].filter((b) => isSocket(b.source));
    for (const b of binds) {
      if (!proxy)
        report(
          `mounts the Docker socket ${b.source}: only the socket proxy may; reach Docker through tcp://socket-proxy:2375 instead`,
        );
      else if (b.readOnly !== true)
        report(`the socket proxy mounts ${b.source} writable: mount it read-only`);
    }
  }),
};

export const noPrivilegedContainer: ResourceValidationPolicy = {
  name: "no-privileged-container",
  description: "No container runs privileged.",
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    if (c.privileged === true)
      report("runs privileged: remove privileged and add only what it needs");
  }),
};

export const containerResourceLimits: ResourceValidationPolicy = {
  name: "container-resource-limits",
  description: "Every container has a memory limit and a CPU limit.",
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    if (!(typeof c.memory === "number" && c.memory > 0))
      report("has no memory limit: set memory (MiB)");
    const cpus = Number(c.cpus ?? 0);
    if (!(cpus > 0 || (c.cpuQuota ?? 0) > 0)) report('has no CPU limit: set cpus (e.g. "0.5")');
  }),
};

export const containerReadOnlyRootfs: ResourceValidationPolicy = {
  name: "container-read-only-rootfs",
  description: `Every container has a read-only root filesystem, unless the label ${EXCEPTION_LABEL}read-write-rootfs gives the reason.`,
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    const reason = labels(c)[`${EXCEPTION_LABEL}read-write-rootfs`]?.trim();
    if (c.readOnly !== true && !reason)
      report(
        `has a writable root filesystem: set readOnly: true (with tmpfs for scratch paths), or give the reason in the label ${EXCEPTION_LABEL}read-write-rootfs`,
      );
  }),
};

export const containerDropsCapabilities: ResourceValidationPolicy = {
  name: "container-drops-capabilities",
  description: `Every container drops all capabilities, unless the label ${EXCEPTION_LABEL}capabilities gives the reason.`,
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    const reason = labels(c)[`${EXCEPTION_LABEL}capabilities`]?.trim();
    const drops = (c.capabilities?.drops ?? []).map((d) => d.toUpperCase());
    if (!drops.includes("ALL") && !reason)
      report(
        `keeps Docker's default capabilities: set capabilities.drops: ["ALL"] (and adds only what it needs), or give the reason in the label ${EXCEPTION_LABEL}capabilities`,
      );
  }),
};

export const traefikNotExposedByDefault: ResourceValidationPolicy = {
  name: "traefik-not-exposed-by-default",
  description:
    "Traefik never exposes containers by default (its own default is true): providers.docker.exposedByDefault=false.",
  enforcementLevel: "mandatory",
  validateResource: forContainers((c, report) => {
    const traefik = hasRole(labels(c), ROLES.traefik) || /(^|\/)traefik(:|@|$)/.test(c.image ?? "");
    if (!traefik) return;
    const words = [...(c.entrypoints ?? []), ...(c.command ?? [])];
    const flag = words
      .map((w) => /^--providers\.docker\.exposedByDefault(?:=(.*))?$/i.exec(w))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => (m[1] ?? "true").toLowerCase());
    const env = (c.envs ?? [])
      .map((e) => /^TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT=(.*)$/i.exec(e)?.[1]?.toLowerCase())
      .filter((v): v is string => v !== undefined);
    const values = [...flag, ...env];
    if (values.includes("true") || !values.includes("false"))
      report(
        "Traefik would expose every container: pass --providers.docker.exposedByDefault=false and opt containers in with traefik.enable=true",
      );
  }),
};

export const sshHostKeyPinned: ResourceValidationPolicy = {
  name: "ssh-host-key-pinned",
  description:
    "Every SSH connection pins the host's key: remote commands set connection.hostKey, the Docker provider's ssh checks it strictly.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type === REMOTE_COMMAND || args.type === COPY_TO_REMOTE) {
      const conn = (args.props.connection ?? {}) as { hostKey?: string; host?: string };
      if (!conn.hostKey || !String(conn.hostKey).trim())
        report(
          `connects to ${conn.host ?? "a host"} without a pinned host key: set connection.hostKey (ssh-keyscan -t ed25519 <host>, checked out of band)`,
        );
    }
    if (args.type === DOCKER_PROVIDER && /^ssh:\/\//.test(String(args.props.host ?? ""))) {
      const raw = args.props.sshOpts as unknown;
      const opts =
        (typeof raw === "string" ? (JSON.parse(raw) as string[]) : (raw as string[])) ?? [];
      const strict = opts.some((o) => /^StrictHostKeyChecking=yes$/i.test(o));
      const lax = opts.some((o) => /^StrictHostKeyChecking=(no|accept-new|off)$/i.test(o));
      if (!strict || lax)
        report(
          `the Docker provider reaches ${String(args.props.host)} without strict host key checking: set sshOpts StrictHostKeyChecking=yes with the key pinned (KnownHostsCommand or UserKnownHostsFile)`,
        );
    }
  },
};

export const appUnitNotRoot: ResourceValidationPolicy = {
  name: "app-unit-not-root",
  description: "No system unit written to a host runs its service as root (User= set, not root).",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== REMOTE_COMMAND) return;
    const create = String(args.props.create ?? "");
    const unit = args.props.stdin;
    if (!create.includes("unit_dir=/etc/systemd/system") || typeof unit !== "string") return;
    if (!/^\[Service\]$/m.test(unit)) return;
    const user = /^User=(.*)$/m.exec(unit)?.[1]?.trim();
    if (!user || user === "root" || user === "0")
      report(
        `writes a system unit whose service runs as ${user ? user : "root (no User=)"}: run it as the service user`,
      );
  },
};

export const policies: ResourceValidationPolicy[] = [
  noDockerSocketMount,
  noPrivilegedContainer,
  containerResourceLimits,
  containerReadOnlyRootfs,
  containerDropsCapabilities,
  traefikNotExposedByDefault,
  sshHostKeyPinned,
  appUnitNotRoot,
];
