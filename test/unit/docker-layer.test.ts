import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { byName, isSecret, recorded, reset, settle, valueOf } from "../helpers/mocks";
import {
  HardenedDockerHost,
  HardenedDockerHostArgs,
  InvalidArgument,
  SOCKET_PROXY_CONFIG_ENV,
  dashboardUserProblem,
  SOCKET_PROXY_START,
  dockerSshOptions,
  renderAuthorizedKeys,
  renderSocketProxyConfig,
  resolveTraefik,
  traefikArgs,
} from "../../components";
import { HOST_KEY, SECRET_VALUE, edgeArgs } from "../helpers/fixtures";

const CONTAINER = "docker:index/container:Container";
const NETWORK = "docker:index/network:Network";
const IMAGE = "docker:index/remoteImage:RemoteImage";
const COMMAND = "command:remote:Command";
const short = (urn: string) => urn.split("::").pop();
const HASH = "$2y$05$" + "a".repeat(53);

async function build(name: string, args: HardenedDockerHostArgs = edgeArgs()) {
  reset();
  const host = new HardenedDockerHost(name, args);
  await valueOf(host.dockerHost);
  await settle();
  return host;
}

type Inputs = Record<string, unknown> & {
  mounts?: { source: string; target: string; readOnly?: boolean; type: string }[];
  volumes?: unknown[];
  networksAdvanced?: { name: string; aliases?: string[] }[];
  labels?: { label: string; value: string }[];
  envs?: string[];
  command?: string[];
  ports?: { internal: number; external: number; ip?: string }[];
};
const inputs = (name: string) => byName(name).inputs as Inputs;

