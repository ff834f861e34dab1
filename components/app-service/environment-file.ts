import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ConnectionArgs, resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { renderEnvironmentFile } from "./render-environment-file";
import { environmentFileCreateScript, environmentFileDeleteScript } from "../systemd-unit/script";
import { checkAbsolutePath, checkEnvKey, checkUnitName } from "../core/validate";
import { rethrowAsResourceError } from "../core/resource";

export const ENVIRONMENT_FILE_TYPE = "hardened-docker:systemd:EnvironmentFile";

export interface EnvironmentFileArgs {
  readonly connection: ConnectionArgs;
  /** Absolute path of the file, e.g. /etc/hardened-docker/provisioner.env. */
  readonly path: string;
  /** Variables; values may be secrets (`pulumi.secret`, `config.requireSecret`). */
  readonly values: Readonly<Record<string, pulumi.Input<string>>>;
  /** A system unit restarted when the file changes. @default none */
  readonly restartUnit?: string;
}

/**
 * A systemd EnvironmentFile, mode 0600 root:root, written over stdin: systemd reads it as root
 * before it drops to the service's user, so the service user (and anything that can read its
 * files, like a container of its) never reads the secrets in it. The rendered text is always a
 * Pulumi secret: it never shows in a preview, state or log, and the script never prints it.
 */
export class EnvironmentFile extends pulumi.ComponentResource {
  readonly path: string;
  readonly command: command.remote.Command;

  constructor(name: string, args: EnvironmentFileArgs, opts?: pulumi.ComponentResourceOptions) {
    super(ENVIRONMENT_FILE_TYPE, name, {}, opts);
    const conn = rethrowAsResourceError(this, () => {
      const resolved = resolveConnection(args.connection);
      checkAbsolutePath("environmentFile.path", args.path);
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
      },
      { parent: this, additionalSecretOutputs: ["stdin"] },
    );
    this.registerOutputs({ path: this.path });
  }
}
