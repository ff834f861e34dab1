/**
 * verify with tenants: a host without them reports exactly what it did before tenants existed;
 * with them, each tenant's own checks under `tenant.<user>.`, slice limits and ports where
 * declared, and the checks across tenants. Probe outputs with tenants are made from the
 * recordings (test/helpers/verify.ts `withTenants`).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runVerify } from "../../cli/verify";
import {
  CheckResult,
  HostReport,
  VerifyExpectation,
  expectationFromArgs,
  parseFacts,
  parseSections,
  probeTarget,
  renderJson,
  renderJunit,
  renderSarif,
} from "../verify";
import { recordingIo } from "../../test/helpers/cli-io";
import { DEPLOY_KEY_A, tenantArgs } from "../../test/helpers/fixtures";
import type { HardenedDockerHostArgs } from "..";
import {
  Probe,
  TENANT_A,
  TENANT_B,
  e2eExpectation,
  evaluateProbe,
  evaluateTenants,
  loadProbe,
  noTenantReports,
  notPassing,
  sectionOf,
  tenantExpectation,
  withSection,
  withTenants,
} from "../../test/helpers/verify";

const converged = loadProbe("converged");
const two = withTenants(converged, [TENANT_A, TENANT_B]);
const twoExpected = tenantExpectation([TENANT_A, TENANT_B]);
const byId = (checks: CheckResult[], id: string) => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}: ${checks.map((x) => x.id).join(", ")}`);
  return c;
};
/** The containers section (of `section`) with `change` applied to its inspect documents. */
function withContainers(
  probe: Probe,
  change: (docs: Record<string, any>[]) => void, // eslint-disable-line @typescript-eslint/no-explicit-any
  section = "containers",
): Probe {
  const docs = JSON.parse(sectionOf(probe, section));
  change(docs);
  return withSection(probe, section, JSON.stringify(docs));
}

describe("a host without tenants", () => {
  test("every recorded probe, against every no-tenant expectation, reports byte for byte what verify printed before tenants", () => {
    const before = readFileSync(
      join(__dirname, "..", "..", "test", "fixtures", "verify", "reports-without-tenants.json"),
      "utf8",
    );
    expect(noTenantReports()).toBe(before);
  });

  test("its expectation and probe have nothing of tenants, limits or ports", () => {
    const e = e2eExpectation();
    expect(["tenants", "limits", "ports"].filter((k) => k in e)).toEqual([]);
    const target = probeTarget(e);
    expect(["tenants", "slice"].filter((k) => k in target)).toEqual([]);
    const facts = parseFacts(parseSections(converged.stdout, converged.marker), "provisioner");
    expect(["tenants", "isolation", "slice"].filter((k) => k in facts)).toEqual([]);
  });
});

