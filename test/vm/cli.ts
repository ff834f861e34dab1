/**
 * `npm run vm -- up|ssh [command]|down|status`: a local Debian 12 VM to try the library on
 * before pointing it at a real host (stacks/Pulumi.local.yaml targets it). `up` needs root the
 * first time (image build). State lives in .vm/ in the repository.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { buildImage, HOST_KEY, REPO_PORT, TestVm } from "./vm";
import {
  HELP_AND_VERSION,
  UsageError,
  packageVersion,
  readOptions,
  renderOptions,
} from "../../cli/options";
import { nearest } from "../../components/core/validate";

const ROOT = join(__dirname, "..", "..");
const STATE = join(ROOT, ".vm");
const SSH_PORT = Number(process.env.HD_VM_SSH_PORT ?? 2222);
const IMAGE_FILE = join(STATE, "image-dir");
const REPO_PID = join(STATE, "repo-server.pid");
const KEY = join(STATE, "id_ed25519");
const KNOWN_HOSTS = join(STATE, "known_hosts");

function vmFor(imageDir: string): TestVm {
  return new TestVm({ imageDir, workDir: join(STATE, "vm"), sshPort: SSH_PORT, detached: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function up(): Promise<void> {
  mkdirSync(STATE, { recursive: true });
  const image = buildImage();
  writeFileSync(IMAGE_FILE, image.dir);
  copyFileSync(join(image.dir, "id_ed25519"), KEY);
  writeFileSync(KNOWN_HOSTS, `[127.0.0.1]:${SSH_PORT} ${HOST_KEY}\n`);
  const vm = vmFor(image.dir);
  if (vm.adopt()) {
    console.log("the VM is already running");
    return;
  }
  if (!(existsSync(REPO_PID) && alive(Number(readFileSync(REPO_PID, "utf8"))))) {
    const log = openSync(join(STATE, "repo-server.log"), "a");
    const server = spawn(
      process.execPath,
      [
        require.resolve("tsx/cli"),
        join(__dirname, "repo-server.ts"),
        join(image.dir, "repo"),
        String(REPO_PORT),
      ],
      {
        detached: true,
        stdio: ["ignore", log, log],
      },
    );
    server.unref();
    writeFileSync(REPO_PID, String(server.pid));
  }
  const seconds = await vm.start();
  console.log(`VM up in ${seconds.toFixed(0)}s: ssh admin@127.0.0.1 -p ${SSH_PORT} (npm run vm -- ssh)
Try the library on it:
  npx pulumi stack select --create local   # stacks/Pulumi.local.yaml
  npx pulumi config set --secret privateKey -s local < ${KEY}
  npx pulumi up -s local`);
}

function ssh(args: string[]): number {
  const r = spawnSync(
    "ssh",
    [
      "-i",
      KEY,
      "-p",
      String(SSH_PORT),
      "-o",
      `UserKnownHostsFile=${KNOWN_HOSTS}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "admin@127.0.0.1",
      ...args,
    ],
    { stdio: "inherit" },
  );
  return r.status ?? 1;
}

async function down(): Promise<void> {
  if (existsSync(IMAGE_FILE)) {
    const vm = vmFor(readFileSync(IMAGE_FILE, "utf8").trim());
    if (vm.adopt()) await vm.stop();
  }
  if (existsSync(REPO_PID)) {
    const pid = Number(readFileSync(REPO_PID, "utf8"));
    // detached: the server leads its own process group (tsx runs the script in a child)
    if (alive(pid)) process.kill(-pid, "SIGTERM");
    rmSync(REPO_PID);
  }
  console.log("VM stopped");
}

const VERBS: Readonly<Record<string, string>> = {
  up: "build the image (once, needs root) and boot the VM",
  ssh: "ssh into the VM as admin (with a command: run it)",
  down: "stop the VM",
  status: "say whether it runs (exit 0) or not (exit 1)",
};
const OPTIONS = HELP_AND_VERSION;
const USAGE = `usage: npm run vm -- <command> [ssh command...]

Commands:
${Object.entries(VERBS)
  .map(([v, d]) => `  ${v.padEnd(8)}${d}`)
  .join("\n")}

${renderOptions({ Options: OPTIONS })}`;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb.startsWith("-")) {
    try {
      const { values } = readOptions(argv, OPTIONS);
      if (values.version) {
        console.log(`hardened-docker ${packageVersion()}`);
        return 0;
      }
      if (values.help) {
        console.log(USAGE);
        return 0;
      }
      throw new UsageError("name a command: up, ssh, down or status");
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      console.error(`vm: ${e.message}\nRun 'npm run vm -- --help' for the commands.`);
      return 2;
    }
  }
  switch (verb) {
    case "up":
      await up();
      return 0;
    case "ssh":
      return ssh(rest);
    case "down":
      await down();
      return 0;
    case "status": {
      const running =
        existsSync(IMAGE_FILE) && vmFor(readFileSync(IMAGE_FILE, "utf8").trim()).adopt();
      console.log(running ? `running, SSH on 127.0.0.1:${SSH_PORT}` : "not running");
      return running ? 0 : 1;
    }
    default: {
      const near = nearest(verb, Object.keys(VERBS));
      console.error(
        `vm: unknown command ${verb}${near ? `; did you mean ${near}?` : ""}\nRun 'npm run vm -- --help' for the commands.`,
      );
      return 2;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
