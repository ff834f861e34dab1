/**
 * verify's parsing and checks against probe outputs recorded on the test VM
 * (test/fixtures/verify/, see its README), and synthetic variations of them: each
 * recorded breakage must fail exactly its check, with the fix, and every other check that it
 * explains must be a WARN naming it.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DOCKER_API_LIMITS, DOCKER_API_PERL, probeCommand } from "../../components/verify/probe";
import {
  CheckResult,
  expectationFromArgs,
  parseExposure,
  parseFacts,
  parseSections,
  parseShowBlocks,
  parseSubordinateIds,
  probeScript,
} from "../../components/verify";
import { journalTime, lineDiff, stripJournalPrefix } from "../../components/app-service/checks";
import { shellcheck } from "../helpers/shellcheck";
import { socketMounts } from "../../components/socket-proxy/checks";
import {
  E2E_SERVICE,
  Probe,
  e2eExpectation,
  evaluateProbe,
  loadProbe,
  notPassing,
  sectionOf,
  withSection,
} from "../helpers/verify";

const converged = loadProbe("converged");
const byId = (checks: CheckResult[], id: string) => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}: ${checks.map((x) => x.id).join(", ")}`);
  return c;
};
/** A container's inspect document, loosely typed: the tests reach into any part of it. */
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The containers section with `change` applied to the parsed inspect documents. */
function withContainers(probe: Probe, change: (docs: Doc[]) => void): Probe {
  const docs = JSON.parse(sectionOf(probe, "containers")) as Doc[];
  change(docs);
  return withSection(probe, "containers", JSON.stringify(docs));
}
const proxyOf = (docs: Doc[]) => docs.find((d) => d.Name === "/socket-proxy")!;

describe("the converged VM", () => {
  const checks = evaluateProbe(converged);

  test("every check passes, with stable ids", () => {
    expect(notPassing(checks)).toEqual({});
    expect(checks.map((c) => c.id)).toEqual([
      "service-user.exists",
      "service-user.not-in-docker-group",
      "service-user.subordinate-ids",
      "linger.enabled",
      "docker.user-service",
      "docker.rootless",
      "rootful-docker.off",
      "cgroup.delegation",
      "docker.daemon-json",
      "app.provisioner.active",
      "app.provisioner.unit-file",
      "app.provisioner.exposure",
      "app.provisioner.environment-file",
      "app.provisioner.docker-connection",
      "containers.socket-mounts",
      "containers.privileged",
      "socket-proxy.running",
      "socket-proxy.network",
      "socket-proxy.refuses-writes",
      "socket-proxy.config",
    ]);
  });

  test("the evidence says what was seen", () => {
    expect(byId(checks, "docker.rootless").evidence).toMatch(
      /^server 20\.10\.\S+, security options .*name=rootless/,
    );
    expect(byId(checks, "service-user.subordinate-ids").evidence).toBe(
      "/etc/subuid: 165536:65536; /etc/subgid: 165536:65536",
    );
    expect(byId(checks, "containers.socket-mounts").evidence).toBe(
      "socket-proxy: /run/user/1001/docker.sock -> /var/run/docker.sock (ro)",
    );
    expect(byId(checks, "socket-proxy.refuses-writes").evidence).toBe(
      "GET /_ping -> HTTP/1.1 200 OK; POST /containers/create -> HTTP/1.1 403 Forbidden",
    );
    expect(byId(checks, "app.provisioner.exposure").evidence).toMatch(
      /Overall exposure level for provisioner.service: 1\.\d OK/,
    );
  });

  test("parsed facts", () => {
    const f = parseFacts(parseSections(converged.stdout, converged.marker), "provisioner");
    expect(f.complete).toBe(true);
    expect(f.runAs).toBe("root");
    expect(f.user).toEqual({ name: "provisioner", uid: 1001, home: "/home/provisioner" });
    expect(f.rootfulUnits).toEqual([
      { unit: "docker.socket", enabled: "masked", active: "inactive" },
      { unit: "docker.service", enabled: "masked", active: "inactive" },
      { unit: "containerd.service", enabled: "masked", active: "inactive" },
    ]);
    expect(f.userManager).toBe("active");
    expect(f.dockerUnit).toMatchObject({ enabled: "enabled", active: "active" });
    expect(f.containers?.map((c) => c.Name)).toEqual(["/socket-proxy"]);
    expect(f.networks?.find((n) => n.Name === "docker_api")?.Internal).toBe(true);
    expect(f.units.get("provisioner.service")?.show.User).toBe("provisioner");
  });
});