describe("expectationFromArgs with tenants", () => {
  const e = expectationFromArgs(tenantArgs());

  test("the host's own user keeps its expectation, with its limits and ports", () => {
    expect(e.serviceUser).toBe("provisioner");
    expect(e.limits).toEqual({ cpuPercent: 100, memoryMiB: 1024, tasks: 2048 });
    expect(e.ports).toEqual({ from: 80, to: 443 });
    expect(e.services.map((s) => s.args.name)).toEqual(["provisioner", "worker"]);
    expect(JSON.parse(e.daemonJson)).not.toHaveProperty("icc");
  });

  test("each tenant gets its own: daemon.json, services, proxy, Traefik, limits, ports", () => {
    expect(e.tenants?.map((t) => t.serviceUser)).toEqual(["ci-a", "ci-b"]);
    const [a, b] = e.tenants!;
    expect(JSON.parse(a.daemonJson).icc).toBe(false);
    expect(a.services.map((s) => [s.args.name, s.environmentFile])).toEqual([
      ["ci-a-runner", "/etc/hardened-docker/ci-a-runner.env"],
    ]);
    expect(a.socketProxy?.containerName).toBe("socket-proxy");
    expect(a.socketProxy?.config).toContain("frontend docker_api");
    expect(a.traefik).toEqual({ containerName: "traefik", endpoint: "tcp://socket-proxy:2375" });
    expect(a.limits).toEqual({ cpuPercent: 50, memoryMiB: 512 });
    expect(a.ports).toEqual({ from: 8000, to: 8999 });
    expect(a.subordinateIdCount).toBe(65536);
    expect(b).toEqual({
      serviceUser: "ci-b",
      subordinateIdCount: 65536,
      daemonJson: expectationFromArgs({ serviceUser: { name: "x" } }).daemonJson,
      services: [],
      maxExposure: e.maxExposure,
    });
    expect(e.tenants?.every((t) => !("rootfulDaemonOff" in t))).toBe(true);
  });

  test("the exposure limit applies to every tenant's units", () => {
    const low = expectationFromArgs(tenantArgs(), { maxExposure: 2 });
    expect(low.tenants?.map((t) => t.maxExposure)).toEqual([2, 2]);
  });

  test("a tenant named like another, or with bad limits or ports, is refused naming its field", () => {
    const args = tenantArgs();
    const [a, b] = args.tenants!;
    expect(() =>
      expectationFromArgs({ ...args, tenants: [a, { ...b, serviceUser: { name: "ci-a" } }] }),
    ).toThrow("tenants[1].serviceUser.name");
    expect(() =>
      expectationFromArgs({ ...args, tenants: [{ serviceUser: { name: "provisioner" } }] }),
    ).toThrow("tenants[0].serviceUser.name");
    expect(() =>
      expectationFromArgs({ ...args, tenants: [{ ...b, limits: { cpuPercent: 0 } }] }),
    ).toThrow("tenants[0].limits.cpuPercent");
    expect(() =>
      expectationFromArgs({ ...args, tenants: [{ ...b, ports: { from: 9000, to: 8000 } }] }),
    ).toThrow("tenants[0].ports.to");
    expect(() => expectationFromArgs({ ...args, ports: { from: 0, to: 80 } })).toThrow(
      "ports.from",
    );
  });

  test("across tenants, the component's own rules: each collision refused naming the field", () => {
    const args = tenantArgs();
    const [a, b] = args.tenants!;
    const refused: [string, Partial<HardenedDockerHostArgs>][] = [
      [
        "tenants[1].serviceUser.subordinateIds",
        {
          tenants: [
            { ...a, serviceUser: { ...a.serviceUser, subordinateIds: { start: 300000 } } },
            { serviceUser: { name: "ci-b", subordinateIds: { start: 330000 } } },
          ],
        },
      ],
      [
        "tenants[1].serviceUser.deployKeys[0]",
        { tenants: [a, { serviceUser: { name: "ci-b", deployKeys: [DEPLOY_KEY_A] } }] },
      ],
      ["tenants[1].ports", { tenants: [a, { ...b, ports: { from: 8500, to: 9500 } }] }],
      ["tenants[0].ports", { tenants: [{ ...a, ports: { from: 400, to: 8999 } }, b] }],
      [
        "tenants[1].services[0].name",
        { tenants: [a, { ...b, services: [{ name: "ci-a-runner", execStart: "/bin/true" }] }] },
      ],
      [
        "tenants[1].serviceUser.uid",
        {
          serviceUser: { name: "provisioner", uid: 1500 },
          tenants: [a, { serviceUser: { name: "ci-b", uid: 1500 } }],
        },
      ],
    ];
    for (const [field, change] of refused)
      expect(() => expectationFromArgs({ ...args, ...change })).toThrow(`${field}:`);
    // the login user, when known, as the component refuses it
    expect(() =>
      expectationFromArgs(
        { ...args, tenants: [a, { serviceUser: { name: "admin" } }] },
        { loginUser: "admin" },
      ),
    ).toThrow("tenants[1].serviceUser.name");
    // a deployed proxy without a deploy key is the apply's concern, not verify's
    expect(() =>
      expectationFromArgs({ serviceUser: { name: "provisioner" }, socketProxy: {} }),
    ).not.toThrow();
  });

  test("what the probe reads: every user, its units and proxy, its slice where limits are declared", () => {
    const t = probeTarget(e, "cli");
    expect([t.user, t.slice, t.proxyContainer, t.dockerClient]).toEqual([
      "provisioner",
      true,
      "socket-proxy",
      "cli",
    ]);
    expect(t.tenants).toEqual([
      {
        user: "ci-a",
        units: [
          { unit: "ci-a-runner.service", environmentFile: "/etc/hardened-docker/ci-a-runner.env" },
        ],
        proxyContainer: "socket-proxy",
        slice: true,
      },
      { user: "ci-b", units: [] },
    ]);
  });
});

