/**
 * The socket proxy's allowlist and the haproxy configuration it renders to. We do not write
 * a proxy: we generate configuration for a proven engine (a stock haproxy image) that is
 * deny-by-default and endpoint-exact.
 */
import { keysOf } from "../core/keys";
import {
  InvalidArgument,
  checkArray,
  checkKnownKeys,
  checkOneOf,
  checkPlainObject,
} from "../core/validate";

export const PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"] as const;
export type ProxyMethod = (typeof PROXY_METHODS)[number];

/**
 * One allowed call: a method and a path template. Literal segments are letters, digits and
 * `_ . -`; `{id}` and `{name}` match one Docker object id or name segment; `{ref}` matches an
 * image or plugin reference (may contain `/`, `:` and `@`). A `/vX.Y` API version prefix is
 * accepted in front of every path unless the policy says otherwise.
 */
export interface ProxyRule {
  readonly method: ProxyMethod;
  readonly path: string;
}

/** Exactly what Traefik's Docker provider (standalone) calls. */
const TRAEFIK_CALLS = [
  { method: "HEAD", path: "/_ping" },
  { method: "GET", path: "/_ping" },
  { method: "GET", path: "/version" },
  { method: "GET", path: "/containers/json" },
  { method: "GET", path: "/containers/{id}/json" },
  { method: "GET", path: "/events" },
] as const satisfies readonly ProxyRule[];

/** Named rule sets. */
export const PROXY_PRESETS = {
  traefik: TRAEFIK_CALLS,
  /** Traefik's Docker provider in Swarm mode: the above plus services, tasks, networks, nodes. */
  "traefik-swarm": [
    ...TRAEFIK_CALLS,
    { method: "GET", path: "/services" },
    { method: "GET", path: "/tasks" },
    { method: "GET", path: "/networks" },
    { method: "GET", path: "/nodes/{id}" },
  ],
} as const satisfies Record<string, readonly ProxyRule[]>;
export type ProxyPresetName = keyof typeof PROXY_PRESETS;

/**
 * Tecnativa docker-socket-proxy section names, rendered endpoint-exact: a section grants the
 * read calls that list and inspect its objects, never archive, export, logs, attach, exec or
 * any write. Sections that have no such read call are rejected with a hint.
 */
export const PROXY_SECTIONS = {
  CONFIGS: ["/configs", "/configs/{id}"],
  CONTAINERS: ["/containers/json", "/containers/{id}/json"],
  EVENTS: ["/events"],
  EXEC: ["/exec/{id}/json"],
  IMAGES: ["/images/json", "/images/{ref}/json"],
  INFO: ["/info"],
  NETWORKS: ["/networks", "/networks/{id}"],
  NODES: ["/nodes", "/nodes/{id}"],
  PING: ["/_ping"],
  PLUGINS: ["/plugins", "/plugins/{ref}/json"],
  SECRETS: ["/secrets", "/secrets/{id}"],
  SERVICES: ["/services", "/services/{id}"],
  SWARM: ["/swarm"],
  SYSTEM: ["/system/df"],
  TASKS: ["/tasks", "/tasks/{id}"],
  VERSION: ["/version"],
  VOLUMES: ["/volumes", "/volumes/{name}"],
} as const satisfies Record<string, readonly string[]>;
export type ProxySectionName = keyof typeof PROXY_SECTIONS;

/** Tecnativa names that only cover writes, upgrades or streams: name the calls instead. */
const WRITE_ONLY_SECTIONS = [
  "AUTH",
  "BUILD",
  "COMMIT",
  "DISTRIBUTION",
  "GRPC",
  "SESSION",
  "POST",
  "DELETE",
  "ALLOW_START",
  "ALLOW_STOP",
  "ALLOW_RESTARTS",
];

/** One entry of an allowlist: a preset name, a set of sections, or one rule. */
export type ProxyAllowEntry =
  ProxyPresetName | { readonly sections: readonly ProxySectionName[] } | ProxyRule;

/** `sections(["CONTAINERS", "EVENTS"])`: the Tecnativa way of saying it, endpoint-exact. */
export function sections(names: readonly ProxySectionName[]): {
  readonly sections: readonly ProxySectionName[];
} {
  return { sections: names };
}

