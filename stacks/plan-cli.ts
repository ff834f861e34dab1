/**
 * `npm run plan -- --stack <host> [--stack <host2>] | --all [--out plans] [--stdout]`
 *
 * Writes `<out>/<host>.plan.txt` and `<out>/<host>.plan.json`: every resource the host's stack
 * would register, with its inputs (scripts, unit files, container specs), secrets redacted.
 * Needs no Pulumi CLI, backend or credential: encrypted (`secure:`) values are replaced by
 * placeholders that never reach the output. It refuses what `pulumi up` would refuse: a secret
 * the stack needs and its file does not hold (a note only for the template stacks), and a
 * secret written in clear text.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  HELP_AND_VERSION,
  OptionSpec,
  OptionValues,
  UsageError,
  flag,
  opt,
  packageVersion,
  readOptions,
  renderOptions,
} from "../cli/options";
import { checkConfigKeys } from "./config";
import { collectPlan, renderPlanText } from "./plan";
import {
  StackFileError,
  TEMPLATE_STACKS,
  planInputFromStackFile,
  secretProblems,
  stackNames,
} from "./stack-file";

const ROOT = join(__dirname, "..");

/** The options, once: the parser and the usage text both come from this table. */
const OPTION_GROUPS: Readonly<Record<string, readonly OptionSpec[]>> = {
  Options: [
    opt("stack", "<host>", "plan stacks/Pulumi.<host>.yaml (repeatable)", { multiple: true }),
    flag("all", "plan every stack in the stacks directory"),
    opt("out", "<dir>", "where the plans go", { default: "plans" }),
    opt("stacks-dir", "<dir>", "where the stack files are", { default: "stacks" }),
    flag("stdout", "also print the plan text"),
    ...HELP_AND_VERSION,
    flag("one", "plan one stack in this process (what --all runs per stack)", { hidden: true }),
  ],
};
const OPTIONS = Object.values(OPTION_GROUPS).flat();

export const PLAN_USAGE = `usage: npm run plan -- --stack <host> [--stack <host>...] | --all [options]

${renderOptions(OPTION_GROUPS)}

Exit code: 0 planned, 1 a stack failed (its error names it), 2 bad arguments.`;

async function planOne(stack: string, dir: string, out: string, toStdout: boolean): Promise<void> {
  const input = planInputFromStackFile(stack, dir);
  checkConfigKeys(input.config); // before the program: the message can show the value
  const secrets = secretProblems(stack, dir);
  if (secrets.clearText.length) throw new Error(secrets.clearText.join("\n"));
  if (secrets.unset.length) {
    const what = secrets.unset.map((u) => `\n  ${u}`).join("");
    if (!TEMPLATE_STACKS.includes(stack))
      throw new Error(`pulumi up would refuse it: secrets not set:${what}`);
    console.error(`plan ${stack}: note (a template stack): set these before an up:${what}`);
  }
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

/** The whole command; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let values: OptionValues;
  let stacks: string[];
  let dir: string;
  try {
    values = readOptions(argv, OPTIONS).values;
    if (values.help) {
      console.log(PLAN_USAGE);
      return 0;
    }
    if (values.version) {
      console.log(`hardened-docker ${packageVersion()}`);
      return 0;
    }
    dir = typeof values["stacks-dir"] === "string" ? values["stacks-dir"] : join(ROOT, "stacks");
    const known = stackNames(dir);
    stacks = [...new Set([...((values.stack as string[]) ?? []), ...(values.all ? known : [])])];
    if (stacks.length === 0) throw new UsageError("name a --stack <host>, or --all");
    for (const s of stacks)
      if (!known.includes(s))
        throw new UsageError(
          `no Pulumi.${s}.yaml in ${values["stacks-dir"] ?? "stacks"} (have: ${known.join(", ") || "none"})`,
        );
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`plan: ${e.message}\nRun 'npm run plan -- --help' for the options.`);
    return 2;
  }
  const out = typeof values.out === "string" ? values.out : join(ROOT, "plans");
  const toStdout = values.stdout === true;
  if (values.one || stacks.length === 1) {
    try {
      await planOne(stacks[0], dir, out, toStdout);
      return 0;
    } catch (e) {
      const message = e instanceof StackFileError || e instanceof Error ? e.message : String(e);
      console.error(`plan ${stacks[0]}: ${message}`);
      return 1;
    }
  }
  // one process per stack: the SDK's runtime state is per process
  const failed: string[] = [];
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
        "--stacks-dir",
        dir,
        ...(toStdout ? ["--stdout"] : []),
      ],
      { stdio: "inherit" },
    );
    if (r.status !== 0) failed.push(s);
  }
  if (failed.length) {
    console.error(`plan: ${failed.length} of ${stacks.length} stacks failed: ${failed.join(", ")}`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`plan: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
