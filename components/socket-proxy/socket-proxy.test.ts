/**
 * The socket proxy's rendered haproxy configuration, run for real: haproxy on loopback in
 * front of a recording upstream on a unix socket. Every request carries an `X-Corpus-Id`;
 * "denied" means haproxy answered 4xx AND the upstream never saw that id.
 */
import {
  InvalidArgument,
  PROXY_PRESETS,
  PROXY_SECTIONS,
  ProxySectionName,
  renderSocketProxyConfig,
  resolveProxyPolicy,
  rulePathRegex,
  sections,
} from "..";
import * as net from "node:net";
import {
  EVENTS_STREAMS_MAX,
  EVENTS_STREAMS_PER_CLIENT,
  PROXY_CLIENT_MAX_CONNECTIONS,
} from "./render";
import {
  ProxyUnderTest,
  haproxyCheck,
  rawRequest,
  requireHaproxy,
  statuses,
} from "../../test/helpers/haproxy";

interface Case {
  readonly name: string;
  readonly raw: string;
  /** "allow": reaches upstream with 200; a number: that status and nothing reaches upstream */
  readonly expect: "allow" | 400 | 403;
  /** ids that must never reach upstream (smuggled requests) */
  readonly hidden?: readonly string[];
}

let nextId = 0;
/** A request with an id header; `extra` is raw header lines, `version` the HTTP version. */
function req(
  method: string,
  target: string,
  opts: { extra?: string[]; body?: string; version?: string; id?: string } = {},
): { raw: string; id: string } {
  const id = opts.id ?? `c${++nextId}`;
  const head = [
    `${method} ${target} HTTP/${opts.version ?? "1.1"}`,
    "Host: docker",
    "User-Agent: corpus",
    `X-Corpus-Id: ${id}`,
    "Connection: close",
    ...(opts.extra ?? []),
  ];
  return { raw: `${head.join("\r\n")}\r\n\r\n${opts.body ?? ""}`, id };
}

const c = (
  name: string,
  expect: Case["expect"],
  method: string,
  target: string,
  opts: Parameters<typeof req>[2] = {},
): Case => ({ name, expect, raw: req(method, target, opts).raw });

const CID = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";

