import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConnectionArgs, resolveConnection } from "./connection";
import { hostCommand } from "./host-command";
import { renderEnvironmentFile } from "./render/environment-file";
import { environmentFileCreateScript, environmentFileDeleteScript } from "./scripts/systemd";
import {
  checkAbsolutePath,
  checkEnvKey,
  checkLinuxName,
  checkUnitName,
  rethrowAsResourceError,
} from "./validate";

export const ENVIRONMENT_FILE_TYPE = "hardened-docker:systemd:EnvironmentFile";

export interface EnvironmentFileArgs {
  readonly connection: ConnectionArgs;
  /** Absolute path of the file, e.g. /etc/hardened-docker/provisioner.env. */
  readonly path: string;
  /** Group allowed to read it (mode 0640, owner root). */
  readonly group: string;
  /** Variables; values may be secrets (`pulumi.secret`, `config.requireSecret`). */
  readonly values: Readonly<Record<string, pulumi.Input<string>>>;
  /** A system unit restarted when the file changes. @default none */
  readonly restartUnit?: string;
}

/**
 * A systemd EnvironmentFile, mode 0640 root:<group>, written over stdin. The rendered text is
 * always a Pulumi secret: it never shows in a preview, state or log, and the script never
 * prints it.
 */
export class EnvironmentFile extends pulumi.ComponentResource {
  readonly path: string;
  readonly command: command.remote.Command;

  constructor(name: string, args: EnvironmentFileArgs, opts?: pulumi.ComponentResourceOptions) {
    super(ENVIRONMENT_FILE_TYPE, name, {}, opts);
    const conn = rethrowAsResourceError(this, () => {
      const resolved = resolveConnection(args.connection);
      checkAbsolutePath("environmentFile.path", args.path);
      checkLinuxName("environmentFile.group", args.group);
      for (const key of Object.keys(args.values)) checkEnvKey(`environmentFile.values.${key}`, key);
      if (args.restartUnit !== undefined)
        checkUnitName("environmentFile.restartUnit", args.restartUnit);
      return resolved;
    });
    this.path = args.path;
    const content = pulumi.secret(
      pulumi
        .all(args.values as Record<string, pulumi.Input<string>>)
        .apply((v) => renderEnvironmentFile(v, "environmentFile.values")),
    );
    const create = environmentFileCreateScript({
      path: args.path,
      group: args.group,
      restartUnit: args.restartUnit,
    });
    this.command = hostCommand(
      `${name}-file`,
      conn,
      {
        step: `environment ${args.path}`,
        create,
        delete: environmentFileDeleteScript(args.path),
        stdin: content,
        triggers: [create, content],
      },
      { parent: this, additionalSecretOutputs: ["stdin", "triggers"] },
    );
    this.registerOutputs({ path: this.path });
  }
}
