/**
 * Maps one host's stack config (flat keys, see Pulumi.yaml and docs/configuration.md) onto
 * `HardenedDockerHostArgs`. Pure apart from the `ConfigSource` it is given, so tests can
 * feed it plain objects.
 */
import * as pulumi from "@pulumi/pulumi";
import type {
  AppServiceArgs,
  DaemonConfig,
  HardenedDockerHostArgs,
  SocketProxySettings,
  TenantArgs,
  TraefikSettings,
} from "../components";
import { TENANT_KEYS } from "../components/tenants/args";
import { CONFIG_KEYS, STACK_KEYS, StackKey, StackKeyName, isSecretKey, keyType } from "./keys";
import { setDashboardUserCommand } from "./stack-file";

export { CONFIG_KEYS };
import {
  InvalidArgument,
  checkArray,
  checkKnownKeys,
  checkPlainObject,
} from "../components/core/validate";

/** What the program needs from `pulumi.Config` (so tests can pass a plain object). */
export interface ConfigSource {
  get(key: string): unknown;
  /** A secret string (the private key). */
  requireSecret(key: string): pulumi.Output<string>;
  /** A secret object, or undefined when the key is not set. */
  getSecretObject(key: string): pulumi.Output<unknown> | undefined;
}

/** A service as written in stack config: the component's fields plus `secretEnvironment`. */
interface ServiceConfig extends Omit<AppServiceArgs, "environment"> {
  readonly environment?: Record<string, string>;
  /** Names of variables whose values come from the secret `serviceSecrets.<service>.<NAME>`. */
  readonly secretEnvironment?: string[];
}

/**
 * `pulumi config set --path 'socketProxy.cpus' 0.2` stores the string "0.2": inside an object
 * the CLI (3.274, measured) infers integers and booleans but keeps any other number a string
 * unless `--type float` is given. So the one key that takes fractions, `cpus`, also accepts a
 * decimal string there; anything else still fails validation with its field name.
 */
function cpusFromCli<T>(value: T): T {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const cpus = (value as Record<string, unknown>).cpus;
  return typeof cpus === "string" && /^\d+(\.\d+)?$/.test(cpus)
    ? { ...value, cpus: Number(cpus) }
    : value;
}

/**
 * `pulumi config set --path 'services[0].environment.PORT' 3000` stores the number 3000, and
 * `--path 'daemonConfig["log-opts"]["max-file"]' 5` the number 5; both places only take
 * strings (environment variables; Docker's log options). A number or boolean there is taken as
 * its text, as the operator meant it; objects and lists still fail validation by field name.
 */
function scalarsAsText(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      typeof v === "number" || typeof v === "boolean" ? String(v) : v,
    ]),
  );
}

