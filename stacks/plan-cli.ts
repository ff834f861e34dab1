/**
 * `npm run plan -- --stack <host> [--stack <host2>] | --all [--out plans] [--stdout]`
 *
 * Writes `<out>/<host>.plan.txt` and `<out>/<host>.plan.json`: every resource the host's stack
 * would register, with its inputs (scripts, unit files, container specs), secrets redacted.
 * Needs no Pulumi CLI, backend or credential: encrypted (`secure:`) values and a missing
 * `privateKey` are replaced by placeholders that never reach the output.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { collectPlan, renderPlanText } from "./plan";
import { planInputFromStackFile, stackNames } from "./stack-file";

const ROOT = join(__dirname, "..");
function usage(message?: string): never {
  if (message) console.error(`plan: ${message}`);
  console.error(
    "usage: npm run plan -- --stack <host> [--stack <host>...] | --all [--out <dir>] [--stdout]",
  );
  process.exit(2);
}

async function planOne(stack: string, out: string, toStdout: boolean): Promise<void> {
  const input = planInputFromStackFile(stack);
  /* eslint-disable @typescript-eslint/no-require-imports */
  const plan = await collectPlan(
    {
      pulumi: require("@pulumi/pulumi"),
      mocks: require("@pulumi/pulumi/runtime/mocks"),
      loadProgram: () => require("./index"),
    },
    input,
  );
  /* eslint-enable @typescript-eslint/no-require-imports */
  const text = renderPlanText(plan);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${stack}.plan.txt`), text);
  writeFileSync(join(out, `${stack}.plan.json`), `${JSON.stringify(plan, null, 2)}\n`);
  if (toStdout) process.stdout.write(text);
  else
    console.log(
      `plan ${stack}: ${plan.resources.length} resources -> ${join(out, `${stack}.plan.txt`)}, ${join(out, `${stack}.plan.json`)}`,
    );
}

async function main(argv: string[]): Promise<void> {
  const stacks: string[] = [];
  let all = false;
  let one = false;
  let out = join(ROOT, "plans");
  let toStdout = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") stacks.push(argv[++i] ?? usage("--stack needs a name"));
    else if (a === "--all") all = true;
    else if (a === "--out") out = argv[++i] ?? usage("--out needs a directory");
    else if (a === "--stdout") toStdout = true;
    else if (a === "--one") one = true;
    else usage(`unknown argument ${a}`);
  }
  const known = stackNames();
  if (all) stacks.push(...known);
  if (stacks.length === 0) usage();
  for (const s of stacks)
    if (!known.includes(s))
      usage(`no stacks/Pulumi.${s}.yaml (have: ${known.join(", ") || "none"})`);
  if (one || stacks.length === 1) return planOne(stacks[0], out, toStdout);
  // one process per stack: the SDK's runtime state is per process
  let failed = 0;
  for (const s of stacks) {
    const r = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        __filename,
        "--one",
        "--stack",
        s,
        "--out",
        out,
        ...(toStdout ? ["--stdout"] : []),
      ],
      { stdio: "inherit" },
    );
    if (r.status !== 0) failed++;
  }
  if (failed) {
    console.error(`plan: ${failed} of ${stacks.length} stacks failed`);
    process.exit(1);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`plan: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
