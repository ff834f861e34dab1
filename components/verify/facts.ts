/**
 * Parses the probe's sections into typed facts. Pure: unit-tested against recorded probe
 * output. Whatever a section lacks becomes an absent fact, never an exception: a half-broken
 * host must still produce a report.
 */
import { IsolationFacts, parseIsolation } from "../tenants/facts";
import { ROOTFUL_UNITS, tenantSectionPrefix } from "./probe";

export interface SubordinateRange {
  readonly start: number;
  readonly count: number;
}

export interface UnitFacts {
  readonly unit: string;
  /** The unit file in /etc/systemd/system as read (or cat's error). */
  readonly file: string;
  /** `systemctl show` properties. */
  readonly show: Readonly<Record<string, string>>;
  /** Journal lines of the current invocation (and of the unit when it is not active). */
  readonly journal: readonly string[];
  /** `systemd-analyze security` overall exposure, when it printed one. */
  readonly exposure?: number;
  readonly exposureLine: string;
  /** `<mode> <owner> <group>` of its EnvironmentFile, and DOCKER_HOST/XDG_RUNTIME_DIR lines in it. */
  readonly environmentFile?: { readonly stat: string; readonly overrides: readonly string[] };
}

/** The parts of `docker inspect` (container) that the checks read. */
export interface ContainerFacts {
  readonly Id: string;
  readonly Name: string;
  readonly State?: { readonly Running?: boolean; readonly Pid?: number };
  readonly Config?: {
    readonly Labels?: Record<string, string> | null;
    readonly Env?: string[] | null;
    readonly Cmd?: string[] | null;
    readonly Entrypoint?: string[] | null;
  };
  readonly Args?: string[] | null;
  readonly HostConfig?: {
    readonly Privileged?: boolean;
    readonly PortBindings?: Record<string, unknown> | null;
    readonly NetworkMode?: string;
    readonly PidMode?: string;
    readonly Binds?: string[] | null;
  };
  readonly Mounts?: { Type?: string; Source?: string; Destination?: string; RW?: boolean }[];
  readonly NetworkSettings?: {
    readonly Networks?: Record<string, unknown> | null;
    readonly Ports?: Record<string, unknown[] | null> | null;
  };
}

export interface NetworkFacts {
  readonly Name: string;
  readonly Internal?: boolean;
}

export interface HostFacts {
  /** False when the probe's output stopped before its end (cut connection, timeout). */
  readonly complete: boolean;
  /** Who the probe ran as (root when sudo worked). */
  readonly runAs?: string;
  readonly user?: { readonly name: string; readonly uid: number; readonly home: string };
  readonly groups: readonly string[];
  readonly subuid: readonly SubordinateRange[];
  readonly subgid: readonly SubordinateRange[];
  readonly linger?: boolean;
  readonly userManager?: string;
  readonly delegation?: string;
  readonly rootfulUnits: readonly { unit: string; enabled: string; active: string }[];
  readonly rootSockets: readonly string[];
  readonly userSocket?: boolean;
  readonly daemonJson?: string;
  readonly dockerUnit?: {
    readonly enabled: string;
    readonly active: string;
    /** When the daemon last became active (epoch seconds). */
    readonly since?: number;
  };
  readonly dockerInfo?: {
    readonly exit: number;
    readonly info?: Record<string, unknown>;
    readonly message: string;
  };
  readonly containers?: readonly ContainerFacts[];
  /**
   * device:inode of each container mount source, and of each API socket (the rootless and
   * rootful Docker sockets, containerd's) and every directory above it, as root stat()s them
   * (the perl reader only; undefined with the docker CLI).
   */
  readonly mountIds?: {
    readonly sources: ReadonlyMap<string, string>;
    readonly sockets: ReadonlyMap<string, string>;
  };
  /** Why there is no container list (docker ps or inspect failed). */
  readonly containersError?: string;
  readonly networks?: readonly NetworkFacts[];
  readonly proxyProbe?: Readonly<Record<string, string>>;
  readonly units: ReadonlyMap<string, UnitFacts>;
  /**
   * The cgroup files of its `user-<uid>.slice` that carry limits (`SLICE_FILES`), read when
   * limits are declared: each file's first line (a file that is absent is not in it).
   */
  readonly slice?: ReadonlyMap<string, string>;
  /** Each tenant's facts (from its `tenant:<user>/` sections), by name; only with tenants. */
  readonly tenants?: ReadonlyMap<string, HostFacts>;
  /** Facts across tenants: runtime directories, homes, socket attempts; only with tenants. */
  readonly isolation?: IsolationFacts;
}