function logOptsAsText(config: DaemonConfig | undefined): DaemonConfig | undefined {
  const opts = (config as Record<string, unknown> | undefined)?.["log-opts"];
  return opts === undefined
    ? config
    : ({ ...config, "log-opts": scalarsAsText(opts) } as DaemonConfig);
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

type Secrets = pulumi.Output<Record<string, Record<string, string>>> | undefined;

/** `services` (or a tenant's) as written in stack config, onto `AppServiceArgs`. */
function servicesFromConfig(field: string, raw: unknown, secrets: Secrets): AppServiceArgs[] {
  return checkArray(field, raw ?? []).map((item, i) => {
    const svc = checkPlainObject(`${field}[${i}]`, item) as unknown as ServiceConfig;
    const { secretEnvironment, environment, ...rest } = svc;
    const env: Record<string, pulumi.Input<string>> = {
      ...(scalarsAsText(environment ?? {}) as Record<string, string>),
    };
    for (const [j, key] of checkArray(
      `${field}[${i}].secretEnvironment`,
      secretEnvironment ?? [],
    ).entries()) {
      if (typeof key !== "string")
        throw new InvalidArgument(`${field}[${i}].secretEnvironment[${j}]`, key, "a variable name");
      if (!secrets) {
        throw new InvalidArgument(
          "serviceSecrets",
          undefined,
          `an object holding services.${svc.name}.secretEnvironment values`,
          `Set it: pulumi config set --secret --path 'serviceSecrets.${svc.name}.${key}' <value>`,
        );
      }
      env[key] = secrets.apply((s) => {
        const value = s?.[svc.name]?.[key];
        if (typeof value !== "string") {
          throw new Error(
            `serviceSecrets.${svc.name}.${key}: missing; set it with pulumi config set --secret --path 'serviceSecrets.${svc.name}.${key}' <value>`,
          );
        }
        return value;
      });
    }
    return defined({
      ...rest,
      environment: Object.keys(env).length > 0 ? env : undefined,
    }) as AppServiceArgs;
  });
}

/** Keys of one `tenants` entry in stack config: the component's, the deploy key as a file. */
const TENANT_CONFIG_KEYS = [
  ...TENANT_KEYS.filter((k) => k !== "dockerApi"),
  "dockerIdentityFile",
] as const;

type DashboardUsers = pulumi.Output<Record<string, string[]>> | undefined;

/**
 * A Traefik's settings from stack config (`field` "traefik" or "tenants[<i>].traefik"), its
 * dashboard users from `users`, read from the secret `usersKey` (a key, or a tenant's entry
 * in one), never from the stack file in clear.
 */
function traefikFromConfig(
  field: string,
  raw: unknown,
  users: () => pulumi.Output<string[]> | undefined,
  usersKey: string,
): TraefikSettings | undefined {
  const traefik = cpusFromCli(raw as Record<string, unknown> | undefined);
  if (traefik === undefined) return undefined;
  const t = checkPlainObject(field, traefik);
  if (t.dashboard === undefined) return t as TraefikSettings;
  const dashboard = checkPlainObject(`${field}.dashboard`, t.dashboard);
  if (dashboard.users !== undefined)
    throw new InvalidArgument(
      `${field}.dashboard.users`,
      "(not shown)",
      `set in the secret key ${usersKey}, never in clear in the stack file`,
      setDashboardUserCommand(usersKey),
    );
  const secret = users();
  if (!secret)
    throw new InvalidArgument(
      usersKey,
      undefined,
      "htpasswd lines for the dashboard (a secret list)",
      setDashboardUserCommand(usersKey),
    );
  return { ...t, dashboard: { ...dashboard, users: secret } } as TraefikSettings;
}

/** `tenants` as written in stack config, onto `TenantArgs` (the component's shape). */
function tenantsFromConfig(
  raw: unknown,
  secrets: Secrets,
  dashboardUsers: DashboardUsers,
): TenantArgs[] {
  return checkArray("tenants", raw ?? []).map((item, i) => {
    const f = `tenants[${i}]`;
    const t = checkPlainObject(f, item);
    checkKnownKeys(f, t, TENANT_CONFIG_KEYS);
    const name = (checkPlainObject(`${f}.serviceUser`, t.serviceUser ?? {}) as { name?: unknown })
      .name;
    const usersKey = `tenantDashboardUsers.${String(name)}`;
    const traefik = traefikFromConfig(
      `${f}.traefik`,
      t.traefik,
      () =>
        dashboardUsers?.apply((all) => {
          const users = all?.[String(name)];
          if (!Array.isArray(users) || users.length === 0)
            throw new Error(
              `${usersKey}: missing; set it with ${setDashboardUserCommand(usersKey)}`,
            );
          return users;
        }),
      usersKey,
    );
    const { dockerIdentityFile: identity, ...own } = t as Record<string, unknown> & {
      dockerIdentityFile?: string;
    };
    // every field as the component takes it, but those the stack file writes its own way
    return defined({
      ...own,
      daemonConfig: logOptsAsText(t.daemonConfig as DaemonConfig | undefined),
      services:
        t.services === undefined
          ? undefined
          : servicesFromConfig(`${f}.services`, t.services, secrets),
      socketProxy: cpusFromCli(t.socketProxy as SocketProxySettings | undefined),
      traefik,
      dockerApi: identity ? { identityFile: identity } : undefined,
    }) as TenantArgs;
  });
}

/**
 * Sets `path` (dotted, from the key table's `arg`) in `target` to `value`, making the objects
 * on the way.
 */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let at = target;
  for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
  at[parts[parts.length - 1]] = value;
}

