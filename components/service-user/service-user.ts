import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { renderAuthorizedKeys } from "./authorized-keys";
import {
  deployKeysCreateScript,
  deployKeysDeleteScript,
  serviceUserCreateScript,
  serviceUserDeleteScript,
} from "./script";
import { ServiceUserArgs, checkNotLoginUser, resolveServiceUser } from "./args";
import { rethrowAsResourceError } from "../core/resource";
export {
  MIN_SUBORDINATE_IDS,
  SYSTEM_ACCOUNTS,
  checkNotLoginUser,
  resolveServiceUser,
} from "./args";
export type {
  SubordinateIds,
  ServiceUserSettings,
  ServiceUserArgs,
  ResolvedServiceUser,
} from "./args";

export const SERVICE_USER_TYPE = "hardened-docker:host:ServiceUser";

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
