/**
 * Several tenants on one host (HardenedDockerHostArgs.tenants) under mocks: host-wide steps
 * once, per-tenant steps for each, names that do not move when another tenant comes or goes,
 * and every collision between tenants refused naming the field.
 */
import * as pulumi from "@pulumi/pulumi";
import { byName, isSecret, recorded, reset, settle, valueOf } from "../../test/helpers/mocks";
import { HardenedDockerHost, HardenedDockerHostArgs, TenantArgs } from "..";
import {
  DEPLOY_KEY,
  DEPLOY_KEY_A,
  DEPLOY_KEY_B,
  SECRET_VALUE,
  tenantArgs,
} from "../../test/helpers/fixtures";
import { renderSliceLimits, sliceCgroupValues } from "../systemd-unit/slice-limits";

jest.setTimeout(60_000);
const COMMAND = "command:remote:Command";
const short = (urn: string) => urn.split("::").pop();

async function build(name: string, args: HardenedDockerHostArgs) {
  reset();
  const host = new HardenedDockerHost(name, args);
  await valueOf(host.dockerHost);
  await settle();
  return host;
}

const commands = () => recorded.filter((r) => r.type === COMMAND).map((r) => r.name);

test("host-wide steps run once; each further tenant gets its own user, linger, daemon and units", async () => {
  const host = await build("h", tenantArgs());
  expect(host.tenants.map((t) => t.serviceUserName)).toEqual(["ci-a", "ci-b"]);
  // host-wide: with the host's own user only
  for (const step of ["packages", "sysctl", "kernel-modules", "rootful-off"])
    expect(commands().filter((c) => c.endsWith(`-docker-${step}`))).toEqual([`h-docker-${step}`]);
  // a tenant's icc: false needs br_netfilter: loaded by the host-wide step
  expect(byName("h-docker-kernel-modules").inputs.stdin).toContain("br_netfilter");
  // per tenant, under its Tenant component
  for (const t of ["ci-a", "ci-b"]) {
    expect(byName(`h-${t}`).type).toBe("hardened-docker:host:Tenant");
    for (const child of [
      "service-user-account",
      "linger-enable",
      "docker-delegation",
      "docker-daemon-json",
      "docker-daemon-unit",
      "docker-ready",
    ])
      expect(commands()).toContain(`h-${t}-${child}`);
    expect(short(byName(`h-${t}-service-user`).parent)).toBe(`h-${t}`);
    // a tenant's delegation step leaves the host-wide drop-in alone on delete
    expect(byName(`h-${t}-docker-delegation`).inputs.delete).not.toContain("delegate.conf");
  }
  // ci-a: limits, its own proxy and Traefik through its own provider; ci-b: none of them
  expect(commands()).toEqual(expect.arrayContaining(["h-limits", "h-ci-a-limits"]));
  expect(commands()).not.toContain("h-ci-b-limits");
  expect(byName("h-ci-a-limits").inputs.stdin).toBe(
    renderSliceLimits({ cpuPercent: 50, memoryMiB: 512 }),
  );
  expect(byName("h-ci-a-socket-proxy-container").provider).toContain("h-ci-a-docker-api");
  expect(byName("h-socket-proxy-container").provider).toContain("::h-docker-api::");
  expect(recorded.filter((r) => r.name.startsWith("h-ci-b-socket-proxy"))).toEqual([]);
  // each tenant's daemon.json is its own
  expect(byName("h-ci-a-docker-daemon-json").inputs.stdin).toContain('"icc": false');
  expect(byName("h-ci-b-docker-daemon-json").inputs.stdin).not.toContain("icc");
  // the app unit runs as its tenant, against its tenant's daemon
  expect(byName("h-ci-a-ci-a-runner-unit").inputs.create).toBeDefined();
});

test("order: tenants after the host-wide steps, one account at a time, each daemon after its linger", async () => {
  await build("h", tenantArgs());
  const deps = (name: string) => byName(name).dependsOn.map(short);
  expect(deps("h-ci-a-service-user")).toEqual(
    expect.arrayContaining(["h-ssh-ready", "h-docker-rootful-off", "h-docker-ready"]),
  );
  // ci-b's account waits for ci-a's: each takes the next free subordinate range
  expect(deps("h-ci-b-service-user")).toEqual(
    expect.arrayContaining(["h-ci-a-service-user-account"]),
  );
  expect(deps("h-ci-a-docker-delegation")).toContain("h-ci-a-linger-enable");
  expect(deps("h-ci-a-docker-daemon-json")).toEqual(["h-ci-a-docker-delegation"]);
  expect(deps("h-ci-a-limits")).toContain("h-ci-a-linger-enable");
});