describe("each breakage recorded on the VM fails exactly its check, with the fix", () => {
  test.each([
    ["linger-off", "linger.enabled", "sudo loginctl enable-linger provisioner"],
    [
      "rootful-started",
      "rootful-docker.off",
      "sudo systemctl mask docker.socket docker.service containerd.service",
    ],
    ["docker-group", "service-user.not-in-docker-group", "sudo gpasswd -d provisioner docker"],
    ["socket-mount", "containers.socket-mounts", "docker rm -f rogue"],
    ["unit-edited", "app.provisioner.unit-file", "pulumi up --replace"],
    [
      "envfile-644",
      "app.provisioner.environment-file",
      "sudo chown root:root /etc/hardened-docker/provisioner.env && sudo chmod 0600",
    ],
    [
      "daemon-stopped",
      "docker.user-service",
      "sudo systemctl --user -M provisioner@ enable --now docker.service",
    ],
  ])("%s → %s", (fixture, id, fix) => {
    const checks = evaluateProbe(loadProbe(fixture));
    const failing = checks.filter((c) => c.status === "FAIL");
    expect(failing.map((c) => c.id)).toEqual([id]);
    expect(failing[0].remediation).toContain(fix);
    // whatever else is not PASS is a consequence of that failure, and says so
    for (const c of checks.filter((x) => x.status === "WARN")) {
      expect([c.id, c.cause]).toEqual([c.id, id]);
      expect(c.evidence).toContain(`(follows from ${id})`);
    }
  });

  test("linger off: the daemon, the API checks and the app's connection are consequences", () => {
    expect(notPassing(evaluateProbe(loadProbe("linger-off")))).toEqual({
      "linger.enabled": "FAIL",
      "docker.user-service": "WARN",
      "docker.rootless": "WARN",
      "app.provisioner.docker-connection": "WARN",
      "containers.socket-mounts": "WARN",
      "containers.privileged": "WARN",
      "socket-proxy.running": "WARN",
      "socket-proxy.network": "WARN",
      "socket-proxy.refuses-writes": "WARN",
      "socket-proxy.config": "WARN",
    });
  });

  test("the unit file diff and the socket mount are named in the evidence", () => {
    expect(
      byId(evaluateProbe(loadProbe("unit-edited")), "app.provisioner.unit-file").evidence,
    ).toBe("+ # a local edit; changed on disk since systemd loaded it");
    expect(
      byId(evaluateProbe(loadProbe("socket-mount")), "containers.socket-mounts").evidence,
    ).toBe("rogue: /run/user/1001/docker.sock -> /var/run/docker.sock (rw)");
  });
});

