/**
 * Command-line options for our CLIs (`verify`, `plan`, `vm`, the benches): one table per
 * command drives `node:util` `parseArgs` and the usage text, and unknown or malformed
 * arguments are reported in our words (with a did-you-mean), never as a stack trace.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { nearest } from "../components/core/validate";

/** One option: the parser's configuration and the usage text both come from it. */
export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  readonly type: "string" | "boolean";
  /** A one-letter alias (`i` for `-i`). @default none */
  readonly short?: string;
  /** What the value looks like in the usage (string options). @default none */
  readonly value?: string;
  readonly description: string;
  /** The value when the option is not given (string options); the usage shows it. @default none */
  readonly default?: string;
  /** May be given more than once. @default false */
  readonly multiple?: boolean;
  /** Another spelling that is accepted but not listed (`colour`). @default none */
  readonly alias?: string;
  /** Accepted but not listed in the usage (internal plumbing). @default false */
  readonly hidden?: boolean;
}

/** An option with a value (`--name <value>`). */
export const opt = (
  name: string,
  value: string,
  description: string,
  more: Partial<OptionSpec> = {},
): OptionSpec => ({ name, type: "string", value, description, ...more });

/** An option without a value (`--name`). */
export const flag = (
  name: string,
  description: string,
  more: Partial<OptionSpec> = {},
): OptionSpec => ({ name, type: "boolean", description, ...more });

/** `--help` and `--version`, which every command has. */
export const HELP_AND_VERSION: readonly OptionSpec[] = [
  flag("help", "print this help", { short: "h" }),
  flag("version", "print the version"),
];

/** A bad command line: the command prints its message and a pointer to --help, exit 2. */
export class UsageError extends Error {}

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

function optionLabel(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : "    "}--${o.name}${o.value ? ` ${o.value}` : ""}`;
}

/** The options part of a usage text: a block per heading, one aligned line per option. */
export function renderOptions(groups: Readonly<Record<string, readonly OptionSpec[]>>): string {
  const listed = Object.values(groups)
    .flat()
    .filter((o) => !o.hidden);
  const width = Math.max(...listed.map((o) => optionLabel(o).length)) + 2;
  return Object.entries(groups)
    .map(([heading, options]) =>
      [
        `${heading}:`,
        ...options
          .filter((o) => !o.hidden)
          .map(
            (o) =>
              `  ${optionLabel(o).padEnd(width)}${o.description}${o.default === undefined ? "" : ` (default: ${o.default})`}`,
          ),
      ].join("\n"),
    )
    .join("\n\n");
}

type ParserOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

function parserOptions(options: readonly OptionSpec[]): ParserOptions {
  const out: ParserOptions = {};
  for (const o of options) {
    out[o.name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
    if (o.alias) out[o.alias] = { type: o.type };
  }
  return out;
}

/**
 * The option values as given (no defaults yet; aliases folded in) and the positionals when
 * `positionals` allows them. @throws UsageError naming the first argument it refuses
 */
export function readOptions(
  argv: readonly string[],
  options: readonly OptionSpec[],
  positionals = false,
): { values: OptionValues; positionals: string[] } {
  const config = parserOptions(options);
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: config,
      strict: true,
      allowPositionals: positionals,
    });
  } catch (e) {
    throw new UsageError(syntaxProblem(argv, config, positionals) ?? (e as Error).message);
  }
  for (const o of options)
    if (o.alias !== undefined) parsed.values[o.name] ??= parsed.values[o.alias];
  return parsed;
}

/** The first argument the strict parser refused, in our words (Node's are about positionals). */
function syntaxProblem(
  argv: readonly string[],
  options: ParserOptions,
  positionals: boolean,
): string | undefined {
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const t of tokens) {
    if (t.kind === "positional") {
      if (positionals) continue;
      return `unexpected argument ${t.value}`;
    }
    if (t.kind !== "option") continue;
    const type = options[t.name]?.type;
    if (type === undefined) {
      const near = t.rawName.startsWith("--") ? nearest(t.name, Object.keys(options)) : undefined;
      return `unknown option ${t.rawName}${near ? `; did you mean --${near}?` : ""}`;
    }
    if (type === "boolean" && t.value !== undefined) return `${t.rawName} takes no value`;
    if (type === "string" && t.value === undefined) return `${t.rawName} needs a value`;
    if (type === "string" && !t.inlineValue && /^-./.test(t.value ?? ""))
      return `${t.rawName} needs a value (one that starts with - goes as ${t.rawName}=${t.value})`;
  }
  return undefined;
}

/** A string option's value, else its default from the table. */
export function stringOption(
  values: OptionValues,
  options: readonly OptionSpec[],
  name: string,
): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : options.find((o) => o.name === name)?.default;
}

/** A whole-number option within [min, max]. @throws UsageError */
export function integerOption(
  values: OptionValues,
  options: readonly OptionSpec[],
  name: string,
  min: number,
  max: number,
): number {
  const v = stringOption(values, options, name) as string;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max)
    throw new UsageError(`--${name} ${v}: want a whole number from ${min} to ${max}`);
  return n;
}

/**
 * The version in this package's package.json: the nearest one above `dir` whose name is
 * hardened-docker (`cli/..` in a checkout, `dist/cli/../..` once built).
 */
export function packageVersion(dir: string = __dirname): string {
  for (let d = dir; ; d = dirname(d)) {
    const file = join(d, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "hardened-docker" && pkg.version !== undefined) return pkg.version;
    }
    if (dirname(d) === d) throw new Error(`no package.json of hardened-docker above ${dir}`);
  }
}
