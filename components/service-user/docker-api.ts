/**
 * How `@pulumi/docker` reaches a host's rootless daemon: a `docker.Provider` whose host is
 * `ssh://<service user>@<host>:<port>`. The Docker client runs the local `ssh` binary, which
 * lands on the service user's restricted deploy key (`docker system dial-stdio` only). The
 * key comes from the SSH agent (or `identityFile`); the host key is pinned through
 * `KnownHostsCommand`, so no known_hosts file has to exist on the machine running Pulumi.
 */
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { HostConnection } from "../core/connection";
import { DockerApiSettings } from "./args";
export { resolveDockerApiSettings } from "./args";
export type { DockerApiSettings } from "./args";

/** `ssh://user@host:port` for the Docker client. */
export function dockerSshHost(conn: Pick<HostConnection, "host" | "port">, user: string): string {
  const host = conn.host.includes(":") ? `[${conn.host}]` : conn.host;
  return `ssh://${user}@${host}:${conn.port}`;
}

/**
 * Options for the `ssh` the Docker client runs: batch mode, and either the pinned host key
 * (fed by `KnownHostsCommand`, no known_hosts file read or written) or, only when the
 * connection opted out by name, no host key check.
 */
export function dockerSshOptions(
  conn: Pick<HostConnection, "hostKey">,
  settings: DockerApiSettings = {},
): string[] {
  const opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=30"];
  if (conn.hostKey) {
    opts.push(
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      `KnownHostsCommand=/bin/echo %H ${conn.hostKey}`,
    );
  } else {
    opts.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
  }
  if (settings.identityFile) opts.push("-o", "IdentitiesOnly=yes", "-i", settings.identityFile);
  return opts;
}

/** The provider for one host's rootless daemon, reached as `user` over SSH. */
export function dockerApiProvider(
  name: string,
  conn: HostConnection,
  user: string,
  settings: DockerApiSettings,
  opts: pulumi.CustomResourceOptions,
): docker.Provider {
  return new docker.Provider(
    name,
    {
      host: dockerSshHost(conn, user),
      sshOpts: dockerSshOptions(conn, settings),
      // the host may not have Docker yet when a preview runs: connect only when deploying
      disableDockerDaemonCheck: true,
    },
    opts,
  );
}