describe("the runbook's three failure modes", () => {
  test("daemon stopped: 'no such file … /run/user/<uid>/docker.sock' = daemon not up or linger off, with the app's log line", () => {
    const c = byId(evaluateProbe(loadProbe("daemon-stopped")), "app.provisioner.docker-connection");
    expect(c.status).toBe("WARN");
    expect(c.cause).toBe("docker.user-service");
    expect(c.evidence).toContain("/run/user/1001/docker.sock does not exist");
    expect(c.evidence).toContain("the user daemon is not up, or linger is off");
    expect(c.evidence).toContain(
      "its log: provisioning tenant-acme failed: docker: Cannot connect to the Docker daemon at unix:///run/user/1001/docker.sock",
    );
    expect(c.remediation).toContain("sudo loginctl enable-linger provisioner");
  });

  test("DOCKER_HOST at the root socket (an EnvironmentFile overriding the unit): FAIL, root-socket diagnosis", () => {
    const checks = evaluateProbe(loadProbe("env-root-socket"));
    expect(notPassing(checks)).toEqual({
      "app.provisioner.environment-file": "FAIL",
      "app.provisioner.docker-connection": "FAIL",
    });
    const c = byId(checks, "app.provisioner.docker-connection");
    expect(c.evidence).toContain(
      "DOCKER_HOST = unix:///var/run/docker.sock (/etc/hardened-docker/provisioner.env)",
    );
    expect(c.evidence).toContain("points at the root daemon's socket");
    expect(c.remediation).toBe(
      "Remove DOCKER_HOST from /etc/hardened-docker/provisioner.env (the unit sets DOCKER_HOST=unix:///run/user/1001/docker.sock), then sudo systemctl restart provisioner.service.",
    );
    expect(byId(checks, "app.provisioner.environment-file").evidence).toBe("sets DOCKER_HOST");
  });

  test("DOCKER_HOST elsewhere: 'Cannot connect to the Docker daemon' = wrong environment", () => {
    const c = byId(evaluateProbe(loadProbe("env-wrong-host")), "app.provisioner.docker-connection");
    expect(c.status).toBe("FAIL");
    expect(c.evidence).toContain("DOCKER_HOST = tcp://127.0.0.1:2375");
    expect(c.evidence).toContain("the unit's environment does not lead to the user daemon");
  });

  test("DOCKER_HOST unset in the unit itself: root-socket diagnosis, fix = re-apply the unit", () => {
    const show = sectionOf(converged, "units-show").replace(
      /^Environment=DOCKER_HOST=\S+ /m,
      "Environment=",
    );
    const c = byId(
      evaluateProbe(withSection(converged, "units-show", show)),
      "app.provisioner.docker-connection",
    );
    expect(c.status).toBe("FAIL");
    expect(c.evidence).toContain(
      "DOCKER_HOST unset (the client falls back to /var/run/docker.sock)",
    );
    expect(c.remediation).toContain("Re-apply the rendered unit");
  });

  test("a failure logged after the daemon came up warns; one logged before it is history", () => {
    const line = (t: number) =>
      `${t}.000000 dockerhost perl[1]: docker: Cannot connect to the Docker daemon at unix:///run/user/1001/docker.sock.`;
    const at = (since: number, logged: number) =>
      byId(
        evaluateProbe(
          withSection(
            withSection(
              converged,
              "docker-unit",
              `ActiveState=active\nUnitFileState=enabled\nActiveEnterTimestamp=@${since}`,
            ),
            "unit-journal:provisioner.service",
            line(logged),
          ),
        ),
        "app.provisioner.docker-connection",
      );
    expect(at(1000, 2000).status).toBe("WARN");
    expect(at(1000, 2000).evidence).toContain("its current run logged: docker: Cannot connect");
    expect(at(3000, 2000).status).toBe("PASS");
  });
});

