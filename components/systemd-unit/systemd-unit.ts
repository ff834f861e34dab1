import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConnectionArgs, resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { UnitFileSections, renderSystemdUnit } from "./render";
import { UnitScope, unitCreateScript, unitDeleteScript } from "./script";
import {
  InvalidArgument,
  checkBoolean,
  checkLinuxName,
  checkOneOf,
  checkUnitName,
} from "../core/validate";
import { rethrowAsResourceError } from "../core/resource";

export const SYSTEMD_UNIT_TYPE = "hardened-docker:systemd:SystemdUnit";

export interface SystemdUnitArgs {
  readonly connection: ConnectionArgs;
  /** Unit file name with its suffix, e.g. `provisioner.service`. */
  readonly unitName: string;
  /**
   * `system`: /etc/systemd/system, run by PID 1. `user`: ~user/.config/systemd/user, run by
   * that user's manager (linger must be on).
   * @default "system"
   */
  readonly scope?: UnitScope;
  /** For `scope: "user"`: whose manager runs the unit. */
  readonly user?: string;
  /** Typed sections, rendered by `renderSystemdUnit`. May hold outputs (e.g. a uid). */
  readonly sections: pulumi.Input<UnitFileSections>;
  /** @default true */
  readonly enable?: boolean;
  /** Start it now (restart it when its content changed). @default true */
  readonly start?: boolean;
}

/**
 * A systemd unit written from rendered text over stdin, then daemon-reload, enable, start
 * (restart when the content changed). Destroy disables, stops and removes it.
 */
export class SystemdUnit extends pulumi.ComponentResource {
  /** The rendered unit file, exactly as written on the host. */
  readonly content: pulumi.Output<string>;
  readonly command: command.remote.Command;

  constructor(name: string, args: SystemdUnitArgs, opts?: pulumi.ComponentResourceOptions) {
    super(SYSTEMD_UNIT_TYPE, name, {}, opts);
    const { conn, scriptArgs } = rethrowAsResourceError(this, () => {
      const scope = checkOneOf("unit.scope", args.scope ?? "system", ["system", "user"] as const);
      const user = args.user === undefined ? undefined : checkLinuxName("unit.user", args.user);
      if (scope === "user" && user === undefined) {
        throw new InvalidArgument(
          "unit.user",
          undefined,
          "the user whose manager runs a user-scope unit",
        );
      }
      if (scope === "system" && user !== undefined) {
        throw new InvalidArgument(
          "unit.user",
          user,
          "unset for a system unit",
          "Put User= in the [Service] section instead.",
        );
      }
      return {
        conn: resolveConnection(args.connection),
        scriptArgs: {
          unitName: checkUnitName("unit.unitName", args.unitName),
          scope,
          user,
          enable: checkBoolean("unit.enable", args.enable ?? true),
          start: checkBoolean("unit.start", args.start ?? true),
        },
      };
    });
    const field = `unit(${scriptArgs.unitName})`;
    this.content = pulumi
      .output(args.sections)
      .apply((s) => renderSystemdUnit(s as UnitFileSections, field));
    const create = unitCreateScript(scriptArgs);
    this.command = hostCommand(
      `${name}-unit`,
      conn,
      {
        step: `unit ${scriptArgs.unitName}`,
        create,
        delete: unitDeleteScript(scriptArgs),
        stdin: this.content,
      },
      { parent: this },
    );
    this.registerOutputs({ content: this.content });
  }
}
