import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { byName, recorded, reset, settle } from "../helpers/mocks";
import { HardenedDockerHost, prerequisitePackages } from "../../components";
import {
  daemonJsonCreateScript,
  daemonJsonDeleteScript,
  packagesCreateScript,
} from "../../components/rootless-docker/script";
import {
  deployKeysCreateScript,
  deployKeysDeleteScript,
  serviceUserCreateScript,
} from "../../components/service-user/script";
import { parseServiceUserReport } from "../../components/service-user/service-user";
import { unitCreateScript, unitDeleteScript } from "../../components/systemd-unit/script";
import { remoteScript } from "../../components/core/shell";
import { probeCommand } from "../../components/verify/probe";
import { fullArgs, minimalArgs, tenantArgs } from "../helpers/fixtures";
import { innerScript, shellcheck } from "../helpers/shellcheck";

/** `bash -n` on the script inside a command string. */
function syntaxErrors(commandLine: string): string {
  const r = spawnSync("bash", ["-n"], { input: innerScript(commandLine), encoding: "utf8" });
  return r.status === 0 ? "" : r.stderr || `exit ${r.status}`;
}

describe("every generated script is valid bash, and clean under shellcheck", () => {
  test("the checks themselves catch a syntax error and a shellcheck finding", () => {
    expect(syntaxErrors(remoteScript("x", "if true; then", { sudo: true }))).not.toBe("");
    expect(shellcheck(innerScript(remoteScript("x", "rm -rf $dir/x", { sudo: true })))).toMatch(
      /SC2086/,
    );
    expect(shellcheck(innerScript(remoteScript("x", 'rm -rf -- "$1/x"', { sudo: true })))).toBe("");
  });

  test.each([
    ["full host (sudo)", fullArgs()],
    ["minimal host (root)", minimalArgs()],
    ["a host with two further tenants and slice limits", tenantArgs()],
  ])("%s: create and delete of every command", async (_what, args) => {
    reset();
    new HardenedDockerHost("syntax", args);
    await settle();
    const commands = recorded.filter((r) => r.type === "command:remote:Command");
    expect(commands.length).toBeGreaterThan(8);
    for (const c of commands) {
      for (const key of ["create", "update", "delete"] as const) {
        const script = c.inputs[key];
        if (script === undefined) continue;
        expect([c.name, key, syntaxErrors(script as string)]).toEqual([c.name, key, ""]);
        expect([c.name, key, shellcheck(innerScript(script as string))]).toEqual([c.name, key, ""]);
      }
    }
    expect(byName("syntax-docker-packages").inputs.create).toContain("docker.io");
    if (args.socketProxy) {
      expect(byName("syntax-socket-proxy-canary").inputs.create).toContain("docker run -d");
      expect(byName("syntax-traefik-canary").inputs.create).toContain("docker run -d");
    }
  });

  test.each(["distro", "docker-repo", "static"] as const)(
    "packages script for install: %s",
    (install) => {
      const script = packagesCreateScript({
        install,
        version: install === "distro" ? undefined : "27.5.1",
        sha256: "a".repeat(64),
        rootlessExtrasSha256: "b".repeat(64),
      });
      expect(syntaxErrors(remoteScript("packages", script, { sudo: true }))).toBe("");
      expect(shellcheck(innerScript(remoteScript("packages", script, { sudo: true })))).toBe("");
      for (const p of prerequisitePackages("debian", install).always) expect(script).toContain(p);
      for (const p of prerequisitePackages("rhel", install).always) expect(script).toContain(p);
    },
  );
});

describe("prerequisite packages per distro family", () => {
  test("Debian/Ubuntu", () => {
    expect(prerequisitePackages("debian", "distro")).toEqual({
      always: [
        "uidmap",
        "dbus-user-session",
        "slirp4netns",
        "iptables",
        "ca-certificates",
        "curl",
        "docker.io",
        "rootlesskit",
      ],
      oldKernel: ["fuse-overlayfs"],
    });
    expect(prerequisitePackages("debian", "docker-repo").always).toEqual(
      expect.arrayContaining(["docker-ce", "docker-ce-rootless-extras"]),
    );
    expect(prerequisitePackages("debian", "static").always).not.toContain("docker.io");
  });
  test("Fedora/RHEL", () => {
    expect(prerequisitePackages("rhel", "distro").always).toEqual([
      "shadow-utils",
      "slirp4netns",
      "iptables",
      "ca-certificates",
      "curl",
      "moby-engine",
      "rootlesskit",
    ]);
    expect(prerequisitePackages("rhel", "docker-repo").always).toContain(
      "docker-ce-rootless-extras",
    );
  });
  test("static install verifies both tarballs before installing anything", () => {
    const s = packagesCreateScript({
      install: "static",
      version: "27.5.1",
      sha256: "a".repeat(64),
      rootlessExtrasSha256: "b".repeat(64),
    });
    expect(s.indexOf("sha256sum -c")).toBeGreaterThan(0);
    expect(s.indexOf("sha256sum -c")).toBeLessThan(s.indexOf("install -m 0755"));
    expect(s).toContain("sha_docker=" + "a".repeat(64));
  });
});