export function hostArgsFromConfig(cfg: ConfigSource): HardenedDockerHostArgs {
  const get = <T>(key: StackKeyName) => cfg.get(key) as T | undefined;
  // the keys the table maps by path (null, and a blank where the table says so, is unset, as
  // it always was), then the ones that need the program
  const args: Record<string, unknown> = { connection: {}, serviceUser: {}, docker: {} };
  for (const [key, k] of Object.entries(STACK_KEYS) as [StackKeyName, StackKey][]) {
    if (k.mapping !== "path") continue;
    let value = get(key);
    if (value === null || (value === "" && k.blankIsUnset)) value = undefined;
    if (value === undefined && k.appliedByProgram) value = k.default;
    if (value !== undefined) setPath(args, k.arg, value);
  }
  const secrets = cfg.getSecretObject("serviceSecrets") as Secrets;
  const connection = args.connection as Record<string, unknown>;
  connection.privateKey = cfg.requireSecret("privateKey");
  const docker = args.docker as Record<string, unknown>;
  const daemonConfig = logOptsAsText(get<DaemonConfig>("daemonConfig"));
  if (daemonConfig !== undefined) docker.daemonConfig = daemonConfig;
  args.services = servicesFromConfig("services", get<unknown[]>("services"), secrets);
  const socketProxy = cpusFromCli(get<SocketProxySettings>("socketProxy"));
  if (socketProxy !== undefined) args.socketProxy = socketProxy;
  const traefik = traefikFromConfig(
    "traefik",
    get<Record<string, unknown>>("traefik"),
    () => cfg.getSecretObject("traefikDashboardUsers") as pulumi.Output<string[]> | undefined,
    "traefikDashboardUsers",
  );
  if (traefik !== undefined) args.traefik = traefik;
  if (get("tenants") !== undefined)
    args.tenants = tenantsFromConfig(
      get<unknown[]>("tenants"),
      secrets,
      cfg.getSecretObject("tenantDashboardUsers") as DashboardUsers,
    );
  return args as unknown as HardenedDockerHostArgs;
}

/** Adapts `pulumi.Config` (typed getters, so `port: "22"` in YAML is still a number). */
export function pulumiConfigSource(config: pulumi.Config): ConfigSource {
  return {
    get(key) {
      if (keyType(key) === "integer") return config.getNumber(key);
      if (keyType(key) === "boolean") return config.getBoolean(key);
      if (keyType(key) === "object") return config.getObject(key);
      return config.get(key);
    },
    requireSecret: (key) => config.requireSecret(key),
    getSecretObject: (key) => config.getSecretObject(key),
  };
}

/**
 * The same reading of plain values (a stack file read without the Pulumi CLI): `"22"` is a
 * number, `"true"` a boolean, a JSON string an object, as `pulumi.Config` would give them.
 */
export function plainConfigSource(values: Readonly<Record<string, unknown>>): ConfigSource {
  const get = (key: string): unknown => {
    const v = values[key];
    if (typeof v !== "string") return v;
    if (keyType(key) === "integer") {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgument(key, v, "a number");
      return n;
    }
    if (keyType(key) === "boolean") {
      if (v !== "true" && v !== "false") throw new InvalidArgument(key, v, "true or false");
      return v === "true";
    }
    // a secret is never parsed here: the error would show its value
    if (keyType(key) === "object" && !isSecretKey(key)) {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        throw new InvalidArgument(key, v, "a JSON or YAML object");
      }
    }
    return v;
  };
  return {
    get,
    requireSecret: (key) => {
      const v = values[key];
      if (typeof v !== "string") throw new InvalidArgument(key, undefined, "a secret string");
      return pulumi.secret(v);
    },
    getSecretObject: (key) => (values[key] === undefined ? undefined : pulumi.secret(get(key))),
  };
}

/** Fails on config keys of this project that the program does not know. */
export function checkConfigKeys(
  config: Readonly<Record<string, unknown>> | readonly string[],
): void {
  const own = Array.isArray(config)
    ? Object.fromEntries((config as readonly string[]).map((k) => [k, undefined]))
    : (config as Record<string, unknown>);
  checkKnownKeys("config", own, CONFIG_KEYS);
}
