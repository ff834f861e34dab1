/**
 * TEST-ONLY: performs `@pulumi/docker` resources the way the provider does, for the engine
 * stand-in (engine.ts). Covers exactly the inputs the library uses; any other input is an
 * error (a spec field silently dropped would make the e2e prove less than it claims).
 *
 * Container create follows the provider: create (default bridge), disconnect the bridge,
 * connect each `networksAdvanced` network with its aliases, start, then with `wait` poll
 * until the health check reports healthy.
 */
import { DockerApiOverSsh } from "./docker-api";

const TYPES = {
  network: "docker:index/network:Network",
  image: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
} as const;

export function isDockerResource(type: string): boolean {
  return (Object.values(TYPES) as string[]).includes(type);
}

/** One resource the engine holds in state. */
export interface DockerStateEntry {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  /** The inputs it was created with (JSON), to tell unchanged from changed. */
  readonly inputs: string;
  readonly outputs: Record<string, unknown>;
  readonly provider: ProviderTarget;
  readonly keepLocally?: boolean;
}
/** Resources by `type::name`, in creation order. */
export type DockerState = Map<string, DockerStateEntry>;

export interface PerformedDocker {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly action: "created" | "replaced" | "unchanged";
  readonly seconds: number;
}

interface ProviderTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey?: string;
}

/** Parses a provider's `host` (ssh://user@host:port) and the key its sshOpts pin. */
export function providerTarget(inputs: Record<string, unknown>): ProviderTarget {
  const m = /^ssh:\/\/([^@]+)@(\[[^\]]+\]|[^:]+):(\d+)$/.exec(String(inputs.host));
  if (!m)
    throw new Error(`docker provider host is not ssh://user@host:port: ${String(inputs.host)}`);
  const raw = inputs.sshOpts;
  const opts = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? [])) as string[];
  const khc = opts.find((o) => o.startsWith("KnownHostsCommand="));
  const hostKey = khc ? khc.split(" ").slice(2, 4).join(" ") : undefined;
  if (!hostKey && !opts.includes("StrictHostKeyChecking=no"))
    throw new Error("docker provider pins no host key and does not opt out either");
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ""), port: Number(m[3]), hostKey };
}

const NS = { s: 1e9, ms: 1e6, m: 60e9, h: 3600e9 } as Record<string, number>;
function duration(v: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(v));
  if (!m) throw new Error(`bad duration ${String(v)}`);
  return Math.round(Number(m[1]) * NS[m[2]]);
}

const CONTAINER_INPUTS = new Set([
  "name",
  "image",
  "command",
  "entrypoints",
  "envs",
  "user",
  "labels",
  "healthcheck",
  "mounts",
  "readOnly",
  "capabilities",
  "securityOpts",
  "cpus",
  "memory",
  "memorySwap",
  "restart",
  "tmpfs",
  "ports",
  "networksAdvanced",
  "privileged",
  "wait",
  "waitTimeout",
  "mustRun",
]);

interface ContainerInputs {
  name: string;
  image: string;
  command?: string[];
  entrypoints?: string[];
  envs?: string[];
  user?: string;
  labels?: { label: string; value: string }[];
  healthcheck?: {
    tests: string[];
    interval?: string;
    timeout?: string;
    retries?: number;
    startPeriod?: string;
  };
  mounts?: { type: string; source: string; target: string; readOnly?: boolean }[];
  readOnly?: boolean;
  capabilities?: { drops?: string[]; adds?: string[] };
  securityOpts?: string[];
  cpus?: string;
  memory?: number;
  memorySwap?: number;
  restart?: string;
  tmpfs?: Record<string, string>;
  ports?: { internal: number; external: number; ip?: string; protocol?: string }[];
  networksAdvanced?: { name: string; aliases?: string[] }[];
  privileged?: boolean;
  wait?: boolean;
  waitTimeout?: number;
}