describe("a probe output with tenants", () => {
  const sections = parseSections(two.stdout, two.marker);

  test("parses into the host's facts as before, each tenant's, and the facts across them", () => {
    const f = parseFacts(sections, "provisioner", ["ci-a", "ci-b"]);
    const alone = parseFacts(parseSections(converged.stdout, converged.marker), "provisioner");
    const { tenants, isolation, ...own } = f;
    expect(own).toEqual(alone);
    expect([...tenants!.keys()]).toEqual(["ci-a", "ci-b"]);
    const a = tenants!.get("ci-a")!;
    expect(a.user).toEqual({ name: "ci-a", uid: 1002, home: "/home/ci-a" });
    expect([a.subuid, a.linger, a.complete, a.runAs]).toEqual([
      [{ start: 231072, count: 65536 }],
      true,
      true,
      "root",
    ]);
    expect(a.containers?.[0].Mounts?.[0].Source).toBe("/run/user/1002/docker.sock");
    expect(a.units.size).toBe(0);
    expect(tenants!.get("ci-b")!.user?.uid).toBe(1003);
    expect(isolation?.paths[0]).toEqual({
      user: "provisioner",
      kind: "runtime",
      mode: 0o700,
      owner: 1001,
      type: "directory",
    });
    expect(isolation?.sockets).toHaveLength(6);
    expect(isolation?.sockets?.[0]).toEqual({ from: "provisioner", to: "ci-a", verdict: "denied" });
  });

  test("a tenant's sections are its own: a tenant named like the start of another's name gets none of its", () => {
    const f = parseFacts(sections, "provisioner", ["ci", "ci-a"]);
    expect(f.tenants?.get("ci")?.user).toBeUndefined();
    expect(f.tenants?.get("ci-a")?.user?.name).toBe("ci-a");
  });

  test("every check passes: the host's ids as before, then each tenant's, then across them", () => {
    const checks = evaluateTenants(two, twoExpected);
    expect(notPassing(checks)).toEqual({});
    const ids = checks.map((c) => c.id);
    const own = evaluateProbe(converged).map((c) => c.id);
    expect(ids.slice(0, own.length)).toEqual(own);
    const tenantIds = [
      "service-user.exists",
      "service-user.not-in-docker-group",
      "service-user.subordinate-ids",
      "linger.enabled",
      "docker.user-service",
      "docker.rootless",
      "cgroup.delegation",
      "docker.daemon-json",
      "containers.socket-mounts",
      "containers.privileged",
      "socket-proxy.running",
      "socket-proxy.network",
      "socket-proxy.refuses-writes",
      "socket-proxy.config",
    ];
    expect(ids.slice(own.length)).toEqual([
      ...tenantIds.map((id) => `tenant.ci-a.${id}`),
      ...tenantIds.map((id) => `tenant.ci-b.${id}`),
      "isolation.runtime-dirs",
      "isolation.homes",
      "isolation.subordinate-ids",
      "isolation.docker-sockets",
    ]);
    expect(byId(checks, "tenant.ci-a.docker.rootless").title).toBe(
      "docker info over /run/user/1002/docker.sock reports rootless",
    );
    expect(byId(checks, "isolation.docker-sockets").evidence).toBe(
      "6 of 6 attempts refused (Permission denied)",
    );
  });

  test("a tenant's breakage fails its own check only, and its consequences name it", () => {
    const off = withSection(two, "tenant:ci-a/linger", "no");
    const checks = evaluateTenants(off, twoExpected);
    expect(checks.filter((c) => c.status === "FAIL").map((c) => c.id)).toEqual([
      "tenant.ci-a.linger.enabled",
    ]);
    const fail = byId(checks, "tenant.ci-a.linger.enabled");
    expect(fail.remediation).toBe("Turn it on: sudo loginctl enable-linger ci-a.");
    const daemon = withSection(
      withSection(off, "tenant:ci-a/docker-unit", "ActiveState=inactive\nUnitFileState=enabled"),
      "tenant:ci-a/docker-info",
      "Cannot connect to the Docker daemon at unix:///run/user/1002/docker.sock\nexit=1",
    );
    const consequences = evaluateTenants(daemon, twoExpected);
    expect(notPassing(consequences)).toEqual({
      "tenant.ci-a.linger.enabled": "FAIL",
      "tenant.ci-a.docker.user-service": "WARN",
      "tenant.ci-a.docker.rootless": "WARN",
    });
    expect(byId(consequences, "tenant.ci-a.docker.rootless").cause).toBe(
      "tenant.ci-a.linger.enabled",
    );
  });

  test("a tenant that does not exist: one FAIL, its other checks and the checks across tenants explained", () => {
    const gone = withSection(two, "tenant:ci-b/passwd", "");
    const checks = evaluateTenants(gone, twoExpected);
    expect(checks.filter((c) => c.status === "FAIL").map((c) => c.id)).toEqual([
      "tenant.ci-b.service-user.exists",
    ]);
    // the across-tenant checks still judge the others, and say who was left out
    expect(byId(checks, "isolation.runtime-dirs")).toMatchObject({
      status: "WARN",
      cause: "tenant.ci-b.service-user.exists",
      evidence: expect.stringContaining("not checked for ci-b (no such user)"),
    });
    expect(byId(checks, "isolation.docker-sockets").evidence).toContain("2 of 2 attempts refused");
  });

  test("a tenant's container mounting another tenant's runtime directory fails", () => {
    const p = withContainers(
      two,
      (d) =>
        d.push({
          ...structuredClone(d[0]),
          Name: "/peek",
          Config: { Labels: {} },
          Mounts: [{ Type: "bind", Source: "/run/user/1001", Destination: "/x", RW: false }],
        }),
      "tenant:ci-a/containers",
    );
    const checks = evaluateTenants(p, twoExpected);
    expect(notPassing(checks)).toEqual({ "tenant.ci-a.containers.socket-mounts": "FAIL" });
    expect(byId(checks, "tenant.ci-a.containers.socket-mounts").evidence).toBe(
      "peek: /run/user/1001 -> /x (ro)",
    );
    // the same mount on a host without tenants is not another tenant's
    expect(socketMountsOnHost("/run/user/1002")).toBe("PASS");
  });

  test("a proxy pid that is not the tenant's is not probed: the proxy check fails saying so", () => {
    const p = withSection(
      two,
      "tenant:ci-a/proxy-probe",
      "GET not probed: pid 5175 runs as neither ci-a nor one of its subordinate uids\nPOST not probed: pid 5175 runs as neither ci-a nor one of its subordinate uids",
    );
    const c = byId(evaluateTenants(p, twoExpected), "tenant.ci-a.socket-proxy.refuses-writes");
    expect(c.status).toBe("FAIL");
    expect(c.evidence).toContain("GET /_ping -> not probed: pid 5175 runs as neither ci-a");
  });
});