describe("synthetic variations of the converged recording", () => {
  test("subordinate ids: two ranges, or one too small, fail", () => {
    const two = withSection(converged, "subuid", "provisioner:165536:65536\n1001:300000:65536");
    expect(notPassing(evaluateProbe(two))).toEqual({ "service-user.subordinate-ids": "FAIL" });
    const small = withSection(converged, "subgid", "provisioner:165536:1000");
    expect(byId(evaluateProbe(small), "service-user.subordinate-ids").evidence).toContain(
      "/etc/subgid: 165536:1000",
    );
  });

  test("daemon.json: a changed value fails naming the key; formatting only warns", () => {
    const json = JSON.parse(sectionOf(converged, "daemon-json"));
    const changed = withSection(
      converged,
      "daemon-json",
      JSON.stringify({ ...json, icc: true }, null, 2),
    );
    expect(byId(evaluateProbe(changed), "docker.daemon-json").evidence).toContain(
      "differs in icc (declared false, found true)",
    );
    const compact = withSection(converged, "daemon-json", JSON.stringify(json));
    expect(notPassing(evaluateProbe(compact))).toEqual({ "docker.daemon-json": "WARN" });
  });

  test("the rootful socket alone fails (units masked, socket left behind)", () => {
    const p = withSection(converged, "root-sockets", "/var/run/docker.sock");
    expect(notPassing(evaluateProbe(p))).toEqual({ "rootful-docker.off": "FAIL" });
  });

  test("cgroup delegation missing controllers fails", () => {
    const p = withSection(converged, "delegation", "memory pids");
    expect(byId(evaluateProbe(p), "cgroup.delegation").evidence).toContain("missing cpu cpuset io");
  });

  test("a privileged container fails", () => {
    const p = withContainers(converged, (d) => (proxyOf(d).HostConfig.Privileged = true));
    expect(notPassing(evaluateProbe(p))).toEqual({ "containers.privileged": "FAIL" });
  });

  test("the proxy's socket mount read-write, or a container mounting /run/user/<uid>, fails", () => {
    const rw = withContainers(converged, (d) => (proxyOf(d).Mounts[0].RW = true));
    expect(notPassing(evaluateProbe(rw))).toEqual({ "containers.socket-mounts": "FAIL" });
    const dir = withContainers(converged, (d) =>
      d.push({
        ...structuredClone(proxyOf(d)),
        Name: "/sneaky",
        Config: { Labels: {} },
        Mounts: [{ Type: "bind", Source: "/run/user/1001", Destination: "/x", RW: false }],
      }),
    );
    expect(byId(evaluateProbe(dir), "containers.socket-mounts").evidence).toBe(
      "sneaky: /run/user/1001 -> /x (ro)",
    );
  });

  test("a hard link to the socket, or another path to it, fails by device and inode", () => {
    const sneaky = (Source: string) =>
      withContainers(converged, (d) =>
        d.push({
          ...structuredClone(proxyOf(d)),
          Name: "/sneaky",
          Config: { Labels: {} },
          Mounts: [{ Type: "bind", Source, Destination: "/x", RW: false }],
        }),
      );
    // as the probe prints them: the socket and the directories above it, then mount sources
    const socketIds = [
      "25:101 /run/user/1001/docker.sock",
      "25:1 /run/user/1001",
      "24:7 /run/user",
      "24:1 /run",
      "8:2 /",
    ].join("\n");
    const withIds = (p: Probe, sources: string) =>
      withSection(withSection(p, "socket-ids", socketIds), "mount-ids", sources);
    // a hard link in the user's runtime dir: same inode, no telling name
    const link = sneaky("/run/user/1001/cache.db");
    expect(byId(evaluateProbe(link), "containers.socket-mounts").status).toBe("PASS");
    const linked = withIds(link, "25:101 /run/user/1001/cache.db");
    expect(byId(evaluateProbe(linked), "containers.socket-mounts").evidence).toBe(
      "sneaky: /run/user/1001/cache.db -> /x (ro)",
    );
    // another path to the runtime directory (a bind mount of it elsewhere)
    const alias = withIds(sneaky("/srv/rt"), "25:1 /srv/rt");
    expect(byId(evaluateProbe(alias), "containers.socket-mounts").status).toBe("FAIL");
    // an unrelated file stays a pass with the ids
    const other = withIds(sneaky("/srv/data"), "8:99 /srv/data");
    expect(byId(evaluateProbe(other), "containers.socket-mounts").status).toBe("PASS");
    // containerd's socket, by name
    expect(
      byId(evaluateProbe(sneaky("/run/containerd/containerd.sock")), "containers.socket-mounts")
        .status,
    ).toBe("FAIL");
  });

  test("a decoy named socket-proxy with the role label is not taken for the proxy", () => {
    // another entrypoint (e.g. a tiny server answering 200/403): refused before any probe
    const other = withContainers(
      converged,
      (d) => (proxyOf(d).Config.Entrypoint = ["/bin/sh", "-c", "exec fake-proxy"]),
    );
    const checks = evaluateProbe(other);
    expect(byId(checks, "socket-proxy.running")).toMatchObject({
      status: "FAIL",
      evidence: expect.stringContaining("is not the deployed proxy: its entrypoint"),
    });
    // as for a proxy that is not running: nothing is probed or judged through it
    expect(checks.find((c) => c.id === "socket-proxy.refuses-writes")).toBeUndefined();
    // the rendered entrypoint, but the socket it mounts is not the daemon's (by inode)
    const ids = (mounted: string) =>
      withSection(
        withSection(
          converged,
          "socket-ids",
          "25:101 /run/user/1001/docker.sock\n25:1 /run/user/1001",
        ),
        "mount-ids",
        `${mounted} /run/user/1001/docker.sock`,
      );
    expect(byId(evaluateProbe(ids("25:101")), "socket-proxy.running").status).toBe("PASS");
    expect(byId(evaluateProbe(ids("25:999")), "socket-proxy.running")).toMatchObject({
      status: "FAIL",
      evidence: expect.stringContaining("does not mount the daemon's socket"),
    });
  });

  test("a container named socket-proxy without the role label is not exempt", () => {
    const p = withContainers(converged, (d) => (proxyOf(d).Config.Labels = {}));
    const checks = evaluateProbe(p);
    expect(byId(checks, "containers.socket-mounts").status).toBe("FAIL");
    expect(byId(checks, "socket-proxy.running").status).toBe("FAIL");
  });

  test("proxy: a write let through, a changed config, an extra network, a published port", () => {
    const letThrough = withSection(
      converged,
      "proxy-probe",
      "GET HTTP/1.1 200 OK\nPOST HTTP/1.1 400 Bad Request",
    );
    const c = byId(evaluateProbe(letThrough), "socket-proxy.refuses-writes");
    expect([c.status, c.remediation]).toEqual([
      "FAIL",
      expect.stringContaining("lets a write through"),
    ]);
    const config = withContainers(converged, (d) => {
      const env = proxyOf(d).Config.Env as string[];
      env[env.findIndex((e) => e.startsWith("HD_SOCKET_PROXY_CONFIG="))] += "\n# edited";
    });
    expect(notPassing(evaluateProbe(config))).toEqual({ "socket-proxy.config": "FAIL" });
    const extraNet = withContainers(
      converged,
      (d) => (proxyOf(d).NetworkSettings.Networks.bridge = {}),
    );
    expect(notPassing(evaluateProbe(extraNet))).toEqual({ "socket-proxy.network": "FAIL" });
    const published = withContainers(
      converged,
      (d) =>
        (proxyOf(d).NetworkSettings.Ports = {
          "2375/tcp": [{ HostIp: "0.0.0.0", HostPort: "2375" }],
        }),
    );
    expect(byId(evaluateProbe(published), "socket-proxy.network").evidence).toContain(
      "published: 2375/tcp",
    );
  });

  test("the app unit: a drop-in fails, a not-installed unit fails once and explains the rest", () => {
    const show = sectionOf(converged, "units-show");
    const dropIn = withSection(
      converged,
      "units-show",
      show.replace(
        /(Id=provisioner\.service[\s\S]*?)DropInPaths=/,
        "$1DropInPaths=/etc/systemd/system/provisioner.service.d/override.conf",
      ),
    );
    expect(byId(evaluateProbe(dropIn), "app.provisioner.unit-file").evidence).toBe(
      "drop-ins change it: /etc/systemd/system/provisioner.service.d/override.conf",
    );
    const gone = withSection(
      withSection(
        converged,
        "units-show",
        show.replace(/(Id=provisioner\.service[\s\S]*?)LoadState=loaded/, "$1LoadState=not-found"),
      ),
      "unit-file:provisioner.service",
      "cannot read /etc/systemd/system/provisioner.service",
    );
    const checks = evaluateProbe(gone);
    expect(checks.filter((c) => c.status === "FAIL").map((c) => c.id)).toEqual([
      "app.provisioner.unit-file",
    ]);
    expect(byId(checks, "app.provisioner.docker-connection").cause).toBe(
      "app.provisioner.unit-file",
    );
  });

  test("exposure above the limit warns", () => {
    const p = withSection(
      converged,
      "unit-security:provisioner.service",
      "-> Overall exposure level for provisioner.service: 9.6 UNSAFE :-{",
    );
    const c = byId(evaluateProbe(p), "app.provisioner.exposure");
    expect([c.status, c.evidence]).toEqual(["WARN", expect.stringContaining("9.6 UNSAFE")]);
    expect(
      byId(
        evaluateProbe(converged, { ...e2eExpectation(), maxExposure: 1 }),
        "app.provisioner.exposure",
      ).status,
    ).toBe("WARN");
  });

  test("the service user missing: one FAIL, everything that needs it explained", () => {
    // what the probe prints when the user does not exist: host-wide facts only
    const p = {
      ...converged,
      stdout: [
        "",
        `${converged.marker} whoami`,
        "0",
        `${converged.marker} passwd`,
        "",
        `${converged.marker} root-sockets`,
        "",
        `${converged.marker} units-show`,
        sectionOf(converged, "units-show"),
        `${converged.marker} end`,
        "",
      ].join("\n"),
    };
    const checks = evaluateProbe(p);
    expect(checks.filter((c) => c.status === "FAIL").map((c) => c.id)).toEqual([
      "service-user.exists",
    ]);
    expect(checks.map((c) => c.id)).toEqual(evaluateProbe(converged).map((c) => c.id));
    expect(byId(checks, "rootful-docker.off").status).toBe("PASS");
    for (const c of checks.filter((x) => x.status === "WARN"))
      expect([c.id, c.cause]).toEqual([c.id, "service-user.exists"]);
  });

  describe("Traefik", () => {
    const expected = expectationFromArgs({
      serviceUser: { name: "provisioner" },
      docker: { daemonConfig: { icc: false }, unprivilegedPortStart: 80 },
      services: [E2E_SERVICE],
      socketProxy: { image: "local/haproxy:e2e" },
      traefik: {},
    });
    const traefik = (args: string[], mounts: unknown[] = []) =>
      withContainers(converged, (d) =>
        d.push({
          ...structuredClone(proxyOf(d)),
          Name: "/traefik",
          Config: { Labels: { "dev.hardened-docker.role": "traefik" }, Cmd: args, Env: [] },
          Args: args,
          Mounts: mounts,
        }),
      );
    const good = [
      "--providers.docker.endpoint=tcp://socket-proxy:2375",
      "--providers.docker.exposedByDefault=false",
    ];

    test("its endpoint is the proxy and it has no socket: PASS", () => {
      const checks = evaluateProbe(traefik(good), expected);
      expect(notPassing(checks)).toEqual({});
      expect(byId(checks, "traefik.endpoint").evidence).toBe(
        "--providers.docker.endpoint=tcp://socket-proxy:2375",
      );
    });

    test("pointed at the socket, or mounting it: FAIL", () => {
      const mounted = traefik(good, [
        {
          Type: "bind",
          Source: "/run/user/1001/docker.sock",
          Destination: "/var/run/docker.sock",
          RW: false,
        },
      ]);
      expect(notPassing(evaluateProbe(mounted, expected))).toEqual({
        "containers.socket-mounts": "FAIL",
        "traefik.no-socket": "FAIL",
      });
      const direct = traefik(["--providers.docker.endpoint=unix:///var/run/docker.sock"]);
      expect(notPassing(evaluateProbe(direct, expected))).toEqual({ "traefik.endpoint": "FAIL" });
      expect(notPassing(evaluateProbe(converged, expected))).toEqual({
        "traefik.endpoint": "FAIL",
      });
    });
  });
});

