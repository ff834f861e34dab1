/** Checks of the containers: socket mounts, privileged, the socket proxy and Traefik. */
import { ROLES, ROLE_LABEL, hasRole } from "../core/labels";
import { rootlessDockerSocket } from "../rootless-docker/unit";
import { exposesApiSocket } from "./exposure";
import { SOCKET_PROXY_PORT } from "./render";
import { SOCKET_PROXY_CONFIG_ENV, SOCKET_PROXY_START } from "./render";
import type { UserExpectation } from "../verify/expected";
import type { ContainerFacts, HostFacts } from "../verify/facts";
import { Check, fail, pass } from "../verify/check";
import { PORTS_ID, portsCheck } from "../systemd-unit/checks-limits";

const NEEDS_API = ["docker.rootless"];
const PROXY_CHECK_TITLES = (p: {
  containerName: string;
  networkName: string;
}): [string, string][] => [
  ["socket-proxy.running", `The socket proxy ${p.containerName} runs`],
  ["socket-proxy.network", `The proxy is only on the internal network ${p.networkName}`],
  ["socket-proxy.refuses-writes", "The proxy answers reads and refuses POST /containers/create"],
  ["socket-proxy.config", "The proxy runs the rendered allowlist"],
];
const titleOf = (titles: [string, string][]) => (id: string) =>
  (titles.find(([i]) => i === id) as [string, string])[1];
