/**
 * The canary step's script, run for real by bash against a fake `docker` (and `as_user` that
 * only drops its user argument): what it runs, when it runs nothing, and what a failure says.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { remoteScript } from "../core/shell";
import { CanarySpec, canaryCreateScript, canaryDeleteScript, specHash } from "./canary";
import { innerScript, shellcheck } from "../../test/helpers/shellcheck";

const SPEC: CanarySpec = {
  role: "socket-proxy",
  user: "provisioner",
  containerName: "socket-proxy",
  image: "sha256:0123",
  containerUser: "0:0",
  entrypoint: ["/bin/sh", "-c", "umask 077 && exec haproxy"],
  env: ["HD_CFG=global\n  maxconn 10\n"],
  tmpfs: { "/run/socket-proxy": "rw,size=1m" },
  mounts: [
    { source: "/run/user/1001/docker.sock", target: "/var/run/docker.sock", readOnly: true },
  ],
  lockdown: {
    readOnly: true,
    capabilities: { drops: ["ALL"] },
    securityOpts: ["no-new-privileges:true"],
    restart: "always",
  },
  cpus: "0.15",
  memoryMiB: 128,
  health: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/healthz"],
  healthTimeoutSeconds: 10,
  timeoutSeconds: 6,
};

/**
 * A fake docker CLI. RUNNING: what `container inspect` prints for the running container (empty:
 * no such container); CANARY: the canary's state after it started; HEALTHY_AFTER: the exec that
 * first succeeds (0: never). Every call is logged, one per line, with the env value it saw.
 */
const FAKE_DOCKER = String.raw`#!/bin/bash
log=$FAKE_DIR/calls
printf '%s\n' "$*" >>"$log"
case "$1 $2" in
  "container inspect")
    name=${"$"}{!#}
    if [ "$name" = socket-proxy ]; then
      [ -n "$RUNNING" ] || { echo "Error: No such container: $name" >&2; exit 1; }
      [ "$RUNNING" != broken ] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
      echo "$RUNNING"
    elif [ -e "$FAKE_DIR/started" ]; then
      case $4 in *hardened-docker.role*) echo "$LEFTOVER_LABEL" ;; *) echo "$CANARY" ;; esac
    else echo "Error: No such container: $name" >&2; exit 1; fi ;;
  "rm -f") rm -f "$FAKE_DIR/started" ;;
  "run -d")
    printf '%s' "$HD_CFG" >"$FAKE_DIR/env"; touch "$FAKE_DIR/started"
    if [ "$RUN_FAILS" = 1 ]; then echo "docker: Error response from daemon: exec: haproxy: not found" >&2; exit 125; fi
    echo 4f3c ;;
  "exec socket-proxy-canary")
    n=$(( $(cat "$FAKE_DIR/execs" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$FAKE_DIR/execs"
    [ "$HEALTHY_AFTER" != 0 ] && [ "$n" -ge "$HEALTHY_AFTER" ] ;;
  "logs --tail") printf 'haproxy: not found\n\033[31mred\033[0m line\n' ;;
  *) echo "fake docker: unexpected $*" >&2; exit 9 ;;
esac
`;

/**
 * A fake clock: `date +%s` reads it and `sleep N` advances it by N without waiting (any other
 * `date` is the real one), so the waits are measured in the script's own seconds, not in a
 * machine's load.
 */
const FAKE_DATE = String.raw`#!/bin/bash
if [ "$*" = +%s ]; then cat "$FAKE_DIR/clock"; else exec /bin/date "$@"; fi
`;
const FAKE_SLEEP = String.raw`#!/bin/bash
echo $(( $(cat "$FAKE_DIR/clock") + $1 )) >"$FAKE_DIR/clock"
`;

