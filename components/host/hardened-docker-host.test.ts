import { byName, isSecret, recorded, reset, settle, valueOf } from "../../test/helpers/mocks";
import { HardenedDockerHost } from "..";
import { fullArgs, minimalArgs, SECRET_VALUE, PRIVATE_KEY } from "../../test/helpers/fixtures";

const COMMAND = "command:remote:Command";
const short = (urn: string) => urn.split("::").pop();

async function build(name: string, args = fullArgs()) {
  reset();
  const host = new HardenedDockerHost(name, args);
  await valueOf(host.dockerHost);
  await settle();
  return host;
}

/** Walks a raw serialized value; yields every string outside secret wrappers. */
function* plainStrings(raw: unknown): Generator<string> {
  if (isSecret(raw)) return;
  if (typeof raw === "string") yield raw;
  else if (Array.isArray(raw)) for (const x of raw) yield* plainStrings(x);
  else if (raw && typeof raw === "object")
    for (const x of Object.values(raw)) yield* plainStrings(x);
}

describe("HardenedDockerHost", () => {
  test("registers exactly these children", async () => {
    await build("web-1");
    expect(recorded.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "hardened-docker:index:HardenedDockerHost web-1",
        `${COMMAND} web-1-ssh-ready`,
        "hardened-docker:host:ServiceUser web-1-service-user",
        `${COMMAND} web-1-service-user-account`,
        "hardened-docker:host:Linger web-1-linger",
        `${COMMAND} web-1-linger-enable`,
        "hardened-docker:docker:RootlessDocker web-1-docker",
        `${COMMAND} web-1-docker-packages`,
        `${COMMAND} web-1-docker-rootful-off`,
        `${COMMAND} web-1-docker-delegation`,
        `${COMMAND} web-1-docker-sysctl`,
        `${COMMAND} web-1-docker-daemon-json`,
        "hardened-docker:systemd:SystemdUnit web-1-docker-daemon",
        `${COMMAND} web-1-docker-daemon-unit`,
        `${COMMAND} web-1-docker-ready`,
        "hardened-docker:systemd:EnvironmentFile web-1-provisioner-env",
        `${COMMAND} web-1-provisioner-env-file`,
        "hardened-docker:systemd:SystemdUnit web-1-provisioner",
        `${COMMAND} web-1-provisioner-unit`,
        "hardened-docker:systemd:SystemdUnit web-1-worker",
        `${COMMAND} web-1-worker-unit`,
      ].sort(),
    );
  });

  test("every step waits for the one before it, and everything for the SSH gate", async () => {
    await build("web-2");
    const deps = (name: string) => byName(name).dependsOn.map(short);
    expect(deps("web-2-service-user")).toEqual(["web-2-ssh-ready"]);
    expect(deps("web-2-linger")).toEqual(["web-2-service-user-account"]);
    expect(deps("web-2-docker")).toContain("web-2-linger-enable");
    expect(deps("web-2-docker-delegation")).toEqual(["web-2-docker-packages"]);
    expect(deps("web-2-docker-sysctl")).toEqual(["web-2-docker-delegation"]);
    expect(deps("web-2-docker-daemon-json")).toEqual(["web-2-docker-sysctl"]);
    expect(deps("web-2-docker-daemon")).toEqual(["web-2-docker-daemon-json"]);
    expect(deps("web-2-docker-ready")).toEqual(["web-2-docker-daemon-unit"]);
    // the rootful daemon goes only once the rootless one answers
    expect(deps("web-2-docker-rootful-off")).toEqual(["web-2-docker-ready"]);
    expect(deps("web-2-provisioner")).toEqual(
      expect.arrayContaining(["web-2-docker-ready", "web-2-provisioner-env-file"]),
    );
    expect(deps("web-2-worker")).toContain("web-2-docker-ready");
    // parents: each command belongs to its component
    expect(short(byName("web-2-docker-packages").parent)).toBe("web-2-docker");
    expect(short(byName("web-2-ssh-ready").parent)).toBe("web-2");
  });

  test("host-changing commands have create and delete, and no triggers: a change is an update", async () => {
    await build("web-3");
    const commands = recorded.filter((r) => r.type === COMMAND && r.name !== "web-3-ssh-ready");
    expect(commands).toHaveLength(12);
    for (const c of commands) {
      expect(typeof c.inputs.create).toBe("string");
      expect(typeof c.inputs.delete).toBe("string");
      // @pulumi/command replaces on a triggers change (its delete first): none may have any
      expect([c.name, c.inputs.triggers]).toEqual([c.name, undefined]);
      // and the content triggers that states of earlier versions hold never replace it either
      expect([c.name, c.ignoreChanges]).toEqual([c.name, ["triggers"]]);
      expect(c.deleteBeforeReplace).toBe(true);
      // login user admin is not root: every step goes through sudo -n
      expect(c.inputs.create).toMatch(/^sudo -n -- bash -c /);
      expect(c.inputs.environment).toBeUndefined();
    }
    expect(byName("web-3-ssh-ready").ignoreChanges).toEqual(["triggers"]);
    expect(byName("web-3-ssh-ready").inputs.create).toMatch(
      /^sudo -n true 2>\/dev\/null \|\| \{ echo /,
    );
  });

  test("the private key is a secret in every command", async () => {
    await build("web-4");
    const commands = recorded.filter((r) => r.type === COMMAND);
    for (const c of commands) {
      // the SDK marks the whole connection object secret once it holds a secret
      expect(isSecret(c.rawInputs.connection)).toBe(true);
      const conn = c.inputs.connection as Record<string, unknown>;
      expect(conn.host).toBe("web-1.example.net");
      expect(conn.port).toBe(2222);
      expect(conn.user).toBe("admin");
      expect(conn.hostKey).toMatch(/^ssh-ed25519 /);
      for (const s of plainStrings(c.rawInputs)) expect(s).not.toContain("not-a-real-key");
    }
    expect(commands.length).toBe(13);
    expect(PRIVATE_KEY).toContain("not-a-real-key");
  });

  test("secret environment values stay secret to the end and never reach a script", async () => {
    await build("web-5");
    const env = byName("web-5-provisioner-env-file");
    expect(isSecret(env.rawInputs.stdin)).toBe(true);
    expect(env.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdin"]));
    expect(env.inputs.stdin).toContain(`ADMIN_TOKEN="${SECRET_VALUE}"`);
    for (const r of recorded)
      for (const s of plainStrings(r.rawInputs)) expect(s).not.toContain(SECRET_VALUE);
    expect(env.inputs.create).toContain("/etc/hardened-docker/provisioner.env");
    expect(env.inputs.create).toContain("0600 root root");
  });

  test("app units run as the service user against its rootless socket, hardened", async () => {
    await build("web-6");
    const unit = byName("web-6-provisioner-unit").inputs.stdin as string;
    expect(unit).toContain("User=provisioner\n");
    expect(unit).toContain("Environment=DOCKER_HOST=unix:///run/user/1001/docker.sock\n");
    expect(unit).toContain("Environment=XDG_RUNTIME_DIR=/run/user/1001\n");
    expect(unit).toContain("EnvironmentFile=/etc/hardened-docker/provisioner.env\n");
    expect(unit).toContain("ReadWritePaths=/var/lib/provisioner\n");
    expect(unit).toContain("ProtectHome=read-only\n");
    expect(unit).toContain("NoNewPrivileges=yes\n");
    expect(unit).toContain("ProtectSystem=strict\n");
    expect(unit).toContain("Restart=always\n");
    expect(unit).not.toContain("ProtectHome=yes");
    const worker = byName("web-6-worker-unit").inputs.stdin as string;
    expect(worker).not.toContain("EnvironmentFile");
    expect(worker).toContain("WorkingDirectory=/home/provisioner\n");
  });

  test("the rootless daemon unit is a user unit of the service user", async () => {
    await build("web-7");
    const c = byName("web-7-docker-daemon-unit");
    expect(c.inputs.create).toContain("unit_dir=$home/.config/systemd/user");
    expect(c.inputs.create).toContain("systemctl --user");
    expect(c.inputs.stdin).toContain(
      "ExecStart=/usr/local/libexec/hardened-docker/dockerd-rootless.sh\n",
    );
    expect(c.inputs.stdin).toContain("DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns");
    expect(c.inputs.stdin).not.toContain("NoNewPrivileges");
  });

  test("outputs: uid, dockerHost and the service user's name", async () => {
    const host = await build("web-8");
    expect(await valueOf(host.uid)).toBe(1001);
    expect(await valueOf(host.dockerHost)).toBe("unix:///run/user/1001/docker.sock");
    expect(host.serviceUserName).toBe("provisioner");
  });

  test("minimal host: root login without sudo, no sysctl, no services", async () => {
    await build("mini", minimalArgs());
    const names = recorded.filter((r) => r.type === COMMAND).map((r) => r.name);
    expect(names).toEqual([
      "mini-ssh-ready",
      "mini-service-user-account",
      "mini-linger-enable",
      "mini-docker-packages",
      "mini-docker-delegation",
      "mini-docker-daemon-json",
      "mini-docker-daemon-unit",
      "mini-docker-ready",
      "mini-docker-rootful-off",
    ]);
    for (const r of recorded.filter((x) => x.type === COMMAND))
      expect(r.inputs.create).toMatch(/^bash -c /);
  });

  test("disableRootfulDaemon: false leaves the rootful daemon alone", async () => {
    const args = minimalArgs();
    await build("keep-rootful", { ...args, docker: { disableRootfulDaemon: false } });
    expect(recorded.find((r) => r.name === "keep-rootful-docker-rootful-off")).toBeUndefined();
    expect(byName("keep-rootful-docker-delegation").dependsOn.map(short)).toEqual([
      "keep-rootful-docker-packages",
    ]);
  });

  test("icc: false loads br_netfilter at boot, before daemon.json (a rootless daemon cannot)", async () => {
    const args = minimalArgs();
    await build("icc", { ...args, docker: { daemonConfig: { icc: false } } });
    const step = byName("icc-docker-kernel-modules");
    expect(step.inputs.stdin).toContain("\nbr_netfilter\n");
    expect(step.inputs.create).toContain("/etc/modules-load.d/60-hardened-docker.conf");
    expect(byName("icc-docker-daemon-json").dependsOn.map(short)).toEqual([
      "icc-docker-kernel-modules",
    ]);
    await build("icc-default", minimalArgs());
    expect(recorded.find((r) => r.name === "icc-default-docker-kernel-modules")).toBeUndefined();
  });

  test("a changed unit changes only that command's inputs", async () => {
    await build("diff-a");
    const before = recorded
      .filter((r) => r.type === COMMAND)
      .map((r) => JSON.stringify([r.name.slice(7), r.inputs]));
    const args = fullArgs();
    const changed = {
      ...args,
      services: [
        { ...args.services![0], execStart: "/usr/bin/node /opt/provisioner/v2.js" },
        args.services![1],
      ],
    };
    await build("diff-a", changed);
    const after = recorded
      .filter((r) => r.type === COMMAND)
      .map((r) => JSON.stringify([r.name.slice(7), r.inputs]));
    const differing = before.filter((b, i) => b !== after[i]).map((b) => JSON.parse(b)[0]);
    expect(differing).toEqual(["provisioner-unit"]);
  });
});
