/**
 * The policy pack: each policy against passing and failing resources, then the whole pack
 * against everything the example stack registers (the library's own output must pass).
 */
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import {
  CONTAINER,
  DOCKER_PROVIDER,
  REMOTE_COMMAND,
  appUnitNotRoot,
  containerDropsCapabilities,
  containerReadOnlyRootfs,
  containerResourceLimits,
  noDockerSocketMount,
  noPrivilegedContainer,
  policies,
  sshHostKeyPinned,
  traefikNotExposedByDefault,
} from "../../policy/policies";
import { planInIsolation } from "../helpers/plan";
import { socketMounts } from "../../components/socket-proxy/checks";
import { planInputFromStackFile } from "../../stacks/stack-file";

jest.setTimeout(60_000);

function violations(
  policy: ResourceValidationPolicy,
  type: string,
  props: Record<string, unknown>,
): string[] {
  const out: string[] = [];
  const args = { type, props, urn: `urn:x::${type}::r`, name: "r" } as ResourceValidationArgs;
  const validate = policy.validateResource as (
    a: ResourceValidationArgs,
    report: (m: string) => void,
  ) => void;
  validate(args, (m) => out.push(m));
  return out;
}

/** A container that passes every policy; cases change one thing. */
const good = {
  image: "sha256:abc",
  memory: 128,
  cpus: "0.15",
  readOnly: true,
  capabilities: { drops: ["ALL"] },
  labels: [{ label: "dev.hardened-docker.role", value: "app" }],
};
const proxy = {
  ...good,
  labels: [{ label: "dev.hardened-docker.role", value: "socket-proxy" }],
  mounts: [
    {
      type: "bind",
      source: "/run/user/1001/docker.sock",
      target: "/var/run/docker.sock",
      readOnly: true,
    },
  ],
};
const traefik = {
  ...good,
  labels: [{ label: "dev.hardened-docker.role", value: "traefik" }],
  command: [
    "--providers.docker.endpoint=tcp://socket-proxy:2375",
    "--providers.docker.exposedByDefault=false",
  ],
};
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc";
const systemUnit = (unit: string) => ({
  connection: { host: "h", hostKey: HOST_KEY },
  create: "unit_dir=/etc/systemd/system; owner=root; group=root\nwrite_file ...",
  stdin: unit,
});

