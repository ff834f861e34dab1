import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConnectionArgs, resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { renderAuthorizedKeys } from "./authorized-keys";
import {
  deployKeysCreateScript,
  deployKeysDeleteScript,
  serviceUserCreateScript,
  serviceUserDeleteScript,
} from "./script";
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
  rethrowAsResourceError,
} from "../core/validate";
import { keysOf } from "../core/keys";

export const SERVICE_USER_TYPE = "hardened-docker:host:ServiceUser";

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

const SERVICE_USER_KEYS = keysOf<ServiceUserArgs>()({
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
  checkKnownKeys(`${field}.subordinateIds`, sub, ["start", "count"]);
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

/** Parses the `uid=<n>` and `home=<path>` lines the create script prints last. */
export function parseServiceUserReport(stdout: string): { uid: number; home: string } {
  const uid = [...stdout.matchAll(/^uid=(\d+)$/gm)];
  const home = [...stdout.matchAll(/^home=(\/.*)$/gm)];
  if (uid.length !== 1 || home.length !== 1)
    throw new Error(
      `the service-user script did not report one uid and one home (${uid.length}, ${home.length}: a line of the user's own?); its output was:\n${stdout}`,
    );
  return { uid: Number(uid[0][1]), home: home[0][1] };
}

/**
 * The dedicated service user: home directory, exactly one subuid and one subgid range of at
 * least 65,536 ids overlapping no other user's, and never in the `docker` group.
 */
export class ServiceUser extends pulumi.ComponentResource {
  /** The user's login name. */
  readonly userName: string;
  /** The user's numeric id, as the host reports it. */
  readonly uid: pulumi.Output<number>;
  /** The user's home directory, as the host reports it. */
  readonly home: pulumi.Output<string>;
  readonly command: command.remote.Command;
  /** Writes the restricted deploy keys; undefined when `deployKeys` is not set. */
  readonly deployKeys?: command.remote.Command;

  constructor(name: string, args: ServiceUserArgs, opts?: pulumi.ComponentResourceOptions) {
    super(SERVICE_USER_TYPE, name, {}, opts);
    const { conn, settings } = rethrowAsResourceError(this, () => {
      const c = resolveConnection(args.connection);
      const s = resolveServiceUser(args);
      checkNotLoginUser("serviceUser.name", s.name, c.user);
      return { conn: c, settings: s };
    });
    this.userName = settings.name;
    const create = serviceUserCreateScript({ ...settings, record: name });
    this.command = hostCommand(
      `${name}-account`,
      conn,
      {
        step: "service-user",
        create,
        delete: serviceUserDeleteScript(settings.name, settings.removeOnDestroy, name),
        // No triggers: every change is an update, which re-runs the create. A replace would
        // run the old delete first, which is userdel --remove (home, images, containers,
        // volumes) with removeOnDestroy. The create converges the shell (usermod) and refuses,
        // before anything changes, what would orphan the data: a new name (the host records
        // which user this component manages), a new uid, a new subordinate range.
      },
      { parent: this },
    );
    const report = this.command.stdout.apply(parseServiceUserReport);
    this.uid = report.uid;
    this.home = report.home;
    const keys = settings.deployKeys;
    if (keys) {
      const create = deployKeysCreateScript(settings.name);
      const body = this.uid.apply((uid) => renderAuthorizedKeys(keys, uid));
      this.deployKeys = hostCommand(
        `${name}-deploy-keys`,
        conn,
        {
          step: "deploy-keys",
          create,
          delete: deployKeysDeleteScript(settings.name),
          stdin: body,
          // a key rotation is an update (the file rewritten), never delete-then-create
        },
        { parent: this, dependsOn: [this.command] },
      );
    }
    this.registerOutputs({ userName: this.userName, uid: this.uid, home: this.home });
  }
}