describe("parsers", () => {
  test("sections: only lines starting with this run's marker open a section", () => {
    const m = "@@hd-verify-0123456789abcdef@@";
    const out = `\n${m} a\none\n@@hd-verify-ffffffffffffffff@@ fake\n  ${m} b\n${m} c\n\n`;
    expect([...parseSections(out, m)]).toEqual([
      ["a", `one\n@@hd-verify-ffffffffffffffff@@ fake\n  ${m} b`],
      ["c", ""],
    ]);
  });

  test("systemctl show blocks, exposure lines, subordinate ids, journal lines, line diffs", () => {
    expect(
      [
        ...parseShowBlocks(
          "Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=failed\n",
        ),
      ].map(([k, v]) => [k, v.ActiveState]),
    ).toEqual([
      ["a.service", "active"],
      ["b.service", "failed"],
    ]);
    expect(parseExposure("→ Overall exposure level for x.service: 2.1 OK :-)")).toBe(2.1);
    expect(parseExposure("Unit x.service not found, cannot analyze.")).toBeUndefined();
    expect(
      parseSubordinateIds("bob:100000:65536\n1001:200000:10\nalice:1:2\nbad", "bob", 1001),
    ).toEqual([
      { start: 100000, count: 65536 },
      { start: 200000, count: 10 },
    ]);
    const j = "1795424010.628486 host perl[12]: docker: Cannot connect";
    expect([journalTime(j), stripJournalPrefix(j)]).toEqual([
      1795424010.628486,
      "docker: Cannot connect",
    ]);
    expect(journalTime("-- No entries --")).toBeNaN();
    expect(lineDiff("a\nb\n", "a\nb\n")).toBe("");
    expect(lineDiff("a\nb\n", "a\nc\n")).toBe("+ c | - b");
    expect(lineDiff("a\nb\n", "b\na\n")).toBe("same lines in a different order or spacing");
  });

  test("socketMounts: the socket, a directory above it, the root socket; not unrelated paths", () => {
    const c = (Source: string) => ({ Id: "x", Name: "/x", Mounts: [{ Type: "bind", Source }] });
    for (const s of [
      "/run/user/7/docker.sock",
      "/run/user/7",
      "/run/user",
      "/run",
      "/",
      "/var/run",
      "/srv/docker.sock",
    ])
      expect([s, socketMounts(c(s), 7).length]).toEqual([s, 1]);
    for (const s of ["/run/user/8", "/srv/data", "/run/user/70"])
      expect([s, socketMounts(c(s), 7).length]).toEqual([s, 0]);
  });
});

