/**
 * The per-host stack applied to a fresh Debian 12 VM (see test/vm and engine.ts). One VM for
 * the whole file; the tests run in order and each builds on the state the previous left.
 * Needs root (image build) and qemu; installs the tools with apt when missing; never skips.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { applyStack, ApplyResult, destroyStack, PerformedCommand } from "./engine";
import { buildImage, HOST_KEY, TestVm } from "../vm/vm";
import { sshExec } from "../vm/ssh";
import { shellQuote } from "../../components/shell";

const SSH_PORT = Number(process.env.HD_VM_SSH_PORT ?? 2222);
const MIN = 60_000;
jest.setTimeout(30 * MIN);

const timings: Record<string, number> = {};
let vm: TestVm;
let applied: PerformedCommand[] = [];

function stackConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    host: "127.0.0.1",
    port: SSH_PORT,
    user: "admin",
    hostKey: HOST_KEY,
    privateKey: vm.privateKey,
    serviceUser: "provisioner",
    // icc: false needs br_netfilter at boot: the reboot test below proves the library loads it
    daemonConfig: { icc: false },
    services: [
      {
        name: "provisioner",
        description: "Tenant provisioner (e2e fixture)",
        execStart: "/usr/bin/perl /opt/provisioner/server.pl",
        workingDirectory: "/opt/provisioner",
        environment: { PORT: "3000" },
        secretEnvironment: ["ADMIN_TOKEN"],
      },
    ],
    serviceSecrets: { provisioner: { ADMIN_TOKEN: "e2e-secret-token" } },
    ...overrides,
  };
}
const SECRET_KEYS = ["privateKey", "serviceSecrets"];

const sudo = (cmd: string) => vm.run(`sudo -n sh -c ${shellQuote(cmd)}`);
/** Runs a shell snippet as the service user with its Docker environment. */
const asUser = (cmd: string) =>
  vm.run(
    `sudo -n runuser -u provisioner -- env XDG_RUNTIME_DIR=/run/user/1001 DOCKER_HOST=unix:///run/user/1001/docker.sock sh -c ${shellQuote(cmd)}`,
  );

/** Managed files and unit states: what must not change on an idempotent re-apply. */
const FINGERPRINT = `sudo -n sh -c 'sha256sum /etc/passwd /etc/group /etc/subuid /etc/subgid \
  /etc/systemd/system/provisioner.service /etc/hardened-docker/provisioner.env \
  /home/provisioner/.config/systemd/user/docker.service /home/provisioner/.config/docker/daemon.json \
  /etc/systemd/system/user@.service.d/delegate.conf /etc/modules-load.d/60-hardened-docker.conf; stat -c "%n %a %U %G" /etc/hardened-docker/provisioner.env; \
  systemctl is-enabled docker.service docker.socket containerd.service provisioner.service; \
  systemctl is-active provisioner.service; ls /var/lib/systemd/linger'`;

function report(result: ApplyResult, label: string): void {
  const lines = result.commands.map(
    (c) => `  ${c.name} ${c.seconds.toFixed(1)}s\n${c.stdout.replace(/^/gm, "    ")}`,
  );
  console.log(
    `${label}: ${result.seconds.toFixed(1)}s, ${result.commands.length} commands\n${lines.join("\n")}${result.error ? `\nerror: ${result.error.message}` : ""}`,
  );
}

beforeAll(async () => {
  const image = buildImage();
  timings[image.cached ? "image build (warm, cached)" : "image build (cold)"] = image.seconds;
  vm = new TestVm({
    imageDir: image.dir,
    workDir: join(process.env.HD_VM_WORK ?? "/tmp/hardened-docker-e2e", `vm-${SSH_PORT}`),
    sshPort: SSH_PORT,
  });
  timings["boot to SSH"] = await vm.start();
  // the fixture app, as an operator would deploy it (not part of the library)
  await vm.run(
    "sudo -n install -D -m 0755 /dev/stdin /opt/provisioner/server.pl",
    readFileSync(join(__dirname, "fixtures", "provisioner.pl"), "utf8"),
  );
});

afterAll(async () => {
  console.log(
    `timings (s):\n${Object.entries(timings)
      .map(([k, v]) => `  ${k}: ${v.toFixed(1)}`)
      .join("\n")}`,
  );
  if (vm) await vm.stop();
});

