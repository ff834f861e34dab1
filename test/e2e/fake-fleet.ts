/**
 * Lightweight stand-in hosts for measuring `verify` across a fleet: one real OpenSSH sshd per
 * host on its own loopback port, each with its own host key, answering the probe with a
 * recorded probe output of a real host (the test VM) whose section marker is swapped for the
 * one the probe sent. So everything on our side is real (SSH handshake, auth, host key check,
 * one exec, parsing, every check, formatting); only the host-side run of the probe is
 * replayed. Needs root (sshd) and /usr/sbin/sshd (openssh-server).
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeHost {
  readonly port: number;
  readonly hostKey: string;
}

export interface FakeFleet {
  readonly hosts: readonly FakeHost[];
  /** The private key every fake host accepts (for root). */
  readonly privateKey: string;
  stop(): void;
}

/** A recorded probe: its marker and raw stdout (as `verifyHost`'s `onProbeOutput` gives it). */
export interface RecordedProbe {
  readonly marker: string;
  readonly stdout: string;
}

const REPLAY = String.raw`#!/bin/bash
# reads the probe script from stdin, answers with the recording under the probe's own marker
new=$(sed -n "s/^M='\(.*\)'$/\1/p; s/^M=\([^' ]*\)$/\1/p" | head -n 1)
[ -n "$new" ] || { echo "no marker in the probe" >&2; exit 3; }
old=$(cat "$(dirname "$0")/marker")
exec awk -v old="$old" -v new="$new" '{ i = index($0, old); if (i == 1) $0 = new substr($0, length(old) + 1); print }' "$(dirname "$0")/stdout"
`;

export function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, "127.0.0.1");
      s.once("data", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd on ${port} did not start`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** A client key pair in `dir` whose public half `startSshd`'s sshd accepts; its private key. */
export function authorizeClientKey(dir: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client")]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client.pub")));
  return readFileSync(join(dir, "client"), "utf8");
}

/**
 * One OpenSSH sshd on 127.0.0.1:`port` (root only), its files in `dir` (`sshd_<name>`,
 * `host_<name>`), accepting the keys in `dir/authorized_keys`, every session forced onto
 * `forceCommand`. Wait for it with `waitForPort`.
 */
export function startSshd(
  dir: string,
  name: string,
  port: number,
  forceCommand: string,
): { process: ChildProcess; hostKey: string } {
  const key = join(dir, `host_${name}`);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  const config = join(dir, `sshd_${name}`);
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${key}`,
      `PidFile ${dir}/sshd_${name}.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `ForceCommand ${forceCommand}`,
      "MaxStartups 100:30:200",
      "LogLevel ERROR",
    ].join("\n") + "\n",
  );
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: "ignore" });
  const hostKey = readFileSync(`${key}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  return { process: child, hostKey };
}

/** Starts `count` sshd instances on 127.0.0.1 from `firstPort`, each replaying `probe`. */
export async function startFakeFleet(
  count: number,
  probe: RecordedProbe,
  firstPort = 23000,
): Promise<FakeFleet> {
  if (process.getuid?.() !== 0) throw new Error("the fake fleet needs root (sshd)");
  const dir = mkdtempSync(join(tmpdir(), "hd-fleet-"));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "marker"), probe.marker);
  writeFileSync(join(dir, "stdout"), probe.stdout);
  writeFileSync(join(dir, "replay"), REPLAY, { mode: 0o755 });
  const privateKey = authorizeClientKey(dir);
  const procs: ChildProcess[] = [];
  const hosts: FakeHost[] = [];
  const stop = () => {
    for (const p of procs) p.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = firstPort + i;
      const sshd = startSshd(dir, `${i}`, port, `${dir}/replay`);
      procs.push(sshd.process);
      hosts.push({ port, hostKey: sshd.hostKey });
    }
    await Promise.all(hosts.map((h) => waitForPort(h.port, 10_000)));
  } catch (e) {
    stop();
    throw e;
  }
  return { hosts, privateKey, stop };
}