/** What Traefik's Docker provider sends, and everything a container's client must not get. */
const TRAEFIK_CORPUS: Case[] = [
  // --- every Traefik call, with and without the API version prefix ---
  c("HEAD /_ping", "allow", "HEAD", "/_ping"),
  c("GET /_ping", "allow", "GET", "/_ping"),
  c("GET /v1.44/_ping", "allow", "GET", "/v1.44/_ping"),
  c("GET /version", "allow", "GET", "/version"),
  c("GET /v1.24/version", "allow", "GET", "/v1.24/version"),
  c("GET /containers/json", "allow", "GET", "/containers/json"),
  c(
    "GET /containers/json with Traefik's encoded filters",
    "allow",
    "GET",
    "/v1.44/containers/json?all=1&filters=%7B%22label%22%3A%5B%22traefik.enable%3Dtrue%22%5D%7D",
  ),
  c("GET /containers/{id}/json by id", "allow", "GET", `/v1.44/containers/${CID}/json`),
  c("GET /containers/{id}/json by name", "allow", "GET", "/containers/my-app_1.web/json"),
  c("GET /events", "allow", "GET", "/events"),
  c(
    "GET /events with filters",
    "allow",
    "GET",
    "/v1.44/events?filters=%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D",
  ),
  c("GET with Content-Length: 0", "allow", "GET", "/version", { extra: ["Content-Length: 0"] }),
  c("a query cannot change the endpoint", "allow", "GET", "/containers/abc/json?x=/../archive"),
  // --- writes, exec, and the section leaks of prefix matching (Tecnativa #182) ---
  c("POST /containers/create", 403, "POST", "/containers/create", { body: "" }),
  c("POST /v1.44/containers/create with a body", 403, "POST", "/v1.44/containers/create", {
    extra: ["Content-Type: application/json", "Content-Length: 17"],
    body: '{"Image":"evil"}\n',
  }),
  c("POST /containers/{id}/start", 403, "POST", "/containers/abc/start"),
  c("POST /containers/{id}/kill", 403, "POST", "/containers/abc/kill"),
  c("DELETE /containers/{id}", 403, "DELETE", "/containers/abc?force=1"),
  c("POST /containers/{id}/exec", 403, "POST", "/containers/abc/exec"),
  c("POST /exec/{id}/start", 403, "POST", "/exec/abc/start"),
  c("GET /containers/{id}/archive", 403, "GET", "/containers/abc/archive?path=/etc/shadow"),
  c("PUT /containers/{id}/archive", 403, "PUT", "/containers/abc/archive?path=/"),
  c("HEAD /containers/{id}/archive", 403, "HEAD", "/containers/abc/archive?path=/"),
  c("GET /containers/{id}/export", 403, "GET", "/containers/abc/export"),
  c("GET /containers/{id}/logs", 403, "GET", "/containers/abc/logs?stdout=1&stderr=1"),
  c("POST /containers/{id}/attach with Upgrade", 403, "POST", "/containers/abc/attach?stream=1", {
    extra: ["Upgrade: tcp", "Connection: Upgrade"],
  }),
  c("GET /containers/{id}/attach/ws (websocket)", 403, "GET", "/containers/abc/attach/ws", {
    extra: ["Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: eA=="],
  }),
  c("GET /containers/{id}/top", 403, "GET", "/containers/abc/top"),
  c("GET /info (not asked for)", 403, "GET", "/info"),
  c("GET /images/json (not asked for)", 403, "GET", "/images/json"),
  c("POST /build", 403, "POST", "/build"),
  c("POST /images/create (pull)", 403, "POST", "/images/create?fromImage=evil"),
  c("POST /volumes/create", 403, "POST", "/volumes/create"),
  c("HEAD /containers/json (only GET asked for)", 403, "HEAD", "/containers/json"),
  c("OPTIONS /_ping", 403, "OPTIONS", "/_ping"),
  // --- path tricks (Tecnativa #1 and friends) ---
  c("encoded slash", 403, "GET", "/containers%2Fjson"),
  c("encoded slash into archive", 403, "GET", "/containers/abc%2Farchive/json"),
  c("encoded unreserved letter", 403, "GET", "/%63ontainers/json"),
  c("encoded dot segment", 403, "GET", "/containers/%2e%2e/info"),
  c("NUL byte escape", 403, "GET", "/_ping%00/../info"),
  c("dot-dot segment", 403, "GET", "/containers/../info"),
  c("dot-dot after an allowed prefix", 403, "GET", "/v1.44/containers/abc/json/../archive"),
  c("dot segment", 403, "GET", "/containers/./json"),
  c("leading double slash", 403, "GET", "//containers/json"),
  c("inner double slash", 403, "GET", "/containers//json"),
  c("trailing slash", 403, "GET", "/version/"),
  c("backslash", 403, "GET", "/containers\\..\\info"),
  c("path parameter", 403, "GET", "/containers/abc/json;/archive"),
  c("upper case path", 403, "GET", "/CONTAINERS/json"),
  c("lower case method", 403, "get", "/containers/json"),
  c("bad version prefix", 403, "GET", "/v1/version"),
  c("three-part version prefix", 403, "GET", "/v1.44.1/version"),
  c("absolute-form target", 403, "GET", "http://docker/containers/json"),
  c("absolute-form target to another path", 403, "GET", "http://docker/info"),
  c("asterisk-form target", 403, "OPTIONS", "*"),
  c("HTTP/1.0", 403, "GET", "/containers/json", { version: "1.0" }),
  // --- bodies and upgrades on reads, smuggling ---
  c("GET with a body", 403, "GET", "/containers/abc/json", {
    extra: ["Content-Length: 4"],
    body: "evil",
  }),
  c("GET with chunked body", 403, "GET", "/version", {
    extra: ["Transfer-Encoding: chunked"],
    body: "4\r\nevil\r\n0\r\n\r\n",
  }),
  c("GET with an h2c upgrade", 403, "GET", "/version", {
    extra: ["Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"],
  }),
  c("duplicate differing Content-Length", 400, "GET", "/version", {
    extra: ["Content-Length: 0", "Content-Length: 44"],
  }),
];