export interface SocketProxyPolicy {
  /** @default ["traefik"] */
  readonly allow?: readonly ProxyAllowEntry[];
  /**
   * The `/vX.Y` API version prefix: accepted in front of every path (`optional`), demanded
   * (`required`), or refused (`forbidden`).
   * @default "optional"
   */
  readonly apiVersionPrefix?: "optional" | "required" | "forbidden";
}

const POLICY_KEYS = keysOf<SocketProxyPolicy>()({ allow: true, apiVersionPrefix: true });
const SECTIONS_KEYS = keysOf<ReturnType<typeof sections>>()({ sections: true });
const RULE_KEYS = keysOf<ProxyRule>()({ method: true, path: true });

export interface ResolvedProxyPolicy {
  /** Unique rules, in the order first given. */
  readonly rules: readonly ProxyRule[];
  readonly apiVersionPrefix: "optional" | "required" | "forbidden";
}

const SEGMENT = /^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*|\{(?:id|name|ref)\})$/;

function checkRulePath(field: string, value: unknown): string {
  const ok =
    typeof value === "string" &&
    value.length <= 200 &&
    value.startsWith("/") &&
    !/^\/v[0-9]+\.[0-9]+(\/|$)/.test(value) &&
    value
      .slice(1)
      .split("/")
      .every((seg) => SEGMENT.test(seg));
  if (!ok) {
    throw new InvalidArgument(
      field,
      value,
      "an API path like /containers/{id}/json: segments of letters, digits and _ . - (not starting with a dot), or {id}, {name}, {ref}",
      "Leave out the /vX.Y prefix (apiVersionPrefix handles it) and any query string.",
    );
  }
  return value;
}

/** Validates an allowlist and expands presets and sections into unique rules. */
export function resolveProxyPolicy(
  policy: SocketProxyPolicy = {},
  field = "socketProxy",
): ResolvedProxyPolicy {
  const p = checkPlainObject(field, policy);
  checkKnownKeys(field, p, POLICY_KEYS);
  const apiVersionPrefix =
    policy.apiVersionPrefix === undefined
      ? "optional"
      : checkOneOf(`${field}.apiVersionPrefix`, policy.apiVersionPrefix, [
          "optional",
          "required",
          "forbidden",
        ] as const);
  const rules: ProxyRule[] = [];
  const seen = new Set<string>();
  const add = (method: ProxyMethod, path: string) => {
    const key = `${method} ${path}`;
    if (!seen.has(key)) {
      seen.add(key);
      rules.push({ method, path });
    }
  };
  const allow = checkArray(`${field}.allow`, policy.allow ?? ["traefik"]);
  if (allow.length === 0) {
    throw new InvalidArgument(
      `${field}.allow`,
      allow,
      "at least one entry",
      'A proxy that allows nothing is useless; use ["traefik"] or disable the proxy.',
    );
  }
  allow.forEach((entry, i) => {
    const f = `${field}.allow[${i}]`;
    if (typeof entry === "string") {
      const preset = checkOneOf(f, entry, Object.keys(PROXY_PRESETS) as ProxyPresetName[]);
      for (const r of PROXY_PRESETS[preset]) add(r.method, r.path);
      return;
    }
    const e = checkPlainObject(f, entry);
    if ("sections" in e) {
      checkKnownKeys(f, e, SECTIONS_KEYS);
      const names = checkArray(`${f}.sections`, e.sections);
      if (names.length === 0) throw new InvalidArgument(`${f}.sections`, names, "a non-empty list");
      names.forEach((name, j) => {
        const sf = `${f}.sections[${j}]`;
        if (typeof name === "string" && WRITE_ONLY_SECTIONS.includes(name.toUpperCase())) {
          throw new InvalidArgument(
            sf,
            name,
            `a section with read-only calls (${Object.keys(PROXY_SECTIONS).join(", ")})`,
            `${name} only covers writes or streams: name each call you need instead, e.g. { method: "POST", path: "/containers/{id}/restart" }.`,
          );
        }
        const section = checkOneOf(sf, name, Object.keys(PROXY_SECTIONS) as ProxySectionName[]);
        for (const path of PROXY_SECTIONS[section]) {
          if (path === "/_ping") add("HEAD", path);
          add("GET", path);
        }
      });
      return;
    }
    checkKnownKeys(f, e, RULE_KEYS);
    const method = checkOneOf(`${f}.method`, e.method, PROXY_METHODS);
    add(method, checkRulePath(`${f}.path`, e.path));
  });
  return { rules, apiVersionPrefix };
}

