import type * as pulumi from "@pulumi/pulumi";
import {
  InvalidArgument,
  checkAbsolutePath,
  checkArray,
  checkCommandLine,
  checkEnvKey,
  checkKnownKeys,
  checkLine,
  checkOneOf,
  checkPlainObject,
  checkServiceName,
  checkUnitName,
  secretLineProblem,
} from "../core/validate";
import { keysOf } from "../core/keys";

/** An application service that drives the service user's rootless Docker daemon. */
export interface AppServiceArgs {
  /** Short name; the unit is `<name>.service`. */
  readonly name: string;
  /** @default "<name> (hardened-docker app service)" */
  readonly description?: string;
  /** Command line; the first word is an absolute path. */
  readonly execStart: string;
  /** @default the service user's home (read-only under the hardening preset) */
  readonly workingDirectory?: string;
  /**
   * Variables written to /etc/hardened-docker/<name>.env (0600 root:root: systemd reads it as
   * root, the service user never can), values
   * may be secrets. `DOCKER_HOST` and `XDG_RUNTIME_DIR` are set for you and cannot be
   * overridden here (so the app cannot be pointed at a root socket by accident).
   * @default none
   */
  readonly environment?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Paths the app may write to (everything else is read-only). @default none */
  readonly readWritePaths?: readonly string[];
  /** Extra units to order after (and want). @default network-online.target only */
  readonly after?: readonly string[];
  /** @default "always" */
  readonly restart?: "always" | "on-failure" | "on-abnormal" | "no";
}

const RESERVED_ENV = ["DOCKER_HOST", "XDG_RUNTIME_DIR"];
/**
 * Units an app service must never be named after (its unit would replace the host's own).
 * Any other existing unit that hardened-docker did not write is refused at apply time.
 */
export const SYSTEM_UNITS = [
  "docker",
  "containerd",
  "ssh",
  "sshd",
  "dbus",
  "cron",
  "systemd-journald",
  "systemd-logind",
  "systemd-networkd",
  "systemd-resolved",
  "systemd-timesyncd",
  "systemd-udevd",
  "getty",
  "user",
  "user-runtime-dir",
  "networking",
  "NetworkManager",
  "rsyslog",
  "polkit",
  "udev",
  "apparmor",
  "ufw",
  "nftables",
  "fail2ban",
  "unattended-upgrades",
  "snapd",
  "chrony",
];
const SERVICE_KEYS = keysOf<AppServiceArgs>()({
  name: true,
  description: true,
  execStart: true,
  workingDirectory: true,
  environment: true,
  readWritePaths: true,
  after: true,
  restart: true,
});

/**
 * Validates one entry of a tenant's `services` (`f` is its field, `services[<i>]` or
 * `tenants[<n>].services[<i>]`). `serviceNames` holds the names taken so far, host-wide;
 * this one is added. `user` is the service user the unit runs as (named in errors).
 */
export function checkAppService(
  f: string,
  raw: unknown,
  user: { readonly name: string },
  serviceNames: Set<string>,
): void {
  const svc = checkPlainObject(f, raw) as unknown as AppServiceArgs;
  checkKnownKeys(f, svc as unknown as Record<string, unknown>, SERVICE_KEYS);
  const name = checkServiceName(`${f}.name`, svc.name);
  if (serviceNames.has(name))
    throw new InvalidArgument(
      `${f}.name`,
      name,
      "a name no other service uses (unit names are host-wide, across tenants)",
    );
  if (SYSTEM_UNITS.includes(name))
    throw new InvalidArgument(
      `${f}.name`,
      name,
      "a name that is not one of the host's own units (docker, containerd, ssh, cron, ...)",
      `${name}.service would replace it. Name the unit after your app; an existing unit of that name that hardened-docker did not write is also refused on the host.`,
    );
  serviceNames.add(name);
  if (svc.description !== undefined) checkLine(`${f}.description`, svc.description);
  checkCommandLine(`${f}.execStart`, svc.execStart);
  if (svc.workingDirectory !== undefined)
    checkAbsolutePath(`${f}.workingDirectory`, svc.workingDirectory);
  for (const key of Object.keys(checkPlainObject(`${f}.environment`, svc.environment ?? {}))) {
    checkEnvKey(`${f}.environment.${key}`, key);
    if (RESERVED_ENV.includes(key)) {
      throw new InvalidArgument(
        `${f}.environment.${key}`,
        key,
        `a variable other than ${RESERVED_ENV.join(" and ")}`,
        `hardened-docker sets it to ${user.name}'s rootless daemon; remove it.`,
      );
    }
  }
  checkArray(`${f}.readWritePaths`, svc.readWritePaths ?? []).forEach((p, j) =>
    checkAbsolutePath(`${f}.readWritePaths[${j}]`, p),
  );
  checkArray(`${f}.after`, svc.after ?? []).forEach((u, j) => checkUnitName(`${f}.after[${j}]`, u));
  if (svc.restart !== undefined)
    checkOneOf(`${f}.restart`, svc.restart, ["always", "on-failure", "on-abnormal", "no"] as const);
}

/**
 * Checks one environment value (possibly a secret, known only at run time). Returns the error
 * message, which never contains the value, or undefined when it is valid.
 */
export function environmentValueProblem(
  service: string,
  key: string,
  value: unknown,
): string | undefined {
  return secretLineProblem(`services(${service}).environment.${key}`, value);
}
