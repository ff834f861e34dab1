/**
 * Reading `stacks/Pulumi.<host>.yaml` without the Pulumi CLI (for `plan` and `verify`): the
 * config as the program would see it, secrets replaced by placeholders.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { YAMLError, parse } from "yaml";
import { checkArray, checkPlainObject } from "../components/core/validate";

const ROOT = join(__dirname, "..");

export interface StackConfig {
  readonly stack: string;
  /** Config without the project prefix; objects as objects. */
  readonly config: Record<string, unknown>;
  /** Keys whose values are secrets. */
  readonly secretKeys: readonly string[];
}
const PREFIX = "hardened-docker:";
/** A syntactically valid stand-in for a bcrypt htpasswd line (the real ones are secret). */
const PLACEHOLDER_USER = `plan:$2y$05$${".".repeat(53)}`;

/** A stack file that cannot be read or is not a stack file; the message names file and line. */
export class StackFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = "StackFileError";
  }
}

/** Stack names that have a `stacks/Pulumi.<name>.yaml`. */
export function stackNames(dir = join(ROOT, "stacks")): string[] {
  return readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort();
}

/**
 * A stack file's config as the program would see it, with every secret (encrypted in the
 * file, or missing) replaced by a placeholder the program accepts.
 */
export function planInputFromStackFile(stack: string, dir = join(ROOT, "stacks")): StackConfig {
  const doc = readStackFile(join(dir, `Pulumi.${stack}.yaml`));
  const config: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (!key.startsWith(PREFIX)) continue;
    const k = key.slice(PREFIX.length);
    const secure = value && typeof value === "object" && "secure" in (value as object);
    if (secure) secretKeys.add(k);
    else config[k] = value;
  }
  // the shapes the placeholders below walk through (the program checks the rest)
  if (config.services !== undefined)
    checkArray("services", config.services).forEach((svc, i) =>
      checkPlainObject(`services[${i}]`, svc),
    );
  config.privateKey = "plan-placeholder-private-key";
  secretKeys.add("privateKey");
  const services = servicesOf(config);
  if (secretKeys.has("serviceSecrets") || services.some((s) => s.secretEnvironment?.length)) {
    const secrets: Record<string, Record<string, string>> = {};
    for (const svc of services)
      for (const v of svc.secretEnvironment ?? [])
        (secrets[String(svc.name)] ??= {})[String(v)] = "plan-placeholder";
    config.serviceSecrets = secrets;
    secretKeys.add("serviceSecrets");
  }
  const traefik = config.traefik as { dashboard?: unknown } | undefined;
  if (secretKeys.has("traefikDashboardUsers") || traefik?.dashboard !== undefined) {
    config.traefikDashboardUsers = [PLACEHOLDER_USER];
    secretKeys.add("traefikDashboardUsers");
  }
  const dashboards = tenantDashboards(config);
  if (secretKeys.has("tenantDashboardUsers") || dashboards.length > 0) {
    config.tenantDashboardUsers = Object.fromEntries(
      dashboards.map((name) => [name, [PLACEHOLDER_USER]]),
    );
    secretKeys.add("tenantDashboardUsers");
  }
  return { stack, config, secretKeys: [...secretKeys].sort() };
}

type ServiceShape = { name?: unknown; secretEnvironment?: unknown[] };
type TenantShape = {
  serviceUser?: { name?: unknown };
  services?: unknown;
  traefik?: { dashboard?: unknown };
};
const tenantsOf = (config: Record<string, unknown>): TenantShape[] =>
  Array.isArray(config.tenants) ? (config.tenants as unknown[]).filter(isMapping) : [];
const listOf = <T>(v: unknown): T[] => (Array.isArray(v) ? (v.filter(isMapping) as T[]) : []);

/** Every app service a stack declares: the host's own, then each tenant's. */
function servicesOf(config: Record<string, unknown>): ServiceShape[] {
  return [
    ...listOf<ServiceShape>(config.services),
    ...tenantsOf(config).flatMap((t) => listOf<ServiceShape>(t.services)),
  ].map((s) => ({
    ...s,
    secretEnvironment: Array.isArray(s.secretEnvironment) ? s.secretEnvironment : [],
  }));
}

/** The names of the tenants whose Traefik has a dashboard (its users: `tenantDashboardUsers`). */
function tenantDashboards(config: Record<string, unknown>): string[] {
  return tenantsOf(config)
    .filter((t) => isMapping(t.traefik) && t.traefik.dashboard !== undefined)
    .map((t) => String(isMapping(t.serviceUser) ? t.serviceUser.name : undefined));
}