/** containers.socket-mounts of the no-tenant converged host with a container mounting `source`. */
function socketMountsOnHost(source: string): string {
  const p = withContainers(converged, (d) =>
    d.push({
      ...structuredClone(d[0]),
      Name: "/peek",
      Config: { Labels: {} },
      Mounts: [{ Type: "bind", Source: source, Destination: "/x", RW: false }],
    }),
  );
  return byId(evaluateProbe(p), "containers.socket-mounts").status;
}

describe("slice limits, where declared", () => {
  const limited = tenantExpectation(
    [TENANT_A],
    () => ({ limits: { cpuPercent: 50, memoryMiB: 512 } }),
    { limits: { cpuPercent: 100, memoryMiB: 1024, tasks: 2048 } },
  );
  const one = withTenants(converged, [TENANT_A]);
  const slices = (own: string, a: string) =>
    withSection(withSection(one, "slice", own), "tenant:ci-a/slice", a);
  const ownOk = "cpu.max=100000 100000\nmemory.max=1073741824\nmemory.swap.max=0\npids.max=2048";
  const aOk = "cpu.max=50000 100000\nmemory.max=536870912\nmemory.swap.max=0\npids.max=8413";

  test("the cgroup files hold sliceCgroupValues: PASS, for the host's user and the tenant", () => {
    const checks = evaluateTenants(slices(ownOk, aOk), limited);
    expect(notPassing(checks)).toEqual({});
    expect(byId(checks, "cgroup.slice-limits").evidence).toBe(
      "user-1001.slice: cpu.max 100000 100000, memory.max 1073741824, memory.swap.max 0, pids.max 2048",
    );
    // only what is declared is compared (ci-a declares no tasks: pids.max is systemd's)
    expect(byId(checks, "tenant.ci-a.cgroup.slice-limits").evidence).toBe(
      "user-1002.slice: cpu.max 50000 100000, memory.max 536870912, memory.swap.max 0",
    );
    // the check sits after the delegation, like the limits step after linger
    const ids = checks.map((c) => c.id);
    expect(ids.indexOf("cgroup.slice-limits")).toBe(ids.indexOf("cgroup.delegation") + 1);
  });

  test("a value that differs fails naming the file, what it is and what was declared", () => {
    const checks = evaluateTenants(
      slices(ownOk, aOk.replace("cpu.max=50000 100000", "cpu.max=max 100000")),
      limited,
    );
    expect(notPassing(checks)).toEqual({ "tenant.ci-a.cgroup.slice-limits": "FAIL" });
    const c = byId(checks, "tenant.ci-a.cgroup.slice-limits");
    expect(c.evidence).toBe("user-1002.slice: cpu.max is max 100000, declared 50000 100000");
    expect(c.remediation).toContain(
      "sudo systemctl set-property user-1002.slice CPUQuota=50% MemoryMax=512M MemorySwapMax=0",
    );
  });

  test("no memory.swap.max (no swap accounting) is as good as 0; no memory.max is not", () => {
    const noSwap = ownOk.replace("memory.swap.max=0", "memory.swap.max absent");
    expect(notPassing(evaluateTenants(slices(noSwap, aOk), limited))).toEqual({});
    const noMemory = ownOk.replace("memory.max=1073741824", "memory.max absent");
    expect(
      byId(evaluateTenants(slices(noMemory, aOk), limited), "cgroup.slice-limits"),
    ).toMatchObject({
      status: "FAIL",
      evidence: "user-1001.slice: memory.max is absent, declared 1073741824",
    });
  });

  test("a slice that does not run fails, and is a consequence when linger is off", () => {
    const none = "cpu.max absent\nmemory.max absent\nmemory.swap.max absent\npids.max absent";
    const c = byId(
      evaluateTenants(slices(ownOk, none), limited),
      "tenant.ci-a.cgroup.slice-limits",
    );
    expect([c.status, c.evidence]).toEqual([
      "FAIL",
      "/sys/fs/cgroup/user.slice/user-1002.slice has none of cpu.max, memory.max, memory.swap.max: the slice does not run (nothing of ci-a runs)",
    ]);
    const lingerOff = withSection(slices(ownOk, none), "tenant:ci-a/linger", "no");
    expect(byId(evaluateTenants(lingerOff, limited), "tenant.ci-a.cgroup.slice-limits").cause).toBe(
      "tenant.ci-a.linger.enabled",
    );
  });

  test("without declared limits there is no such check", () => {
    const ids = evaluateTenants(slices(ownOk, aOk), twoExpectedOne()).map((c) => c.id);
    expect(ids.filter((id) => id.endsWith("slice-limits"))).toEqual([]);
  });
});

