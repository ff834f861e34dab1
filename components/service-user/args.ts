import type { ConnectionArgs } from "../core/connection";
import {
  InvalidArgument,
  checkAbsolutePath,
  checkArray,
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkLinuxName,
  checkPlainObject,
  checkPublicKey,
} from "../core/validate";
import { keysOf } from "../core/keys";

/** Ids of one subordinate uid/gid range (`/etc/subuid`, `/etc/subgid`). */
export interface SubordinateIds {
  /** @default the first id after every existing range, and at least 100000 */
  readonly start?: number;
  /** @default 65536 (what rootless Docker needs to map a full container user space) */
  readonly count?: number;
}

export interface ServiceUserSettings {
  /** Login name of the service user. Never `root`, never in the `docker` group. */
  readonly name: string;
  /** @default chosen by useradd */
  readonly uid?: number;
  /** @default "/bin/bash" (as the runbooks do; the deploy key still gets no shell, see docs/security.md) */
  readonly shell?: string;
  /** @default { count: 65536 } at the first free start */
  readonly subordinateIds?: SubordinateIds;
  /** Delete the user, its home and its Docker data on destroy. @default false (kept) */
  readonly removeOnDestroy?: boolean;
  /**
   * Public keys (`ssh-ed25519 AAAA… comment`) allowed to reach this user's rootless Docker
   * API over SSH: how the Docker provider deploys the socket proxy and Traefik. Each one is
   * written as `restrict,command="… docker system dial-stdio"`, so it never gets a shell.
   * The file is managed whole: keys added by hand are removed.
   * @default none (authorized_keys is not touched)
   */
  readonly deployKeys?: readonly string[];
}

export interface ServiceUserArgs extends ServiceUserSettings {
  readonly connection: ConnectionArgs;
}

export const MIN_SUBORDINATE_IDS = 65536;

/** Validated settings with defaults applied. */
export interface ResolvedServiceUser {
  readonly name: string;
  readonly uid?: number;
  readonly shell: string;
  readonly subordinateIdStart?: number;
  readonly subordinateIdCount: number;
  readonly removeOnDestroy: boolean;
  /** Validated public keys, or undefined when the file is not managed. */
  readonly deployKeys?: readonly string[];
}

/**
 * Accounts the service user must never be: the host's own (the apply replaces the user's
 * authorized_keys with deploy keys, and destroy with removeOnDestroy deletes the account and
 * its home). An existing account is also checked on the host at apply time (see the script).
 */
export const SYSTEM_ACCOUNTS = [
  "root",
  "daemon",
  "bin",
  "sys",
  "sync",
  "games",
  "man",
  "lp",
  "mail",
  "news",
  "uucp",
  "proxy",
  "www-data",
  "backup",
  "list",
  "irc",
  "gnats",
  "nobody",
  "systemd-network",
  "systemd-resolve",
  "systemd-timesync",
  "messagebus",
  "sshd",
  "_apt",
  "polkitd",
  "docker",
  "containerd",
  "admin",
  "ubuntu",
  "debian",
  "ec2-user",
  "centos",
  "fedora",
  "rocky",
  "almalinux",
  "cloud-user",
  "opc",
  "azureuser",
  "vagrant",
];

/**
 * The service user must not be the account the library logs in with: its authorized_keys
 * would be replaced by the deploy keys (locking the operator out), and destroy with
 * removeOnDestroy would delete the admin account.
 */
export function checkNotLoginUser(field: string, name: string, loginUser: string): void {
  if (name === loginUser)
    throw new InvalidArgument(
      field,
      name,
      `a user other than the SSH login user (${loginUser})`,
      "The apply would replace the login user's authorized_keys with deploy keys and lock you out. Use a dedicated name, e.g. provisioner.",
    );
}

export const SERVICE_USER_KEYS = keysOf<ServiceUserArgs>()({
  name: true,
  uid: true,
  shell: true,
  subordinateIds: true,
  removeOnDestroy: true,
  deployKeys: true,
  connection: true,
});

export function resolveServiceUser(
  args: ServiceUserSettings,
  field = "serviceUser",
): ResolvedServiceUser {
  const a = checkPlainObject(field, args);
  checkKnownKeys(field, a, SERVICE_USER_KEYS);
  const name = checkLinuxName(`${field}.name`, args.name);
  if (SYSTEM_ACCOUNTS.includes(name)) {
    throw new InvalidArgument(
      `${field}.name`,
      name,
      "a dedicated user, not an account the host or its image already has (root, sshd, nobody, a cloud image's login user, ...)",
      "Its authorized_keys would be replaced by deploy keys and destroy could delete it. Use e.g. provisioner.",
    );
  }
  const uid =
    args.uid === undefined ? undefined : checkInteger(`${field}.uid`, args.uid, 1, 2 ** 31 - 1);
  if (uid === 65534) throw new InvalidArgument(`${field}.uid`, uid, "any uid but 65534 (nobody)");
  const shell = checkAbsolutePath(`${field}.shell`, args.shell ?? "/bin/bash");
  const sub =
    args.subordinateIds === undefined
      ? {}
      : checkPlainObject(`${field}.subordinateIds`, args.subordinateIds);
  checkKnownKeys(
    `${field}.subordinateIds`,
    sub,
    keysOf<SubordinateIds>()({ start: true, count: true }),
  );
  const count = checkInteger(
    `${field}.subordinateIds.count`,
    sub.count ?? MIN_SUBORDINATE_IDS,
    MIN_SUBORDINATE_IDS,
    2 ** 31,
  );
  const start =
    sub.start === undefined
      ? undefined
      : checkInteger(`${field}.subordinateIds.start`, sub.start, 65536, 2 ** 32 - 1 - count);
  const removeOnDestroy = checkBoolean(`${field}.removeOnDestroy`, args.removeOnDestroy ?? false);
  let deployKeys: string[] | undefined;
  if (args.deployKeys !== undefined) {
    const keys = checkArray(`${field}.deployKeys`, args.deployKeys);
    if (keys.length === 0)
      throw new InvalidArgument(
        `${field}.deployKeys`,
        keys,
        "at least one public key, or no deployKeys key at all",
      );
    deployKeys = keys.map((k, i) => checkPublicKey(`${field}.deployKeys[${i}]`, k));
  }
  return {
    name,
    uid,
    shell,
    subordinateIdStart: start,
    subordinateIdCount: count,
    removeOnDestroy,
    deployKeys,
  };
}

export interface DockerApiSettings {
  /**
   * Private key file of a deploy key, on the machine running Pulumi.
   * @default the keys of the SSH agent (SSH_AUTH_SOCK)
   */
  readonly identityFile?: string;
}

export function resolveDockerApiSettings(
  args: DockerApiSettings = {},
  field = "dockerApi",
): DockerApiSettings {
  const a = checkPlainObject(field, args);
  checkKnownKeys(field, a, keysOf<DockerApiSettings>()({ identityFile: true }));
  return args.identityFile === undefined
    ? {}
    : { identityFile: checkAbsolutePath(`${field}.identityFile`, args.identityFile) };
}
