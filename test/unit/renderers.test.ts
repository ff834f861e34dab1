import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  InvalidArgument,
  appServiceUnit,
  hardeningPreset,
  renderDaemonJson,
  renderEnvironmentFile,
  renderSystemdUnit,
  rootlessDockerUnit,
} from "../../components";
import { fullArgs } from "../helpers/fixtures";

const provisioner = () =>
  renderSystemdUnit(
    appServiceUnit(fullArgs().services![0], "provisioner", 1500, "/home/provisioner"),
  );

describe("renderSystemdUnit", () => {
  test("app service unit (snapshot)", () => expect(provisioner()).toMatchSnapshot());
  test("rootless docker user unit (snapshot)", () => {
    expect(renderSystemdUnit(rootlessDockerUnit("slirp4netns"))).toMatchSnapshot();
    expect(renderSystemdUnit(rootlessDockerUnit("builtin"))).toContain(
      "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin\n",
    );
  });
  test("is deterministic", () => expect(provisioner()).toBe(provisioner()));
  test("renders booleans as yes/no and arrays as repeated lines", () => {
    expect(
      renderSystemdUnit({ Service: { Aa: true, Bb: false, Cc: ["x", "y"], Dd: 3 } }),
    ).toContain("Aa=yes\nBb=no\nCc=x\nCc=y\nDd=3\n");
  });
  test.each([
    [
      "newline in a value",
      { Service: { ExecStart: "/bin/true\nUser=root" } },
      "unit.Service.ExecStart",
    ],
    ["carriage return", { Service: { Description: "a\rb" } }, "unit.Service.Description"],
    [
      "trailing backslash continues the line",
      { Service: { Description: "a\\" } },
      "unit.Service.Description",
    ],
    ["bad directive name", { Service: { "exec start": "/bin/true" } }, "unit.Service.exec start"],
    ["unknown section", { Servce: { A: "b" } }, "unit.Servce"],
  ])("rejects %s", (_what, sections, field) => {
    expect(() => renderSystemdUnit(sections as never)).toThrow(InvalidArgument);
    expect(() => renderSystemdUnit(sections as never)).toThrow(
      new RegExp(`^${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `),
    );
  });
});

describe("systemd-analyze verify accepts the rendered units", () => {
  const haveAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
  // Lines that mean the unit text itself is wrong (unknown keys, bad values, bad syntax).
  const BAD = /unknown|invalid|failed to parse|ignoring|not valid|bad/i;

  function verify(name: string, text: string): string[] {
    const dir = mkdtempSync(join(tmpdir(), "hd-unit-"));
    const path = join(dir, name);
    writeFileSync(path, text);
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", path], { encoding: "utf8" });
    return `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => BAD.test(l));
  }

  test("systemd-analyze is installed (CI installs it)", () => expect(haveAnalyze).toBe(true));
  test("app service unit", () => {
    // ExecStart must exist for verify: point it at a real binary, keep everything else.
    const svc = { ...fullArgs().services![0], execStart: "/bin/true", workingDirectory: "/tmp" };
    expect(
      verify("provisioner.service", renderSystemdUnit(appServiceUnit(svc, "root", 0, "/root"))),
    ).toEqual([]);
  });
  test("rootless docker unit", () => {
    const sections = rootlessDockerUnit("slirp4netns");
    const text = renderSystemdUnit({
      ...sections,
      Service: { ...sections.Service, ExecStart: "/bin/true" },
    });
    expect(verify("docker.service", text)).toEqual([]);
  });
  test("a unit with a typo is caught by this check (the check can fail)", () => {
    expect(
      verify(
        "typo.service",
        renderSystemdUnit({ Service: { ExecStart: "/bin/true", ProtectHomee: "yes" } }),
      ),
    ).not.toEqual([]);
  });
});

describe("hardeningPreset", () => {
  test("keeps the runbook's directives and never hides /run/user", () => {
    const p = hardeningPreset(["/var/lib/app"]);
    expect(p).toMatchObject({
      NoNewPrivileges: true,
      PrivateTmp: true,
      ProtectSystem: "strict",
      ReadWritePaths: "/var/lib/app",
      ProtectHome: "read-only",
    });
    expect(hardeningPreset([])).not.toHaveProperty("ReadWritePaths");
  });
});

describe("renderDaemonJson", () => {
  test("defaults (snapshot)", () => expect(renderDaemonJson()).toMatchSnapshot());
  test("user keys override defaults, keys sorted, valid JSON", () => {
    const text = renderDaemonJson({
      "log-opts": { "max-size": "20m" },
      icc: true,
      dns: ["10.0.0.2"],
    });
    expect(JSON.parse(text)).toEqual({
      dns: ["10.0.0.2"],
      icc: true,
      "log-driver": "json-file",
      "log-opts": { "max-size": "20m" },
      "no-new-privileges": true,
    });
    expect(Object.keys(JSON.parse(text))).toEqual([
      "dns",
      "icc",
      "log-driver",
      "log-opts",
      "no-new-privileges",
    ]);
    expect(text.endsWith("}\n")).toBe(true);
  });
  test("the rendered JSON parses with jq (CI installs jq)", () => {
    const r = spawnSync("jq", ["-e", '."no-new-privileges" == true'], {
      input: renderDaemonJson(),
      encoding: "utf8",
    });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
  });
  test.each([
    [{ hosts: ["unix:///x"] }, "docker.daemonConfig.hosts"],
    [{ "log-driver": "syslog" }, "docker.daemonConfig.log-driver"],
    [{ mtu: 10 }, "docker.daemonConfig.mtu"],
    [{ "registry-mirrors": ["ftp://x"] }, "docker.daemonConfig.registry-mirrors[0]"],
    [
      { "default-address-pools": [{ base: "10.0.0.0", size: 24 }] },
      "docker.daemonConfig.default-address-pools[0].base",
    ],
  ])("rejects %j", (config, field) => {
    expect(() => renderDaemonJson(config as never)).toThrow(`${field}: `);
  });
});

describe("renderEnvironmentFile", () => {
  test("snapshot", () =>
    expect(renderEnvironmentFile({ PORT: "3000", B: 'say "hi" $HOME `x` \\' })).toMatchSnapshot());

  /** Reads a variable back the way a POSIX shell reads `KEY="..."` (systemd uses the same escapes). */
  function readBack(text: string, key: string): string {
    const r = spawnSync("bash", ["-c", `set -a; source <(cat); printf %s "$${key}"`], {
      input: text,
      encoding: "utf8",
    });
    return r.stdout;
  }

  test("values come back verbatim (property, read back by bash)", () => {
    fc.assert(
      fc.property(
        fc
          .string({ unit: "binary", maxLength: 30 })
          .filter((s) => !/[\u0000-\u0008\u000a-\u001f\u007f]/.test(s)),
        (v) => {
          expect(readBack(renderEnvironmentFile({ V: v }), "V")).toBe(v);
        },
      ),
      { numRuns: 100 },
    );
  });
  test("rejects a newline without echoing the value", () => {
    expect(() => renderEnvironmentFile({ TOKEN: "secret\nmore" })).toThrow(
      /environment\.TOKEN: .*value not shown/,
    );
    expect(() => renderEnvironmentFile({ TOKEN: "secret\nmore" })).not.toThrow(
      /secret\\nmore|secret\nmore/,
    );
    expect(() => renderEnvironmentFile({ "BAD KEY": "x" })).toThrow(/environment\.BAD KEY: /);
  });
});
