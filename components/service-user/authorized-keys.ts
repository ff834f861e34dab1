/**
 * The service user's `~/.ssh/authorized_keys`: every deploy key is forced onto
 * `docker system dial-stdio` against the user's rootless socket, with `restrict` (no PTY, no
 * forwarding, no agent, no X11, no ~/.ssh/rc). Whatever command the client asks for, the key
 * only ever opens a stream to the Docker API: it never gets a shell.
 */

import { rootlessDockerSocket } from "../rootless-docker/unit";

/** The forced command of a deploy key. `docker` is found on sshd's default PATH. */
export function dockerDialStdioCommand(uid: number): string {
  return `/usr/bin/env DOCKER_HOST=unix://${rootlessDockerSocket(uid)} docker system dial-stdio`;
}

/** First line of the file we write: destroy removes only a file that starts with it. */
export const AUTHORIZED_KEYS_HEADER =
  "# Managed by hardened-docker: deploy keys reach the rootless Docker API only (no shell).";

/** authorized_keys text for `keys` (already validated with `checkPublicKey`). */
export function renderAuthorizedKeys(keys: readonly string[], uid: number): string {
  const options = `restrict,command="${dockerDialStdioCommand(uid)}"`;
  return [
    AUTHORIZED_KEYS_HEADER,
    "# Lines added by hand are removed on the next apply.",
    ...keys.map((k) => `${options} ${k}`),
    "",
  ].join("\n");
}