const PLACEHOLDER: Record<string, string> = {
  "{id}": "[A-Za-z0-9][A-Za-z0-9_.-]*",
  "{name}": "[A-Za-z0-9][A-Za-z0-9_.-]*",
  "{ref}": "[A-Za-z0-9][A-Za-z0-9_.:@/-]*",
};

const VERSION_PREFIX = "/v[0-9]{1,2}\\.[0-9]{1,3}";

/** The anchored regular expression one rule's path renders to. */
export function rulePathRegex(path: string, prefix: ResolvedProxyPolicy["apiVersionPrefix"]) {
  const body = path
    .split("/")
    .map((seg) => PLACEHOLDER[seg] ?? seg.replace(/\./g, "\\."))
    .join("/");
  const head = { optional: `(${VERSION_PREFIX})?`, required: VERSION_PREFIX, forbidden: "" }[
    prefix
  ];
  return `^${head}${body}$`;
}

export interface SocketProxyRenderOptions {
  /** haproxy `bind` address of the API listener. @default ":2375" */
  readonly listen?: string;
  /** The Docker socket inside the container. @default "/var/run/docker.sock" */
  readonly upstream?: string;
  /** Listener of the health endpoint `/healthz` (only inside the container). @default "127.0.0.1:8405" */
  readonly healthListen?: string;
}

export const SOCKET_PROXY_PORT = 2375;
export const SOCKET_PROXY_HEALTH_PORT = 8405;
/** How long an idle `/events` stream may stay open (Traefik reconnects after that). */
export const EVENTS_STREAM_TIMEOUT = "24h";
/**
 * Connection budget. haproxy's global `maxconn` bounds every listener together: the API
 * listener gets less than all of it, so the health listener (the container's health check)
 * always finds a slot, however many clients hold connections open.
 */
export const PROXY_MAX_CONNECTIONS = 256;
export const PROXY_API_MAX_CONNECTIONS = 224;
/**
 * At most this many `/events` streams at once (Traefik holds one; a few for other readers).
 * One more waits `EVENTS_QUEUE_TIMEOUT` for a slot, then gets 503: a client that opens streams
 * in a loop cannot take the slots the short calls need.
 */
export const EVENTS_STREAMS_MAX = 32;
export const EVENTS_QUEUE_TIMEOUT = "2s";
/**
 * Per client (one address on the proxy's network): at most this many connections, and this
 * many `/events` streams at once (one more gets 429), so a single client cannot take the
 * slots above from the others.
 */
export const PROXY_CLIENT_MAX_CONNECTIONS = 16;
export const EVENTS_STREAMS_PER_CLIENT = 4;

const DENY = `http-request deny deny_status 403 content-type application/json string '{"message":"denied by the hardened-docker socket proxy"}'`;

/**
 * haproxy configuration for the socket proxy. Order of evaluation: refuse what is ambiguous
 * (not HTTP/1.1, absolute-form or `*` targets, any %-escape in the path, dot segments, double
 * slashes, characters outside `A-Z a-z 0-9 / _ . : @ -`, bodies or upgrades on reads), then
 * allow exactly the rules, then deny everything else with 403.
 *
 * Only paths already in normal form get through, so nothing needs decoding and the path that
 * is matched is byte for byte the path that is forwarded (haproxy 2.6's `normalize-uri` is
 * still experimental, and decoding for matching while forwarding the raw path is how proxies
 * like this were bypassed before). Query strings are forwarded untouched: they select within
 * an allowed call (Traefik sends `filters=` as encoded JSON) and cannot change the endpoint.
 */