/** `<dev>:<ino> <path>` lines as path -> "dev:ino". */
function parseIds(text: string | undefined): Map<string, string> {
  const ids = new Map<string, string>();
  for (const l of lines(text)) {
    const m = /^(\d+:\d+) (\/.*)$/.exec(l);
    if (m) ids.set(m[2], m[1]);
  }
  return ids;
}

/** The first non-blank line, trimmed ("" when there is none). */
export function firstLine(text: string | undefined): string {
  return (
    (text ?? "")
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? ""
  );
}
const lines = (text: string | undefined) => (text ?? "").split("\n").filter((l) => l.trim() !== "");

export function parseSubordinateIds(
  text: string | undefined,
  user: string,
  uid: number,
): SubordinateRange[] {
  return lines(text)
    .map((l) => l.split(":"))
    .filter((f) => f.length === 3 && (f[0] === user || f[0] === String(uid)))
    .map((f) => ({ start: Number(f[1]), count: Number(f[2]) }))
    .filter((r) => Number.isInteger(r.start) && Number.isInteger(r.count));
}

/** `systemctl show` of several units: one block per unit, keyed by its `Id`. */
export function parseShowBlocks(text: string | undefined): Map<string, Record<string, string>> {
  const blocks = new Map<string, Record<string, string>>();
  for (const block of (text ?? "").split(/\n\s*\n/)) {
    const props = parseShow(block);
    if (props.Id) blocks.set(props.Id, props);
  }
  return blocks;
}

/** `Key=Value` lines of `systemctl show`. */
export function parseShow(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines(text)) {
    const i = l.indexOf("=");
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** `→ Overall exposure level for x.service: 2.1 OK :-)` → 2.1 */
export function parseExposure(line: string): number | undefined {
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

function parseJsonArray<T>(text: string | undefined): T[] | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as T[]) : undefined;
  } catch {
    return undefined;
  }
}

function parseDockerInfo(text: string | undefined): HostFacts["dockerInfo"] {
  if (text === undefined) return undefined;
  const all = lines(text);
  const exitLine = [...all].reverse().find((l) => l.startsWith("exit="));
  const exit = exitLine ? Number(exitLine.slice(5)) : -1;
  let info: Record<string, unknown> | undefined;
  const other: string[] = [];
  for (const l of all) {
    if (l === exitLine) continue;
    if (l.startsWith("{")) {
      try {
        info = JSON.parse(l) as Record<string, unknown>;
        continue;
      } catch {
        // not JSON after all: keep it as a message
      }
    }
    other.push(l);
  }
  return { exit, ...(info ? { info } : {}), message: other.join("\n") };
}

/** `<file>=<value>` lines of the `slice` section (a file the probe found absent has none). */
function parseSlice(text: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const l of lines(text)) {
    const m = /^([a-z.]+)=(.*)$/.exec(l);
    if (m) files.set(m[1], m[2].trim());
  }
  return files;
}

/** A tenant's sections without its prefix, with the host-wide ones every user's facts read. */
function tenantSections(
  sections: ReadonlyMap<string, string>,
  tenant: string,
): Map<string, string> {
  const prefix = tenantSectionPrefix(tenant);
  const own = new Map<string, string>();
  for (const key of ["whoami", "end"]) {
    const body = sections.get(key);
    if (body !== undefined) own.set(key, body);
  }
  for (const [name, body] of sections)
    if (name.startsWith(prefix)) own.set(name.slice(prefix.length), body);
  return own;
}

/**
 * Turns the probe's sections into facts: the host's own service user's, and with `tenants`
 * (their names), each tenant's and the facts across them.
 */
export function parseFacts(
  sections: ReadonlyMap<string, string>,
  user: string,
  tenants: readonly string[] = [],
): HostFacts {
  const own = parseUserFacts(sections, user);
  if (tenants.length === 0) return own;
  const isolation = parseIsolation(
    sections.get("isolation-paths"),
    sections.get("isolation-sockets"),
  );
  return {
    ...own,
    tenants: new Map(tenants.map((t) => [t, parseUserFacts(tenantSections(sections, t), t)])),
    ...(isolation ? { isolation } : {}),
  };
}

