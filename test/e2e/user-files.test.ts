/**
 * The script helpers that touch files in a directory the service user controls
 * (`write_user_file`, `remove_user_file`), run for real as root against a less trusted user
 * (`nobody`) that planted symlinks: root's files stay as they were. Needs root (runuser), so it
 * lives with the root suites; no VM. The same tricks are played on the VM against a full apply.
 */
import { spawn, spawnSync } from "node:child_process";
import * as net from "node:net";
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { remoteScript, shellQuote } from "../../components/core/shell";
import { DOCKER_API_PERL } from "../../components/verify/probe";

const NOBODY = 65534;

function run(body: string, stdin = "") {
  if (process.getuid?.() !== 0) throw new Error("these tests need root (runuser): run as root");
  return spawnSync("sh", ["-c", remoteScript("t", body, { sudo: false })], {
    encoding: "utf8",
    input: stdin,
  });
}

/** A "home" owned by nobody, and a root-owned directory with a file it must never reach. */
function setup() {
  const base = mkdtempSync(join(tmpdir(), "hd-user-files-"));
  spawnSync("chmod", ["0755", base]);
  const home = join(base, "home");
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
  const rootDir = join(base, "root-owned");
  mkdirSync(rootDir, { mode: 0o755 });
  const secret = join(rootDir, "target.conf");
  writeFileSync(secret, "root's content\n", { mode: 0o644 });
  const asNobody = (cmd: string) =>
    spawnSync("runuser", ["-u", "nobody", "--", "sh", "-c", cmd], { encoding: "utf8" });
  return { home, rootDir, secret, asNobody };
}

const unchanged = (secret: string) => {
  const st = statSync(secret);
  expect([readFileSync(secret, "utf8"), st.uid, st.mode & 0o777]).toEqual([
    "root's content\n",
    0,
    0o644,
  ]);
};

test("write_user_file writes as the user, once; a second run is no change", () => {
  const { home } = setup();
  const f = join(home, ".config", "docker", "daemon.json");
  const body = `write_user_file nobody ${shellQuote(f)} 0600`;
  const first = run(body, "{}\n");
  expect([first.status, first.stderr]).toEqual([0, ""]);
  expect(first.stdout).toContain(`changed: wrote ${f}`);
  const st = statSync(f);
  expect([st.uid, st.mode & 0o777, readFileSync(f, "utf8")]).toEqual([NOBODY, 0o600, "{}\n"]);
  expect(statSync(join(home, ".config")).uid).toBe(NOBODY);
  expect(run(body, "{}\n").stdout).toBe("hardened-docker: t: no change\n");
});

test("a symlink planted as the file is replaced, its root-owned target untouched", () => {
  const { home, secret } = setup();
  const f = join(home, "authorized_keys");
  symlinkSync(secret, f);
  const r = run(`write_user_file nobody ${shellQuote(f)} 0600`, "keys\n");
  expect(r.status).toBe(0);
  unchanged(secret);
  expect(lstatSync(f).isSymbolicLink()).toBe(false);
  expect([statSync(f).uid, readFileSync(f, "utf8")]).toEqual([NOBODY, "keys\n"]);
});

test("a directory on the way symlinked to a root-owned one: the write fails, nothing changes", () => {
  const { home, rootDir, secret } = setup();
  mkdirSync(join(home, ".config"));
  chownSync(join(home, ".config"), NOBODY, NOBODY);
  // ~/.config/systemd/user -> a root directory holding a root unit (the demonstrated attack)
  symlinkSync(rootDir, join(home, ".config", "systemd"));
  const f = join(home, ".config", "systemd", "target.conf");
  const r = run(`write_user_file nobody ${shellQuote(f)} 0644`, "[Service]\nUser=root\n");
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`could not write ${f} as nobody`);
  unchanged(secret);
  expect(spawnSync("ls", ["-A", rootDir], { encoding: "utf8" }).stdout).toBe("target.conf\n");
});