const twoExpectedOne = () => tenantExpectation([TENANT_A]);

describe("published ports, where declared", () => {
  const ranged = tenantExpectation([TENANT_A], () => ({ ports: { from: 8000, to: 8999 } }), {
    ports: { from: 80, to: 443 },
  });
  const one = withTenants(converged, [TENANT_A]);
  const publish = (p: Probe, section: string, ports: Record<string, unknown>, running = true) =>
    withContainers(
      p,
      (d) =>
        d.push({
          ...structuredClone(d[0]),
          Name: "/web",
          Config: { Labels: {} },
          Mounts: [],
          NetworkSettings: { Networks: { web: {} }, Ports: running ? ports : {} },
          HostConfig: { PortBindings: ports },
        }),
      section,
    );

  test("ports inside the range pass, for the host's user and the tenant", () => {
    const p = publish(
      publish(one, "containers", { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "80" }] }),
      "tenant:ci-a/containers",
      {
        "8080/tcp": [
          { HostIp: "0.0.0.0", HostPort: "8080" },
          { HostIp: "::", HostPort: "8080" },
        ],
      },
    );
    const checks = evaluateTenants(p, ranged);
    expect(notPassing(checks)).toEqual({});
    expect(byId(checks, "containers.ports").evidence).toBe("published: web 80->80/tcp");
    expect(byId(checks, "tenant.ci-a.containers.ports")).toMatchObject({
      title: "Containers publish host ports only in 8000-8999",
      evidence: "published: web 8080->8080/tcp",
    });
  });

  test("a port outside, a random one, or a stopped container's binding outside, fails naming it", () => {
    const outside = publish(one, "tenant:ci-a/containers", {
      "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "80" }],
    });
    const c = byId(evaluateTenants(outside, ranged), "tenant.ci-a.containers.ports");
    expect([c.status, c.evidence]).toEqual(["FAIL", "outside 8000-8999: web 80->80/tcp"]);
    expect(c.remediation).toContain("Re-create web publishing only ports in 8000-8999");
    const random = publish(one, "tenant:ci-a/containers", {
      "80/tcp": [{ HostIp: "", HostPort: "" }],
    });
    expect(byId(evaluateTenants(random, ranged), "tenant.ci-a.containers.ports").evidence).toBe(
      "outside 8000-8999: web random->80/tcp",
    );
    const stopped = publish(
      one,
      "tenant:ci-a/containers",
      { "53/udp": [{ HostIp: "", HostPort: "8053-9053" }] },
      false,
    );
    expect(byId(evaluateTenants(stopped, ranged), "tenant.ci-a.containers.ports").evidence).toBe(
      "outside 8000-8999: web 8053-9053->53/udp",
    );
  });

  test("without a container list it is not checked, under the same id; undeclared, it is absent", () => {
    const down = withSection(one, "tenant:ci-a/containers", "docker ps failed: Cannot connect");
    expect(byId(evaluateTenants(down, ranged), "tenant.ci-a.containers.ports")).toMatchObject({
      status: "FAIL",
      evidence: "not checked: no container list (docker ps failed: Cannot connect)",
    });
    const ids = evaluateTenants(one, twoExpectedOne()).map((c) => c.id);
    expect(ids.filter((id) => id.endsWith("containers.ports"))).toEqual([]);
  });
});