/** One service user's facts (its sections without prefix). */
function parseUserFacts(sections: ReadonlyMap<string, string>, user: string): HostFacts {
  const passwd = (sections.get("passwd") ?? "").split("\n")[0].split(":");
  const parsedUser =
    passwd.length >= 7 && passwd[0] === user
      ? { name: passwd[0], uid: Number(passwd[2]), home: passwd[5] }
      : undefined;
  const uid = parsedUser?.uid ?? -1;
  const shown = parseShowBlocks(sections.get("units-show"));
  const dockerUnit = parseShow(sections.get("docker-unit"));
  const units = new Map<string, UnitFacts>();
  for (const [name, body] of sections) {
    if (!name.startsWith("unit-file:")) continue;
    const unit = name.slice("unit-file:".length);
    const security = sections.get(`unit-security:${unit}`) ?? "";
    const exposure = parseExposure(security);
    const env = sections.get(`envfile:${unit}`);
    const envLines = lines(env);
    units.set(unit, {
      unit,
      file: body,
      show: shown.get(unit) ?? {},
      journal: lines(sections.get(`unit-journal:${unit}`)),
      ...(exposure !== undefined ? { exposure } : {}),
      exposureLine: security.trim(),
      ...(env !== undefined
        ? { environmentFile: { stat: envLines[0] ?? "", overrides: envLines.slice(1) } }
        : {}),
    });
  }
  const probe = sections.get("proxy-probe");
  const proxyProbe =
    probe === undefined
      ? undefined
      : Object.fromEntries(
          lines(probe).map((l) => {
            const i = l.indexOf(" ");
            const clean = l.replace(/\r$/, "");
            return i < 0 ? [clean, ""] : [clean.slice(0, i), clean.slice(i + 1)];
          }),
        );
  return {
    complete: sections.has("end"),
    runAs: sections.get("whoami")?.trim() === "0" ? "root" : sections.get("whoami")?.trim(),
    ...(parsedUser ? { user: parsedUser } : {}),
    groups: (sections.get("groups") ?? "").trim().split(/\s+/).filter(Boolean),
    subuid: parseSubordinateIds(sections.get("subuid"), user, uid),
    subgid: parseSubordinateIds(sections.get("subgid"), user, uid),
    ...(sections.has("linger") ? { linger: sections.get("linger")?.trim() === "yes" } : {}),
    userManager: shown.get(`user@${uid}.service`)?.ActiveState,
    delegation: sections.get("delegation")?.trim(),
    rootfulUnits: ROOTFUL_UNITS.filter((u) => shown.has(u)).map((u) => ({
      unit: u,
      enabled: shown.get(u)?.UnitFileState ?? "",
      active: shown.get(u)?.ActiveState ?? "",
    })),
    rootSockets: lines(sections.get("root-sockets")),
    ...(sections.has("user-socket")
      ? { userSocket: sections.get("user-socket")?.trim() === "present" }
      : {}),
    daemonJson: sections.get("daemon-json"),
    ...(sections.has("docker-unit")
      ? {
          dockerUnit: {
            enabled: dockerUnit.UnitFileState ?? firstLine(sections.get("docker-unit")),
            active: dockerUnit.ActiveState ?? "",
            ...(/^@\d+$/.test(dockerUnit.ActiveEnterTimestamp ?? "")
              ? { since: Number(dockerUnit.ActiveEnterTimestamp.slice(1)) }
              : {}),
          },
        }
      : {}),
    dockerInfo: parseDockerInfo(sections.get("docker-info")),
    containers: parseJsonArray<ContainerFacts>(sections.get("containers")),
    containersError: parseJsonArray(sections.get("containers"))
      ? undefined
      : (sections.get("containers") ?? "the probe did not list containers").split("\n")[0],
    networks: parseJsonArray<NetworkFacts>(sections.get("networks")),
    ...(sections.has("mount-ids") && sections.has("socket-ids")
      ? {
          mountIds: {
            sources: parseIds(sections.get("mount-ids")),
            sockets: parseIds(sections.get("socket-ids")),
          },
        }
      : {}),
    ...(proxyProbe ? { proxyProbe } : {}),
    units,
    ...(sections.has("slice") ? { slice: parseSlice(sections.get("slice") ?? "") } : {}),
  };
}