test("names and inputs of a tenant do not move when another tenant is removed", async () => {
  const three = tenantArgs();
  const c: TenantArgs = { serviceUser: { name: "ci-c" }, limits: { tasks: 512 } };
  await build("h", { ...three, tenants: [...three.tenants!, c] });
  const before = recorded
    .filter((r) => r.name.startsWith("h-ci-c"))
    .map((r) => [r.type, r.name, r.parent, JSON.stringify(r.inputs)]);
  await build("h", { ...three, tenants: [three.tenants![0], c] });
  const after = recorded
    .filter((r) => r.name.startsWith("h-ci-c"))
    .map((r) => [r.type, r.name, r.parent, JSON.stringify(r.inputs)]);
  expect(after).toEqual(before);
  expect(recorded.filter((r) => r.name.startsWith("h-ci-b"))).toEqual([]);
  // and the host's own steps are the same as without tenants, but the gate and modules
  const alone = async (args: HardenedDockerHostArgs) => {
    await build("h", args);
    return recorded
      .filter(
        (r) =>
          !/^h-ci-/.test(r.name) &&
          !["h-ssh-ready", "h-docker-kernel-modules", "h"].includes(r.name),
      )
      .map((r) => [r.type, r.name, JSON.stringify(r.inputs)])
      .sort();
  };
  expect(await alone(three)).toEqual(await alone({ ...three, tenants: undefined }));
});

type Mutate = (t: TenantArgs[], a: Record<string, unknown>) => void;
const tenant = (name: string, more: Partial<TenantArgs> = {}): TenantArgs => ({
  serviceUser: { name },
  ...more,
});
/** [what, the field the error names, a change to a valid host with tenants] */
const BAD: [string, string, Mutate][] = [
  [
    "a tenant named like the host's user",
    "tenants[0].serviceUser.name",
    (t) => (t[0] = tenant("provisioner")),
  ],
  ["two tenants of one name", "tenants[1].serviceUser.name", (t) => (t[1] = tenant("ci-a"))],
  [
    "a tenant that is the login user",
    "tenants[1].serviceUser.name",
    (t) => (t[1] = tenant("admin")),
  ],
  [
    "a tenant that is a system account",
    "tenants[1].serviceUser.name",
    (t) => (t[1] = tenant("sshd")),
  ],
  [
    "one uid for two tenants",
    "tenants[1].serviceUser.uid",
    (t) => {
      t[0] = { ...t[0], serviceUser: { ...t[0].serviceUser, uid: 2001 } };
      t[1] = tenant("ci-b", { serviceUser: { name: "ci-b", uid: 2001 } });
    },
  ],
  [
    "subordinate ranges that overlap the host's user's",
    "tenants[1].serviceUser.subordinateIds",
    (t) => (t[1] = { serviceUser: { name: "ci-b", subordinateIds: { start: 250000 } } }),
  ],
  [
    "a uid inside another's subordinate range",
    "tenants[1].serviceUser.uid",
    (t) => (t[1] = { serviceUser: { name: "ci-b", uid: 200500 } }),
  ],
  [
    "a subordinate range holding another tenant's uid",
    "tenants[1].serviceUser.subordinateIds",
    (t) => {
      t[0] = { ...t[0], serviceUser: { ...t[0].serviceUser, uid: 150000 } };
      t[1] = { serviceUser: { name: "ci-b", subordinateIds: { start: 120000 } } };
    },
  ],
  [
    "a deploy key in two tenants",
    "tenants[1].serviceUser.deployKeys[0]",
    (t) => (t[1] = { serviceUser: { name: "ci-b", deployKeys: [DEPLOY_KEY_A] } }),
  ],
  [
    "a tenant with the host's user's deploy key",
    "tenants[1].serviceUser.deployKeys[1]",
    (t) => (t[1] = { serviceUser: { name: "ci-b", deployKeys: [DEPLOY_KEY_B, DEPLOY_KEY] } }),
  ],
  [
    "port ranges that overlap",
    "tenants[1].ports",
    (t) => (t[1] = tenant("ci-b", { ports: { from: 8900, to: 9100 } })),
  ],
  [
    "a port range upside down",
    "tenants[1].ports.to",
    (t) => (t[1] = tenant("ci-b", { ports: { from: 9100, to: 9000 } })),
  ],
  [
    "Traefik outside its tenant's ports",
    "tenants[0].traefik.httpsPort",
    (t) => (t[0] = { ...t[0], traefik: { httpPort: 8080, httpsPort: 9443 } }),
  ],
  [
    "two Traefiks on one host port",
    "tenants[1].traefik",
    (t) =>
      (t[1] = {
        serviceUser: { name: "ci-b", deployKeys: [DEPLOY_KEY_B] },
        socketProxy: {},
        traefik: { httpPort: 8080, httpsPort: 9443 },
      }),
  ],
  [
    "a tenant's service named like another tenant's",
    "tenants[1].services[0].name",
    (t) => (t[1] = tenant("ci-b", { services: [{ name: "ci-a-runner", execStart: "/bin/true" }] })),
  ],
  [
    "a tenant's service named like the host's own",
    "tenants[1].services[0].name",
    (t) => (t[1] = tenant("ci-b", { services: [{ name: "worker", execStart: "/bin/true" }] })),
  ],
  [
    "a tenant proxy without deploy keys",
    "tenants[1].serviceUser.deployKeys",
    (t) => (t[1] = tenant("ci-b", { socketProxy: {} })),
  ],
  [
    "an unknown tenant key",
    "tenants[1].limit",
    (t) => (t[1] = { ...tenant("ci-b"), limit: {} } as TenantArgs),
  ],
  [
    "limits below what a daemon needs",
    "tenants[1].limits.memoryMiB",
    (t) => (t[1] = tenant("ci-b", { limits: { memoryMiB: 64 } })),
  ],
  [
    "a CPU limit of a fraction",
    "tenants[1].limits.cpuPercent",
    (t) => (t[1] = tenant("ci-b", { limits: { cpuPercent: 12.5 } })),
  ],
  [
    "a tenant daemonConfig the daemon would refuse",
    "tenants[1].daemonConfig",
    (t) => (t[1] = tenant("ci-b", { daemonConfig: { hosts: ["tcp://0.0.0.0:2375"] } as never })),
  ],
  ["tenants not a list", "tenants", (_t, a) => (a.tenants = { ci: {} })],
];

