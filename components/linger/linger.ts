import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConnectionArgs, resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { lingerCreateScript, lingerDeleteScript } from "../service-user/script";
import { checkInteger, checkLinuxName } from "../core/validate";
import { rethrowAsResourceError } from "../core/resource";

export const LINGER_TYPE = "hardened-docker:host:Linger";

export interface LingerArgs {
  readonly connection: ConnectionArgs;
  /** The user whose systemd manager must run with nobody logged in. */
  readonly user: string;
  /** How long to wait for `user@UID.service` to become active. @default 120 */
  readonly timeoutSeconds?: number;
}

/**
 * `loginctl enable-linger`: the user's systemd manager (and so its rootless Docker daemon and
 * containers) runs without a login and comes back after a reboot. Waits until
 * `user@UID.service` is active. Destroy disables linger, which stops that manager.
 */
export class Linger extends pulumi.ComponentResource {
  readonly command: command.remote.Command;

  constructor(name: string, args: LingerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(LINGER_TYPE, name, {}, opts);
    const { conn, user, timeout } = rethrowAsResourceError(this, () => ({
      conn: resolveConnection(args.connection),
      user: checkLinuxName("linger.user", args.user),
      timeout: checkInteger("linger.timeoutSeconds", args.timeoutSeconds ?? 120, 5, 3600),
    }));
    const create = lingerCreateScript(user, timeout);
    this.command = hostCommand(
      `${name}-enable`,
      conn,
      { step: "linger", create, delete: lingerDeleteScript(user) },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
