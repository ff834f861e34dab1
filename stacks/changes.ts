/**
 * The change table: for every stack key, what a
 * change of it does on a converged host. It is data: the table of docs/changes.md is
 * rendered from it (`renderChangeTable`, kept equal by a test), and a unit test plans every
 * row's example change against the example stack and checks that the provider's rules
 * (`classifyChanges`) give exactly the steps the row names.
 *
 * Provider rules (read from `@pulumi/command` 1.2.1, `provider/pkg/provider/remote`): a change
 * of `triggers` replaces a command (with `deleteBeforeReplace`, its old `delete` first); a
 * change of any other input (`create`, `delete`, `stdin`, `connection`) is an update, which runs
 * `update`, or `create` again when there is none (ours: none, the create scripts converge).
 * Our host steps have no `triggers`, so no change of a key ever runs a host step's delete.
 * Docker resources (`@pulumi/docker`) are taken as replaced on any change of their inputs.
 */
import type { Plan, PlannedResource } from "./plan";
import { withTable } from "./keys";
import type { StackKeyName } from "./keys";

export type Action = "create" | "update" | "replace" | "delete";

/** What the example change does to the stack's resources, by name without the stack prefix. */
export interface PlannedActions {
  /** `"*"`: every host command (a connection change reaches each one). */
  readonly update?: readonly string[] | "*";
  readonly replace?: readonly string[];
  readonly create?: readonly string[];
  readonly delete?: readonly string[];
}

export interface ChangeRow {
  /** Stack key (`pulumi config set <key>`): a row of STACK_KEYS. */
  readonly key: StackKeyName;
  /**
   * Where the change starts from, when the example stack lacks it (e.g. a tenant with a
   * dashboard): applied to the example stack's config before `example`, and planned as "before".
   */
  readonly from?: (config: Record<string, unknown>) => void;
  /** Applies a representative change to a stack's config (keys without the project prefix). */
  readonly example: (config: Record<string, unknown>) => void;
  /** `refused`: the update's script stops before any change, saying how to do it instead. */
  readonly outcome: "update" | "replace" | "refused" | "none on the host";
  readonly plan: PlannedActions;
  /** For `refused`: words of the refusal, found in the first updated step's script. */
  readonly refusal?: string;
  /** What happens on the host, and what restarts. */
  readonly onHost: string;
  /** How long what it restarts is away. */
  readonly downtime: string;
}

const ALL_SSH =
  "no host step changes anything (each re-runs its script, which finds nothing to do)";

/** A static install of another version (its two digests are required with it). */
function staticDocker(c: Record<string, unknown>): void {
  c.dockerInstall = "static";
  c.dockerVersion = "27.5.1";
  c.dockerSha256 = "a".repeat(64);
  c.dockerRootlessExtrasSha256 = "b".repeat(64);
}

