/**
 * Validation of every value that shapes a command, a file or a path on the host. Each check
 * throws an `InvalidArgument` naming the field, the value given, what is allowed and how to
 * fix it; components turn it into a `pulumi.ResourceError` (see `rethrowAsResourceError`).
 * Nothing here touches a host: these run before any command exists.
 */

import type { Output } from "@pulumi/pulumi";
import { isOutput } from "./output";

export class InvalidArgument extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    allowed: string,
    fix?: string,
  ) {
    super(`${field}: ${describe(value)} is not valid: ${allowed}.${fix ? ` ${fix}` : ""}`);
    this.name = "InvalidArgument";
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "(missing)";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A string matching `pattern` in full, or an `InvalidArgument` saying what is allowed. */
function checkMatches(field: string, value: unknown, pattern: RegExp, allowed: string): string {
  if (typeof value !== "string" || !pattern.test(value))
    throw new InvalidArgument(field, value, allowed);
  return value;
}

const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** A Docker container or network name that is also usable as a DNS name on a network. */
export function checkDockerName(field: string, value: unknown): string {
  return checkMatches(
    field,
    value,
    DOCKER_NAME,
    "a Docker name: letters, digits and _ . - (starting with a letter or digit), at most 63 characters",
  );
}

const LINUX_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A Linux user or group name as `useradd` accepts it by default (no `$`, no dots). */
export function checkLinuxName(field: string, value: unknown): string {
  return checkMatches(
    field,
    value,
    LINUX_NAME,
    "a Linux user name: 1-32 characters, a lowercase letter or '_' first, then lowercase letters, digits, '_' or '-'",
  );
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

export function checkHost(field: string, value: unknown): string {
  if (
    typeof value !== "string" ||
    !(HOSTNAME.test(value) || (value.includes(":") && IPV6.test(value)))
  ) {
    throw new InvalidArgument(field, value, "a DNS name, an IPv4 address or an IPv6 address");
  }
  return value;
}

export function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgument(field, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

export function checkPort(field: string, value: unknown): number {
  return checkInteger(field, value, 1, 65535);
}

export function checkNumber(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= min || value > max) {
    throw new InvalidArgument(field, value, `a number greater than ${min} and at most ${max}`);
  }
  return value;
}

export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new InvalidArgument(field, value, "true or false");
  return value;
}

export function checkOneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgument(field, value, `one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
  }
  return value as T;
}

const PATH_SEGMENT = /^[A-Za-z0-9_@%+=:,.-]+$/;

/**
 * An absolute, normalised path made of characters that need no quoting anywhere (shell,
 * unit files): no `.`/`..` segments, no empty segments, no trailing slash, no whitespace.
 */
export function checkAbsolutePath(field: string, value: unknown): string {
  const allowed =
    "an absolute path like /srv/app: '/' first, segments of letters, digits and _@%+=:,.- , no '.' or '..' segments, no '//', no trailing '/'";
  if (typeof value !== "string" || value.length > 4096 || !value.startsWith("/")) {
    throw new InvalidArgument(field, value, allowed);
  }
  if (value === "/") return value;
  const segments = value.slice(1).split("/");
  for (const s of segments) {
    if (s === "" || s === "." || s === ".." || !PATH_SEGMENT.test(s)) {
      throw new InvalidArgument(field, value, allowed);
    }
  }
  return value;
}

const UNIT_NAME = /^[A-Za-z0-9_][A-Za-z0-9:_.@-]{0,200}\.(service|socket|timer|target|path|mount)$/;

/** A systemd unit file name, suffix included (`provisioner.service`). */
export function checkUnitName(field: string, value: unknown): string {
  if (typeof value !== "string" || !UNIT_NAME.test(value) || value.includes("..")) {
    throw new InvalidArgument(
      field,
      value,
      "a systemd unit name like app.service: letters, digits and :_.@- , ending in .service, .socket, .timer, .target, .path or .mount",
    );
  }
  return value;
}

const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The short name of an app service (`provisioner`); it becomes `<name>.service`. */
export function checkServiceName(field: string, value: unknown): string {
  return checkMatches(
    field,
    value,
    SERVICE_NAME,
    "1-64 characters: lowercase letters, digits, '_' or '-', a letter or digit first",
  );
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export function checkEnvKey(field: string, value: unknown): string {
  return checkMatches(
    field,
    value,
    ENV_KEY,
    "an environment variable name: letters, digits and '_', not starting with a digit",
  );
}

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** True for a string without newlines or control characters (tab is allowed). */
export function isSingleLine(value: unknown): value is string {
  return typeof value === "string" && !CONTROL.test(value);
}

/**
 * For a value that may be secret (known only at run time): the error message, which names the
 * field and never shows the value, or undefined when it is a valid single line.
 */
export function secretLineProblem(field: string, value: unknown): string | undefined {
  if (isSingleLine(value)) return undefined;
  return `${field}: the value is not valid: a single line of text without control characters (value not shown: it may be secret).`;
}

/** A single-line text value: any character but control characters (tab is allowed). */
export function checkLine(field: string, value: unknown, what = "a single line of text"): string {
  if (!isSingleLine(value)) {
    throw new InvalidArgument(field, value, `${what} without newlines or control characters`);
  }
  return value;
}

export function checkNonEmptyLine(
  field: string,
  value: unknown,
  what = "a single line of text",
): string {
  checkLine(field, value, what);
  if ((value as string).trim() === "")
    throw new InvalidArgument(field, value, `${what}, not empty`);
  return value as string;
}

/**
 * A systemd command line (`ExecStart=`): an absolute executable path first, optionally
 * behind systemd's `-`, `@`, `:`, `+`, `!` prefixes; one line.
 */
export function checkCommandLine(field: string, value: unknown): string {
  checkNonEmptyLine(field, value, "a command line");
  const first = (value as string)
    .trim()
    .split(/\s+/)[0]
    .replace(/^[-@:+!]+/, "");
  try {
    checkAbsolutePath(field, first);
  } catch {
    throw new InvalidArgument(
      field,
      value,
      "a command line whose first word is an absolute path to the executable",
      "Write e.g. /usr/bin/node /srv/app/index.js.",
    );
  }
  return value as string;
}

const OPENSSH_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}$/;

/** A host public key in OpenSSH form (`ssh-ed25519 AAAA…`), as `ssh-keyscan` prints it. */
export function checkHostKey(field: string, value: unknown): string {
  if (typeof value !== "string") throw new InvalidArgument(field, value, "an OpenSSH public key");
  // `ssh-keyscan` prints "host type key"; known_hosts and .pub files may add a comment.
  const words = value.trim().split(/\s+/);
  const start = words.findIndex((w) => /^(ssh-|ecdsa-|sk-)/.test(w));
  const key = start >= 0 ? words.slice(start, start + 2).join(" ") : "";
  if (!OPENSSH_KEY.test(key)) {
    throw new InvalidArgument(
      field,
      value,
      "an OpenSSH host public key like 'ssh-ed25519 AAAAC3Nza...'",
      "Get it with `ssh-keyscan -t ed25519 <host>` (check it out of band) or from /etc/ssh/ssh_host_ed25519_key.pub on the host.",
    );
  }
  return key;
}

/** The fields of an admin login that the components and `verify` check alike. */
export interface LoginFields {
  readonly host?: unknown;
  readonly port?: unknown;
  readonly user?: unknown;
  readonly hostKey?: unknown;
  readonly insecureIgnoreHostKey?: unknown;
  readonly sudo?: unknown;
}

export interface CheckedLogin {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Undefined only with `insecureIgnoreHostKey: true`. */
  readonly hostKey?: string;
  readonly sudo: boolean;
}

/**
 * The one rule for an admin login (the components' `connection` and `verify`'s): a host and
 * port, a Linux user name (default root), sudo unless root (and never off for another user),
 * and a pinned host key, or `insecureIgnoreHostKey: true` but never both. `hints` says how to
 * set the host key and why root is needed, in the caller's terms.
 */
export function checkLogin(
  field: string,
  c: LoginFields,
  hints: { readonly pinHostKey: string; readonly rootNeededFor: string },
): CheckedLogin {
  const host = checkHost(`${field}.host`, requirePlain(`${field}.host`, c.host));
  const port = checkPort(`${field}.port`, c.port ?? 22);
  const user = checkLinuxName(`${field}.user`, c.user ?? "root");
  const insecure = checkBoolean(`${field}.insecureIgnoreHostKey`, c.insecureIgnoreHostKey ?? false);
  const sudo = checkBoolean(`${field}.sudo`, c.sudo ?? user !== "root");
  if (user !== "root" && !sudo) {
    throw new InvalidArgument(
      `${field}.sudo`,
      false,
      `true when the login user is not root (${hints.rootNeededFor})`,
      "Log in as root, or give the user a NOPASSWD sudo rule and leave sudo unset.",
    );
  }
  let hostKey: string | undefined;
  if (c.hostKey !== undefined) {
    hostKey = checkHostKey(`${field}.hostKey`, requirePlain(`${field}.hostKey`, c.hostKey));
    if (insecure) {
      throw new InvalidArgument(
        `${field}.insecureIgnoreHostKey`,
        true,
        "false when hostKey is set (the two contradict each other)",
        "Remove one of them.",
      );
    }
  } else if (!insecure) {
    throw new InvalidArgument(
      `${field}.hostKey`,
      undefined,
      "the host's SSH public key, e.g. 'ssh-ed25519 AAAAC3Nza...'",
      hints.pinHostKey,
    );
  }
  return { host, port, user, ...(hostKey !== undefined ? { hostKey } : {}), sudo };
}

const KEY_COMMENT = /^[A-Za-z0-9@._+-]{1,100}$/;

/**
 * A user public key for authorized_keys: `type base64 [comment]`, no options (the library
 * writes the options itself). Returns it normalised to single spaces.
 */
export function checkPublicKey(field: string, value: unknown): string {
  const words = typeof value === "string" ? value.trim().split(/\s+/) : [];
  const ok =
    words.length >= 2 &&
    words.length <= 3 &&
    OPENSSH_KEY.test(words.slice(0, 2).join(" ")) &&
    (words.length === 2 || KEY_COMMENT.test(words[2]));
  if (!ok) {
    throw new InvalidArgument(
      field,
      value,
      "an OpenSSH public key 'ssh-ed25519 AAAA... [comment]' without options (comment: letters, digits, @ . _ + -)",
      "Paste the .pub file of the deploy key; hardened-docker adds the restrict and command options.",
    );
  }
  return words.join(" ");
}

const SHA256 = /^[0-9a-f]{64}$/;

export function checkSha256(field: string, value: unknown): string {
  return checkMatches(
    field,
    value,
    SHA256,
    "a SHA-256 digest: 64 lowercase hexadecimal characters",
  );
}

const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+$/;

export function checkVersion(field: string, value: unknown): string {
  return checkMatches(field, value, VERSION, "a release version like 27.5.1");
}

const IMAGE_REF =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;

/** A container image reference (`registry/name:tag` or `name@sha256:…`). */
export function checkImageRef(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length > 512 || !IMAGE_REF.test(value)) {
    throw new InvalidArgument(
      field,
      value,
      "an image reference like docker.io/library/haproxy:3.0 or name@sha256:<64 hex>",
    );
  }
  return value;
}

export function checkPlainObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgument(field, value, "an object");
  }
  return value as Record<string, unknown>;
}

export function checkArray(field: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new InvalidArgument(field, value, "a list");
  return value;
}

/** Rejects keys an object does not know: a typo must not silently fall back to a default. */
export function checkKnownKeys(
  field: string,
  value: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new UnknownKey(field, key, value[key], known);
  }
}

/** A key that is not one of `known`: names its value and the nearest known key. */
export class UnknownKey extends InvalidArgument {
  constructor(field: string, key: string, value: unknown, known: readonly string[]) {
    super(`${field}.${key}`, value, "");
    const near = nearest(key, known);
    const shown = value === undefined ? "" : ` (its value: ${describe(value)})`;
    this.message = `${field}.${key}: unknown key${shown}.${
      near ? ` Did you mean ${near}?` : ""
    } Known keys of ${field}: ${known.join(", ")}.`;
  }
}

/** The known word closest to `word` (same letters in another case, or at most 2 edits). */
export function nearest(word: string, known: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.min(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** Rejects a value that is a Pulumi Output where the library needs it before deployment. */
export function requirePlain<T>(field: string, value: T | Output<T>): T {
  if (isOutput(value)) {
    throw new InvalidArgument(
      field,
      "<Output>",
      "a plain value known when the program runs (it shapes commands and paths)",
      "Pass the value itself, not a resource output.",
    );
  }
  return value as T;
}