type Case = [string, ResourceValidationPolicy, string, Record<string, unknown>, RegExp | null];
const cases: Case[] = [
  ["a container without the socket", noDockerSocketMount, CONTAINER, good, null],
  ["the proxy with the socket read-only", noDockerSocketMount, CONTAINER, proxy, null],
  [
    "an app mounting the rootless socket",
    noDockerSocketMount,
    CONTAINER,
    {
      ...good,
      mounts: [
        { type: "bind", source: "/run/user/1001/docker.sock", target: "/s", readOnly: true },
      ],
    },
    /mounts the Docker socket \/run\/user\/1001\/docker\.sock: only the socket proxy may/,
  ],
  [
    "an app mounting /var/run/docker.sock as a volume",
    noDockerSocketMount,
    CONTAINER,
    {
      ...good,
      volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }],
    },
    /only the socket proxy may/,
  ],
  [
    "the proxy with the socket writable",
    noDockerSocketMount,
    CONTAINER,
    { ...proxy, mounts: [{ ...proxy.mounts[0], readOnly: false }] },
    /mount it read-only/,
  ],
  ["a container not privileged", noPrivilegedContainer, CONTAINER, good, null],
  [
    "a privileged container",
    noPrivilegedContainer,
    CONTAINER,
    { ...good, privileged: true },
    /runs privileged/,
  ],
  ["limits set", containerResourceLimits, CONTAINER, good, null],
  [
    "a CPU quota instead of cpus",
    containerResourceLimits,
    CONTAINER,
    { ...good, cpus: undefined, cpuQuota: 50000 },
    null,
  ],
  [
    "no memory limit",
    containerResourceLimits,
    CONTAINER,
    { ...good, memory: 0 },
    /no memory limit/,
  ],
  [
    "no CPU limit",
    containerResourceLimits,
    CONTAINER,
    { ...good, cpus: undefined },
    /no CPU limit/,
  ],
  ["a read-only rootfs", containerReadOnlyRootfs, CONTAINER, good, null],
  [
    "a writable rootfs",
    containerReadOnlyRootfs,
    CONTAINER,
    { ...good, readOnly: false },
    /writable root filesystem/,
  ],
  [
    "a writable rootfs with a reason",
    containerReadOnlyRootfs,
    CONTAINER,
    {
      ...good,
      readOnly: false,
      labels: [
        {
          label: "dev.hardened-docker.exception.read-write-rootfs",
          value: "postgres writes its socket in /var/run",
        },
      ],
    },
    null,
  ],
  [
    "a writable rootfs with an empty reason",
    containerReadOnlyRootfs,
    CONTAINER,
    {
      ...good,
      readOnly: false,
      labels: [{ label: "dev.hardened-docker.exception.read-write-rootfs", value: " " }],
    },
    /writable root filesystem/,
  ],
  ["all capabilities dropped", containerDropsCapabilities, CONTAINER, good, null],
  [
    "default capabilities",
    containerDropsCapabilities,
    CONTAINER,
    { ...good, capabilities: undefined },
    /default capabilities/,
  ],
  [
    "some dropped, not all",
    containerDropsCapabilities,
    CONTAINER,
    { ...good, capabilities: { drops: ["NET_RAW"] } },
    /default capabilities/,
  ],
  [
    "capabilities kept with a reason",
    containerDropsCapabilities,
    CONTAINER,
    {
      ...good,
      capabilities: {},
      labels: [
        { label: "dev.hardened-docker.exception.capabilities", value: "binds port 80 itself" },
      ],
    },
    null,
  ],
  ["Traefik with exposedByDefault=false", traefikNotExposedByDefault, CONTAINER, traefik, null],
  [
    "Traefik relying on the default (true)",
    traefikNotExposedByDefault,
    CONTAINER,
    { ...traefik, command: ["--providers.docker.endpoint=tcp://socket-proxy:2375"] },
    /would expose every container/,
  ],
  [
    "Traefik (by image) with exposedByDefault=true",
    traefikNotExposedByDefault,
    CONTAINER,
    {
      ...good,
      image: "docker.io/library/traefik:v3.6.2",
      command: ["--providers.docker.exposedByDefault=true"],
    },
    /would expose every container/,
  ],
  [
    "Traefik overriding it through the environment",
    traefikNotExposedByDefault,
    CONTAINER,
    { ...traefik, envs: ["TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT=true"] },
    /would expose every container/,
  ],
  ["not Traefik", traefikNotExposedByDefault, CONTAINER, good, null],
  [
    "a command with a pinned key",
    sshHostKeyPinned,
    REMOTE_COMMAND,
    { connection: { host: "h", hostKey: HOST_KEY }, create: "true" },
    null,
  ],
  [
    "a command without a host key",
    sshHostKeyPinned,
    REMOTE_COMMAND,
    { connection: { host: "h" }, create: "true" },
    /without a pinned host key/,
  ],
  [
    "the Docker provider with strict checking",
    sshHostKeyPinned,
    DOCKER_PROVIDER,
    {
      host: "ssh://provisioner@h:22",
      sshOpts: JSON.stringify([
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `KnownHostsCommand=/bin/echo %H ${HOST_KEY}`,
      ]),
    },
    null,
  ],
  [
    "the Docker provider over ssh without strict checking",
    sshHostKeyPinned,
    DOCKER_PROVIDER,
    { host: "ssh://provisioner@h:22", sshOpts: ["-o", "StrictHostKeyChecking=no"] },
    /without strict host key checking/,
  ],
  [
    "the Docker provider on a local socket",
    sshHostKeyPinned,
    DOCKER_PROVIDER,
    { host: "unix:///run/user/1001/docker.sock" },
    null,
  ],
  [
    "a system unit with User=provisioner",
    appUnitNotRoot,
    REMOTE_COMMAND,
    systemUnit("[Unit]\nDescription=x\n[Service]\nUser=provisioner\nExecStart=/bin/true\n"),
    null,
  ],
  [
    "a system unit without User=",
    appUnitNotRoot,
    REMOTE_COMMAND,
    systemUnit("[Service]\nExecStart=/bin/true\n"),
    /runs as root \(no User=\)/,
  ],
  [
    "a system unit with User=root",
    appUnitNotRoot,
    REMOTE_COMMAND,
    systemUnit("[Service]\nUser=root\nExecStart=/bin/true\n"),
    /runs as root/,
  ],
  [
    "a user-scope unit (runs as its user)",
    appUnitNotRoot,
    REMOTE_COMMAND,
    {
      ...systemUnit("[Service]\nExecStart=/bin/true\n"),
      create: "unit_dir=$home/.config/systemd/user",
    },
    null,
  ],
];