test.each(BAD)("refused before anything registers: %s (names %s)", async (_what, field, mutate) => {
  const args = tenantArgs() as unknown as Record<string, unknown>;
  const tenants = [...(args.tenants as TenantArgs[])];
  args.tenants = tenants;
  mutate(tenants, args);
  reset();
  let error: unknown;
  try {
    new HardenedDockerHost("bad", args as unknown as HardenedDockerHostArgs);
  } catch (e) {
    error = e;
  }
  await settle();
  expect(String(error)).toContain(`${field}:`);
  expect(recorded.filter((r) => r.type === COMMAND)).toEqual([]);
});

test("the fixture itself is valid (the refusals above change one thing each)", async () => {
  await expect(build("ok", tenantArgs())).resolves.toBeDefined();
});

test("a tenant's secret environment is checked before the gate, and stays secret", async () => {
  const args = tenantArgs();
  const [a, b] = args.tenants!;
  // a value never known: the gate (and so every command) waits for its check
  const pending = pulumi.secret(new Promise<string>(() => undefined));
  const waiting = {
    ...args,
    tenants: [{ ...a, services: [{ ...a.services![0], environment: { T: pending } }] }, b],
  };
  reset();
  new HardenedDockerHost("sec", waiting);
  await settle();
  expect(recorded.filter((r) => r.type === COMMAND)).toEqual([]);
  await build("sec", args);
  expect(JSON.stringify(byName("sec-ci-a-ci-a-runner-env-file").inputs)).toContain(SECRET_VALUE);
  // the file body travels as a secret
  expect(isSecret(byName("sec-ci-a-ci-a-runner-env-file").rawInputs.stdin)).toBe(true);
});

test("slice limits: the drop-in and the cgroup values it must produce", () => {
  expect(renderSliceLimits({ cpuPercent: 150, memoryMiB: 256, tasks: 512 })).toBe(
    "# Managed by hardened-docker (Pulumi): limits of this service user's slice.\n[Slice]\nCPUQuota=150%\nMemoryMax=256M\nMemorySwapMax=0\nTasksMax=512\n",
  );
  expect(sliceCgroupValues({ cpuPercent: 150, memoryMiB: 256, tasks: 512 })).toEqual({
    "cpu.max": "150000 100000",
    "memory.max": String(256 * 1024 * 1024),
    "memory.swap.max": "0",
    "pids.max": "512",
  });
  // a limit left unset keeps systemd's default, and is not checked
  expect(sliceCgroupValues({ tasks: 100 })).toEqual({ "pids.max": "100" });
});