describe("across tenants", () => {
  const paths = (change: (line: string) => string) =>
    sectionOf(two, "isolation-paths").split("\n").map(change).join("\n");
  const across = (p: { paths?: string; sockets?: string }) =>
    evaluateTenants(withTenants(converged, [TENANT_A, TENANT_B], p), twoExpected);

  test("a runtime directory open to others, or not its user's, fails naming it and the fix", () => {
    const open = across({
      paths: paths((l) => l.replace("ci-a runtime 700", "ci-a runtime 755")),
    });
    expect(notPassing(open)).toEqual({ "isolation.runtime-dirs": "FAIL" });
    const c = byId(open, "isolation.runtime-dirs");
    expect(c.evidence).toBe(
      "ci-a: /run/user/1002 755 uid 1002 directory: group or others may enter",
    );
    expect(c.remediation).toContain(
      "sudo chown ci-a: /run/user/1002 && sudo chmod 0700 /run/user/1002",
    );
    const theirs = across({
      paths: paths((l) => l.replace("ci-b runtime 700 1003", "ci-b runtime 700 1002")),
    });
    expect(byId(theirs, "isolation.runtime-dirs").evidence).toBe(
      "ci-b: /run/user/1003 700 uid 1002 directory: owned by uid 1002, not ci-b",
    );
  });

  test("a runtime directory that does not exist fails, and follows from linger when that is off", () => {
    const gone = (p: Probe) =>
      withSection(
        p,
        "isolation-paths",
        paths((l) =>
          l.startsWith("ci-b runtime")
            ? "ci-b runtime stat: cannot statx '/run/user/1003': No such file or directory"
            : l,
        ),
      );
    const absent = evaluateTenants(gone(two), twoExpected);
    expect(byId(absent, "isolation.runtime-dirs")).toMatchObject({
      status: "FAIL",
      evidence: expect.stringContaining("ci-b: /run/user/1003 absent"),
    });
    const off = evaluateTenants(gone(withSection(two, "tenant:ci-b/linger", "no")), twoExpected);
    expect(byId(off, "isolation.runtime-dirs").cause).toBe("tenant.ci-b.linger.enabled");
  });

  test("a home open to group or others, or a link, fails with chmod 0700", () => {
    const open = across({
      paths: paths((l) => l.replace("provisioner home 700", "provisioner home 755")),
    });
    expect(notPassing(open)).toEqual({ "isolation.homes": "FAIL" });
    expect(byId(open, "isolation.homes")).toMatchObject({
      evidence: "provisioner: /home/provisioner 755 uid 1001 directory: group or others may enter",
      remediation: expect.stringContaining("sudo chmod 0700 /home/provisioner"),
    });
    const link = across({
      paths: paths((l) =>
        l.replace("ci-a home 700 1002 directory", "ci-a home 777 0 symbolic link"),
      ),
    });
    expect(byId(link, "isolation.homes").evidence).toBe(
      "ci-a: /home/ci-a 777 uid 0 symbolic link: a symbolic link, not a directory, group or others may enter",
    );
  });

  test("overlapping subordinate ranges fail naming both users and ranges", () => {
    const overlap = withSection(two, "tenant:ci-b/subgid", "ci-b:250000:65536");
    const checks = evaluateTenants(overlap, twoExpected);
    expect(notPassing(checks)).toEqual({ "isolation.subordinate-ids": "FAIL" });
    expect(byId(checks, "isolation.subordinate-ids").evidence).toBe(
      "/etc/subgid: ci-b 250000-315535 overlaps ci-a 231072-296607",
    );
    // touching is not overlapping
    const touching = withSection(two, "tenant:ci-b/subgid", "ci-b:296608:65536");
    expect(notPassing(evaluateTenants(touching, twoExpected))).toEqual({});
  });

  test("a subordinate range holding another service user's uid fails naming both", () => {
    const holds = withSection(two, "tenant:ci-b/subuid", "ci-b:1000:65536");
    const checks = evaluateTenants(holds, twoExpected);
    expect(notPassing(checks)).toEqual({ "isolation.subordinate-ids": "FAIL" });
    expect(byId(checks, "isolation.subordinate-ids").evidence).toBe(
      "/etc/subuid: ci-b 1000-66535 holds provisioner's uid 1001; /etc/subuid: ci-b 1000-66535 holds ci-a's uid 1002",
    );
  });

  test("a tenant that reaches another's socket fails naming both", () => {
    const sockets = (verdict: string) =>
      sectionOf(two, "isolation-sockets").replace("ci-b ci-a denied", `ci-b ci-a ${verdict}`);
    for (const [verdict, how] of [
      ["connected", "connected and got an answer"],
      ["refused", "connect() allowed (nothing listens)"],
      ["timeout", "connected, no answer"],
    ]) {
      const checks = across({ sockets: sockets(verdict) });
      expect([verdict, notPassing(checks)]).toEqual([
        verdict,
        { "isolation.docker-sockets": "FAIL" },
      ]);
      const c = byId(checks, "isolation.docker-sockets");
      expect(c.evidence).toBe(`ci-b reached ci-a's /run/user/1002/docker.sock: ${how}`);
      expect(c.remediation).toContain("Find what lets ci-b in");
    }
  });

  test("an attempt that proves nothing: no socket (daemon down) fails or follows from it; no curl or an odd answer warns", () => {
    const sockets = sectionOf(two, "isolation-sockets").replace(
      "ci-b ci-a denied",
      "ci-b ci-a absent",
    );
    const absent = byId(across({ sockets }), "isolation.docker-sockets");
    expect([absent.status, absent.evidence]).toEqual([
      "FAIL",
      "5 of 6 attempts refused (Permission denied); ci-b -> ci-a: no /run/user/1002/docker.sock",
    ]);
    const down = withSection(
      withTenants(converged, [TENANT_A, TENANT_B], { sockets }),
      "tenant:ci-a/docker-info",
      "Cannot connect to the Docker daemon at unix:///run/user/1002/docker.sock\nexit=1",
    );
    expect(byId(evaluateTenants(down, twoExpected), "isolation.docker-sockets").cause).toBe(
      "tenant.ci-a.docker.rootless",
    );
    const noCurl = byId(across({ sockets: "no curl" }), "isolation.docker-sockets");
    expect([noCurl.status, noCurl.evidence]).toEqual([
      "WARN",
      "not tried: the host has no curl (the packages step installs it)",
    ]);
    const odd = byId(
      across({
        sockets: sectionOf(two, "isolation-sockets")
          .replace("ci-b ci-a denied", "ci-b ci-a curl-exit-2")
          .replace(/^provisioner ci-b denied\n/m, ""),
      }),
      "isolation.docker-sockets",
    );
    expect([odd.status, odd.evidence]).toEqual([
      "WARN",
      "4 of 6 attempts refused (Permission denied); provisioner -> ci-b: not tried; ci-b -> ci-a: curl-exit-2",
    ]);
  });
});

