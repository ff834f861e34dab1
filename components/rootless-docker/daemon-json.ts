import { keysOf } from "../core/keys";
import {
  InvalidArgument,
  checkAbsolutePath,
  checkArray,
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkLine,
  checkOneOf,
  checkPlainObject,
} from "../core/validate";

/**
 * The `daemon.json` keys the library accepts for a rootless daemon, spelled as Docker spells
 * them. Keys the library owns (`hosts`: the socket is the rootless one) or that do not work
 * rootless (`userns-remap`, `selinux-enabled` on most hosts) are not offered.
 */
export interface DaemonConfig {
  /** @default "json-file" */
  readonly "log-driver"?: "json-file" | "local" | "journald" | "none";
  /** @default { "max-size": "10m", "max-file": "3" } (bounded logs; Docker's own default grows forever) */
  readonly "log-opts"?: Readonly<Record<string, string>>;
  /** Set no-new-privileges on every container unless it opts out. @default true */
  readonly "no-new-privileges"?: boolean;
  /**
   * Inter-container traffic on the default bridge (user-defined networks ignore it).
   * `false` needs the br_netfilter kernel module, which a rootless daemon cannot load: the
   * library then loads it at boot (/etc/modules-load.d). Without that, the daemon failed to
   * start after a reboot on the test VM.
   * @default Docker's default (true)
   */
  readonly icc?: boolean;
  /** @default Docker's choice (overlay2 on kernels that allow it rootless) */
  readonly "storage-driver"?: "overlay2" | "fuse-overlayfs" | "vfs";
  /** @default ~/.local/share/docker */
  readonly "data-root"?: string;
  readonly "live-restore"?: boolean;
  readonly "userland-proxy"?: boolean;
  readonly debug?: boolean;
  readonly experimental?: boolean;
  readonly mtu?: number;
  readonly "max-concurrent-downloads"?: number;
  readonly dns?: readonly string[];
  readonly "registry-mirrors"?: readonly string[];
  readonly "default-address-pools"?: readonly { readonly base: string; readonly size: number }[];
  readonly "default-ulimits"?: Readonly<
    Record<string, { readonly Name: string; readonly Soft: number; readonly Hard: number }>
  >;
  readonly features?: Readonly<Record<string, boolean>>;
}

export const DEFAULT_DAEMON_CONFIG: DaemonConfig = {
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" },
  "no-new-privileges": true,
};

const KNOWN_KEYS = keysOf<DaemonConfig>()({
  "log-driver": true,
  "log-opts": true,
  "no-new-privileges": true,
  icc: true,
  "storage-driver": true,
  "data-root": true,
  "live-restore": true,
  "userland-proxy": true,
  debug: true,
  experimental: true,
  mtu: true,
  "max-concurrent-downloads": true,
  dns: true,
  "registry-mirrors": true,
  "default-address-pools": true,
  "default-ulimits": true,
  features: true,
});