function runCanary(
  env: {
    RUNNING: string;
    CANARY?: string;
    HEALTHY_AFTER?: number;
    leftover?: boolean;
    LEFTOVER_LABEL?: string;
    RUN_FAILS?: boolean;
  },
  script = canaryCreateScript(SPEC),
) {
  const dir = mkdtempSync(join(tmpdir(), "hd-canary-"));
  if (env.leftover) writeFileSync(join(dir, "started"), "");
  writeFileSync(join(dir, "clock"), "1000000000\n");
  for (const [name, body] of [
    ["docker", FAKE_DOCKER],
    ["date", FAKE_DATE],
    ["sleep", FAKE_SLEEP],
  ]) {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), 0o755);
  }
  // the fakes replace the prelude's as_user (runuser) and PATH
  const body = `as_user() { shift; "$@"; }\nPATH=${dir}:$PATH\n${script}`;
  const r = spawnSync(
    "bash",
    ["-c", innerScript(remoteScript("socket-proxy canary", body, { sudo: false }))],
    {
      encoding: "utf8",
      env: {
        ...process.env,
        FAKE_DIR: dir,
        RUNNING: env.RUNNING,
        CANARY: env.CANARY ?? "running (exit code 0)",
        HEALTHY_AFTER: String(env.HEALTHY_AFTER ?? 1),
        LEFTOVER_LABEL: env.LEFTOVER_LABEL ?? "canary",
        RUN_FAILS: env.RUN_FAILS ? "1" : "0",
      },
      timeout: 30_000,
    },
  );
  const calls = existsSync(join(dir, "calls"))
    ? readFileSync(join(dir, "calls"), "utf8").trim().split("\n")
    : [];
  const sawEnv = existsSync(join(dir, "env")) ? readFileSync(join(dir, "env"), "utf8") : undefined;
  const elapsed = Number(readFileSync(join(dir, "clock"), "utf8")) - 1000000000;
  return { ...r, calls, sawEnv, elapsed, canaryLeft: existsSync(join(dir, "started")) };
}

