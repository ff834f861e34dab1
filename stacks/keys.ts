/**
 * Every key of a host's stack file, once, as data: its type, its default, the argument of
 * `HardenedDockerHost` it maps onto, and its documentation. From this table come the list of
 * keys the program accepts (an unknown key is an error), how a plain value is read (`"22"` is
 * a number), the mapping of the simple keys onto the args (`stacks/config.ts`), the table of
 * docs/configuration.md and the `config:` block of Pulumi.yaml (`npx tsx stacks/keys.ts`
 * rewrites both; `stacks/keys.test.ts` fails when either differs, and plans the example stack
 * with each default written out and left unset: the same plan, so a default here is the
 * component's own).
 */
export type StackKeyType = "string" | "integer" | "boolean" | "object";

export interface StackKey {
  readonly type: StackKeyType;
  /** The argument it maps onto, as a path in `HardenedDockerHostArgs` (or a description). */
  readonly arg: string;
  /** What it does (docs/configuration.md). */
  readonly meaning: string;
  /** Its default: declared in Pulumi.yaml, and the value the program uses when unset. */
  readonly default?: string | number | boolean;
  /** The docs' default column when it is not `default` (required, unset, computed). */
  readonly shown?: string;
  /** Declared in Pulumi.yaml's config schema, with this description (else only documented). */
  readonly declared?: string;
  readonly secret?: boolean;
  /** An empty string means unset (a key Pulumi.yaml must declare with a default, a path). */
  readonly blankIsUnset?: true;
  /**
   * The program passes `default` when the key is unset, because the component requires the
   * argument (the service user's name). Other defaults are the components' own.
   */
  readonly appliedByProgram?: true;
  /**
   * How `stacks/config.ts` maps it: "path" sets `arg` to the value as read (the default when
   * unset); "program" maps it by hand (secrets, lists of objects, keys read together).
   */
  readonly mapping: "path" | "program";
}

