/**
 * The probe with tenants, as a script: valid bash that shellcheck passes, one function per
 * user with its sections prefixed, the marker never handed to a tenant's process, and its
 * shell functions run for real: the pid-ownership test that guards the proxy probe, and the
 * verdict on a tenant's curl against real sockets.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectationFromArgs, parseSections, probeScript, probeTarget } from "../verify";
import { OWNED_PID_FUNCTION } from "../verify/probe";
import { SOCKET_ATTEMPT_CURL, SOCKET_VERDICT_FUNCTION } from "./probe";
import { tenantArgs } from "../../test/helpers/fixtures";
import { shellcheck } from "../../test/helpers/shellcheck";

const MARKER = "@@hd-verify-0123456789abcdef@@";
const scriptOf = (dockerClient: "perl" | "cli") =>
  probeScript(probeTarget(expectationFromArgs(tenantArgs()), dockerClient), MARKER);

describe("the probe script with tenants", () => {
  test.each(["perl", "cli"] as const)(
    "(%s) is valid bash, shellcheck-clean, and changes nothing",
    (dockerClient) => {
      const script = scriptOf(dockerClient);
      execFileSync("bash", ["-n"], { input: script });
      expect(shellcheck(script)).toBe("");
      // one refused write per proxy (the host's and ci-a's), nothing else
      expect(script.match(/POST \/containers\/create/g)).toHaveLength(1);
      expect(script.match(/read_docker "\$uid" socket-proxy /g)).toHaveLength(2);
      expect(script).not.toMatch(/docker (run|rm|create|start|stop|exec)\b/);
      expect(script).not.toMatch(
        /systemctl (start|stop|restart|enable|disable|mask|unmask|set-property)\b/,
      );
      expect(script).not.toMatch(/\b(chmod|chown|setfacl|rm|mv|tee|install) /);
    },
  );

  test("one function per user: the host's unprefixed, each tenant's sections under tenant:<user>/", () => {
    const script = scriptOf("perl");
    expect(script.match(/^ {2}local P=\S* user=\S+/gm)).toEqual([
      "  local P='' user=provisioner",
      "  local P=tenant:ci-a/ user=ci-a",
      "  local P=tenant:ci-b/ user=ci-b",
    ]);
    // the slice is read for the users that declare limits (the host's and ci-a), not ci-b
    expect(script.match(/^ {2}s slice$/gm)).toHaveLength(2);
    // a proxy is probed only through a pid of its user's (or its subordinate uids')
    expect(script).toContain('elif ! owned_pid "$pid" "$1" "$3"; then');
    expect(script.match(/read_docker "\$uid" \S+ "\$\{sub\[subuid\]\}"/g)).toHaveLength(3);
    // the host-wide facts once, with the host's own user
    expect(script.match(/^ {2}root_sockets$/gm)).toHaveLength(1);
    expect(script.match(/docker\.socket docker\.service containerd\.service/g)).toHaveLength(2);
  });

  test("runs to its end on a machine without those users: each one's passwd, the rest skipped", () => {
    const target = probeTarget(
      expectationFromArgs({
        serviceUser: { name: "hd-no-such-user" },
        tenants: [{ serviceUser: { name: "hd-no-such-a" }, limits: { tasks: 512 } }],
      }),
    );
    const out = execFileSync("bash", ["-s"], {
      input: probeScript(target, MARKER),
      encoding: "utf8",
      timeout: 20_000,
    });
    expect([...parseSections(out, MARKER).keys()]).toEqual([
      "whoami",
      "passwd",
      "root-sockets",
      "units-show",
      "tenant:hd-no-such-a/passwd",
      "isolation-paths",
      "isolation-sockets",
      "end",
    ]);
  });

  test.each(["perl", "cli"] as const)(
    "(%s) the marker never reaches a user's process: not a tenant's, not in an attempt on a socket",
    (dockerClient) => {
      const script = scriptOf(dockerClient);
      const uses = script.split("\n").filter((l) => /\$M\b/.test(l) && !/^\s*#/.test(l));
      expect(uses.length).toBeGreaterThan(2);
      for (const l of uses)
        expect([l, /as_user|runuser|curl|perl .*"\$M"|docker .*\$M/.test(l)]).toEqual([l, false]);
      // what a tenant's curl prints is judged by root: only a fixed word of it is printed
      const attempt = /try_socket\(\) \{\n[\s\S]*?\n\}/.exec(script)?.[0] ?? "";
      expect(attempt.match(/"\$out"/g)).toEqual(['"$out"']);
      expect(attempt).toContain(`printf '%s %s %s\\n' "$1" "$2" "$(socket_verdict "$rc" "$out")"`);
    },
  );
});

describe("owned_pid: the proxy probe enters only a pid of the user's", () => {
  const owned = (pid: number, uid: number, subuids: string) =>
    spawnSync("bash", [
      "-c",
      `${OWNED_PID_FUNCTION}\nowned_pid "$1" "$2" "$3"`,
      "t",
      String(pid),
      String(uid),
      subuids,
    ]).status;
  // a process and its uid: this one, or (as root, uid 0, where no range can end below it)
  // one of nobody's
  let pid = process.pid;
  let me = process.getuid!();
  let child: ChildProcess | undefined;
  beforeAll(() => {
    if (me !== 0) return;
    child = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"]);
    pid = child.pid!;
    me = 65534;
    // setpriv execs sleep: wait until the pid runs as nobody
    for (let i = 0; i < 100; i++) {
      let status = "";
      try {
        status = readFileSync(`/proc/${pid}/status`, "utf8");
      } catch {
        // not there yet
      }
      if (/^Uid:\s+65534\b/m.test(status)) break;
      spawnSync("sleep", ["0.05"]);
    }
  });
  afterAll(() => child?.kill());
  const other = () => me + 7;

  test("its own uid, or one in its subordinate ranges: yes", () => {
    expect(owned(pid, me, "")).toBe(0);
    expect(owned(pid, other(), `x:${me - 1}:3`)).toBe(0);
    expect(owned(pid, other(), `junk\nx:${me}:1`)).toBe(0);
  });

  test("another uid, a range that ends just below or starts just above it, or no such pid: no", () => {
    expect(owned(pid, other(), "")).toBe(1);
    expect(owned(pid, other(), `x:${me + 1}:5`)).toBe(1);
    expect(owned(pid, other(), `x:${me - 5}:5`)).toBe(1);
    expect(owned(999999999, me, "")).toBe(1);
  });
});

describe("socket_verdict on curl's own answers from real sockets", () => {
  /** Runs the attempt as the probe does (same curl flags), as `user` when given (root only). */
  const attempt = (socket: string, user?: string) =>
    spawnSync(
      "bash",
      [
        "-c",
        `${SOCKET_VERDICT_FUNCTION}\nout=$(${user ? `runuser -u ${user} -- ` : ""}timeout 10 ${SOCKET_ATTEMPT_CURL.replace("--max-time 5", "--max-time 2")} "$1" http://d/_ping 2>&1); socket_verdict "$?" "$out"`,
        "t",
        socket,
      ],
      { encoding: "utf8" },
    ).stdout.trim();

  const dir = mkdtempSync(join(tmpdir(), "hd-sock-"));
  const servers: net.Server[] = [];
  const serve = async (name: string, answer: boolean) => {
    const server = net.createServer((s) => {
      s.on("error", () => undefined);
      if (answer) s.once("data", () => s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(join(dir, name), r));
    return join(dir, name);
  };
  afterAll(() => servers.forEach((s) => s.close()));

  test("a daemon that answers: connected; one that never does: timeout", async () => {
    expect(await attemptAsync(await serve("answers.sock", true))).toBe("connected");
    expect(await attemptAsync(await serve("silent.sock", false))).toBe("timeout");
  }, 20_000);

  test("no such socket: absent; a socket nobody listens on: refused", () => {
    expect(attempt(join(dir, "none.sock"))).toBe("absent");
    const stale = join(dir, "stale.sock");
    // a bound socket that was never listened on: connect() gets ECONNREFUSED
    spawnSync("python3", [
      "-c",
      "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])",
      stale,
    ]);
    expect(attempt(stale)).toBe("refused");
  });

  test("a socket in a directory the user may not enter: denied (Permission denied)", async () => {
    const closed = mkdtempSync(join(tmpdir(), "hd-closed-"));
    const server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(join(closed, "docker.sock"), r));
    try {
      chmodSync(closed, 0o700);
      if (process.getuid!() === 0) {
        // root passes any permission: try it as nobody, as the probe tries as a tenant
        expect(attempt(join(closed, "docker.sock"), "nobody")).toBe("denied");
      } else {
        chmodSync(closed, 0o000);
        expect(attempt(join(closed, "docker.sock"))).toBe("denied");
      }
    } finally {
      chmodSync(closed, 0o700);
      server.close();
    }
  });

  test("odd exits tell nothing", () => {
    const verdict = (rc: number, out = "") =>
      spawnSync(
        "bash",
        ["-c", `${SOCKET_VERDICT_FUNCTION}\nsocket_verdict "$1" "$2"`, "t", String(rc), out],
        {
          encoding: "utf8",
        },
      ).stdout.trim();
    expect([verdict(127), verdict(2), verdict(7, "* something else")]).toEqual([
      "no-curl",
      "curl-exit-2",
      "failed",
    ]);
  });

  /** The attempt in a child process (the test's own event loop serves the socket meanwhile). */
  function attemptAsync(socket: string): Promise<string> {
    return new Promise((resolve) => {
      let out = "";
      const child = spawn("bash", [
        "-c",
        `${SOCKET_VERDICT_FUNCTION}\nout=$(timeout 10 ${SOCKET_ATTEMPT_CURL.replace("--max-time 5", "--max-time 2")} "$1" http://d/_ping 2>&1); socket_verdict "$?" "$out"`,
        "t",
        socket,
      ]);
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("close", () => resolve(out.trim()));
    });
  }
});
