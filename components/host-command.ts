import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { HostConnection } from "./connection";
import { remoteScript } from "./shell";

export interface HostCommandArgs {
  /** Short step name printed in every line the scripts report. */
  readonly step: string;
  /** Script body run on create (and again on update): idempotent. */
  readonly create: string;
  /** Script body that undoes `create`. */
  readonly delete: string;
  /** File body handed to the script on stdin (never quoted into the command). */
  readonly stdin?: pulumi.Input<string>;
  /** Values whose change replaces the command (delete, then create). */
  readonly triggers: pulumi.Input<unknown>[];
}

/**
 * One host-changing `remote.Command`: create and delete wrapped with the prelude and sudo,
 * `triggers` on the rendered content, and `deleteBeforeReplace`: every step manages a fixed
 * path or piece of host state, so the old version must be gone before the new one is
 * written (create-then-delete would delete what create just wrote).
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
      create: remoteScript(args.step, args.create, conn.privilege),
      delete: remoteScript(`${args.step} (delete)`, args.delete, conn.privilege),
      ...(args.stdin !== undefined ? { stdin: args.stdin } : {}),
      triggers: args.triggers,
    },
    { deleteBeforeReplace: true, ...opts },
  );
}