export function renderSocketProxyConfig(
  policy: SocketProxyPolicy | ResolvedProxyPolicy = {},
  options: SocketProxyRenderOptions = {},
): string {
  const resolved = "rules" in policy ? (policy as ResolvedProxyPolicy) : resolveProxyPolicy(policy);
  const listen = options.listen ?? `:${SOCKET_PROXY_PORT}`;
  const upstream = options.upstream ?? "/var/run/docker.sock";
  const health = options.healthListen ?? `127.0.0.1:${SOCKET_PROXY_HEALTH_PORT}`;
  const eventsRegex = rulePathRegex("/events", resolved.apiVersionPrefix);
  const streamsEvents = resolved.rules.some((r) => r.path === "/events");
  const allowLines = resolved.rules.flatMap((r) => [
    `  # ${r.method} ${r.path}`,
    `  http-request allow if { method ${r.method} } { path -m reg '${rulePathRegex(r.path, resolved.apiVersionPrefix)}' }`,
  ]);
  return [
    "# Generated by hardened-docker (renderSocketProxyConfig); edit the allowlist, not this file.",
    `# ${resolved.rules.length} allowed calls; everything else gets 403.`,
    "global",
    "  log stdout format raw local0 info",
    `  maxconn ${PROXY_MAX_CONNECTIONS}`,
    "",
    "defaults",
    "  mode http",
    "  log global",
    "  option httplog",
    "  option dontlognull",
    // a client that goes away frees its upstream stream at once (an abandoned /events stream
    // would otherwise hold a connection for EVENTS_STREAM_TIMEOUT)
    "  option abortonclose",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    "  timeout http-request 10s",
    "  timeout http-keep-alive 10s",
    "  timeout tunnel 1h",
    "",
    "frontend docker_api",
    `  bind ${listen}`,
    `  maxconn ${PROXY_API_MAX_CONNECTIONS}`,
    "  stick-table type ip size 4k store conn_cur",
    "  tcp-request connection track-sc0 src",
    `  tcp-request connection reject if { sc0_conn_cur gt ${PROXY_CLIENT_MAX_CONNECTIONS} }`,
    // an /events stream is idle between events: both sides may wait that long
    `  timeout client ${EVENTS_STREAM_TIMEOUT}`,
    "  # 1. refuse anything ambiguous before matching",
    `  ${DENY} unless { req.ver 1.1 }`,
    `  ${DENY} unless { url -m beg / }`,
    `  ${DENY} if { path -m sub % }`,
    `  ${DENY} if { path -m sub // }`,
    `  ${DENY} if { path -m reg '(^|/)\\.\\.?(/|$)' }`,
    `  ${DENY} if { path -m reg '[^A-Za-z0-9/_.:@-]' }`,
    `  ${DENY} if { method GET HEAD } { req.hdr_cnt(transfer-encoding) gt 0 }`,
    `  ${DENY} if { method GET HEAD } { req.hdr_val(content-length) gt 0 }`,
    `  ${DENY} if { method GET HEAD } { req.hdr_cnt(upgrade) gt 0 }`,
    "  # 2. the allowlist, endpoint-exact",
    ...allowLines,
    "  # 3. everything else",
    `  ${DENY}`,
    ...(streamsEvents ? [`  use_backend docker_events if { path -m reg '${eventsRegex}' }`] : []),
    "  default_backend docker",
    "",
    "frontend health",
    `  bind ${health}`,
    "  maxconn 16",
    "  monitor-uri /healthz",
    "  monitor fail if { nbsrv(docker) lt 1 }",
    "  http-request set-log-level silent",
    "",
    "backend docker",
    "  option httpchk",
    "  http-check send meth GET uri /_ping",
    "  http-check expect status 200",
    `  server docker ${upstream} check inter 10s fall 2 rise 1`,
    ...(streamsEvents
      ? [
          "",
          "backend docker_events",
          // per client: its concurrent streams, counted by a tracker of their own
          "  stick-table type ip size 4k store conn_cur",
          "  http-request track-sc1 src",
          `  http-request deny deny_status 429 if { sc1_conn_cur gt ${EVENTS_STREAMS_PER_CLIENT} }`,
          `  timeout server ${EVENTS_STREAM_TIMEOUT}`,
          `  timeout queue ${EVENTS_QUEUE_TIMEOUT}`,
          `  server docker ${upstream} maxconn ${EVENTS_STREAMS_MAX} track docker/docker`,
        ]
      : []),
    "",
  ].join("\n");
}

/** A small tmpfs, the only writable path in the container: the config is written there. */
export const SOCKET_PROXY_RUN_DIR = "/run/socket-proxy";

export const SOCKET_PROXY_CONFIG_PATH = `${SOCKET_PROXY_RUN_DIR}/haproxy.cfg`;

/** The environment variable carrying the rendered config into the container. */
export const SOCKET_PROXY_CONFIG_ENV = "HD_SOCKET_PROXY_CONFIG";

/** The container's entrypoint: write the config from the environment, then become haproxy. */
export const SOCKET_PROXY_START = `umask 077 && printf '%s' "$${SOCKET_PROXY_CONFIG_ENV}" > ${SOCKET_PROXY_CONFIG_PATH} && exec haproxy -db -f ${SOCKET_PROXY_CONFIG_PATH}`;