test("the guest's host key is pinned: a wrong key is refused", async () => {
  const wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc";
  await expect(sshExec({ ...vm.admin, hostKey: wrong }, "true")).rejects.toThrow();
  expect((await sshExec(vm.admin, "true")).code).toBe(0);
  // root cannot log in; the library's sudo path is what runs
  await expect(sshExec({ ...vm.admin, user: "root" }, "true")).rejects.toThrow();
});

test("bad input: a hostile value fails before any command reaches the VM", async () => {
  const logins = async () =>
    Number((await sudo("journalctl -u ssh.service -o cat | grep -c 'Accepted publickey'")).trim());
  const before = await logins();
  const result = await applyStack(stackConfig({ serviceUser: "x;reboot" }), SECRET_KEYS);
  expect(result.error?.message).toMatch(/serviceUser\.name: "x;reboot" is not valid/);
  expect(result.commands).toEqual([]);
  expect(result.registered.filter((r) => r.type === "command:remote:Command")).toEqual([]);
  // the only SSH login since `before` is the one that counts them now
  expect(await logins()).toBe(before + 1);
  await expect(vm.run("getent passwd provisioner")).rejects.toThrow();
});

test("a connection cut mid-apply, then a re-run: the host converges with nothing lost", async () => {
  const cut = await applyStack(stackConfig(), SECRET_KEYS, {
    cut: { name: "e2e-docker-packages", afterMs: 4000 },
  });
  report(cut, "cut apply");
  expect(cut.error?.message).toMatch(/e2e-docker-packages|connection closed/);
  expect(cut.commands.map((c) => c.name)).toEqual([
    "e2e-ssh-ready",
    "e2e-service-user-account",
    "e2e-linger-enable",
  ]);

  const converge = await applyStack(stackConfig(), SECRET_KEYS);
  report(converge, "converge");
  expect(converge.error).toBeUndefined();
  timings["converge (after the cut run)"] = converge.seconds;
  applied = converge.commands;
  expect(applied).toHaveLength(12);
  expect(converge.outputs).toEqual({
    serviceUser: "provisioner",
    uid: 1001,
    dockerHost: "unix:///run/user/1001/docker.sock",
  });
});

test("converge: user, subordinate ids, linger, rootless daemon, rootful daemon gone, delegation", async () => {
  expect((await vm.run("id -nG provisioner")).trim().split(" ")).not.toContain("docker");
  expect((await vm.run("grep -c '^provisioner:' /etc/subuid /etc/subgid")).trim()).toBe(
    "/etc/subuid:1\n/etc/subgid:1",
  );
  expect((await vm.run("grep '^provisioner:' /etc/subuid | cut -d: -f3")).trim()).toBe("65536");
  expect((await vm.run("loginctl show-user provisioner -p Linger --value")).trim()).toBe("yes");
  expect(
    (
      await sudo(
        "systemctl --user -M provisioner@ is-enabled docker.service; systemctl --user -M provisioner@ is-active docker.service",
      )
    ).trim(),
  ).toBe("enabled\nactive");
  expect(await asUser("docker info --format '{{json .SecurityOptions}}'")).toContain(
    "name=rootless",
  );
  expect((await vm.exec("systemctl is-enabled docker.service docker.socket")).stdout.trim()).toBe(
    "masked\nmasked",
  );
  expect((await vm.exec("test -e /var/run/docker.sock")).code).not.toBe(0);
  // delegation: a CPU limit shows in the container's cgroup
  await asUser(
    "set -e; d=$(mktemp -d); mkdir -p $d/bin $d/tmp; cp /bin/busybox $d/bin/; for a in $(/bin/busybox --list); do [ $a = busybox ] || ln -s busybox $d/bin/$a; done; tar -C $d -c . | docker import --change 'CMD [\"/bin/sh\"]' - local/busybox:latest >/dev/null; rm -rf $d",
  );
  expect(
    (
      await asUser(
        "docker run --rm --cpus 0.5 --memory 64m local/busybox cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max",
      )
    ).trim(),
  ).toBe("50000 100000\n67108864");
});