export const STACK_KEYS = {
  host: {
    type: "string",
    arg: "connection.host",
    meaning: "DNS name or IP of the host",
    shown: "required",
    declared: "DNS name or IP address of the host (connection.host). Required.",
    mapping: "path",
  },
  port: {
    type: "integer",
    arg: "connection.port",
    meaning: "SSH port",
    default: 22,
    declared: "SSH port (connection.port).",
    mapping: "path",
  },
  user: {
    type: "string",
    arg: "connection.user",
    meaning: "login user; non-root runs every step through `sudo -n`",
    default: "root",
    declared:
      "SSH login user (connection.user); a non-root user needs a NOPASSWD sudo rule and runs every step through `sudo -n`.",
    mapping: "path",
  },
  sudo: {
    type: "boolean",
    arg: "connection.sudo",
    meaning: "must stay true for a non-root user",
    shown: "`true` unless `user` is root",
    mapping: "path",
  },
  privateKey: {
    type: "string",
    arg: "connection.privateKey",
    meaning: "SSH private key (`pulumi config set --secret`)",
    shown: "required, secret",
    declared:
      "SSH private key (connection.privateKey). Required; set with `pulumi config set --secret privateKey < key`.",
    secret: true,
    mapping: "program",
  },
  hostKey: {
    type: "string",
    arg: "connection.hostKey",
    meaning: "host public key, `ssh-ed25519 AAAA…`",
    // Pulumi's schema makes a declared key without a default mandatory: "" stands for unset
    default: "",
    blankIsUnset: true,
    shown: "required*",
    declared:
      'The host\'s SSH public key, e.g. "ssh-ed25519 AAAA..." (connection.hostKey). Required unless insecureIgnoreHostKey is true.',
    mapping: "path",
  },
  insecureIgnoreHostKey: {
    type: "boolean",
    arg: "connection.insecureIgnoreHostKey",
    meaning: "*accept any host key instead",
    default: false,
    declared: "Accept any host key (connection.insecureIgnoreHostKey). Throwaway hosts only.",
    mapping: "path",
  },
  serviceUser: {
    type: "string",
    arg: "serviceUser.name",
    meaning: "the user that owns the rootless daemon",
    default: "provisioner",
    appliedByProgram: true,
    declared: "Name of the service user that owns the rootless daemon (serviceUser.name).",
    mapping: "path",
  },
  serviceUserUid: {
    type: "integer",
    arg: "serviceUser.uid",
    meaning: "fixed uid",
    shown: "chosen by useradd",
    mapping: "path",
  },
  serviceUserShell: {
    type: "string",
    arg: "serviceUser.shell",
    meaning: "login shell",
    default: "/bin/bash",
    declared: "Login shell of the service user (serviceUser.shell).",
    mapping: "path",
  },
  subordinateIdStart: {
    type: "integer",
    arg: "serviceUser.subordinateIds.start",
    meaning: "start of the subuid/subgid range",
    shown: "first free id ≥ 100000",
    mapping: "path",
  },
  subordinateIdCount: {
    type: "integer",
    arg: "serviceUser.subordinateIds.count",
    meaning: "size of the range (≥ 65536)",
    default: 65536,
    declared:
      "Size of the service user's subuid/subgid range (serviceUser.subordinateIds.count), at least 65536.",
    mapping: "path",
  },
  removeServiceUserOnDestroy: {
    type: "boolean",
    arg: "serviceUser.removeOnDestroy",
    meaning: "delete user, home and Docker data on destroy",
    default: false,
    declared:
      "Delete the service user, its home and its Docker data on destroy (serviceUser.removeOnDestroy).",
    mapping: "path",
  },
  serviceUserLimits: {
    type: "object",
    arg: "limits",
    meaning: "limits of the service user's slice (object, below)",
    shown: "unset (no limits)",
    mapping: "path",
  },
  serviceUserPorts: {
    type: "object",
    arg: "ports",
    meaning: "host ports it publishes, `{ from, to }` (checked, not enforced: below)",
    shown: "unset (any)",
    mapping: "path",
  },
  dockerInstall: {
    type: "string",
    arg: "docker.install",
    meaning: "`distro`, `docker-repo` or `static`",
    default: "distro",
    declared: "How Docker is installed (docker.install): distro, docker-repo or static.",
    mapping: "path",
  },
  dockerVersion: {
    type: "string",
    arg: "docker.version",
    meaning: "required for `static`, optional pin for `docker-repo`",
    shown: "unset",
    mapping: "path",
  },
  dockerSha256: {
    type: "string",
    arg: "docker.sha256",
    meaning: "SHA-256 of `docker-<version>.tgz` (`static`)",
    shown: "unset",
    mapping: "path",
  },
  dockerRootlessExtrasSha256: {
    type: "string",
    arg: "docker.rootlessExtrasSha256",
    meaning: "SHA-256 of `docker-rootless-extras-<version>.tgz` (`static`)",
    shown: "unset",
    mapping: "path",
  },
  daemonConfig: {
    type: "object",
    arg: "docker.daemonConfig",
    meaning: "daemon.json keys (object)",
    shown: "see below",
    mapping: "program",
  },
  unprivilegedPortStart: {
    type: "integer",
    arg: "docker.unprivilegedPortStart",
    meaning: "lowest port rootless containers may publish (80 for Traefik)",
    shown: "unset (kernel: 1024)",
    mapping: "path",
  },
  portDriver: {
    type: "string",
    arg: "docker.portDriver",
    meaning: "`slirp4netns` keeps client source IPs; `builtin` is faster but hides them",
    default: "slirp4netns",
    declared:
      "rootlesskit port driver (docker.portDriver): slirp4netns (keeps client IPs) or builtin.",
    mapping: "path",
  },
  disableRootfulDaemon: {
    type: "boolean",
    arg: "docker.disableRootfulDaemon",
    meaning: "stop and mask the rootful daemon, remove `/var/run/docker.sock`",
    default: true,
    declared:
      "Stop and mask the rootful daemon and remove /var/run/docker.sock (docker.disableRootfulDaemon).",
    mapping: "path",
  },
  services: {
    type: "object",
    arg: "services",
    meaning: "app services (list of objects, below)",
    shown: "`[]`",
    mapping: "program",
  },
  serviceSecrets: {
    type: "object",
    arg: "values of `services[].environment`",
    meaning: "`{ <service>: { <VAR>: value } }`",
    shown: "unset, secret",
    secret: true,
    mapping: "program",
  },
  deployKeys: {
    type: "object",
    arg: "serviceUser.deployKeys",
    meaning: "public keys of the Docker provider, forced onto `docker system dial-stdio`",
    shown: "unset (not managed)",
    mapping: "path",
  },
  dockerIdentityFile: {
    type: "string",
    arg: "dockerApi.identityFile",
    meaning: "private deploy key file for the Docker provider, on the Pulumi machine",
    shown: "unset (ssh-agent)",
    blankIsUnset: true,
    mapping: "path",
  },
  socketProxy: {
    type: "object",
    arg: "socketProxy",
    meaning: "the socket proxy (object, below); needs `deployKeys`",
    shown: "unset (not deployed)",
    mapping: "program",
  },
  traefik: {
    type: "object",
    arg: "traefik",
    meaning: "Traefik (object, below); needs `socketProxy`",
    shown: "unset (not deployed)",
    mapping: "program",
  },
  traefikDashboardUsers: {
    type: "object",
    arg: "traefik.dashboard.users",
    meaning: "htpasswd lines for the dashboard (`htpasswd -nbB admin <password>`)",
    shown: "unset, secret",
    secret: true,
    mapping: "program",
  },
  tenants: {
    type: "object",
    arg: "tenants",
    meaning: "further tenants, each with its own service user and daemon (below)",
    shown: "`[]`",
    mapping: "program",
  },
  tenantDashboardUsers: {
    type: "object",
    arg: "tenants[].traefik.dashboard.users",
    meaning: "`{ <tenant user>: [htpasswd lines] }` for tenants' dashboards",
    shown: "unset, secret",
    secret: true,
    mapping: "program",
  },
} as const satisfies Record<string, StackKey>;

