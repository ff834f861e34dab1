/**
 * The test VM: a Debian 12 guest under qemu, booted from a throwaway copy-on-write overlay of
 * the cached image (test/vm/build-image.sh), SSH forwarded to 127.0.0.1:<sshPort>, the local
 * apt repository served on 127.0.0.1:<repoPort>. Never leaves a qemu behind: stop() powers it
 * off (or kills it), and exit/SIGINT/SIGTERM handlers kill it too. The serial log stays in the
 * work directory.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { Server } from "node:http";
import { join } from "node:path";
import { serveDirectory } from "./repo-server";
import { SshTarget, sshExec, sshRun } from "./ssh";

export const REPO_PORT = 18799; // baked into the image's apt source
export const DEFAULT_CACHE = process.env.HD_VM_CACHE ?? "/var/cache/hardened-docker-vm";
export const HOST_KEY = readFileSync(join(__dirname, "keys", "ssh_host_ed25519_key.pub"), "utf8")
  .trim()
  .split(/\s+/)
  .slice(0, 2)
  .join(" ");

const REQUIRED_TOOLS: Record<string, string> = {
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-img": "qemu-utils",
  debootstrap: "debootstrap",
  mke2fs: "e2fsprogs",
  "dpkg-scanpackages": "dpkg-dev",
  "ssh-keygen": "openssh-client",
};

/** Installs the harness's tools with apt when missing (root), or fails saying what is missing. */
export function ensureTools(): void {
  const missing = Object.keys(REQUIRED_TOOLS).filter(
    (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
  );
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => REQUIRED_TOOLS[t]))];
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the test VM needs ${missing.join(", ")}: run as root, or apt-get install ${pkgs.join(" ")}`,
    );
  }
  execFileSync("apt-get", ["update", "-q"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...pkgs], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** Builds (or reuses) the image; returns its directory. */
export function buildImage(cache = DEFAULT_CACHE): {
  dir: string;
  cached: boolean;
  seconds: number;
} {
  ensureTools();
  if (process.getuid?.() !== 0)
    throw new Error("building the test VM image needs root (debootstrap, chroot)");
  const t0 = Date.now();
  const out = execFileSync("bash", [join(__dirname, "build-image.sh"), cache], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, REPO_PORT: String(REPO_PORT) },
  });
  const m = /^(cached|built) (\S+)$/m.exec(out);
  if (!m) throw new Error(`build-image.sh did not say where the image is:\n${out}`);
  return { dir: m[2], cached: m[1] === "cached", seconds: (Date.now() - t0) / 1000 };
}

function accelArgs(): string[] {
  // /dev/kvm here is kvm_pvm, which only runs PVM guest kernels: a stock Debian kernel hangs.
  // Use KVM only where kvm_intel/kvm_amd is loaded, TCG otherwise.
  const realKvm =
    existsSync("/dev/kvm") &&
    (existsSync("/sys/module/kvm_intel") || existsSync("/sys/module/kvm_amd"));
  return realKvm
    ? ["-accel", "kvm", "-cpu", "host"]
    : ["-accel", "tcg,thread=multi", "-cpu", "max"];
}

const running = new Set<TestVm>();
function killAll(): void {
  for (const vm of running) vm.kill();
}
process.once("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export interface TestVmOptions {
  readonly imageDir: string;
  readonly workDir: string;
  /** @default 2222 */
  readonly sshPort?: number;
  /** @default 2048 */
  readonly memoryMiB?: number;
  /**
   * For `npm run vm -- up`: the VM outlives this process (no exit handlers) and the caller
   * serves the repository itself. @default false
   */
  readonly detached?: boolean;
}

export class TestVm {
  readonly sshPort: number;
  readonly admin: SshTarget;
  readonly privateKey: string;
  private repo?: Server;
  private pid?: number;

  constructor(private readonly opts: TestVmOptions) {
    this.sshPort = opts.sshPort ?? 2222;
    this.privateKey = readFileSync(join(opts.imageDir, "id_ed25519"), "utf8");
    this.admin = {
      host: "127.0.0.1",
      port: this.sshPort,
      user: "admin",
      privateKey: this.privateKey,
      hostKey: HOST_KEY,
    };
  }

  get serialLog(): string {
    return join(this.opts.workDir, "serial.log");
  }

  /** Serves the repository, boots a fresh overlay, waits for SSH. Returns seconds to SSH. */
  async start(timeoutSeconds = 300): Promise<number> {
    const t0 = Date.now();
    mkdirSync(this.opts.workDir, { recursive: true });
    if (!this.opts.detached)
      this.repo = await serveDirectory(join(this.opts.imageDir, "repo"), REPO_PORT);
    const disk = join(this.opts.workDir, "disk.qcow2");
    rmSync(disk, { force: true });
    rmSync(this.serialLog, { force: true });
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      join(this.opts.imageDir, "disk.raw"),
      "-F",
      "raw",
      disk,
    ]);
    const pidFile = join(this.opts.workDir, "qemu.pid");
    rmSync(pidFile, { force: true });
    execFileSync("qemu-system-x86_64", [
      ...accelArgs(),
      "-machine",
      "q35",
      "-smp",
      "2",
      "-m",
      String(this.opts.memoryMiB ?? 2048),
      "-display",
      "none",
      "-serial",
      `file:${this.serialLog}`,
      "-pidfile",
      pidFile,
      "-daemonize",
      "-kernel",
      join(this.opts.imageDir, "vmlinuz"),
      "-initrd",
      join(this.opts.imageDir, "initrd"),
      "-append",
      "root=/dev/vda rw console=ttyS0 net.ifnames=0",
      "-drive",
      `file=${disk},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
      "-netdev",
      `user,id=n0,hostfwd=tcp:127.0.0.1:${this.sshPort}-:22`,
      "-device",
      "virtio-net-pci,netdev=n0",
      "-device",
      "virtio-rng-pci",
    ]);
    this.pid = Number(readFileSync(pidFile, "utf8").trim());
    if (!this.opts.detached) {
      running.add(this);
      // Signal handlers do not always run (jest's sandbox, SIGKILL, a cut session): a watchdog
      // outside this process kills qemu once this process is gone.
      spawn(
        "sh",
        [
          "-c",
          `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; ` +
            `grep -qx 'qemu-system-x86' /proc/${this.pid}/comm 2>/dev/null && kill -9 ${this.pid}`,
        ],
        { detached: true, stdio: "ignore" },
      ).unref();
    }
    await this.waitForSsh(timeoutSeconds);
    return (Date.now() - t0) / 1000;
  }

  /** Polls `probe` over SSH until it exits 0 and `accept(stdout)` holds (one login a poll). */
  async waitForSsh(
    timeoutSeconds: number,
    probe = "true",
    accept: (stdout: string) => boolean = () => true,
  ): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      try {
        const r = await sshExec(this.admin, probe, { timeoutMs: 20_000 });
        if (r.code === 0 && accept(r.stdout)) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        const tail = existsSync(this.serialLog)
          ? readFileSync(this.serialLog, "utf8").split("\n").slice(-20).join("\n")
          : "";
        throw new Error(
          `no SSH on 127.0.0.1:${this.sshPort} after ${timeoutSeconds}s; serial log ${this.serialLog}:\n${tail}`,
        );
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  /** Runs a command as the admin user (prefix `sudo -n` yourself for root). */
  run(command: string, stdin?: string): Promise<string> {
    return sshRun(this.admin, command, { stdin });
  }

  exec(command: string, stdin?: string) {
    return sshExec(this.admin, command, { stdin });
  }

  /** Reboots and waits for a new boot id; returns seconds until SSH answers again. */
  async reboot(timeoutSeconds = 400): Promise<number> {
    const t0 = Date.now();
    const bootId = "cat /proc/sys/kernel/random/boot_id";
    const before = (await this.run(bootId)).trim();
    await sshExec(this.admin, "sudo -n systemctl reboot", { timeoutMs: 20_000 }).catch(
      () => undefined,
    );
    await this.waitForSsh(timeoutSeconds, bootId, (out) => out.trim() !== before);
    return (Date.now() - t0) / 1000;
  }

  /** Clean poweroff, then kill if needed; stops the repository server. */
  async stop(): Promise<void> {
    if (this.pid !== undefined && this.alive()) {
      await sshExec(this.admin, "sudo -n systemctl poweroff", { timeoutMs: 15_000 }).catch(
        () => undefined,
      );
      for (let i = 0; i < 60 && this.alive(); i++) await new Promise((r) => setTimeout(r, 1000));
    }
    this.kill();
    await new Promise<void>((r) => (this.repo ? this.repo.close(() => r()) : r()));
    this.repo = undefined;
  }

  /** Adopts a VM started earlier from the same work directory (its qemu.pid). */
  adopt(): boolean {
    const pidFile = join(this.opts.workDir, "qemu.pid");
    if (!existsSync(pidFile)) return false;
    this.pid = Number(readFileSync(pidFile, "utf8").trim());
    return this.alive();
  }

  alive(): boolean {
    if (this.pid === undefined) return false;
    try {
      process.kill(this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Synchronous: safe in exit handlers. */
  kill(): void {
    if (this.pid !== undefined && this.alive()) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    running.delete(this);
  }
}
