import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Privilege, remoteScript, shellQuote } from "./shell";
import { InvalidArgument, checkLogin, checkKnownKeys, checkPlainObject } from "./validate";
import { keysOf } from "./keys";

/** How to reach a host over SSH. */
export interface ConnectionArgs {
  /** DNS name or IP address of the host. */
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /**
   * Login user: `root`, or an admin user whose commands go through `sudo -n` (a NOPASSWD
   * rule is needed: there is no terminal to type a password into).
   * @default "root"
   */
  readonly user?: string;
  /** Private key (OpenSSH or PEM). Always handled as a Pulumi secret. */
  readonly privateKey: pulumi.Input<string>;
  /**
   * The host's public key, `ssh-ed25519 AAAA…` (as `ssh-keyscan` prints it). Required:
   * without it any machine answering on that address would receive root commands.
   */
  readonly hostKey?: string;
  /**
   * Accept any host key. Only for throwaway hosts; must be set by name.
   * @default false
   */
  readonly insecureIgnoreHostKey?: boolean;
  /**
   * Run host commands through `sudo -n`.
   * @default true when `user` is not root, false for root
   */
  readonly sudo?: boolean;
}

/** A validated connection: what `remote.Command` needs, and how scripts become root. */
export interface HostConnection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey?: string;
  readonly privilege: Privilege;
  readonly remote: command.types.input.remote.ConnectionArgs;
}

const CONNECTION_KEYS = keysOf<ConnectionArgs>()({
  host: true,
  port: true,
  user: true,
  privateKey: true,
  hostKey: true,
  insecureIgnoreHostKey: true,
  sudo: true,
});

/**
 * Validates connection args and builds the `remote.Command` connection. The private key is
 * wrapped with `pulumi.secret` whatever the caller passed, so it never shows in state or
 * previews.
 */
export function resolveConnection(args: ConnectionArgs, field = "connection"): HostConnection {
  const c = checkPlainObject(field, args);
  checkKnownKeys(field, c, CONNECTION_KEYS);
  const { host, port, user, hostKey, sudo } = checkLogin(field, args, {
    pinHostKey:
      "Pin it (ssh-keyscan -t ed25519 <host>, checked out of band), or set insecureIgnoreHostKey: true for a throwaway host.",
    rootNeededFor: "every step needs root",
  });
  if (args.privateKey === undefined || args.privateKey === "") {
    throw new InvalidArgument(
      `${field}.privateKey`,
      undefined,
      "the SSH private key",
      "Set it with `pulumi config set --secret privateKey < ~/.ssh/id_ed25519`.",
    );
  }
  const remote: command.types.input.remote.ConnectionArgs = {
    host,
    port,
    user,
    privateKey: pulumi.secret(args.privateKey),
    ...(hostKey ? { hostKey } : {}),
  };
  return { host, port, user, hostKey, privilege: { sudo }, remote };
}

/**
 * The readiness gate's command: SSH works, the login user can become root without a
 * password, and systemd runs the host. Prints the distribution so the preview shows it.
 */
export function sshReadyCommand(
  conn: Pick<HostConnection, "user" | "privilege">,
  preflight = "",
): string {
  const check = remoteScript(
    "ssh-ready",
    String.raw`
[ -d /run/systemd/system ] || die "systemd is not running as the init system; hardened-docker needs systemd"
command -v loginctl >/dev/null || die "loginctl not found"
. /etc/os-release
note "host $(uname -n): ${"$"}{PRETTY_NAME:-unknown}, kernel $(uname -r)"
${preflight}`,
    conn.privilege,
  );
  if (!conn.privilege.sudo) return check;
  const hint = `hardened-docker: ssh-ready: error: ${conn.user} cannot run sudo without a password; add a NOPASSWD sudo rule for it`;
  return `sudo -n true 2>/dev/null || { echo ${shellQuote(hint)} >&2; exit 1; }; ${check}`;
}

/**
 * Creates the SSH readiness gate every host-changing command depends on. `preflight`: more
 * checks (shell, run as root) that must pass before anything changes on the host.
 */
export function sshReadinessGate(
  name: string,
  conn: HostConnection,
  opts: pulumi.CustomResourceOptions,
  extraTriggers: pulumi.Input<unknown>[] = [],
  preflight = "",
): command.remote.Command {
  return new command.remote.Command(
    name,
    {
      connection: conn.remote,
      create: sshReadyCommand(conn, preflight),
      // a connection change (host, port, login user, key) is an update: the check runs again
      ...(extraTriggers.length ? { triggers: extraTriggers } : {}),
    },
    // the triggers only make the gate wait for the values they carry; states of earlier
    // versions held the connection in them: never a replace for that
    { ignoreChanges: ["triggers"], ...opts },
  );
}
