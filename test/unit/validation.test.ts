import * as pulumi from "@pulumi/pulumi";
import { recorded, reset, settle } from "../helpers/mocks";
import {
  HardenedDockerHost,
  HardenedDockerHostArgs,
  environmentValueProblem,
} from "../../components";
import { fullArgs } from "../helpers/fixtures";
import { resolveConnection } from "../../components/core/connection";
import { resolveVerifyConnection } from "../../components/verify/verify-host";

type Mutate = (a: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/** [what, field the error must name, change to a valid host] */
const BAD: [string, string, Mutate][] = [
  [
    "host with a shell metacharacter",
    "connection.host",
    (a) => (a.connection.host = "web-1;reboot"),
  ],
  ["empty host", "connection.host", (a) => (a.connection.host = "")],
  ["host with a space", "connection.host", (a) => (a.connection.host = "web 1")],
  ["port 0", "connection.port", (a) => (a.connection.port = 0)],
  ["port 70000", "connection.port", (a) => (a.connection.port = 70000)],
  ["port as a string", "connection.port", (a) => (a.connection.port = "22")],
  ["login user with $()", "connection.user", (a) => (a.connection.user = "$(id)")],
  ["non-root user without sudo", "connection.sudo", (a) => (a.connection.sudo = false)],
  ["no host key and no opt-out", "connection.hostKey", (a) => delete a.connection.hostKey],
  ["malformed host key", "connection.hostKey", (a) => (a.connection.hostKey = "not a key")],
  [
    "host key and opt-out together",
    "connection.insecureIgnoreHostKey",
    (a) => (a.connection.insecureIgnoreHostKey = true),
  ],
  ["missing private key", "connection.privateKey", (a) => delete a.connection.privateKey],
  ["unknown connection key", "connection.hostkey", (a) => (a.connection.hostkey = "x")],
  ["service user with ;", "serviceUser.name", (a) => (a.serviceUser.name = "bad;user")],
  ["service user root", "serviceUser.name", (a) => (a.serviceUser.name = "root")],
  ["service user with newline", "serviceUser.name", (a) => (a.serviceUser.name = "prov\nisioner")],
  // lock-outs: the login user's keys would be replaced, a system account taken over
  [
    "service user = the SSH login user",
    "serviceUser.name",
    (a) => (a.serviceUser.name = a.connection.user),
  ],
  ["service user sshd", "serviceUser.name", (a) => (a.serviceUser.name = "sshd")],
  ["service user nobody", "serviceUser.name", (a) => (a.serviceUser.name = "nobody")],
  ["service user ubuntu", "serviceUser.name", (a) => (a.serviceUser.name = "ubuntu")],
  ["service named ssh", "services[0].name", (a) => (a.services[0].name = "ssh")],
  ["service named containerd", "services[0].name", (a) => (a.services[0].name = "containerd")],
  ["service named docker", "services[0].name", (a) => (a.services[0].name = "docker")],
  ["empty service user", "serviceUser.name", (a) => (a.serviceUser.name = "")],
  ["uid 0", "serviceUser.uid", (a) => (a.serviceUser.uid = 0)],
  ["fractional uid", "serviceUser.uid", (a) => (a.serviceUser.uid = 1000.5)],
  ["relative shell", "serviceUser.shell", (a) => (a.serviceUser.shell = "bin/bash")],
  ["shell with ..", "serviceUser.shell", (a) => (a.serviceUser.shell = "/bin/../tmp/sh")],
  [
    "too few subordinate ids",
    "serviceUser.subordinateIds.count",
    (a) => (a.serviceUser.subordinateIds.count = 1000),
  ],
  [
    "subordinate start overflowing",
    "serviceUser.subordinateIds.start",
    (a) => (a.serviceUser.subordinateIds.start = 2 ** 32 - 10),
  ],
  ["unknown install method", "docker.install", (a) => (a.docker.install = "snap")],
  [
    "static without sha256",
    "docker.sha256",
    (a) =>
      Object.assign(a.docker, {
        install: "static",
        version: "27.5.1",
        rootlessExtrasSha256: "a".repeat(64),
      }),
  ],
  ["static without version", "docker.version", (a) => (a.docker.install = "static")],
  [
    "bad sha256",
    "docker.sha256",
    (a) => Object.assign(a.docker, { install: "static", version: "27.5.1", sha256: "XYZ" }),
  ],
  ["version with distro", "docker.version", (a) => (a.docker.version = "27.5.1")],
  [
    "version with shell",
    "docker.version",
    (a) => Object.assign(a.docker, { install: "docker-repo", version: "27.5.1;id" }),
  ],
  [
    "unprivileged port start 2000",
    "docker.unprivilegedPortStart",
    (a) => (a.docker.unprivilegedPortStart = 2000),
  ],
  ["unknown port driver", "docker.portDriver", (a) => (a.docker.portDriver = "vpnkit")],
  [
    "daemon.json hosts key",
    "docker.daemonConfig.hosts",
    (a) => (a.docker.daemonConfig = { hosts: ["tcp://0.0.0.0:2375"] }),
  ],
  [
    "daemon.json log-opts not a string",
    "docker.daemonConfig.log-opts.max-file",
    (a) => (a.docker.daemonConfig = { "log-opts": { "max-file": 3 } }),
  ],
  [
    "daemon.json relative data-root",
    "docker.daemonConfig.data-root",
    (a) => (a.docker.daemonConfig = { "data-root": "data" }),
  ],
  [
    "daemon.json bad dns",
    "docker.daemonConfig.dns[0]",
    (a) => (a.docker.daemonConfig = { dns: ["1.1.1.1; id"] }),
  ],
  ["service name with /", "services[0].name", (a) => (a.services[0].name = "../etc/passwd")],
  ["service name docker", "services[0].name", (a) => (a.services[0].name = "docker")],
  ["duplicate service names", "services[1].name", (a) => (a.services[1].name = "provisioner")],
  [
    "relative execStart",
    "services[0].execStart",
    (a) => (a.services[0].execStart = "node server.js"),
  ],
  [
    "execStart with newline injection",
    "services[0].execStart",
    (a) => (a.services[0].execStart = "/bin/true\nExecStartPost=/bin/sh -c 'id'"),
  ],
  ["empty execStart", "services[0].execStart", (a) => (a.services[0].execStart = "")],
  [
    "relative workingDirectory",
    "services[0].workingDirectory",
    (a) => (a.services[0].workingDirectory = "opt/app"),
  ],
  [
    "env key with =",
    "services[0].environment.A=B",
    (a) => (a.services[0].environment = { "A=B": "x" }),
  ],
  [
    "env DOCKER_HOST override",
    "services[0].environment.DOCKER_HOST",
    (a) => (a.services[0].environment = { DOCKER_HOST: "unix:///var/run/docker.sock" }),
  ],
  [
    "readWritePaths with ..",
    "services[0].readWritePaths[0]",
    (a) => (a.services[0].readWritePaths = ["/var/lib/../../etc"]),
  ],
  [
    "after with a bad unit",
    "services[0].after[0]",
    (a) => (a.services[0].after = ["network.target; id"]),
  ],
  ["unknown restart policy", "services[0].restart", (a) => (a.services[0].restart = "sometimes")],
  [
    "description with newline",
    "services[0].description",
    (a) => (a.services[0].description = "x\n[Service]"),
  ],
  ["unknown service key", "services[0].user", (a) => (a.services[0].user = "root")],
  ["unknown top-level key", "args.dockr", (a) => (a.dockr = {})],
];

describe("bad input is rejected before any command exists", () => {
  test("there are at least 30 cases", () => expect(BAD.length).toBeGreaterThanOrEqual(30));

  test.each(BAD)("%s -> names %s", async (_what, field, mutate) => {
    reset();
    const args = fullArgs() as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    mutate(args);
    let error: unknown;
    try {
      new HardenedDockerHost("bad", args as HardenedDockerHostArgs);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(pulumi.ResourceError);
    const message = (error as Error).message;
    expect(message.startsWith(`${field}: `)).toBe(true);
    expect(message).toMatch(/is not valid: |: unknown key/);
    await settle();
    expect(recorded.filter((r) => r.type === "command:remote:Command")).toEqual([]);
  });

  test("the valid fixture itself passes (so each case fails for its own reason)", () => {
    expect(() => new HardenedDockerHost("good", fullArgs())).not.toThrow();
  });

  test("secret env values are checked at run time without echoing them", () => {
    expect(environmentValueProblem("provisioner", "TOKEN", "fine value")).toBeUndefined();
    const problem = environmentValueProblem("provisioner", "TOKEN", "a\nhidden");
    expect(problem).toMatch(/^services\(provisioner\)\.environment\.TOKEN: /);
    expect(problem).not.toContain("hidden");
    expect(environmentValueProblem("provisioner", "TOKEN", 42)).toBeDefined();
  });

  test("the SSH gate waits on that check: its triggers carry the result, not the connection", async () => {
    reset();
    new HardenedDockerHost("gate-check", fullArgs());
    await settle();
    const gate = recorded.find((r) => r.name === "gate-check-ssh-ready")!;
    // a connection change (host, port, user) is an update of the gate, never a replace
    expect(gate.inputs.triggers).toEqual(["valid"]);
  });
});

describe("one login rule: the components' connection and verify's agree on every case", () => {
  const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc";
  const base = { host: "10.0.0.5", port: 22, user: "admin", privateKey: "k", hostKey: KEY };
  /** [what, change, the field the refusal names (undefined: accepted)] */
  const cases: [string, Record<string, unknown>, string | undefined][] = [
    ["a pinned key, sudo by default", {}, undefined],
    ["root, no sudo", { user: "root" }, undefined],
    ["root with sudo set", { user: "root", sudo: true }, undefined],
    ["no host key at all", { hostKey: undefined }, "connection.hostKey"],
    [
      "no host key, insecure on purpose",
      { hostKey: undefined, insecureIgnoreHostKey: true },
      undefined,
    ],
    [
      "a pinned key AND insecure",
      { insecureIgnoreHostKey: true },
      "connection.insecureIgnoreHostKey",
    ],
    [
      "insecure as a string",
      { hostKey: undefined, insecureIgnoreHostKey: "yes" },
      "connection.insecureIgnoreHostKey",
    ],
    ["a host key that is no key", { hostKey: "AAAA" }, "connection.hostKey"],
    ["sudo off for a non-root user", { sudo: false }, "connection.sudo"],
    ["a bad user name", { user: "a b" }, "connection.user"],
    ["a bad host", { host: "a b" }, "connection.host"],
    ["port 0", { port: 0 }, "connection.port"],
    ["port as a string", { port: "22" }, "connection.port"],
  ];
  const outcome = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return (e as Error).message.split(": ")[0];
    }
  };
  test.each(cases)("%s", (_what, change, field) => {
    const c = { ...base, ...change } as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect([
      outcome(() => resolveConnection(c as never)),
      outcome(() => resolveVerifyConnection(c as never)),
    ]).toEqual([field, field]);
  });
});
