/**
 * Reading `stacks/Pulumi.<host>.yaml` without the Pulumi CLI (for `plan` and `verify`): the
 * config as the program would see it, secrets replaced by placeholders.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

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
  const doc = parse(readFileSync(join(dir, `Pulumi.${stack}.yaml`), "utf8")) as {
    config?: Record<string, unknown>;
  } | null;
  const config: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    if (!key.startsWith(PREFIX)) continue;
    const k = key.slice(PREFIX.length);
    const secure = value && typeof value === "object" && "secure" in (value as object);
    if (secure) secretKeys.add(k);
    else config[k] = value;
  }
  config.privateKey = "plan-placeholder-private-key";
  secretKeys.add("privateKey");
  if (secretKeys.has("serviceSecrets") || hasSecretEnvironment(config)) {
    const secrets: Record<string, Record<string, string>> = {};
    for (const svc of (config.services as { name?: string; secretEnvironment?: string[] }[]) ??
      []) {
      for (const v of svc.secretEnvironment ?? [])
        (secrets[String(svc.name)] ??= {})[v] = "plan-placeholder";
    }
    config.serviceSecrets = secrets;
    secretKeys.add("serviceSecrets");
  }
  const traefik = config.traefik as { dashboard?: unknown } | undefined;
  if (secretKeys.has("traefikDashboardUsers") || traefik?.dashboard !== undefined) {
    config.traefikDashboardUsers = [PLACEHOLDER_USER];
    secretKeys.add("traefikDashboardUsers");
  }
  return { stack, config, secretKeys: [...secretKeys].sort() };
}

function hasSecretEnvironment(config: Record<string, unknown>): boolean {
  return ((config.services as { secretEnvironment?: unknown[] }[] | undefined) ?? []).some(
    (s) => (s.secretEnvironment ?? []).length > 0,
  );
}