/** The table, one row per stack key, in the order of CONFIG_KEYS. */
export const CHANGE_TABLE: readonly ChangeRow[] = [
  {
    key: "host",
    example: (c) => (c.host = "web-2.example.net"),
    outcome: "update",
    plan: { update: "*" },
    onHost: `the same host under another name: ${ALL_SSH}; the Docker provider dials the new name`,
    downtime: "none",
  },
  {
    key: "port",
    example: (c) => (c.port = 2200),
    outcome: "update",
    plan: { update: "*" },
    onHost: ALL_SSH,
    downtime: "none",
  },
  {
    key: "user",
    example: (c) => (c.user = "ops"),
    outcome: "update",
    plan: { update: "*" },
    onHost: `${ALL_SSH}; the new login user needs a NOPASSWD sudo rule (the SSH gate checks it first)`,
    downtime: "none",
  },
  {
    key: "sudo",
    example: (c) => {
      c.user = "root";
      c.sudo = false;
    },
    outcome: "update",
    plan: { update: "*" },
    onHost: `logging in as root, scripts run without sudo: ${ALL_SSH}`,
    downtime: "none",
  },
  {
    key: "privateKey",
    example: (c) => (c.privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nrotated\n"),
    outcome: "update",
    plan: { update: "*" },
    onHost: `a rotated admin key: ${ALL_SSH} (authorize the new key before the up, remove the old one after)`,
    downtime: "none",
  },
  {
    key: "hostKey",
    example: (c) =>
      (c.hostKey =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedRotatedRotatedRotatedRotatedRotated0"),
    outcome: "update",
    plan: { update: "*" },
    onHost: `${ALL_SSH}; every connection checks the new pinned key`,
    downtime: "none",
  },
  {
    key: "insecureIgnoreHostKey",
    example: (c) => {
      delete c.hostKey;
      c.insecureIgnoreHostKey = true;
    },
    outcome: "update",
    plan: { update: "*" },
    onHost: ALL_SSH,
    downtime: "none",
  },
  {
    key: "serviceUser",
    example: (c) => (c.serviceUser = "builder"),
    outcome: "refused",
    plan: {
      update: [
        "service-user-account",
        "docker-api",
        "docker-daemon-json",
        "docker-daemon-unit",
        "docker-delegation",
        "docker-ready",
        "linger-enable",
        "provisioner-unit",
        "service-user-deploy-keys",
        "socket-proxy-canary",
        "traefik-canary",
      ],
    },
    refusal: "renaming it to $user in place is refused",
    onHost:
      "refused by the account step before anything changes (the host records which user the stack manages): the data lives in the old user's home. To move: set it back, `pulumi destroy` (removeServiceUserOnDestroy: false keeps the old user and its data), set the new name, `pulumi up`",
    downtime: "none (refused)",
  },
  {
    key: "serviceUserUid",
    example: (c) => (c.serviceUserUid = 1600),
    outcome: "refused",
    plan: {
      update: [
        "service-user-account",
        "provisioner-unit",
        "service-user-deploy-keys",
        "socket-proxy-canary",
      ],
      replace: ["socket-proxy-container"],
    },
    refusal: "not the declared $want_uid",
    onHost:
      "refused unless it equals the user's uid on the host (files in its home and its data belong to that uid)",
    downtime: "none (refused)",
  },
  {
    key: "serviceUserShell",
    example: (c) => (c.serviceUserShell = "/bin/sh"),
    outcome: "update",
    plan: { update: ["service-user-account"] },
    onHost: "`usermod --shell`; nothing restarts",
    downtime: "none",
  },
  {
    key: "subordinateIdStart",
    example: (c) => (c.subordinateIdStart = 300000),
    outcome: "refused",
    plan: { update: ["service-user-account"] },
    refusal: "not the declared start $want_start",
    onHost:
      "refused unless it equals the user's range on the host (image layers on disk are owned by ids of that range)",
    downtime: "none (refused)",
  },
  {
    key: "subordinateIdCount",
    example: (c) => (c.subordinateIdCount = 131072),
    outcome: "refused",
    plan: { update: ["service-user-account"] },
    refusal: "widen it by hand",
    onHost:
      "a smaller count changes nothing; a larger one is refused (widening a range in /etc/subuid is left to the operator, with the daemon stopped)",
    downtime: "none (refused)",
  },
  {
    key: "removeServiceUserOnDestroy",
    example: (c) => (c.removeServiceUserOnDestroy = true),
    outcome: "none on the host",
    plan: { update: ["service-user-account"] },
    onHost: "only what a later `pulumi destroy` does changes; the account step finds nothing to do",
    downtime: "none",
  },
  {
    key: "serviceUserLimits",
    example: (c) => (c.serviceUserLimits = { cpuPercent: 200, memoryMiB: 2048 }),
    outcome: "update",
    plan: { create: ["limits"] },
    onHost:
      "writes the service user's slice drop-in, checked in the running slice's cgroup files; nothing restarts; removed: systemd's defaults come back. Run on the VM as a tenant's limits (the same step), not for the host's own user",
    downtime: "none",
  },
  {
    key: "serviceUserPorts",
    example: (c) => (c.serviceUserPorts = { from: 80, to: 8443 }),
    outcome: "none on the host",
    plan: {},
    onHost:
      "a declared range (Traefik's ports in it, other tenants' outside it), checked before anything runs",
    downtime: "none",
  },
  {
    key: "dockerInstall",
    example: (c) => (c.dockerInstall = "docker-repo"),
    outcome: "update",
    plan: { update: ["docker-packages", "docker-ready"] },
    onHost:
      "installs Docker the new way; the ready step restarts the rootless daemon onto the installed version when it differs from the running one",
    downtime:
      "the daemon's restart when the version changed (containers with a restart policy come back)",
  },
  {
    key: "dockerVersion",
    example: staticDocker,
    outcome: "update",
    plan: { update: ["docker-packages", "docker-ready"] },
    onHost:
      "static install: downloads and checks the new binaries; the ready step restarts the rootless daemon onto them",
    downtime: "the daemon's restart (containers with a restart policy come back)",
  },
  {
    key: "dockerSha256",
    example: staticDocker,
    outcome: "update",
    plan: { update: ["docker-packages", "docker-ready"] },
    onHost:
      "the static archive is checked against the new digest (a mismatch fails the step, nothing installed)",
    downtime: "as dockerVersion",
  },
  {
    key: "dockerRootlessExtrasSha256",
    example: staticDocker,
    outcome: "update",
    plan: { update: ["docker-packages", "docker-ready"] },
    onHost: "as dockerSha256, for the rootless extras archive",
    downtime: "as dockerVersion",
  },
  {
    key: "daemonConfig",
    example: (c) => (c.daemonConfig = { "log-opts": { "max-size": "50m", "max-file": "5" } }),
    outcome: "update",
    plan: { update: ["docker-daemon-json"] },
    onHost:
      "rewrites daemon.json and restarts the rootless daemon; a value the daemon refuses puts the previous file back, restarts the daemon on it and fails the up with the daemon's words",
    downtime:
      "the daemon's restart (containers with a restart policy come back); twice on a refused value",
  },
  {
    key: "unprivilegedPortStart",
    example: (c) => (c.unprivilegedPortStart = 53),
    outcome: "update",
    plan: { update: ["docker-sysctl"] },
    onHost: "rewrites the sysctl drop-in and applies it; nothing restarts",
    downtime: "none",
  },
  {
    key: "portDriver",
    example: (c) => (c.portDriver = "builtin"),
    outcome: "update",
    plan: { update: ["docker-daemon-unit"] },
    onHost:
      "rewrites the user docker.service and restarts it, health-gated: a unit that does not stay up is put back and restarted",
    downtime: "the daemon's restart (containers with a restart policy come back)",
  },
  {
    key: "disableRootfulDaemon",
    example: (c) => (c.disableRootfulDaemon = false),
    outcome: "update",
    plan: { delete: ["docker-rootful-off"] },
    onHost:
      "false: the rootful daemon is unmasked and started as it was before (its step's delete); true: stopped and masked, after the rootless daemon answers",
    downtime: "none for the rootless daemon",
  },
  {
    key: "services",
    example: (c) => {
      const services = c.services as Record<string, unknown>[];
      services[0] = { ...services[0], execStart: "/usr/bin/node /opt/provisioner/v2.js" };
    },
    outcome: "update",
    plan: { update: ["provisioner-unit"] },
    onHost:
      "a changed service: its unit rewritten and restarted, health-gated (it must stay active 5 s, else the previous unit is put back and restarted and the up fails with systemd's status); an added one: created and started; a removed one: stopped, disabled, its unit and environment file removed",
    downtime: "that service's restart",
  },
  {
    key: "serviceSecrets",
    example: (c) => (c.serviceSecrets = { provisioner: { ADMIN_TOKEN: "rotated-token" } }),
    outcome: "update",
    plan: { update: ["provisioner-env-file"] },
    onHost:
      "rewrites the service's EnvironmentFile (0600 root) and restarts the service, health-gated like a unit change (the previous file is put back)",
    downtime: "that service's restart",
  },
  {
    key: "deployKeys",
    example: (c) =>
      (c.deployKeys = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc ci@rotated",
      ]),
    outcome: "update",
    plan: { update: ["service-user-deploy-keys"] },
    onHost: "rewrites the service user's authorized_keys (as that user); nothing restarts",
    downtime: "none",
  },
  {
    key: "dockerIdentityFile",
    example: (c) => (c.dockerIdentityFile = "/home/ci/.ssh/deploy_ed25519"),
    outcome: "none on the host",
    plan: { update: ["docker-api"] },
    onHost: "only how the Docker provider authenticates (its settings); nothing on the host",
    downtime: "none",
  },
  {
    key: "socketProxy",
    example: (c) =>
      (c.socketProxy = { ...(c.socketProxy as Record<string, unknown>), allow: ["traefik-swarm"] }),
    outcome: "replace",
    plan: { update: ["socket-proxy-canary"], replace: ["socket-proxy-container"] },
    onHost:
      "a canary of the new proxy runs beside the old one and must pass the health check; then the proxy container is replaced (same name: the old one goes first). A canary that fails stops the up with the old proxy serving",
    downtime:
      "the Docker API for clients on docker_api (Traefik) while the new proxy starts; none for a refused spec",
  },
  {
    key: "traefik",
    example: (c) => (c.traefik = { ...(c.traefik as Record<string, unknown>), httpPort: 8080 }),
    outcome: "replace",
    plan: { update: ["traefik-canary"], replace: ["traefik-container"] },
    onHost:
      "a canary of the new Traefik (no ports, no network) must pass the health check; then the Traefik container is replaced (same name: the old one goes first). A canary that fails stops the up with the old Traefik serving",
    downtime: "routing by Traefik while the new container starts; none for a refused spec",
  },
  {
    key: "traefikDashboardUsers",
    example: (c) => {
      c.traefik = { ...(c.traefik as Record<string, unknown>), dashboard: {} };
      c.traefikDashboardUsers = ["admin:$apr1$e2esalt1$abcdefghijklmnopqrstuv"];
    },
    outcome: "replace",
    plan: { update: ["traefik-canary"], replace: ["traefik-container"] },
    onHost:
      "the Traefik container is replaced with the new users (a secret in its labels; the canary runs when the dashboard is switched on or off, not for users alone)",
    downtime: "as traefik",
  },
  {
    key: "tenants",
    example: (c) => (c.tenants = [{ serviceUser: { name: "ci-a" }, limits: { cpuPercent: 100 } }]),
    outcome: "update",
    plan: {
      create: [
        "ci-a-docker-daemon-json",
        "ci-a-docker-daemon-unit",
        "ci-a-docker-delegation",
        "ci-a-docker-ready",
        "ci-a-limits",
        "ci-a-linger-enable",
        "ci-a-service-user-account",
      ],
    },
    onHost:
      "an added tenant: its user, linger, limits, daemon, services, proxy and Traefik; a removed one: only its steps' deletes (its data kept unless its removeOnDestroy); the other tenants do not restart (on the VM: two added, then one removed)",
    downtime: "none for the other tenants",
  },
  {
    key: "tenantDashboardUsers",
    from: (c) => {
      c.tenants = [
        {
          serviceUser: {
            name: "ci-a",
            deployKeys: [
              "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITenantATenantATenantATenantATenantATenantA0 ci-a",
            ],
          },
          socketProxy: {},
          traefik: { httpPort: 8080, httpsPort: 8443, dashboard: {} },
        },
      ];
      c.tenantDashboardUsers = { "ci-a": ["admin:$apr1$e2esalt1$abcdefghijklmnopqrstuv"] };
    },
    example: (c) =>
      (c.tenantDashboardUsers = { "ci-a": ["admin:$apr1$e2esalt1$rotatedrotatedrotated0"] }),
    outcome: "replace",
    plan: { replace: ["ci-a-traefik-container"] },
    onHost:
      "that tenant's Traefik container is replaced with the new users (as traefikDashboardUsers for the host's own); the other tenants' and the host's own are untouched",
    downtime: "routing by that tenant's Traefik while its new container starts",
  },
];

/** Resource types whose changes follow `@pulumi/command`'s rules. */
const COMMAND = "command:remote:Command";

function prefixless(name: string, stack: string): string {
  return name.startsWith(`${stack}-`) ? name.slice(stack.length + 1) : name;
}

/**
 * `@pulumi/command`'s rule for one command's inputs: a `triggers` change replaces it, any other
 * change updates it; undefined when nothing changed. The e2e stand-in engine applies the same.
 */
export function commandAction(
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
): "replace" | "update" | undefined {
  if (JSON.stringify(before.triggers) !== JSON.stringify(after.triggers)) return "replace";
  return JSON.stringify(before) === JSON.stringify(after) ? undefined : "update";
}

function actionOf(x: PlannedResource, y: PlannedResource): Action | undefined {
  if (JSON.stringify(x.inputs) === JSON.stringify(y.inputs)) return undefined;
  if (x.type === COMMAND) return commandAction(x.inputs, y.inputs);
  if (x.type.startsWith("docker:")) return "replace";
  return "update"; // a provider's settings
}

/**
 * What the engine would do to each resource going from plan `before` to plan `after`, under
 * the provider rules above: names (without the `<prefix>-`) by action, sorted. Plans must show
 * secret values (`collectPlan(..., { keepSecrets: true })`), else a hidden change looks
 * like none.
 */
export function classifyChanges(
  before: Plan,
  after: Plan,
  prefix: string,
): Record<Action, string[]> {
  const out: Record<Action, string[]> = { create: [], update: [], replace: [], delete: [] };
  const a = new Map(before.resources.map((r) => [r.name, r]));
  const b = new Map(after.resources.map((r) => [r.name, r]));
  for (const [name, y] of b) {
    const x = a.get(name);
    const action = x ? actionOf(x, y) : "create";
    if (action && !y.type.startsWith("hardened-docker:"))
      out[action].push(prefixless(name, prefix));
  }
  for (const [name, x] of a)
    if (!b.has(name) && !x.type.startsWith("hardened-docker:"))
      out.delete.push(prefixless(name, prefix));
  for (const k of Object.keys(out) as Action[]) out[k].sort();
  return out;
}

/** The table of docs/changes.md (markdown), one line per row. */
export function renderChangeTable(rows: readonly ChangeRow[] = CHANGE_TABLE): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const steps = (p: PlannedActions) =>
    [
      p.update === "*"
        ? "update: every host step"
        : p.update?.length
          ? `update: ${p.update.join(", ")}`
          : "",
      p.replace?.length ? `replace: ${p.replace.join(", ")}` : "",
      p.create?.length ? `create: ${p.create.join(", ")}` : "",
      p.delete?.length ? `delete: ${p.delete.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join("; ");
  return [
    "| Key | Outcome | Steps (as `pulumi preview` shows them) | On the host | Downtime |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| \`${r.key}\` | ${r.outcome} | ${cell(steps(r.plan))} | ${cell(r.onHost)} | ${cell(r.downtime)} |`,
    ),
  ].join("\n");
}

/** A document's text with the table after its change-table marker replaced by `renderChangeTable()`. */
export function withChangeTable(readme: string): string {
  return withTable(readme, "change-table", renderChangeTable(), "docs/changes.md");
}

// `npx tsx stacks/changes.ts`: rewrites docs/changes.md's table from CHANGE_TABLE
if (require.main === module) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { readFileSync, writeFileSync } = require("node:fs") as typeof import("node:fs");
  const { join } = require("node:path") as typeof import("node:path");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const readme = join(__dirname, "..", "docs", "changes.md");
  writeFileSync(readme, withChangeTable(readFileSync(readme, "utf8")));
}