/** The Docker API create body for a container's inputs. */
export function containerCreateBody(c: ContainerInputs): Record<string, unknown> {
  const unknown = Object.keys(c).filter((k) => !CONTAINER_INPUTS.has(k));
  if (unknown.length)
    throw new Error(`engine: container inputs not performed: ${unknown.join(", ")}`);
  const ports = c.ports ?? [];
  const hc = c.healthcheck;
  return {
    Image: c.image,
    Cmd: c.command,
    Entrypoint: c.entrypoints,
    Env: c.envs,
    User: c.user,
    Labels: Object.fromEntries((c.labels ?? []).map((l) => [l.label, l.value])),
    ExposedPorts: Object.fromEntries(
      ports.map((p) => [`${p.internal}/${p.protocol ?? "tcp"}`, {}]),
    ),
    Healthcheck: hc && {
      Test: hc.tests,
      Interval: hc.interval ? duration(hc.interval) : 0,
      Timeout: hc.timeout ? duration(hc.timeout) : 0,
      StartPeriod: hc.startPeriod ? duration(hc.startPeriod) : 0,
      Retries: hc.retries ?? 0,
    },
    HostConfig: {
      Mounts: (c.mounts ?? []).map((m) => ({
        Type: m.type,
        Source: m.source,
        Target: m.target,
        ReadOnly: m.readOnly ?? false,
      })),
      ReadonlyRootfs: c.readOnly ?? false,
      CapDrop: c.capabilities?.drops,
      CapAdd: c.capabilities?.adds,
      SecurityOpt: c.securityOpts,
      NanoCpus: c.cpus ? Math.round(Number(c.cpus) * 1e9) : 0,
      Memory: (c.memory ?? 0) * 1024 * 1024,
      MemorySwap: c.memorySwap ? c.memorySwap * 1024 * 1024 : 0,
      RestartPolicy: { Name: c.restart ?? "no" },
      Tmpfs: c.tmpfs,
      PortBindings: Object.fromEntries(
        ports.map((p) => [
          `${p.internal}/${p.protocol ?? "tcp"}`,
          [{ HostIp: p.ip ?? "", HostPort: String(p.external) }],
        ]),
      ),
      Privileged: c.privileged ?? false,
    },
  };
}

export class DockerEngine {
  readonly performed: PerformedDocker[] = [];
  private readonly providers = new Map<string, ProviderTarget>();
  private readonly apis = new Map<string, DockerApiOverSsh>();

  constructor(
    private readonly identity: string | undefined,
    readonly state: DockerState,
  ) {}

  addProvider(name: string, inputs: Record<string, unknown>): void {
    this.providers.set(name, providerTarget(inputs));
  }

  private api(t: ProviderTarget): DockerApiOverSsh {
    if (!this.identity)
      throw new Error(
        "engine: a Docker resource needs ApplyOptions.dockerIdentity (the deploy key)",
      );
    const key = `${t.user}@${t.host}:${t.port}`;
    let api = this.apis.get(key);
    if (!api) {
      api = new DockerApiOverSsh({ ...t, privateKey: this.identity });
      this.apis.set(key, api);
    }
    return api;
  }