describe("root never writes, chowns or removes in the service user's home", () => {
  const userHomeScripts: [string, string][] = [
    ["daemon.json create", daemonJsonCreateScript("provisioner", 180)],
    ["daemon.json delete", daemonJsonDeleteScript("provisioner")],
    ["deploy keys create", deployKeysCreateScript("provisioner")],
    ["deploy keys delete", deployKeysDeleteScript("provisioner")],
    [
      "user unit create",
      unitCreateScript({
        unitName: "docker.service",
        scope: "user",
        user: "provisioner",
        enable: true,
        start: true,
      }),
    ],
    [
      "user unit delete",
      unitDeleteScript({
        unitName: "docker.service",
        scope: "user",
        user: "provisioner",
        enable: true,
        start: true,
      }),
    ],
  ];
  test.each(userHomeScripts)(
    "%s: only through write_user_file / remove_user_file / as_owner",
    (_n, body) => {
      // everything that touches a path goes through the helpers that run as the user
      expect(body).toMatch(/write_user_file|remove_user_file|as_owner/);
      // and nothing else writes there as root: no write_file, rm, chown, chmod, install, mv, cat >
      const rootLines = body
        .split("\n")
        .filter((l) => !/write_user_file|remove_user_file|as_owner|^\s*#/.test(l));
      for (const l of rootLines)
        expect([l, /\b(write_file|rm|chown|chmod|install|mv|mkdir|ln)\b|>\s*"?\$/.test(l)]).toEqual(
          [l, false],
        );
    },
  );

  test("a system unit is still written by root, in root's directory", () => {
    const body = unitCreateScript({
      unitName: "x.service",
      scope: "system",
      enable: true,
      start: true,
    });
    expect(body).toContain("unit_dir=/etc/systemd/system");
    expect(body).toContain('write_file "$1" 0644 root root');
  });
});

describe("a process started as another user gets none of root's open files", () => {
  /**
   * Runs `body` after the prelude, with fakes of runuser and timeout on PATH (no root needed:
   * the fakes run the command as is), while root holds two pipes open as a probe does.
   */
  function asOther(body: string) {
    const dir = mkdtempSync(join(tmpdir(), "hd-fds-"));
    writeFileSync(join(dir, "runuser"), '#!/bin/bash\nshift 3\nexec "$@"\n', { mode: 0o755 });
    writeFileSync(
      join(dir, "timeout"),
      '#!/bin/bash\nwhile [ "${1#-}" != "$1" ]; do shift 2; done\nshift\nexec "$@"\n',
      { mode: 0o755 },
    );
    const script = `id() { echo 1001; }\ngetent() { echo "u:x:1001:1001::/home/u:/bin/sh"; }\nPATH=${dir}:$PATH\nexec {a}< <(echo secret-a; sleep 5)\nexec {b}< <(echo secret-b; sleep 5)\n${body}\nhead -n 1 <&"$a"`;
    return spawnSync("bash", ["-c", innerScript(remoteScript("fds", script, { sudo: false }))], {
      encoding: "utf8",
      input: "root's own stdin\n",
      timeout: 20_000,
    });
  }

  test("as_user and as_owner: no descriptor above 2; stdin only as the caller passes it", () => {
    const r = asOther(
      `as_user u bash -c 'echo "user fds: $(ls /proc/self/fd | sort -n | tr "\\n" " ")"' </dev/null\n` +
        `as_owner u 'echo "owner fds: $(ls /proc/self/fd | sort -n | tr "\\n" " ")"' </dev/null`,
    );
    expect(r.stderr).toBe("");
    // 0-2 and the fd ls opens to read the directory, nothing of root's
    expect(r.stdout).toContain("user fds: 0 1 2 3 \n");
    expect(r.stdout).toContain("owner fds: 0 1 2 3 \n");
    // root's own pipes stay open for root
    expect(r.stdout).toContain("secret-a");
  });

  test("the probe runs with stdin on /dev/null, its script read whole first", () => {
    const cmd = probeCommand(false, 10);
    expect(cmd).not.toContain("bash -s");
    const r = spawnSync("sh", ["-c", cmd], {
      input: 'echo "stdin: $(head -c 20 || true)"; echo done\n',
      encoding: "utf8",
    });
    expect([r.status, r.stdout]).toEqual([0, "stdin: \ndone\n"]);
  });
});

describe("the account step's report", () => {
  test("one uid and one home line; a second of either (a line of the user's own) fails", () => {
    const ok = "hardened-docker: x: no change\nuid=1001\nhome=/home/provisioner\n";
    expect(parseServiceUserReport(ok)).toEqual({ uid: 1001, home: "/home/provisioner" });
    expect(() => parseServiceUserReport(`uid=0\nhome=/root\n${ok}`)).toThrow(
      /did not report one uid and one home \(2, 2: a line of the user's own\?\)/,
    );
    expect(() => parseServiceUserReport("uid=1001\n")).toThrow(/\(1, 0/);
  });

  test("the user's own processes in the step write nothing to its stdout", () => {
    const body = serviceUserCreateScript({
      name: "svc",
      shell: "/bin/sh",
      subordinateIdCount: 65536,
    });
    for (const line of body.split("\n").filter((l) => /as_owner "\$user"/.test(l)))
      expect([line, /\$\(as_owner|>\/dev\/null 2>&1/.test(line)]).toEqual([line, true]);
  });
});