describe("the probe script", () => {
  test("runs to its end on a machine without the service user (host-wide facts only)", () => {
    const m = "@@hd-verify-0123456789abcdef@@";
    const out = execFileSync("bash", ["-s"], {
      input: probeScript({ user: "hd-no-such-user", units: [{ unit: "x.service" }] }, m),
      encoding: "utf8",
      timeout: 20_000,
    });
    expect([...parseSections(out, m).keys()]).toEqual([
      "whoami",
      "passwd",
      "root-sockets",
      "units-show",
      "end",
    ]);
  });

  test("is valid bash, quotes what it interpolates, and sends no write to the proxy but the refused one", () => {
    const script = probeScript(
      {
        user: "provisioner",
        units: [
          { unit: "app.service", environmentFile: "/etc/hardened-docker/app.env" },
          { unit: "b.service" },
        ],
        proxyContainer: "socket-proxy",
      },
      "@@hd-verify-0123456789abcdef@@",
    );
    execFileSync("bash", ["-n"], { input: script });
    expect(shellcheck(script)).toBe("");
    expect(script.match(/POST /g)).toHaveLength(1);
    expect(script).not.toMatch(/docker (run|rm|create|start|stop|exec)\b/);
    expect(script).not.toMatch(/systemctl (start|stop|restart|enable|disable|mask|unmask)\b/);
  });
});

