/** `hardened-docker <command>`: the command-line entry (`npx hardened-docker verify …`). */
import { packageVersion } from "./options";
import { CliIo, runVerify } from "./verify";

export const USAGE = `usage: hardened-docker <command> [options]

Commands:
  verify       check hosts over SSH against their stacks (hardened-docker verify --help)

Options:
  -h, --help   print this help
  --version    print the version`;

/** The process's own streams and environment. */
function processIo(): CliIo {
  return {
    stdout: (t: string) => void process.stdout.write(t),
    stderr: (t: string) => void process.stderr.write(t),
    env: process.env,
    isTty: process.stdout.isTTY === true,
  };
}

/** The whole program; returns the exit code (2 for a command line it cannot run). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "verify") return runVerify(rest, io);
  if (command === "--help" || command === "-h") {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  if (command === "--version") {
    io.stdout(`hardened-docker ${packageVersion()}\n`);
    return 0;
  }
  const problem = command === undefined ? "name a command" : `unknown command ${command}`;
  io.stderr(`hardened-docker: ${problem}\nRun 'hardened-docker --help' for the commands.\n`);
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`hardened-docker: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