  async perform(
    type: string,
    name: string,
    providerRef: string | undefined,
    inputs: Record<string, unknown>,
  ): Promise<{ id: string; state: Record<string, unknown> }> {
    const t0 = Date.now();
    const providerName = providerRef?.split("::").pop();
    const target = providerName ? this.providers.get(providerName) : undefined;
    if (!target) throw new Error(`engine: ${name} does not name a known docker provider`);
    const key = `${type}::${name}`;
    const json = JSON.stringify(inputs);
    const old = this.state.get(key);
    let action: PerformedDocker["action"] = "created";
    if (old && old.inputs === json) {
      this.performed.push({ type, name, id: old.id, action: "unchanged", seconds: 0 });
      return { id: old.id, state: { ...inputs, ...old.outputs } };
    }
    if (old) {
      await this.remove(old);
      this.state.delete(key);
      action = "replaced";
    }
    const api = this.api(target);
    let id: string;
    let outputs: Record<string, unknown> = {};
    if (type === TYPES.network) {
      const r = await api.call("POST", "/networks/create", {
        Name: inputs.name,
        Driver: inputs.driver ?? "bridge",
        Internal: inputs.internal ?? false,
        CheckDuplicate: true,
      });
      id = r.json<{ Id: string }>().Id;
    } else if (type === TYPES.image) {
      // no registry here: the image must already be on the host (built in the guest)
      const r = await api.request("GET", `/images/${String(inputs.name)}/json`);
      if (r.status !== 200)
        throw new Error(
          `engine: image ${String(inputs.name)} is not on the host and cannot be pulled here`,
        );
      id = r.json<{ Id: string }>().Id;
      outputs = { imageId: id };
    } else {
      const c = inputs as unknown as ContainerInputs;
      const created = await api.call(
        "POST",
        `/containers/create?name=${encodeURIComponent(c.name)}`,
        containerCreateBody(c),
      );
      id = created.json<{ Id: string }>().Id;
      try {
        await api.call(
          "POST",
          `/networks/bridge/disconnect`,
          { Container: id, Force: true },
          [200, 204, 404, 403, 500],
        );
        for (const n of c.networksAdvanced ?? [])
          await api.call("POST", `/networks/${n.name}/connect`, {
            Container: id,
            EndpointConfig: { Aliases: n.aliases ?? [] },
          });
        await api.call("POST", `/containers/${id}/start`);
        if (c.wait) await this.waitHealthy(api, id, c.name, (c.waitTimeout ?? 60) * 1000);
      } catch (e) {
        await api.request("DELETE", `/containers/${id}?force=1&v=1`);
        throw e;
      }
    }
    this.state.set(key, {
      type,
      name,
      id,
      inputs: json,
      outputs,
      provider: target,
      keepLocally: inputs.keepLocally === true,
    });
    this.performed.push({ type, name, id, action, seconds: (Date.now() - t0) / 1000 });
    return { id, state: { ...inputs, ...outputs } };
  }

  private async waitHealthy(api: DockerApiOverSsh, id: string, name: string, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await api.call("GET", `/containers/${id}/json`)).json<{
        State: { Status: string; Health?: { Status: string; Log?: { Output: string }[] } };
      }>().State;
      if (s.Status !== "running") throw new Error(`container ${name} is ${s.Status}`);
      if (!s.Health || s.Health.Status === "healthy") return;
      if (Date.now() > deadline)
        throw new Error(
          `container ${name} not healthy after ${timeoutMs / 1000}s: ${s.Health.Status} ${JSON.stringify(s.Health.Log?.slice(-1))}`,
        );
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private async remove(e: DockerStateEntry): Promise<void> {
    const api = this.api(e.provider);
    if (e.type === TYPES.container)
      await api.call("DELETE", `/containers/${e.id}?force=1&v=1`, undefined, [200, 204, 404]);
    else if (e.type === TYPES.network)
      await api.call("DELETE", `/networks/${e.id}`, undefined, [200, 204, 404]);
    else if (!e.keepLocally) await api.call("DELETE", `/images/${e.id}`, undefined, [200, 404]);
  }

  /** Deletes everything in state, newest first. */
  async destroyAll(): Promise<{ type: string; name: string; seconds: number }[]> {
    const out: { type: string; name: string; seconds: number }[] = [];
    for (const [key, e] of [...this.state.entries()].reverse()) {
      const t0 = Date.now();
      await this.remove(e);
      this.state.delete(key);
      out.push({ type: e.type, name: e.name, seconds: (Date.now() - t0) / 1000 });
    }
    return out;
  }

  end(): void {
    for (const api of this.apis.values()) api.end();
    this.apis.clear();
  }
}