describe("the command and its formats with tenants", () => {
  const HOST_KEY =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE";

  test("--stack reads tenants, serviceUserLimits and serviceUserPorts into the expectation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-stacks-"));
    writeFileSync(
      join(dir, "Pulumi.web-1.yaml"),
      `config:
  hardened-docker:host: 10.0.0.5
  hardened-docker:hostKey: ${HOST_KEY}
  hardened-docker:privateKey:
    secure: v1:AAAA
  hardened-docker:serviceUserLimits:
    memoryMiB: 2048
  hardened-docker:serviceUserPorts:
    from: 80
    to: 443
  hardened-docker:tenants:
    - serviceUser:
        name: ci-a
      limits:
        tasks: 512
      ports:
        from: 8000
        to: 8099
    - serviceUser:
        name: ci-b
`,
    );
    const seen: VerifyExpectation[] = [];
    const t = recordingIo({
      verify: async (_c, e, o) => {
        seen.push(e);
        return { host: o?.name ?? "?", checks: [] };
      },
    });
    expect(await runVerify(["--stack", "web-1", "--stacks-dir", dir], t.io)).toBe(0);
    const e = seen[0];
    expect([e.serviceUser, e.limits, e.ports]).toEqual([
      "provisioner",
      { memoryMiB: 2048 },
      { from: 80, to: 443 },
    ]);
    expect(e.tenants?.map((x) => [x.serviceUser, x.limits, x.ports])).toEqual([
      ["ci-a", { tasks: 512 }, { from: 8000, to: 8099 }],
      ["ci-b", undefined, undefined],
    ]);
  });

  test("--stack: a stack the program would refuse across tenants is that host's error, naming the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-stacks-"));
    const key =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE k";
    writeFileSync(
      join(dir, "Pulumi.web-1.yaml"),
      `config:
  hardened-docker:host: 10.0.0.5
  hardened-docker:hostKey: ${HOST_KEY}
  hardened-docker:tenants:
    - serviceUser:
        name: ci-a
        deployKeys: ["${key}"]
    - serviceUser:
        name: ci-b
        deployKeys: ["${key}"]
`,
    );
    const t = recordingIo({
      verify: async () => {
        throw new Error("a refused stack must not be verified");
      },
    });
    expect(await runVerify(["--stack", "web-1", "--stacks-dir", dir], t.io)).toBe(1);
    // the host's report is one FAIL that says which file and which field
    expect(t.stdout()).toContain(
      `${join(dir, "Pulumi.web-1.yaml")}: tenants[1].serviceUser.deployKeys[0]:`,
    );
    expect(t.stdout()).toContain("a key no other tenant has (ci-a has it)");
  });

  test("a report with tenants is valid JUnit (a case per check) and SARIF (a rule per tenant's check)", () => {
    const broken = withSection(two, "tenant:ci-a/linger", "no");
    const report: HostReport = { host: "web-1", checks: evaluateTenants(broken, twoExpected) };
    const file = join(mkdtempSync(join(tmpdir(), "hd-junit-")), "r.xml");
    writeFileSync(file, renderJunit([report]));
    const r = spawnSync("xmllint", ["--xpath", "count(//testcase)", file], { encoding: "utf8" });
    expect([r.stderr, r.stdout.trim()]).toEqual(["", String(report.checks.length)]);
    const sarif = JSON.parse(renderSarif([report], { version: "0.0.0" }));
    const rules = sarif.runs[0].tool.driver.rules.map((x: { id: string }) => x.id);
    expect(rules).toEqual(report.checks.map((c) => c.id));
    expect(sarif.runs[0].results.map((x: { ruleId: string }) => x.ruleId)).toEqual([
      "tenant.ci-a.linger.enabled",
    ]);
    expect(JSON.parse(renderJson([report])).hosts[0].checks).toEqual(report.checks);
  });
});
