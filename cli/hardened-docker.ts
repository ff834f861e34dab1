/** `hardened-docker <command>`: the command-line entry (`npx hardened-docker verify …`). */
import { VERIFY_USAGE, runVerify } from "./verify";

const USAGE = `usage: hardened-docker verify [options]   (hardened-docker verify --help)`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = {
    stdout: (t: string) => void process.stdout.write(t),
    stderr: (t: string) => void process.stderr.write(t),
    env: process.env,
    isTty: process.stdout.isTTY === true,
  };
  if (command === "verify") {
    if (rest.includes("--help") || rest.includes("-h")) {
      io.stdout(`${VERIFY_USAGE}\n`);
      return 0;
    }
    return runVerify(rest, io);
  }
  io.stderr(`${command === undefined ? "" : `unknown command ${command}\n`}${USAGE}\n`);
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