describe("HardenedDockerHost with socketProxy and traefik", () => {
  test("registers the Docker layer: provider, two networks, two images, two containers", async () => {
    await build("edge-1");
    const names = recorded.map((r) => `${r.type} ${r.name}`);
    expect(
      names.filter((n) => !n.includes("hardened-docker:") && !n.startsWith(COMMAND)).sort(),
    ).toEqual(
      [
        "pulumi:providers:docker edge-1-docker-api",
        `${NETWORK} edge-1-socket-proxy-network`,
        `${IMAGE} edge-1-socket-proxy-image`,
        `${CONTAINER} edge-1-socket-proxy-container`,
        `${NETWORK} edge-1-traefik-network`,
        `${IMAGE} edge-1-traefik-image`,
        `${CONTAINER} edge-1-traefik-container`,
      ].sort(),
    );
    expect(names).toContain("hardened-docker:docker:SocketProxy edge-1-socket-proxy");
    expect(names).toContain("hardened-docker:docker:Traefik edge-1-traefik");
    expect(names).toContain(`${COMMAND} edge-1-service-user-deploy-keys`);
  });

  test("every Docker resource goes through the host's provider, which waits for the daemon and the keys", async () => {
    await build("edge-2");
    const provider = byName("edge-2-docker-api");
    for (const r of recorded.filter((x) => x.type.startsWith("docker:")))
      expect(r.provider).toBe(`${provider.urn}::${provider.name}-id`);
    expect(provider.inputs.host).toBe("ssh://provisioner@web-1.example.net:2222");
    // provider inputs travel JSON-encoded
    expect(provider.inputs.disableDockerDaemonCheck).toBe("true");
    const sshOpts = JSON.parse(provider.inputs.sshOpts as string) as string[];
    expect(sshOpts).toEqual(dockerSshOptions({ hostKey: HOST_KEY }));
    expect(sshOpts).toContain(`KnownHostsCommand=/bin/echo %H ${HOST_KEY}`);
    expect(sshOpts).toContain("StrictHostKeyChecking=yes");
    const deps = provider.dependsOn.map(short);
    expect(deps).toContain("edge-2-docker-ready");
    expect(deps).toContain("edge-2-service-user-deploy-keys");
  });

  test("the proxy: internal network only, socket read-only, limits, locked down, config in its env", async () => {
    await build("edge-3");
    const net = inputs("edge-3-socket-proxy-network");
    expect(net).toMatchObject({ name: "docker_api", internal: true, driver: "bridge" });
    const c = inputs("edge-3-socket-proxy-container");
    expect(c.name).toBe("socket-proxy");
    expect(c.image).toBe("sha256:mock-docker.io/library/haproxy:3.2.9-alpine");
    expect(c.mounts).toEqual([
      {
        type: "bind",
        source: "/run/user/1001/docker.sock",
        target: "/var/run/docker.sock",
        readOnly: true,
      },
    ]);
    expect(c.volumes).toBeUndefined();
    expect(c.networksAdvanced).toEqual([{ name: "docker_api", aliases: ["socket-proxy"] }]);
    expect(c.networkMode).toBeUndefined();
    expect(c.ports).toBeUndefined();
    expect(c).toMatchObject({
      cpus: "0.15",
      memory: 128,
      memorySwap: 128,
      readOnly: true,
      capabilities: { drops: ["ALL"] },
      securityOpts: ["no-new-privileges:true"],
      user: "0:0",
      restart: "always",
    });
    expect(c.privileged).toBeUndefined();
    expect(c.entrypoints).toEqual(["/bin/sh", "-c", SOCKET_PROXY_START]);
    expect(c.envs).toEqual([
      `${SOCKET_PROXY_CONFIG_ENV}=${renderSocketProxyConfig({ allow: ["traefik", { method: "POST", path: "/containers/{id}/restart" }] })}`,
    ]);
    expect(c.labels).toEqual([
      { label: "dev.hardened-docker.role", value: "socket-proxy" },
      { label: "dev.hardened-docker.spec", value: expect.stringMatching(/^[0-9a-f]{16}$/) },
    ]);
    expect((c.healthcheck as { tests: string[] }).tests.join(" ")).toContain("/healthz");
  });

  test.each(["socket-proxy", "traefik"])(
    "%s: a canary step runs the new spec before the container is replaced, as the service user",
    async (role) => {
      await build("edge-1");
      const container = byName(`edge-1-${role}-container`);
      const canary = byName(`edge-1-${role}-canary`);
      // the replace waits for the canary; the canary waits for the image it runs
      expect(container.dependsOn).toContain(canary.urn);
      expect(canary.dependsOn).toContain(byName(`edge-1-${role}-image`).urn);
      expect(container.deleteBeforeReplace).toBe(true);
      // the canary looks for the spec hash the container carries: equal, it runs nothing
      const spec = (container.inputs as Inputs).labels?.find(
        (l) => l.label === "dev.hardened-docker.spec",
      )?.value as string;
      const create = String(canary.inputs.create);
      expect(create).toContain(`want=${spec} role=${role}`);
      expect(create).toContain(`u=provisioner canary=${role}-canary`);
      expect(create).toContain(`name=${role}\n`);
      expect(String(canary.inputs.delete)).toContain(`u=provisioner canary=${role}-canary`);
      expect(create).toContain(`sha256:mock-`);
      expect(create).toContain("--network none");
      // the canary's lockdown is the container's own
      const c = container.inputs as Inputs & { capabilities: { drops: string[] } };
      expect(create).toContain(
        `--read-only ${c.capabilities.drops.map((d) => `--cap-drop ${d}`).join(" ")} --security-opt ${(c.securityOpts as string[]).join(" ")}`,
      );
      // its health check is the container's own, in exec form
      const tests = (container.inputs.healthcheck as { tests: string[] }).tests;
      expect(tests[0]).toBe("CMD");
      expect(create).toContain(`docker exec "$canary" ${tests.slice(1).join(" ")}`.slice(0, 60));
      // one check may take what the container's own health check allows: 10 s
      expect(create).toContain(`timeout -k 5 10 docker exec "$canary"`);
      // Traefik's dashboard users (a secret, in its labels) never reach the canary
      expect(create).not.toMatch(/\$(apr1|2y)\$/);
    },
  );

  test("the entrypoint writes the config from the environment and execs haproxy", () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-entry-"));
    const start = SOCKET_PROXY_START.replace(/\/run\/socket-proxy/g, dir).replace(
      "exec haproxy -db -f",
      "exec cat",
    );
    const body = "global\n  log stdout 'x' \"$y\" `z`\n";
    const r = spawnSync("/bin/sh", ["-c", start], {
      env: { [SOCKET_PROXY_CONFIG_ENV]: body, PATH: process.env.PATH },
      encoding: "utf8",
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(body);
  });

  test("Traefik: endpoint is the proxy, nothing exposed by default, no socket, both networks", async () => {
    await build("edge-4");
    expect(inputs("edge-4-traefik-network")).toMatchObject({ name: "web" });
    expect(inputs("edge-4-traefik-network").internal).toBeUndefined();
    const c = inputs("edge-4-traefik-container");
    expect(c.command).toContain("--providers.docker.endpoint=tcp://socket-proxy:2375");
    expect(c.command).toContain("--providers.docker.exposedByDefault=false");
    expect(c.command).toContain("--providers.docker.network=web");
    expect(c.command).toContain("--api.dashboard=true");
    expect(c.mounts).toBeUndefined();
    expect(c.volumes).toBeUndefined();
    expect(c.networksAdvanced).toEqual([{ name: "web" }, { name: "docker_api" }]);
    expect(c.ports).toEqual([
      { internal: 8000, external: 80, ip: "0.0.0.0" },
      { internal: 8443, external: 443, ip: "0.0.0.0" },
    ]);
    expect(c).toMatchObject({ readOnly: true, capabilities: { drops: ["ALL"] }, memory: 256 });
    expect(byName("edge-4-traefik-container").dependsOn.map(short)).toContain(
      "edge-4-socket-proxy-container",
    );
  });

  test("nothing but the proxy mounts the Docker socket, and no container is privileged", async () => {
    await build("edge-5");
    const containers = recorded.filter((r) => r.type === CONTAINER);
    expect(containers).toHaveLength(2);
    for (const r of containers) {
      const c = r.inputs as Inputs;
      const sockets = [
        ...(c.mounts ?? []),
        ...((c.volumes ?? []) as { hostPath?: string }[]),
      ].filter((m) => JSON.stringify(m).includes("docker.sock"));
      expect(sockets.length).toBe(r.name.endsWith("socket-proxy-container") ? 1 : 0);
      expect(c.privileged).toBeFalsy();
    }
  });

  test("dashboard users are secret inputs and reach the router's basic auth", async () => {
    await build("edge-6");
    const raw = byName("edge-6-traefik-container").rawInputs;
    expect(isSecret(raw.labels)).toBe(true);
    const labels = inputs("edge-6-traefik-container").labels!;
    expect(labels).toContainEqual({
      label: "traefik.http.middlewares.hd-dashboard-auth.basicauth.users",
      value: `admin:${HASH}`,
    });
    expect(labels).toContainEqual({
      label: "traefik.http.routers.hd-dashboard.tls",
      value: "true",
    });
    expect(JSON.stringify(byName("edge-6-traefik-container").rawInputs.command)).not.toContain(
      HASH,
    );
  });

  test("deploy keys: forced dial-stdio with restrict, for the reported uid, on stdin", async () => {
    await build("edge-7");
    const cmd = inputs("edge-7-service-user-deploy-keys");
    expect(cmd.stdin).toBe(renderAuthorizedKeys([edgeArgs().serviceUser.deployKeys![0]], 1001));
    expect(cmd.stdin).toContain(
      'restrict,command="/usr/bin/env DOCKER_HOST=unix:///run/user/1001/docker.sock docker system dial-stdio" ssh-ed25519 ',
    );
    expect(byName("edge-7-service-user-deploy-keys").dependsOn.map(short)).toEqual([
      "edge-7-service-user-account",
    ]);
  });

  test("socketProxy.enabled: false deploys no Docker resource at all", async () => {
    const args = edgeArgs();
    await build("edge-8", {
      ...args,
      socketProxy: { enabled: false },
      traefik: { enabled: false },
    });
    expect(
      recorded.filter(
        (r) => r.type.startsWith("docker:") || r.type.startsWith("pulumi:providers:docker"),
      ),
    ).toEqual([]);
  });
});

describe("bad Docker-layer input is rejected before any command exists", () => {
  const cases: [string, (a: HardenedDockerHostArgs) => HardenedDockerHostArgs, RegExp][] = [
    [
      "proxy without deploy keys",
      (a) => ({ ...a, serviceUser: { name: "provisioner" } }),
      /^serviceUser\.deployKeys: \(missing\) is not valid: .*ssh-agent/,
    ],
    [
      "traefik without the proxy",
      (a) => ({ ...a, socketProxy: undefined }),
      /^traefik: "enabled" is not valid: deployed only together with socketProxy/,
    ],
    [
      "port 80 without unprivilegedPortStart",
      (a) => ({ ...a, docker: {} }),
      /^traefik\.httpPort: 80 is not valid: .*Set docker\.unprivilegedPortStart to 80/,
    ],
    [
      "an extra arg overriding the endpoint",
      (a) => ({
        ...a,
        traefik: {
          ...a.traefik,
          extraArgs: ["--providers.docker.endpoint=unix:///var/run/docker.sock"],
        },
      }),
      /^traefik\.extraArgs\[0\]: /,
    ],
    [
      "exposedByDefault through extraArgs",
      (a) => ({
        ...a,
        traefik: { ...a.traefik, extraArgs: ["--providers.docker.exposedByDefault=true"] },
      }),
      /^traefik\.extraArgs\[0\]: /,
    ],
    [
      "dashboard without users",
      (a) => ({ ...a, traefik: { dashboard: {} as never } }),
      /^traefik\.dashboard\.users: /,
    ],
    [
      "a deploy key with options of its own",
      (a) => ({
        ...a,
        serviceUser: { name: "provisioner", deployKeys: [`command="/bin/sh" ${HOST_KEY}`] },
      }),
      /^serviceUser\.deployKeys\[0\]: /,
    ],
    [
      "bad proxy image",
      (a) => ({ ...a, socketProxy: { image: "HAProxy:latest" } }),
      /^socketProxy\.image: /,
    ],
    ["zero CPU", (a) => ({ ...a, socketProxy: { cpus: 0 } }), /^socketProxy\.cpus: /],
    [
      "fractional memory",
      (a) => ({ ...a, socketProxy: { memoryMiB: 12.5 } }),
      /^socketProxy\.memoryMiB: /,
    ],
    [
      "bad container name",
      (a) => ({ ...a, socketProxy: { containerName: "-x" } }),
      /^socketProxy\.containerName: /,
    ],
    [
      "unknown proxy key",
      (a) => ({ ...a, socketProxy: { allowed: [] } as never }),
      /^socketProxy\.allowed: /,
    ],
    [
      "same http and https port",
      (a) => ({ ...a, traefik: { httpPort: 8080, httpsPort: 8080 } }),
      /^traefik\.httpsPort: /,
    ],
    [
      "bad bind address",
      (a) => ({ ...a, traefik: { bindAddress: "localhost" } }),
      /^traefik\.bindAddress: /,
    ],
    [
      "relative identity file",
      (a) => ({ ...a, dockerApi: { identityFile: "id_ed25519" } }),
      /^dockerApi\.identityFile: /,
    ],
  ];
  test.each(cases)("%s", async (_n, change, message) => {
    reset();
    let error: unknown;
    try {
      new HardenedDockerHost("bad", change(edgeArgs()));
    } catch (e) {
      error = e;
    }
    await settle();
    expect(String((error as Error)?.message)).toMatch(message);
    expect(recorded.filter((r) => r.type === COMMAND || r.type.startsWith("docker:"))).toEqual([]);
  });

  test("dashboard users (secrets, checked at run time) must be htpasswd hashes; the message never echoes them", () => {
    expect(dashboardUserProblem("u", `admin:${HASH}`)).toBeUndefined();
    expect(dashboardUserProblem("u", "admin:$apr1$abcdefgh$" + "b".repeat(22))).toBeUndefined();
    for (const bad of [`admin:${SECRET_VALUE}`, "admin", `admin:${HASH}\nx:y`, 42, ""]) {
      const problem = dashboardUserProblem("traefik.dashboard.users[0]", bad);
      expect(problem).toMatch(/^traefik\.dashboard\.users\[0\]: the value \(not shown\)/);
      expect(problem).not.toContain(SECRET_VALUE);
    }
  });
});

describe("renderers and options of the Docker layer", () => {
  test("traefikArgs (snapshot)", () => {
    expect(
      traefikArgs({ endpoint: "tcp://socket-proxy:2375", network: "web", dashboard: false }),
    ).toMatchSnapshot();
  });
  test("authorized_keys (snapshot) parses with ssh-keygen, options and all", () => {
    const text = renderAuthorizedKeys([edgeArgs().serviceUser.deployKeys![0]], 1001);
    expect(text).toMatchSnapshot();
    const dir = mkdtempSync(join(tmpdir(), "hd-ak-"));
    writeFileSync(join(dir, "authorized_keys"), text);
    const r = spawnSync("ssh-keygen", ["-l", "-f", join(dir, "authorized_keys")], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ED25519/);
  });
  test("the provider's ssh options are accepted by OpenSSH (ssh -G)", () => {
    for (const opts of [
      dockerSshOptions({ hostKey: HOST_KEY }),
      dockerSshOptions({ hostKey: HOST_KEY }, { identityFile: "/dev/null" }),
      dockerSshOptions({}),
    ]) {
      const r = spawnSync(
        "ssh",
        ["-G", "-T", ...opts, "-p", "2222", "provisioner@web-1.example.net"],
        {
          encoding: "utf8",
        },
      );
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^batchmode yes$/m);
    }
    expect(
      spawnSync("ssh", ["-G", "-o", "KnownHostsCommandd=/bin/true", "x"], { encoding: "utf8" })
        .status,
    ).not.toBe(0);
  });
  test("resolveTraefik: 80/443 are fine once unprivilegedPortStart allows them", () => {
    expect(resolveTraefik({}, 80)).toMatchObject({ httpPort: 80, httpsPort: 443 });
    expect(() => resolveTraefik({}, undefined)).toThrow(InvalidArgument);
    expect(resolveTraefik({ httpPort: 8080, httpsPort: 8443 }, undefined).httpPort).toBe(8080);
  });
});