/** Requests that hide a second request inside the first one. */
function smuggling(): Case[] {
  const inner = req("POST", "/containers/create", { id: "smuggled-1" }).raw;
  const inner2 = req("POST", "/containers/abc/exec", { id: "smuggled-2" }).raw;
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n0\r\n\r\n`;
  return [
    {
      name: "CL.TE: allowed GET hides a POST in a chunked body",
      expect: 403,
      raw: req("GET", "/_ping", {
        extra: [`Content-Length: ${chunk(inner).length}`, "Transfer-Encoding: chunked"],
        body: chunk(inner),
      }).raw,
      hidden: ["smuggled-1"],
    },
    {
      name: "TE.CL: Content-Length covers only the chunk size",
      expect: 403,
      raw: req("GET", "/version", {
        extra: ["Content-Length: 3", "Transfer-Encoding: chunked"],
        body: `0\r\n\r\n${inner2}`,
      }).raw,
      hidden: ["smuggled-2"],
    },
    {
      name: "obfuscated Transfer-Encoding",
      expect: 400,
      raw: req("GET", "/version", {
        extra: ["Transfer-Encoding: xchunked", `Content-Length: ${inner.length}`],
        body: inner.replace("smuggled-1", "smuggled-3"),
      }).raw,
      hidden: ["smuggled-3"],
    },
  ];
}

describe("the socket proxy against real haproxy (traefik preset)", () => {
  let proxy: ProxyUnderTest;
  beforeAll(async () => {
    proxy = await ProxyUnderTest.start({ allow: ["traefik"] });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const corpus = [...TRAEFIK_CORPUS, ...smuggling()];
  test("the corpus is at least 40 requests, a third of them allowed", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(40);
    expect(corpus.filter((x) => x.expect === "allow").length).toBeGreaterThanOrEqual(10);
  });

  test.each(corpus.map((x) => [x.name, x] as const))("%s", async (_name, x) => {
    const id = /X-Corpus-Id: (\S+)/.exec(x.raw)![1];
    const reply = await proxy.send(x.raw);
    const codes = statuses(reply);
    if (x.expect === "allow") {
      expect(codes).toEqual([200]);
      expect(proxy.reached(id)).toHaveLength(1);
      // the upstream got the request exactly as sent: matched path == forwarded path
      const line = x.raw.split("\r\n")[0].split(" ");
      expect(proxy.reached(id)[0]).toMatchObject({ method: line[0], url: line[1] });
    } else {
      expect(codes[0]).toBe(x.expect);
      expect(proxy.reached(id)).toEqual([]);
    }
    for (const hidden of x.hidden ?? []) expect(proxy.reached(hidden)).toEqual([]);
    // a pipelined or smuggled request never gets a second answer
    expect(codes.length).toBe(1);
  });

  test("a pipelined write after an allowed read is refused", async () => {
    const a = req("GET", "/_ping", { id: "pipe-1" }).raw.replace("Connection: close", "");
    const b = req("POST", "/containers/create", { id: "pipe-2" }).raw;
    const codes = statuses(await proxy.send(a + b));
    expect(codes).toEqual([200, 403]);
    expect(proxy.reached("pipe-1")).toHaveLength(1);
    expect(proxy.reached("pipe-2")).toEqual([]);
  });

  test("the 403 says who refused, as a Docker API error body", async () => {
    const reply = await proxy.send(req("POST", "/containers/create").raw);
    expect(reply).toMatch(/content-type: application\/json/i);
    expect(reply).toContain('{"message":"denied by the hardened-docker socket proxy"}');
  });

  test("/events streams through (both events arrive, in two reads)", async () => {
    const reply = await proxy.send(req("GET", "/v1.44/events").raw, 3000);
    expect(reply).toContain('{"status":"start"}');
    expect(reply).toContain('{"status":"die"}');
  });

  test("every request is in the access log on stdout, with its status", async () => {
    await proxy.send(req("GET", "/containers/abc/logs").raw);
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.log).toMatch(
      /docker_api docker_api\/<NOSRV> .* 403 .*"GET \/containers\/abc\/logs HTTP\/1\.1"/,
    );
    expect(proxy.log).toMatch(/docker_api docker\/docker .* 200 .*"GET \/_ping HTTP\/1\.1"/);
  });
});

/** Opens an `/events` stream, waits for its 200 header, then the client vanishes. */
/** The n-th client address on loopback (each its own client for the per-client caps). */
const client = (n: number) => `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;

function abandonEvents(port: number, from: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: "127.0.0.1", localAddress: from });
    let head = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(head || "timeout");
    }, 5000);
    sock.on("connect", () => sock.write(req("GET", "/v1.44/events").raw));
    sock.on("data", (d) => {
      head += d.toString("latin1");
      if (head.includes("\r\n")) {
        clearTimeout(timer);
        sock.destroy();
        resolve(head.split("\r\n")[0]);
      }
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

describe("a client that abandons streams cannot starve the proxy (real haproxy)", () => {
  let proxy: ProxyUnderTest;
  beforeAll(async () => {
    proxy = await ProxyUnderTest.start({ allow: ["traefik"] }, { holdEvents: true });
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  const timed = async (f: () => Promise<string>) => {
    const t0 = Date.now();
    const reply = await f();
    return { status: statuses(reply)[0], ms: Date.now() - t0 };
  };
  const ping = () => timed(() => proxy.send(req("GET", "/_ping").raw, 5000));
  const healthz = () =>
    timed(() =>
      rawRequest(
        proxy.healthPort,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        5000,
      ),
    );

  test("1,000 abandoned /events streams: each got its stream, then /_ping and /healthz answer within a second", async () => {
    const firstLines: string[] = [];
    // 25 clients at a time (each client may hold 4 streams): 40 rounds
    for (let batch = 0; batch < 1000 / 25; batch++)
      firstLines.push(
        ...(await Promise.all(
          Array.from({ length: 25 }, (_, i) => abandonEvents(proxy.port, client(batch * 25 + i))),
        )),
      );
    // every stream got a slot: the abandoned ones before it were freed (the cap is 32)
    expect(firstLines.filter((l) => l !== "HTTP/1.1 200 OK")).toEqual([]);
    expect(firstLines).toHaveLength(1000);
    for (const probe of [await ping(), await healthz()]) {
      expect(probe.status).toBe(200);
      expect(probe.ms).toBeLessThan(1000);
    }
    // and the upstream holds none of them
    const deadline = Date.now() + 5000;
    while (proxy.openEvents > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(proxy.openEvents).toBe(0);
  }, 120_000);

  test(`open streams are capped at ${EVENTS_STREAMS_MAX}: one more gets 503, short calls still answer`, async () => {
    // 8 clients holding 4 streams each
    const held = Array.from({ length: EVENTS_STREAMS_MAX }, (_, i) => {
      const sock = net.connect({
        port: proxy.port,
        host: "127.0.0.1",
        localAddress: client(2000 + Math.floor(i / EVENTS_STREAMS_PER_CLIENT)),
      });
      sock.on("error", () => undefined);
      let head = "";
      const got = new Promise<string>((resolve) =>
        sock.on("data", (d) => {
          head += d.toString("latin1");
          if (head.includes("\r\n")) resolve(head.split("\r\n")[0]);
        }),
      );
      sock.on("connect", () => sock.write(req("GET", "/v1.44/events").raw));
      return { sock, got };
    });
    try {
      const heads = await Promise.all(held.map((h) => h.got));
      expect(new Set(heads)).toEqual(new Set(["HTTP/1.1 200 OK"]));
      const extra = await timed(() => proxy.send(req("GET", "/v1.44/events").raw, 8000));
      expect(extra.status).toBe(503);
      for (const probe of [await ping(), await healthz()]) {
        expect(probe.status).toBe(200);
        expect(probe.ms).toBeLessThan(1000);
      }
    } finally {
      for (const h of held) h.sock.destroy();
    }
  }, 60_000);

  /** A request from `from` whose connection stays open; resolves with the status line. */
  const openFrom = (from: string, path: string) =>
    new Promise<{ head: string; sock: net.Socket }>((resolve) => {
      const sock = net.connect({ port: proxy.port, host: "127.0.0.1", localAddress: from });
      let d = "";
      const done = (head: string) => resolve({ head, sock });
      const t = setTimeout(() => done(d.split("\r\n")[0] || "timeout"), 5000);
      sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
      sock.on("data", (b) => {
        d += b.toString("latin1");
        if (d.includes("\r\n")) {
          clearTimeout(t);
          done(d.split("\r\n")[0]);
        }
      });
      sock.on("error", () => {
        clearTimeout(t);
        done("refused");
      });
      sock.on("close", () => {
        clearTimeout(t);
        done(d.split("\r\n")[0] || "refused");
      });
    });

  test(`one client: ${EVENTS_STREAMS_PER_CLIENT} streams then 429, ${PROXY_CLIENT_MAX_CONNECTIONS} connections then refused; the others unaffected`, async () => {
    const socks: net.Socket[] = [];
    try {
      const streams = [];
      for (let i = 0; i < EVENTS_STREAMS_PER_CLIENT + 1; i++)
        streams.push(await openFrom(client(3000), "/v1.44/events"));
      socks.push(...streams.map((x) => x.sock));
      expect(streams.map((x) => x.head)).toEqual([
        ...Array(EVENTS_STREAMS_PER_CLIENT).fill("HTTP/1.1 200 OK"),
        "HTTP/1.1 429 Too Many Requests",
      ]);
      const conns = await Promise.all(
        Array.from({ length: PROXY_CLIENT_MAX_CONNECTIONS + 4 }, () =>
          openFrom(client(3001), "/_ping"),
        ),
      );
      socks.push(...conns.map((x) => x.sock));
      const ok = conns.filter((x) => x.head === "HTTP/1.1 200 OK").length;
      expect(ok).toBe(PROXY_CLIENT_MAX_CONNECTIONS);
      expect(conns.length - ok).toBe(4);
      // another client: its stream and its calls go through
      const other = await openFrom(client(3002), "/v1.44/events");
      socks.push(other.sock);
      expect(other.head).toBe("HTTP/1.1 200 OK");
      expect((await ping()).status).toBe(200);
    } finally {
      for (const x of socks) x.destroy();
    }
  }, 60_000);
});

describe("sections and named writes against real haproxy", () => {
  let proxy: ProxyUnderTest;
  beforeAll(async () => {
    proxy = await ProxyUnderTest.start({
      allow: [
        sections(["CONTAINERS", "INFO", "IMAGES"]),
        { method: "POST", path: "/containers/{id}/restart" },
      ],
      apiVersionPrefix: "required",
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  test.each([
    ["GET /v1.44/info", "GET", "/v1.44/info", 200],
    ["GET /info without prefix (required)", "GET", "/info", 403],
    [
      "GET /v1.44/images/{ref}/json with a registry and tag",
      "GET",
      "/v1.44/images/registry.example:5000/team/app:1.2/json",
      200,
    ],
    ["POST /v1.44/containers/{id}/restart (named)", "POST", "/v1.44/containers/web/restart", 200],
    ["POST /v1.44/containers/{id}/stop (not named)", "POST", "/v1.44/containers/web/stop", 403],
    [
      "GET /v1.44/containers/{id}/logs (CONTAINERS is list+inspect only)",
      "GET",
      "/v1.44/containers/web/logs",
      403,
    ],
    ["GET /v1.44/containers/{id}/archive", "GET", "/v1.44/containers/web/archive?path=/", 403],
    ["GET /v1.44/events (not asked for)", "GET", "/v1.44/events", 403],
  ])("%s", async (_n, method, path, status) => {
    const r = req(method, path);
    expect(statuses(await proxy.send(r.raw))).toEqual([status]);
    expect(proxy.reached(r.id)).toHaveLength(status === 200 ? 1 : 0);
  });
});

describe("renderSocketProxyConfig", () => {
  beforeAll(requireHaproxy);
  test("traefik preset (snapshot)", () => {
    expect(renderSocketProxyConfig()).toMatchSnapshot();
  });
  test("is deterministic", () => {
    expect(renderSocketProxyConfig({ allow: ["traefik-swarm"] })).toBe(
      renderSocketProxyConfig({ allow: ["traefik-swarm"] }),
    );
  });
  const variants: [string, Parameters<typeof renderSocketProxyConfig>[0]][] = [
    ["default", undefined],
    ["traefik-swarm", { allow: ["traefik-swarm"] }],
    ["every section", { allow: [sections(Object.keys(PROXY_SECTIONS) as ProxySectionName[])] }],
    ["prefix required", { allow: ["traefik"], apiVersionPrefix: "required" }],
    ["prefix forbidden", { allow: ["traefik"], apiVersionPrefix: "forbidden" }],
    [
      "named writes",
      {
        allow: [
          { method: "POST", path: "/containers/{id}/restart" },
          { method: "DELETE", path: "/images/{ref}" },
          { method: "PUT", path: "/containers/{id}/archive" },
        ],
      },
    ],
  ];
  test.each(variants)("haproxy -c accepts %s with no warning", (_n, policy) => {
    const r = haproxyCheck(renderSocketProxyConfig(policy));
    expect(r.output).not.toMatch(/WARNING|ALERT/);
    expect(r.status).toBe(0);
  });
  test("haproxy -c can fail (the check is not a rubber stamp)", () => {
    const broken = renderSocketProxyConfig().replace(
      "http-request allow if",
      "http-request alow if",
    );
    expect(haproxyCheck(broken).status).not.toBe(0);
  });
  test("presets and sections expand to unique rules in order", () => {
    const p = resolveProxyPolicy({ allow: ["traefik", sections(["PING", "VERSION", "INFO"])] });
    expect(p.rules.map((r) => `${r.method} ${r.path}`)).toEqual([
      ...PROXY_PRESETS.traefik.map((r) => `${r.method} ${r.path}`),
      "GET /info",
    ]);
  });
  test("rule paths render to anchored expressions", () => {
    expect(rulePathRegex("/containers/{id}/json", "optional")).toBe(
      "^(/v[0-9]{1,2}\\.[0-9]{1,3})?/containers/[A-Za-z0-9][A-Za-z0-9_.-]*/json$",
    );
    expect(rulePathRegex("/system/df", "forbidden")).toBe("^/system/df$");
  });
});

describe("the allowlist rejects bad input", () => {
  test.each([
    ["unknown preset", { allow: ["traefik2"] }, "socketProxy.allow[0]"],
    ["empty allowlist", { allow: [] }, "socketProxy.allow"],
    [
      "unknown section",
      { allow: [{ sections: ["CONTAINER"] }] },
      "socketProxy.allow[0].sections[0]",
    ],
    ["write-only section", { allow: [{ sections: ["POST"] }] }, "socketProxy.allow[0].sections[0]"],
    ["BUILD section", { allow: [{ sections: ["BUILD"] }] }, "socketProxy.allow[0].sections[0]"],
    ["empty sections", { allow: [{ sections: [] }] }, "socketProxy.allow[0].sections"],
    ["bad method", { allow: [{ method: "PATCH", path: "/x" }] }, "socketProxy.allow[0].method"],
    [
      "relative path",
      { allow: [{ method: "GET", path: "containers/json" }] },
      "socketProxy.allow[0].path",
    ],
    [
      "dot-dot path",
      { allow: [{ method: "GET", path: "/containers/../info" }] },
      "socketProxy.allow[0].path",
    ],
    [
      "regex in a path",
      { allow: [{ method: "GET", path: "/containers/.*" }] },
      "socketProxy.allow[0].path",
    ],
    ["quote in a path", { allow: [{ method: "GET", path: "/a'b" }] }, "socketProxy.allow[0].path"],
    [
      "query in a path",
      { allow: [{ method: "GET", path: "/info?x=1" }] },
      "socketProxy.allow[0].path",
    ],
    [
      "version prefix in a path",
      { allow: [{ method: "GET", path: "/v1.44/info" }] },
      "socketProxy.allow[0].path",
    ],
    [
      "unknown placeholder",
      { allow: [{ method: "GET", path: "/containers/{cid}/json" }] },
      "socketProxy.allow[0].path",
    ],
    ["trailing slash", { allow: [{ method: "GET", path: "/info/" }] }, "socketProxy.allow[0].path"],
    [
      "extra key",
      { allow: [{ method: "GET", path: "/info", regex: true }] },
      "socketProxy.allow[0].regex",
    ],
    ["bad prefix mode", { apiVersionPrefix: "sometimes" }, "socketProxy.apiVersionPrefix"],
    ["unknown key", { allowed: ["traefik"] }, "socketProxy.allowed"],
  ])("%s", (_n, policy, field) => {
    expect(() => resolveProxyPolicy(policy as never)).toThrow(InvalidArgument);
    expect(() => resolveProxyPolicy(policy as never)).toThrow(
      new RegExp(`^${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `),
    );
  });
});
