import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { HostConnection } from "./connection";
import { remoteScript } from "./shell";

export interface HostCommandArgs {
  /** Short step name printed in every line the scripts report. */
  readonly step: string;
  /** Script body run on create (and again on update): idempotent. */
  readonly create: pulumi.Input<string>;
  /** Script body that undoes `create`. */
  readonly delete: string;
  /** File body handed to the script on stdin (never quoted into the command). */
  readonly stdin?: pulumi.Input<string>;
  /**
   * Values whose change replaces the command (its delete, then its create). Leave unset: a
   * change of any other input (script, stdin, connection) is an update, which runs `create`
   * again, and every create script converges the host from whatever state it finds. @default []
   */
  readonly triggers?: pulumi.Input<unknown>[];
}

/**
 * One host-changing `remote.Command`: create and delete wrapped with the prelude and sudo.
 * A change of its content is an update (`@pulumi/command` runs `create` again when there is no
 * `update`): the idempotent create rewrites, restarts and health-checks what changed, and the
 * delete runs only on destroy or when the step leaves the program. `deleteBeforeReplace` for
 * the rare `triggers`: every step manages a fixed path or piece of host state, so the old
 * version must be gone before the new one is written.
 */
export function hostCommand(
  name: string,
  conn: HostConnection,
  args: HostCommandArgs,
  opts: pulumi.CustomResourceOptions,
): command.remote.Command {
  return new command.remote.Command(
    name,
    {
      connection: conn.remote,
      create:
        typeof args.create === "string"
          ? remoteScript(args.step, args.create, conn.privilege)
          : pulumi.output(args.create).apply((c) => remoteScript(args.step, c, conn.privilege)),
      delete: remoteScript(`${args.step} (delete)`, args.delete, conn.privilege),
      ...(args.stdin !== undefined ? { stdin: args.stdin } : {}),
      ...(args.triggers?.length ? { triggers: args.triggers } : {}),
    },
    {
      deleteBeforeReplace: true,
      // states written by earlier versions hold content triggers: without this, the first up
      // after an upgrade would replace (delete, then create) every step, and the account
      // step's delete is userdel --remove with removeOnDestroy
      ...(args.triggers?.length ? {} : { ignoreChanges: ["triggers"] }),
      ...opts,
    },
  );
}
