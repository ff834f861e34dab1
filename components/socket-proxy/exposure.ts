/**
 * The one rule for "this bind mount exposes a Docker or containerd API socket", used by the
 * policy pack (at preview, from resource inputs) and by `verify` (on the host, from inspect
 * documents, where it adds a device/inode comparison). Pure and import-free, so the policy
 * pack can load it without the Pulumi SDK.
 */

/** Host-wide API sockets. */
const HOST_SOCKETS = [
  "/var/run/docker.sock",
  "/run/docker.sock",
  "/run/containerd/containerd.sock",
  "/var/run/containerd/containerd.sock",
];

/** The API sockets of the rootless daemon of `uid` (its own containerd's included). */
function userSockets(uid: number | string): string[] {
  return [
    `/run/user/${uid}/docker.sock`,
    `/run/user/${uid}/docker/containerd/containerd.sock`,
    `/var/run/user/${uid}/docker.sock`,
  ];
}

/** `source` without `.`/`..` segments, repeated or trailing slashes (lexically). */
export function normalisePath(source: string): string {
  const out: string[] = [];
  for (const seg of source.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/**
 * Whether a bind mount of `source` exposes an API socket: a socket itself (any path ending in
 * `docker.sock` or `containerd.sock`), or a directory above one (`/run/user/<uid>`, `/run`,
 * `/`). Without `uid` (the policy pack, before the service user exists), every user's
 * runtime directory counts.
 */
export function exposesApiSocket(source: string, uid?: number): boolean {
  if (!source.startsWith("/")) return false; // a named volume, not a host path
  const src = normalisePath(source);
  if (src === "/" || /\/(docker|containerd)\.sock$/.test(src)) return true;
  const sockets = [...HOST_SOCKETS, ...(uid === undefined ? [] : userSockets(uid))];
  if (sockets.some((s) => s.startsWith(`${src}/`))) return true;
  // without a uid: any user's runtime directory, and the directories above them
  return uid === undefined && /^(\/var)?\/run\/user(\/\d+(\/docker(\/containerd)?)?)?$/.test(src);
}