type AddressPool = NonNullable<DaemonConfig["default-address-pools"]>[number];
const POOL_KEYS = keysOf<AddressPool>()({ base: true, size: true });
type Ulimit = NonNullable<DaemonConfig["default-ulimits"]>[string];
const ULIMIT_KEYS = keysOf<Ulimit>()({ Name: true, Soft: true, Hard: true });

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~/-]*)?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Checks a user's daemon config against the keys and value shapes above. */
export function validateDaemonConfig(config: unknown, field = "docker.daemonConfig"): DaemonConfig {
  const c = checkPlainObject(field, config);
  checkKnownKeys(field, c, KNOWN_KEYS);
  const f = (k: string) => `${field}.${k}`;
  if (c["log-driver"] !== undefined)
    checkOneOf(f("log-driver"), c["log-driver"], ["json-file", "local", "journald", "none"]);
  if (c["log-opts"] !== undefined) {
    for (const [k, v] of Object.entries(checkPlainObject(f("log-opts"), c["log-opts"]))) {
      if (!/^[a-z][a-z0-9-]*$/.test(k))
        throw new InvalidArgument(f(`log-opts.${k}`), k, "a log option name");
      if (typeof v !== "string")
        throw new InvalidArgument(
          f(`log-opts.${k}`),
          v,
          "a string (Docker wants log options as strings)",
          `In the stack file quote it (${k}: "${String(v)}"); with the CLI: pulumi config set --path --type string 'daemonConfig["log-opts"]["${k}"]' ${String(v)}`,
        );
      checkLine(f(`log-opts.${k}`), v);
    }
  }
  for (const k of [
    "no-new-privileges",
    "icc",
    "live-restore",
    "userland-proxy",
    "debug",
    "experimental",
  ]) {
    if (c[k] !== undefined) checkBoolean(f(k), c[k]);
  }
  if (c["storage-driver"] !== undefined)
    checkOneOf(f("storage-driver"), c["storage-driver"], ["overlay2", "fuse-overlayfs", "vfs"]);
  if (c["data-root"] !== undefined) checkAbsolutePath(f("data-root"), c["data-root"]);
  if (c.mtu !== undefined) checkInteger(f("mtu"), c.mtu, 576, 65535);
  if (c["max-concurrent-downloads"] !== undefined)
    checkInteger(f("max-concurrent-downloads"), c["max-concurrent-downloads"], 1, 64);
  if (c.dns !== undefined) {
    checkArray(f("dns"), c.dns).forEach((d, i) => {
      if (typeof d !== "string" || !IPV4.test(d))
        throw new InvalidArgument(f(`dns[${i}]`), d, "an IPv4 address");
    });
  }
  if (c["registry-mirrors"] !== undefined) {
    checkArray(f("registry-mirrors"), c["registry-mirrors"]).forEach((u, i) => {
      if (typeof u !== "string" || !URL_RE.test(u))
        throw new InvalidArgument(f(`registry-mirrors[${i}]`), u, "an http(s) URL");
    });
  }
  if (c["default-address-pools"] !== undefined) {
    checkArray(f("default-address-pools"), c["default-address-pools"]).forEach((p, i) => {
      const pool = checkPlainObject(f(`default-address-pools[${i}]`), p);
      checkKnownKeys(f(`default-address-pools[${i}]`), pool, POOL_KEYS);
      if (typeof pool.base !== "string" || !CIDR.test(pool.base)) {
        throw new InvalidArgument(
          f(`default-address-pools[${i}].base`),
          pool.base,
          "an IPv4 CIDR like 10.89.0.0/16",
        );
      }
      checkInteger(f(`default-address-pools[${i}].size`), pool.size, 8, 30);
    });
  }
  if (c["default-ulimits"] !== undefined) {
    for (const [k, v] of Object.entries(
      checkPlainObject(f("default-ulimits"), c["default-ulimits"]),
    )) {
      const u = checkPlainObject(f(`default-ulimits.${k}`), v);
      checkKnownKeys(f(`default-ulimits.${k}`), u, ULIMIT_KEYS);
      if (u.Name !== k)
        throw new InvalidArgument(
          f(`default-ulimits.${k}.Name`),
          u.Name,
          `the same name as its key ("${k}")`,
        );
      checkInteger(f(`default-ulimits.${k}.Soft`), u.Soft, 0, 2 ** 31);
      checkInteger(f(`default-ulimits.${k}.Hard`), u.Hard, 0, 2 ** 31);
    }
  }
  if (c.features !== undefined) {
    for (const [k, v] of Object.entries(checkPlainObject(f("features"), c.features)))
      checkBoolean(f(`features.${k}`), v);
  }
  return c as DaemonConfig;
}

/**
 * Renders `daemon.json`: the library defaults overlaid with the user's keys, keys sorted so
 * the text is stable, two-space indented, trailing newline.
 */
export function renderDaemonJson(config: DaemonConfig = {}, field = "docker.daemonConfig"): string {
  const merged: Record<string, unknown> = {
    ...DEFAULT_DAEMON_CONFIG,
    ...validateDaemonConfig(config, field),
  };
  return JSON.stringify(sortKeys(merged), null, 2) + "\n";
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