const TRAEFIK_CHECK_TITLES: [string, string][] = [
  ["traefik.no-socket", "Traefik has no socket mount"],
  ["traefik.endpoint", "Traefik reaches Docker through the proxy"],
];
const name = (c: ContainerFacts) => c.Name.replace(/^\//, "");

/**
 * Mounts that expose a Docker or containerd API socket: the socket itself or a directory
 * holding one, by path, and, when the probe read them (`ids`), by device and inode: a hard
 * link to a socket, or another path to it or to a directory above it, is the same inode.
 * `otherUids`: the host's other service users (tenants), whose runtime directories count too.
 */
export function socketMounts(
  c: ContainerFacts,
  uid: number | undefined,
  ids?: HostFacts["mountIds"],
  otherUids: readonly number[] = [],
) {
  const socketIds = new Set(ids?.sockets.values() ?? []);
  return (c.Mounts ?? []).filter((m) => {
    const id = ids?.sources.get(m.Source ?? "");
    return (
      exposesApiSocket(m.Source ?? "", uid) ||
      otherUids.some((other) => exposesApiSocket(m.Source ?? "", other)) ||
      (id !== undefined && socketIds.has(id))
    );
  });
}

/**
 * The checks of one service user's containers. `otherUids`: the uids of the host's other
 * service users (with tenants), whose sockets no container may mount either.
 */
export function containerChecks(
  f: HostFacts,
  e: UserExpectation,
  otherUids: readonly number[] = [],
): Check[] {
  const checks: Check[] = [];
  const all = f.containers;
  if (all === undefined) {
    // the same ids as on a host that answers, so reports stay comparable
    const why = `not checked: no container list (${f.containersError ?? "?"})`;
    const fix = "Get the user daemon answering (see docker.rootless), then verify again.";
    const ids: [string, string][] = [
      ["containers.socket-mounts", "Only the socket proxy mounts the Docker socket, read-only"],
      ["containers.privileged", "No privileged container"],
      ...(e.ports
        ? ([[PORTS_ID, `Containers publish host ports only in ${e.ports.from}-${e.ports.to}`]] as [
            string,
            string,
          ][])
        : []),
      ...(e.socketProxy ? PROXY_CHECK_TITLES(e.socketProxy) : []),
      ...(e.traefik ? TRAEFIK_CHECK_TITLES : []),
    ];
    return ids.map(([id, title]) => fail(id, title, why, fix, NEEDS_API));
  }
  const uid = f.user?.uid;
  const proxyName = e.socketProxy?.containerName;
  const isProxy = (c: ContainerFacts) =>
    proxyName !== undefined &&
    name(c) === proxyName &&
    hasRole(c.Config?.Labels, ROLES.socketProxy);
  const offenders: string[] = [];
  const seen: string[] = [];
  for (const c of all) {
    for (const m of socketMounts(c, uid, f.mountIds, otherUids)) {
      const desc = `${name(c)}: ${m.Source} -> ${m.Destination} (${m.RW ? "rw" : "ro"})`;
      seen.push(desc);
      if (!isProxy(c) || m.RW !== false) offenders.push(desc);
    }
  }
  checks.push(
    offenders.length === 0
      ? pass(
          "containers.socket-mounts",
          "Only the socket proxy mounts the Docker socket, read-only",
          seen.length ? seen.join("; ") : `no socket mount in ${all.length} containers`,
          NEEDS_API,
        )
      : fail(
          "containers.socket-mounts",
          "Only the socket proxy mounts the Docker socket, read-only",
          offenders.join("; "),
          `A container with the socket controls the daemon: remove it (sudo -u ${e.serviceUser} env DOCKER_HOST=unix://${rootlessDockerSocket(uid ?? 0)} docker rm -f ${offenders.map((o) => o.split(":")[0]).join(" ")}) and give it the proxy endpoint instead${proxyName ? ` (tcp://${proxyName}:${SOCKET_PROXY_PORT} on ${e.socketProxy?.networkName})` : ""}.`,
          NEEDS_API,
        ),
  );
  const privileged = all.filter((c) => c.HostConfig?.Privileged === true).map(name);
  checks.push(
    privileged.length === 0
      ? pass(
          "containers.privileged",
          "No privileged container",
          `${all.length} containers, none privileged`,
          NEEDS_API,
        )
      : fail(
          "containers.privileged",
          "No privileged container",
          `privileged: ${privileged.join(", ")}`,
          `Recreate ${privileged.join(", ")} without --privileged (add only the capabilities it needs).`,
          NEEDS_API,
        ),
  );
  const ports = portsCheck(f, e, all, NEEDS_API);
  if (ports) checks.push(ports);
  if (e.socketProxy) checks.push(...proxyChecks(f, e, all.find(isProxy)));
  if (e.traefik) checks.push(...traefikChecks(f, e, all, otherUids));
  return checks;
}

/** Why `proxy` is not the proxy the stack deployed, or undefined when it is (as far as seen). */
function notTheDeployedProxy(f: HostFacts, proxy: ContainerFacts): string | undefined {
  const entrypoint = proxy.Config?.Entrypoint ?? [];
  if (JSON.stringify(entrypoint) !== JSON.stringify(["/bin/sh", "-c", SOCKET_PROXY_START]))
    return `its entrypoint is ${JSON.stringify(entrypoint)}, not the rendered one`;
  const uid = f.user?.uid;
  const socketId =
    uid === undefined ? undefined : f.mountIds?.sockets.get(rootlessDockerSocket(uid));
  if (f.mountIds === undefined || socketId === undefined) return undefined; // not measured
  const mountsDaemon = (proxy.Mounts ?? []).some(
    (m) => f.mountIds?.sources.get(m.Source ?? "") === socketId && m.RW === false,
  );
  return mountsDaemon
    ? undefined
    : `it does not mount the daemon's socket (${rootlessDockerSocket(uid as number)}) read-only`;
}

function proxyChecks(f: HostFacts, e: UserExpectation, proxy: ContainerFacts | undefined): Check[] {
  const p = e.socketProxy as NonNullable<UserExpectation["socketProxy"]>;
  const title = titleOf(PROXY_CHECK_TITLES(p));
  const needs = ["socket-proxy.running"];
  if (!proxy || proxy.State?.Running !== true) {
    return [
      fail(
        "socket-proxy.running",
        title("socket-proxy.running"),
        proxy
          ? `${p.containerName} exists but is not running`
          : `no container ${p.containerName} labelled ${ROLE_LABEL}=${ROLES.socketProxy}`,
        "Apply the stack (pulumi up) and check docker logs " + p.containerName + ".",
        NEEDS_API,
      ),
    ];
  }
  // a name and a label are the user's to give: the deployed proxy also runs the rendered
  // entrypoint and mounts the daemon's own socket (same device and inode) read-only. Anything
  // else answering there is a decoy, and probing it would prove nothing.
  const decoy = notTheDeployedProxy(f, proxy);
  if (decoy) {
    return [
      fail(
        "socket-proxy.running",
        title("socket-proxy.running"),
        `${p.containerName} is not the deployed proxy: ${decoy}`,
        `Remove it and apply the stack (pulumi up) to re-create the proxy: docker rm -f ${p.containerName}.`,
        NEEDS_API,
      ),
    ];
  }
  const checks = [
    pass(
      "socket-proxy.running",
      title("socket-proxy.running"),
      `${p.containerName} running`,
      NEEDS_API,
    ),
  ];
  const nets = Object.keys(proxy.NetworkSettings?.Networks ?? {});
  const internal = f.networks?.find((n) => n.Name === p.networkName)?.Internal === true;
  const published = Object.entries(proxy.NetworkSettings?.Ports ?? {})
    .filter(([, b]) => Array.isArray(b) && b.length > 0)
    .map(([port]) => port);
  const netOk =
    nets.length === 1 && nets[0] === p.networkName && internal && published.length === 0;
  const netEvidence = `networks: ${nets.join(", ") || "(none)"}; ${p.networkName} internal: ${internal}; published: ${published.join(", ") || "none"}`;
  checks.push(
    netOk
      ? pass("socket-proxy.network", title("socket-proxy.network"), netEvidence, needs)
      : fail(
          "socket-proxy.network",
          title("socket-proxy.network"),
          netEvidence,
          `Disconnect it from other networks, unpublish its ports and make ${p.networkName} internal: re-create both with pulumi up --replace on the proxy's network and container.`,
          needs,
        ),
  );
  const probe = f.proxyProbe ?? {};
  const status = (line: string | undefined) => /^HTTP\/1\.[01] (\d{3})/.exec(line ?? "")?.[1];
  const ping = status(probe.GET);
  const create = status(probe.POST);
  const probeEvidence = `GET /_ping -> ${probe.GET || "no answer"}; POST /containers/create -> ${probe.POST || "no answer"}`;
  checks.push(
    ping === "200" && create === "403"
      ? pass(
          "socket-proxy.refuses-writes",
          title("socket-proxy.refuses-writes"),
          probeEvidence,
          needs,
        )
      : fail(
          "socket-proxy.refuses-writes",
          title("socket-proxy.refuses-writes"),
          probeEvidence,
          create !== undefined && create !== "403"
            ? "The proxy lets a write through: its configuration is not the rendered allowlist; re-create it (pulumi up --replace on the proxy container)."
            : `The proxy does not answer on :${SOCKET_PROXY_PORT}: see docker logs ${p.containerName} and its health (docker inspect ${p.containerName}).`,
          needs,
        ),
  );
  const env = (proxy.Config?.Env ?? []).find((v) => v.startsWith(`${SOCKET_PROXY_CONFIG_ENV}=`));
  const config = env?.slice(SOCKET_PROXY_CONFIG_ENV.length + 1);
  checks.push(
    config === p.config
      ? pass(
          "socket-proxy.config",
          title("socket-proxy.config"),
          `${SOCKET_PROXY_CONFIG_ENV} is as rendered`,
          needs,
        )
      : fail(
          "socket-proxy.config",
          title("socket-proxy.config"),
          config === undefined
            ? `no ${SOCKET_PROXY_CONFIG_ENV} in its environment`
            : `${SOCKET_PROXY_CONFIG_ENV} differs from the rendered configuration`,
          "The container was replaced or changed outside Pulumi: re-create it (pulumi up --replace on the proxy container).",
          needs,
        ),
  );
  return checks;
}

function traefikChecks(
  f: HostFacts,
  e: UserExpectation,
  all: readonly ContainerFacts[],
  otherUids: readonly number[],
): Check[] {
  const t = e.traefik as NonNullable<UserExpectation["traefik"]>;
  const title = titleOf(TRAEFIK_CHECK_TITLES);
  const c = all.find(
    (x) => name(x) === t.containerName && hasRole(x.Config?.Labels, ROLES.traefik),
  );
  if (!c) {
    return [
      fail(
        "traefik.endpoint",
        title("traefik.endpoint"),
        `no container ${t.containerName} labelled ${ROLE_LABEL}=${ROLES.traefik}`,
        "Apply the stack (pulumi up).",
        NEEDS_API,
      ),
    ];
  }
  const mounts = socketMounts(c, f.user?.uid, f.mountIds, otherUids);
  const args = [...(c.Config?.Cmd ?? []), ...(c.Args ?? [])];
  const endpoints = [...new Set(args.filter((a) => a.startsWith("--providers.docker.endpoint=")))];
  const want = `--providers.docker.endpoint=${t.endpoint}`;
  return [
    mounts.length === 0
      ? pass(
          "traefik.no-socket",
          title("traefik.no-socket"),
          `${t.containerName}: no Docker socket mounted`,
          NEEDS_API,
        )
      : fail(
          "traefik.no-socket",
          title("traefik.no-socket"),
          mounts.map((m) => `${m.Source} -> ${m.Destination}`).join("; "),
          `Re-create ${t.containerName} without the mount (pulumi up --replace on the Traefik container); it reads Docker through ${t.endpoint}.`,
          NEEDS_API,
        ),
    endpoints.length === 1 && endpoints[0] === want
      ? pass("traefik.endpoint", title("traefik.endpoint"), endpoints[0], NEEDS_API)
      : fail(
          "traefik.endpoint",
          title("traefik.endpoint"),
          endpoints.length
            ? endpoints.join(", ")
            : "no --providers.docker.endpoint (Traefik then uses the socket)",
          `Re-create ${t.containerName} with ${want} (pulumi up --replace on the Traefik container).`,
          NEEDS_API,
        ),
  ];
}