describe("the probe's Docker API reader against a fake daemon (the socket is the user's)", () => {
  /** Runs the reader (perl, as the probe does) against a unix socket served by `answer`. */
  async function readFrom(answer: (s: net.Socket) => void, secs: number, max: number) {
    const dir = mkdtempSync(join(tmpdir(), "hd-fake-docker-"));
    const sock = join(dir, "docker.sock");
    const server = net.createServer(answer);
    await new Promise<void>((r) => server.listen(sock, r));
    const t0 = Date.now();
    const child = spawn("perl", ["-e", DOCKER_API_PERL, sock, "", String(secs), String(max)], {
      env: { ...process.env, M: "@@m@@" },
    });
    let out = "";
    let peakKiB = 0;
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const poll = setInterval(() => {
      try {
        const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        peakKiB = Math.max(peakKiB, Number(rss?.[1] ?? 0));
      } catch {
        /* exited */
      }
    }, 50);
    const code = await new Promise<number | null>((r) => child.on("close", r));
    clearInterval(poll);
    server.close();
    return { code, out, seconds: (Date.now() - t0) / 1000, peakKiB };
  }

  test("an answer that never ends: cut after its time, each request, and the probe goes on", async () => {
    const r = await readFrom(
      (s) => {
        s.write("HTTP/1.0 200 OK\r\n\r\n{");
        const t = setInterval(() => s.write("x"), 100);
        s.on("close", () => clearInterval(t)).on("error", () => clearInterval(t));
      },
      1,
      1 << 20,
    );
    expect(r.code).toBe(0);
    expect(r.seconds).toBeLessThan(6);
    expect(r.out).toContain("no complete answer within 1 s");
    expect(r.out).toContain("@@m@@ networks");
  }, 20_000);

  test("an endless flood: cut at the byte limit, memory stays bounded", async () => {
    const chunk = Buffer.alloc(1 << 16, "a");
    const r = await readFrom(
      (s) => {
        s.write("HTTP/1.0 200 OK\r\n\r\n");
        const pump = () => {
          while (!s.destroyed && s.write(chunk));
          if (!s.destroyed) s.once("drain", pump);
        };
        s.on("error", () => undefined);
        pump();
      },
      10,
      4 << 20,
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain(`answer over ${4 << 20} bytes`);
    expect(r.peakKiB).toBeLessThan(64 * 1024);
  }, 30_000);

  test("it prints the device:inode of each mount source and of the sockets and their directories", async () => {
    const id = "a".repeat(64);
    const doc = JSON.stringify({
      Id: id,
      Name: "/x",
      Mounts: [{ Type: "bind", Source: "/etc/hostname", Destination: "/h" }],
    });
    const r = await readFrom(
      (s) => {
        s.once("data", (d: Buffer) => {
          const path = d.toString().split(" ")[1];
          const body = path.startsWith("/containers/json")
            ? JSON.stringify([{ Id: id }])
            : path.startsWith(`/containers/${id}/json`)
              ? doc
              : "{}";
          s.end(`HTTP/1.0 200 OK\r\n\r\n${body}`);
        });
      },
      5,
      1 << 20,
    );
    expect(r.code).toBe(0);
    const st = statSync("/etc/hostname");
    expect(r.out).toContain(`@@m@@ mount-ids\n${st.dev}:${st.ino} /etc/hostname\n`);
    const root = statSync("/");
    expect(r.out).toContain(`${root.dev}:${root.ino} /\n`);
    expect(r.out).toMatch(/@@m@@ socket-ids\n(\d+:\d+ \/\S*\n)+/);
  }, 20_000);

  test("the marker never reaches the user: not on a command line, not to a process of its", () => {
    for (const dockerClient of ["perl", "cli"] as const) {
      const script = probeScript(
        { user: "provisioner", units: [], proxyContainer: "socket-proxy", dockerClient },
        "@@hd-verify-0123456789abcdef@@",
      );
      // the only process the marker is handed to is root's perl, through its environment
      const uses = script.split("\n").filter((l) => /\$M\b/.test(l) && !/^\s*#/.test(l));
      for (const l of uses)
        expect([l, /as_user|runuser|perl .*"\$M"|docker .*\$M/.test(l)]).toEqual([l, false]);
      if (dockerClient === "perl") expect(script).toContain("M=$M perl -e");
    }
  });

  test("a section that comes twice is a forgery: the output is refused", () => {
    const m = "@@m@@";
    expect(() => parseSections(`\n${m} groups\nx\n${m} groups\ndocker\n${m} end\n`, m)).toThrow(
      "the probe's output has the section groups twice",
    );
  });

  test("many large answers add up to one budget (4 x the answer limit), ids counted once", async () => {
    const ids = Array.from({ length: 10 }, (_, i) => String(i).repeat(64));
    let inspects = 0;
    const r = await readFrom(
      (s) => {
        s.on("error", () => undefined);
        s.once("data", (d: Buffer) => {
          const path = d.toString().split(" ")[1];
          if (path.startsWith("/containers/json"))
            s.end(
              `HTTP/1.0 200 OK\r\n\r\n${JSON.stringify([...ids, ...ids].map((Id) => ({ Id })))}`,
            );
          else {
            if (path.startsWith("/containers/")) inspects++;
            s.end(`HTTP/1.0 200 OK\r\n\r\n"${"x".repeat(1536 * 1024)}"`);
          }
        });
      },
      5,
      2 << 20,
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain(`answers over ${8 << 20} bytes in all`);
    expect(inspects).toBeLessThanOrEqual(10);
  }, 20_000);

  test("the limits the probe uses are the documented ones", () => {
    expect(DOCKER_API_LIMITS).toEqual({ seconds: 15, bytes: 64 * 1024 * 1024 });
    expect(probeCommand(true, 60)).toBe(
      `sudo -n -- timeout -k 5 60 bash -c 'p=$(cat) && exec </dev/null && eval "$p"'`,
    );
  });
});