describe.each(cases)("%s", (_name, policy, type, props, expected) => {
  test(`${policy.name}: ${expected ? "violation" : "passes"}`, () => {
    const found = violations(policy, type, props);
    if (expected) {
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(expected);
    } else expect(found).toEqual([]);
  });
});

test("every policy is mandatory, named and described, and in the pack", () => {
  expect(policies).toHaveLength(8);
  for (const p of policies) {
    expect(p.enforcementLevel).toBe("mandatory");
    expect(p.name).toMatch(/^[a-z][a-z0-9-]+$/);
    expect(p.description.length).toBeGreaterThan(20);
  }
  // each policy has at least one failing case above
  for (const p of policies) expect(cases.some(([, q, , , e]) => q === p && e !== null)).toBe(true);
});

test("everything the example stack registers passes the whole pack", async () => {
  // policies see inputs in clear, as Pulumi hands them over
  const plan = await planInIsolation(planInputFromStackFile("example"), true);
  const found = plan.resources.flatMap((r) =>
    policies.flatMap((p) =>
      violations(p, r.type, r.inputs).map((m) => `${p.name} ${r.name}: ${m}`),
    ),
  );
  expect(found).toEqual([]);
  // and the pack is not vacuous on it: the containers and commands were judged
  expect(plan.resources.filter((r) => r.type === CONTAINER)).toHaveLength(2);
  expect(plan.resources.filter((r) => r.type === REMOTE_COMMAND).length).toBeGreaterThan(10);
});

/**
 * One table for the socket-exposure rule, judged by the policy pack (from resource inputs, no
 * uid) and by verify (from an inspect document, uid 1001): both must agree. A `false` row is a
 * mount neither may flag.
 */
const SOCKET_MOUNTS: [string, boolean][] = [
  ["/run/user/1001/docker.sock", true],
  ["/run/user/1001", true],
  ["/run/user/1001/", true],
  ["/run/user/1001/docker", true],
  ["/run/user", true],
  ["/var/run/user", true],
  ["/var/run/user/1001/docker.sock", true],
  ["/run", true],
  ["/", true],
  ["/var/run/docker.sock", true],
  ["/var/run", true],
  ["/run/containerd/containerd.sock", true],
  ["/run/user/1001/docker/containerd/containerd.sock", true],
  ["/srv/app/docker.sock", true],
  ["/run/user/1001/../1001/docker.sock", true],
  ["//run//user//1001", true],
  ["/srv/data", false],
  ["/home/provisioner/app", false],
  ["/run/user/1001x", false],
  ["/var/lib/app", false],
];

test.each(SOCKET_MOUNTS)(
  "a mount of %s: policy and verify agree (exposes: %s)",
  (source, exposes) => {
    const byPolicy =
      violations(noDockerSocketMount, CONTAINER, {
        ...good,
        mounts: [{ type: "bind", source, target: "/x", readOnly: true }],
      }).length > 0;
    const byVerify =
      socketMounts(
        { Id: "x", Name: "/x", Mounts: [{ Type: "bind", Source: source, Destination: "/x" }] },
        1001,
      ).length > 0;
    expect([source, byPolicy, byVerify]).toEqual([source, exposes, exposes]);
  },
);