/**
 * Parses a stack file. @throws StackFileError naming the file (and line:column for YAML
 * errors) when it cannot be read, is not YAML, or its `config` is not a mapping.
 */
function readStackFile(file: string): { config?: Record<string, unknown> } | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new StackFileError(file, `${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLError) {
      const at = e.linePos?.[0];
      const reason = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      throw new StackFileError(file, `${file}${at ? `:${at.line}:${at.col}` : ""}: ${reason}`);
    }
    throw e;
  }
  if (doc === null || doc === undefined) return null;
  const isMap = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isMap(doc))
    throw new StackFileError(file, `${file}: not a stack file (want a mapping with config:)`);
  const config = (doc as { config?: unknown }).config;
  if (config !== undefined && config !== null && !isMap(config))
    throw new StackFileError(file, `${file}: config: want a mapping of <project>:<key> to values`);
  return doc as { config?: Record<string, unknown> };
}

/** Stack files shipped as templates (not hosts): `verify --all-stacks` skips them. */
export const TEMPLATE_STACKS: readonly string[] = ["example", "local"];

export interface SecretProblems {
  /** Secrets that `pulumi up` needs and the file does not hold, with the command to set each. */
  readonly unset: readonly string[];
  /** Values that must be secrets but sit in the file in clear text. */
  readonly clearText: readonly string[];
}

const isSecure = (v: unknown) => typeof v === "object" && v !== null && "secure" in v;
const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The command that sets a dashboard's first user (`key`: the secret key, e.g.
 * `traefikDashboardUsers`, or a tenant's entry in one).
 */
export const setDashboardUserCommand = (key: string) =>
  `pulumi config set --secret --path '${key}[0]' "$(htpasswd -nbB admin <password>)"`;

/**
 * What `pulumi up` would refuse (or regret) about a stack file's secrets: the private key or a
 * declared secret environment value never set, a dashboard without users, and any of them
 * written in clear text (a private key committed to the repository).
 */
export function secretProblems(stack: string, dir = join(ROOT, "stacks")): SecretProblems {
  const file = join(dir, `Pulumi.${stack}.yaml`);
  const raw = readStackFile(file)?.config ?? {};
  const get = (k: string) => raw[`${PREFIX}${k}`];
  const unset: string[] = [];
  const clearText: string[] = [];
  const key = get("privateKey");
  if (key === undefined)
    unset.push(`privateKey: pulumi config set --secret privateKey -s ${stack} < <admin key file>`);
  else if (!isSecure(key))
    clearText.push(
      `privateKey is in clear text in ${file}: delete the line, rotate the key, and set the new one with pulumi config set --secret privateKey -s ${stack} < <admin key file>`,
    );
  const secrets = get("serviceSecrets");
  const declared = { services: get("services"), tenants: get("tenants") };
  for (const svc of servicesOf(declared)) {
    for (const v of svc.secretEnvironment ?? []) {
      const path = `serviceSecrets.${String(svc.name)}.${String(v)}`;
      if (isSecure(secrets)) continue; // one secret object: its content cannot be seen
      const forService = isMapping(secrets) ? secrets[String(svc.name)] : undefined;
      if (isSecure(forService)) continue;
      const value = isMapping(forService) ? forService[String(v)] : undefined;
      if (value === undefined)
        unset.push(`${path}: pulumi config set --secret --path '${path}' <value> -s ${stack}`);
      else if (!isSecure(value))
        clearText.push(
          `${path} is in clear text in ${file}: set it with pulumi config set --secret --path '${path}' <value> -s ${stack}`,
        );
    }
  }
  // a dashboard's users (`path`: the secret key, or a tenant's entry in one): set, and secret
  const dashboardUsers = (path: string, users: unknown) => {
    if (users === undefined) unset.push(`${path}: ${setDashboardUserCommand(path)} -s ${stack}`);
    else if (!isSecure(users) && !(Array.isArray(users) && users.every(isSecure)))
      clearText.push(
        `${path} is in clear text in ${file}: set it with pulumi config set --secret --path '${path}[0]' ... -s ${stack}`,
      );
  };
  const traefik = get("traefik");
  if (isMapping(traefik) && traefik.dashboard !== undefined)
    dashboardUsers("traefikDashboardUsers", get("traefikDashboardUsers"));
  const tenantUsers = get("tenantDashboardUsers");
  // one secret object: its content cannot be seen
  if (!isSecure(tenantUsers))
    for (const name of tenantDashboards(declared))
      dashboardUsers(
        `tenantDashboardUsers.${name}`,
        isMapping(tenantUsers) ? tenantUsers[name] : undefined,
      );
  return { unset, clearText };
}