describe("the canary step", () => {
  test("its scripts are clean for bash -n and shellcheck", () => {
    for (const body of [
      canaryCreateScript(SPEC),
      canaryDeleteScript("provisioner", "socket-proxy"),
    ]) {
      const script = innerScript(remoteScript("c", body, { sudo: true }));
      expect(spawnSync("bash", ["-n"], { input: script }).status).toBe(0);
      expect(shellcheck(script)).toBe("");
    }
  });

  test("a variable that would steer the docker CLI, or a mount path --mount cannot carry, is refused", () => {
    expect(() => canaryCreateScript({ ...SPEC, env: ["DOCKER_HOST=tcp://x:2375"] })).toThrow(
      /DOCKER_HOST would change the docker CLI itself/,
    );
    expect(() =>
      canaryCreateScript({ ...SPEC, mounts: [{ source: "/a,b", target: "/c", readOnly: true }] }),
    ).toThrow(/comma or quote/);
  });

  test("no running container: nothing to keep serving, nothing runs", () => {
    const r = runCanary({ RUNNING: "" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("no container socket-proxy to keep serving");
    expect(r.stdout).toContain("socket-proxy canary: no change");
    expect(r.calls.filter((c) => c.startsWith("run"))).toEqual([]);
  });

  test("the running container already carries this spec: no change, nothing runs", () => {
    const r = runCanary({ RUNNING: `true ${specHash(SPEC)}` });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("hardened-docker: socket-proxy canary: no change\n");
    expect(r.calls).toHaveLength(2);
  });

  test("a canary left by an interrupted run is removed, whatever follows", () => {
    const r = runCanary({ RUNNING: `true ${specHash(SPEC)}`, leftover: true });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      "hardened-docker: socket-proxy canary: changed: removed socket-proxy-canary, left by an interrupted run\n",
    );
    expect(r.canaryLeft).toBe(false);
  });

  test("a new spec that turns healthy: run once, without network, with the same limits; removed", () => {
    const r = runCanary({ RUNNING: "true 0000", HEALTHY_AFTER: 2 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /changed: a canary of the new socket-proxy passed its health check in \d+ s: socket-proxy is replaced next/,
    );
    const run = r.calls.find((c) => c.startsWith("run -d")) as string;
    for (const flag of [
      "--name socket-proxy-canary",
      "--network none",
      "--label dev.hardened-docker.role=canary",
      "--read-only",
      "--cap-drop ALL",
      "--security-opt no-new-privileges:true",
      "--cpus 0.15",
      "--memory 128m --memory-swap 128m",
      "--user 0:0",
      "--tmpfs /run/socket-proxy:rw,size=1m",
      "--mount type=bind,source=/run/user/1001/docker.sock,target=/var/run/docker.sock,readonly",
      "-e HD_CFG --entrypoint /bin/sh sha256:0123 -c umask 077 && exec haproxy",
    ])
      expect(run).toContain(flag);
    // the multi-line value reached docker run through its environment, as it is
    expect(r.sawEnv).toBe("global\n  maxconn 10\n");
    expect(r.calls.filter((c) => c.startsWith("exec"))).toHaveLength(2);
    expect(r.stdout).toContain("passed its health check in 2 s");
    expect(r.canaryLeft).toBe(false);
  });

  test("a new spec whose container exits: the up fails with its state and log, the canary is gone", () => {
    const r = runCanary({
      RUNNING: "true 0000",
      CANARY: "exited (exit code 127)",
      HEALTHY_AFTER: 0,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      "error: the new socket-proxy container did not pass its health check within 6 s (after",
    );
    expect(r.stderr).toContain("exited (exit code 127)); socket-proxy was left running as it was");
    expect(r.stderr).toContain("haproxy: not found\n[31mred[0m line");
    expect(r.stderr).not.toContain("\u001b");
    expect(r.calls).toContain("logs --tail 12 socket-proxy-canary");
    expect(r.calls.filter((c) => c.startsWith("exec"))).toEqual([]);
    expect(r.canaryLeft).toBe(false);
  });

  test("a new spec whose container cannot start: the up fails with docker's words, the created canary is gone", () => {
    const r = runCanary({ RUNNING: "true 0000", RUN_FAILS: true });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      "error: could not start a canary of the new socket-proxy: docker: Error response from daemon: exec: haproxy: not found; socket-proxy was left running as it was",
    );
    expect(r.canaryLeft).toBe(false);
  });

  test("a daemon that does not answer is an error, not a reason to skip the canary", () => {
    const r = runCanary({ RUNNING: "broken" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      "error: could not inspect socket-proxy: Cannot connect to the Docker daemon",
    );
    expect(r.calls.filter((c) => c.startsWith("run"))).toEqual([]);
  });

  test("a container of the canary's name that is not a canary is refused, never removed", () => {
    const r = runCanary({ RUNNING: "true 0000", leftover: true, LEFTOVER_LABEL: "" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      "a container named socket-proxy-canary exists and is not a hardened-docker canary",
    );
    expect(r.canaryLeft).toBe(true);
  });

  test("the step's delete removes a leftover canary, and nothing else", () => {
    const script = canaryDeleteScript("root", "socket-proxy");
    const left = runCanary({ RUNNING: "true 0000", leftover: true }, script);
    expect(left.status).toBe(0);
    expect(left.stdout).toContain("changed: removed socket-proxy-canary");
    expect(left.canaryLeft).toBe(false);
    const none = runCanary({ RUNNING: "true 0000" }, script);
    expect(none.status).toBe(0);
    expect(none.calls).toHaveLength(1);
  });

  test("a new spec that runs but never passes: it fails once its time is up", () => {
    const r = runCanary({ RUNNING: "true 0000", HEALTHY_AFTER: 0 });
    expect(r.status).toBe(1);
    // checked at 0, 2, 4 and 6 s (2 s apart), given up at the limit: not before, not later
    expect(r.stderr).toContain("within 6 s (after 6 s: running (exit code 0))");
    expect(r.calls.filter((c) => c.startsWith("exec"))).toHaveLength(4);
    expect(r.elapsed).toBe(6);
    expect(r.canaryLeft).toBe(false);
  });

  test("the spec hash covers what the canary does not run, not where or how long it runs", () => {
    expect(specHash({ ...SPEC, timeoutSeconds: 60, user: "other" })).toBe(specHash(SPEC));
    expect(specHash({ ...SPEC, rest: { ports: [8080] } })).not.toBe(specHash(SPEC));
    expect(specHash({ ...SPEC, env: ["HD_CFG=other"] })).not.toBe(specHash(SPEC));
    expect(specHash(SPEC)).toMatch(/^[0-9a-f]{16}$/);
  });
});