test("remove_user_file through a symlinked directory removes nothing of root's", () => {
  const { home, rootDir, secret } = setup();
  symlinkSync(rootDir, join(home, "docker"));
  const r = run(`remove_user_file nobody ${shellQuote(join(home, "docker", "target.conf"))}`);
  expect(r.stdout).not.toContain("removed");
  unchanged(secret);
});

test("remove_user_file with a header removes only our file, never a symlink or a FIFO", () => {
  const { home, secret, asNobody } = setup();
  const f = join(home, "authorized_keys");
  const header = "# Managed by hardened-docker";
  // a symlink to a root file that starts with the header: kept (and root's file untouched)
  writeFileSync(secret, `${header}\n`);
  symlinkSync(secret, f);
  expect(
    run(`echo "[$(remove_user_file nobody ${shellQuote(f)} ${shellQuote(header)})]"`).stdout,
  ).toContain("[]");
  expect(readlinkSync(f)).toBe(secret);
  // a FIFO: not read (a read would block), kept
  spawnSync("rm", ["-f", f]);
  expect(asNobody(`mkfifo ${shellQuote(f)}`).status).toBe(0);
  const t0 = Date.now();
  expect(
    run(`remove_user_file nobody ${shellQuote(f)} ${shellQuote(header)}`).stdout,
  ).not.toContain("removed");
  expect(Date.now() - t0).toBeLessThan(10_000);
  // our own file: removed
  spawnSync("rm", ["-f", f]);
  expect(asNobody(`printf '%s\\nkey\\n' ${shellQuote(header)} > ${shellQuote(f)}`).status).toBe(0);
  expect(run(`remove_user_file nobody ${shellQuote(f)} ${shellQuote(header)}`).stdout).toContain(
    "removed",
  );
});

test("remove_user_file that cannot remove fails the script, naming the file", () => {
  const { home, asNobody } = setup();
  const f = join(home, "authorized_keys");
  expect(asNobody(`echo key > ${shellQuote(f)} && chmod 0500 ${shellQuote(home)}`).status).toBe(0);
  const r = run(`removed=$(remove_user_file nobody ${shellQuote(f)})\necho "[$removed]"`);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`could not remove ${f} as nobody`);
  expect(readFileSync(f, "utf8")).toBe("key\n");
});

test("verify's Docker API reader connects as the user: its link to a root-only socket gets nothing", async () => {
  const { rootDir, home } = setup();
  // a root-only "API" (0600, root's directory) answering every request
  const rootSock = join(rootDir, "api.sock");
  const server = net.createServer((s) =>
    s.end('HTTP/1.0 200 OK\r\n\r\n{"ServerVersion":"root-only"}'),
  );
  await new Promise<void>((r) => server.listen(rootSock, r));
  chmodSync(rootSock, 0o600);
  // the user's "runtime directory" holds a link to it where its own socket should be
  const link = join(home, "docker.sock");
  symlinkSync(rootSock, link);
  const read = (env: Record<string, string>) =>
    new Promise<string>((resolve) => {
      const child = spawn("perl", ["-e", DOCKER_API_PERL, link, "", "5", "65536"], {
        env: { ...process.env, M: "@@m@@", ...env },
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("close", () => resolve(out));
    });
  try {
    // as nobody: the kernel refuses the connect, the answer is never read
    const asUser = await read({ U: String(NOBODY) });
    expect(asUser).toContain(
      `Cannot connect to the Docker daemon at unix://${link}: Permission denied`,
    );
    expect(asUser).not.toContain("root-only");
    // (without U, as root: it would have been read, which is what the probe no longer does)
    expect(await read({})).toContain("root-only");
    // the user's own socket (0660, in its 0700 directory, as rootless Docker has it): read
    chmodSync(home, 0o700);
    unlinkSync(link);
    const own = net.createServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\n{"ServerVersion":"own"}'));
    await new Promise<void>((r) => own.listen(link, r));
    chownSync(link, NOBODY, NOBODY);
    chmodSync(link, 0o660);
    try {
      expect(await read({ U: String(NOBODY) })).toContain('{"ServerVersion":"own"}');
    } finally {
      own.close();
    }
  } finally {
    server.close();
  }
});
