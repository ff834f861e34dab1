/**
 * Traefik's static configuration, as command-line arguments: the Docker provider talks to
 * the socket proxy (never a socket), nothing is exposed unless a container opts in, and the
 * dashboard is off unless asked for.
 */
import { keysOf } from "../core/keys";
import type { TraefikDashboardSettings } from "./args";
import {
  InvalidArgument,
  checkArray,
  checkHost,
  checkKnownKeys,
  checkOneOf,
  checkPlainObject,
  isSingleLine,
} from "../core/validate";

/** Ports Traefik listens on inside its container (published to httpPort / httpsPort). */
export const TRAEFIK_WEB_PORT = 8000;
export const TRAEFIK_WEBSECURE_PORT = 8443;
/** Traefik's own entrypoint (ping for the health check; the API only through a router). */
export const TRAEFIK_INTERNAL_PORT = 8080;

export interface TraefikDashboardArgs {
  /**
   * Host name the dashboard answers on (router rule `Host(...)`).
   * @default any host, on the `web` entrypoint
   */
  readonly host?: string;
  /**
   * `websecure` serves it over TLS (Traefik's default certificate unless you configure a
   * resolver through `extraArgs` and labels); `web` is plain HTTP: basic auth in clear text.
   * @default "websecure"
   */
  readonly entrypoint?: "web" | "websecure";
}

export interface TraefikRenderArgs {
  /** The socket proxy, e.g. `tcp://socket-proxy:2375`. */
  readonly endpoint: string;
  /** The network Traefik reaches containers on. */
  readonly network: string;
  /** Turns on the dashboard (routed through basic auth, see `Traefik`). @default off */
  readonly dashboard?: boolean;
  /** @default "INFO" */
  readonly logLevel?: "DEBUG" | "INFO" | "WARN" | "ERROR";
  /**
   * More static configuration, `--key=value` each (e.g. ACME resolvers). Keys the library owns
   * (`providers.docker.*`, `entrypoints.web*`, `api.*`, `ping`) are rejected.
   * @default none
   */
  readonly extraArgs?: readonly string[];
}

const OWNED = [
  /^--providers\.docker(\.|=|$)/i,
  /^--entrypoints\.(web|websecure|traefik)\.address/i,
  /^--api(\.|=|$)/i,
  /^--ping(\.|=|$)/i,
];

export function checkTraefikExtraArgs(field: string, value: unknown): string[] {
  return checkArray(field, value).map((arg, i) => {
    const f = `${field}[${i}]`;
    if (!isSingleLine(arg) || !/^--[a-zA-Z][a-zA-Z0-9._-]*(=\S.*)?$/.test(arg))
      throw new InvalidArgument(f, arg, "one --key=value argument on a single line");
    if (OWNED.some((re) => re.test(arg)))
      throw new InvalidArgument(
        f,
        arg,
        "an argument that does not override what hardened-docker sets (providers.docker.*, entrypoint addresses, api.*, ping)",
        "Use the traefik settings (dashboard, httpPort, httpsPort) instead.",
      );
    return arg;
  });
}

const DASHBOARD_KEYS = keysOf<TraefikDashboardSettings>()({
  host: true,
  users: true,
  entrypoint: true,
});

export function checkTraefikDashboard(field: string, value: unknown): TraefikDashboardArgs {
  const d = checkPlainObject(field, value);
  checkKnownKeys(field, d, DASHBOARD_KEYS);
  return {
    ...(d.host === undefined ? {} : { host: checkHost(`${field}.host`, d.host) }),
    entrypoint: checkOneOf(`${field}.entrypoint`, d.entrypoint ?? "websecure", [
      "web",
      "websecure",
    ] as const),
  };
}

/** Traefik's command-line arguments (pure: snapshot-tested). */
export function traefikArgs(args: TraefikRenderArgs): string[] {
  return [
    `--entrypoints.web.address=:${TRAEFIK_WEB_PORT}`,
    `--entrypoints.websecure.address=:${TRAEFIK_WEBSECURE_PORT}`,
    `--entrypoints.traefik.address=:${TRAEFIK_INTERNAL_PORT}`,
    "--providers.docker=true",
    `--providers.docker.endpoint=${args.endpoint}`,
    "--providers.docker.exposedByDefault=false",
    `--providers.docker.network=${args.network}`,
    `--api.dashboard=${args.dashboard ? "true" : "false"}`,
    "--api.insecure=false",
    "--ping=true",
    "--ping.entryPoint=traefik",
    `--log.level=${args.logLevel ?? "INFO"}`,
    "--accesslog=true",
    "--global.checkNewVersion=false",
    "--global.sendAnonymousUsage=false",
    ...(args.extraArgs ?? []),
  ];
}

/** Docker labels routing the dashboard through basic auth (`users`: htpasswd lines). */
export function traefikDashboardLabels(
  dashboard: TraefikDashboardArgs,
  users: string,
): Record<string, string> {
  const rule = `${dashboard.host ? `Host(\`${dashboard.host}\`) && ` : ""}(PathPrefix(\`/api\`) || PathPrefix(\`/dashboard\`))`;
  const entrypoint = dashboard.entrypoint ?? "websecure";
  return {
    "traefik.enable": "true",
    "traefik.http.routers.hd-dashboard.rule": rule,
    "traefik.http.routers.hd-dashboard.entrypoints": entrypoint,
    ...(entrypoint === "websecure" ? { "traefik.http.routers.hd-dashboard.tls": "true" } : {}),
    "traefik.http.routers.hd-dashboard.service": "api@internal",
    "traefik.http.routers.hd-dashboard.middlewares": "hd-dashboard-auth",
    "traefik.http.middlewares.hd-dashboard-auth.basicauth.users": users,
  };
}

const HTPASSWD =
  /^[A-Za-z0-9._@-]{1,64}:\$(2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}|apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22})$/;

/**
 * Checks one dashboard user (possibly a secret known only at run time). Returns the problem,
 * which never contains the value, or undefined.
 */
export function dashboardUserProblem(field: string, value: unknown): string | undefined {
  if (typeof value === "string" && HTPASSWD.test(value)) return undefined;
  return `${field}: the value (not shown) is not valid: an htpasswd line 'user:$2y$...' (bcrypt) or 'user:$apr1$...'. Create it with \`htpasswd -nbB <user> <password>\`; never a clear-text password.`;
}