export type StackKeyName = keyof typeof STACK_KEYS;
/** Every key the program reads, in the table's order. */
export const CONFIG_KEYS = Object.keys(STACK_KEYS) as StackKeyName[];
const row = (key: string): StackKey | undefined => (STACK_KEYS as Record<string, StackKey>)[key];
/** The type a key's plain value is read as (`"22"` is a number), undefined for unknown keys. */
export const keyType = (key: string): StackKeyType | undefined => row(key)?.type;

/** Whether a key holds a secret (never parsed, never shown). */
export const isSecretKey = (key: string): boolean => row(key)?.secret === true;

/** Pulumi.yaml's `config:` block as this table declares it. */
export function declaredSchema(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, k] of Object.entries(STACK_KEYS as Record<string, StackKey>)) {
    if (k.declared === undefined) continue;
    out[key] = {
      type: k.type,
      ...(k.default !== undefined ? { default: k.default } : {}),
      ...(k.secret ? { secret: true } : {}),
      description: k.declared,
    };
  }
  return out;
}

/** The table of docs/configuration.md (markdown), one line per key. */
export function renderKeyTable(): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  return [
    "| key | default | argument | meaning |",
    "| --- | --- | --- | --- |",
    ...Object.entries(STACK_KEYS as Record<string, StackKey>).map(([key, k]) => {
      const shown = k.shown ?? `\`${JSON.stringify(k.default)}\``.replace(/^`"(.*)"`$/, "`$1`");
      const arg = /^[\w.[\]]+$/.test(k.arg) ? `\`${k.arg}\`` : k.arg;
      return `| \`${key}\` | ${cell(shown)} | ${cell(arg)} | ${cell(k.meaning)} |`;
    }),
  ].join("\n");
}

const TABLE_MARK = "<!-- prettier-ignore -->\n";

/** `doc` with the markdown table after `<!-- <name>: ... -->` replaced by `table`. */
export function withTable(doc: string, name: string, table: string, what = "the document"): string {
  const mark = doc.indexOf(`<!-- ${name}:`);
  if (mark < 0) throw new Error(`${what} has no <!-- ${name}: ... --> marker`);
  const start = doc.indexOf(TABLE_MARK, mark) + TABLE_MARK.length;
  let end = start;
  while (doc.startsWith("|", end)) end = doc.indexOf("\n", end) + 1;
  return doc.slice(0, start) + table + "\n" + doc.slice(end);
}

/** Pulumi.yaml with its `config:` block (the last one) rewritten from `declaredSchema()`. */
export function withDeclaredSchema(project: string, stringify: (v: unknown) => string): string {
  const at = project.search(/^config:\n/m);
  if (at < 0) throw new Error("Pulumi.yaml has no config: block");
  return project.slice(0, at) + stringify({ config: declaredSchema() });
}

// `npx tsx stacks/keys.ts`: rewrites docs/configuration.md's table and Pulumi.yaml's config
if (require.main === module) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { readFileSync, writeFileSync } = require("node:fs") as typeof import("node:fs");
  const { join } = require("node:path") as typeof import("node:path");
  const { stringify } = require("yaml") as typeof import("yaml");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const root = join(__dirname, "..");
  const docs = join(root, "docs", "configuration.md");
  writeFileSync(docs, withTable(readFileSync(docs, "utf8"), "key-table", renderKeyTable(), docs));
  const project = join(root, "Pulumi.yaml");
  writeFileSync(
    project,
    withDeclaredSchema(readFileSync(project, "utf8"), (v) => stringify(v, { lineWidth: 0 })),
  );
}