test("the app service: hardened unit, healthz, provisions a tenant container through DOCKER_HOST", async () => {
  expect((await vm.run("systemctl is-active provisioner.service")).trim()).toBe("active");
  expect((await sudo("stat -c '%a %U %G' /etc/hardened-docker/provisioner.env")).trim()).toBe(
    "640 root provisioner",
  );
  expect(await vm.run("curl -sf http://127.0.0.1:3000/healthz")).toBe('{"status":"ok"}');
  const created = await vm.run(
    `curl -s -w ' %{http_code}' -X POST -d '{"tenant_name":"acme"}' http://127.0.0.1:3000/api/v1/provision/tenants`,
  );
  expect(created).toBe('{"tenant":"acme","container":"tenant-acme"} 201');
  expect((await asUser("docker inspect -f '{{.State.Running}}' tenant-acme")).trim()).toBe("true");
  const exposure = (await vm.run("systemd-analyze security provisioner.service | tail -1")).trim();
  console.log(`systemd-analyze security: ${exposure}`);
  expect(exposure).toMatch(/Overall exposure level for provisioner.service: \d/);
});

test("idempotence: applying again changes nothing on the host", async () => {
  const before = await vm.run(FINGERPRINT);
  const again = await applyStack(stackConfig(), SECRET_KEYS);
  report(again, "re-apply");
  expect(again.error).toBeUndefined();
  timings["idempotent re-apply"] = again.seconds;
  for (const c of again.commands) {
    expect([c.name, c.stdout]).toEqual([c.name, expect.stringContaining("no change")]);
    expect([c.name, c.stdout]).toEqual([c.name, expect.not.stringContaining("changed:")]);
  }
  expect(await vm.run(FINGERPRINT)).toBe(before);
});

test("reboot: with nobody logged in, the daemon, the app and the tenant come back", async () => {
  timings["reboot to SSH"] = await vm.reboot();
  const t0 = Date.now();
  const deadline = Date.now() + 5 * MIN;
  for (;;) {
    const r = await vm.exec(
      "sudo -n sh -c 'curl -sf --unix-socket /run/user/1001/docker.sock http://d/containers/tenant-acme/json' | grep -q '\"Running\":true' && curl -sf http://127.0.0.1:3000/healthz",
    );
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      const why = await vm.exec(
        "sudo -n sh -c 'loginctl show-user provisioner -p Linger -p State; systemctl is-active user@1001.service; systemctl --user -M provisioner@ status --no-pager -l docker.service | tail -25; systemctl status --no-pager -l provisioner.service | tail -15; ls -la /run/user/1001/; curl -s --unix-socket /run/user/1001/docker.sock http://d/containers/json?all=1'",
      );
      throw new Error(
        `not back after reboot: ${r.stdout}${r.stderr}\n--- diagnostics ---\n${why.stdout}${why.stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
  timings["reboot: SSH to daemon + app + tenant back"] = (Date.now() - t0) / 1000;
  expect(
    (await vm.run("loginctl list-sessions --no-legend"))
      .split("\n")
      .filter((l) => l.includes("provisioner")),
  ).toEqual([]);
});

test("destroy: units stopped and removed, linger off, rootful daemon restored, user and data kept", async () => {
  const t0 = Date.now();
  const deleted = await destroyStack(applied);
  timings["destroy"] = (Date.now() - t0) / 1000;
  console.log(
    deleted
      .map((d) => `  ${d.name} ${d.seconds.toFixed(1)}s\n${d.stdout.replace(/^/gm, "    ")}`)
      .join("\n"),
  );
  expect((await vm.exec("test -e /etc/systemd/system/provisioner.service")).code).not.toBe(0);
  expect((await vm.exec("systemctl is-active provisioner.service")).stdout.trim()).not.toBe(
    "active",
  );
  expect((await vm.exec("test -e /var/lib/systemd/linger/provisioner")).code).not.toBe(0);
  expect(
    (await vm.exec("test -e /home/provisioner/.config/systemd/user/docker.service")).code,
  ).not.toBe(0);
  // the rootful daemon: as the image left it (docker.io was not installed there, so: no unit masked)
  expect((await vm.exec("systemctl is-enabled docker.service")).stdout.trim()).not.toBe("masked");
  // the user and its data are kept (removeServiceUserOnDestroy is false)
  expect((await vm.run("getent passwd provisioner")).trim()).toMatch(/^provisioner:/);
  expect((await sudo("test -d /home/provisioner/.local/share/docker && echo kept")).trim()).toBe(
    "kept",
  );
});
