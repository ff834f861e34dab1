/**
 * The change table (stacks/changes.ts) against the provider's rules: every row's example
 * change is planned against the example stack, and what `@pulumi/command`'s rules make of it
 * (update / replace / create / delete per resource) must be exactly what the row says.
 * docs/changes.md shows the same table.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CHANGE_TABLE, classifyChanges, renderChangeTable, withChangeTable } from "./changes";
import { CONFIG_KEYS } from "./config";
import type { Plan } from "./plan";
import { planInputFromStackFile } from "./stack-file";
import { planInIsolation } from "../test/helpers/plan";

jest.setTimeout(120_000);

const example = () => planInputFromStackFile("example");
let base: Plan;
let commands: string[];
beforeAll(async () => {
  const input = example();
  // the example's secrets, set as `pulumi config set --secret` would
  base = await planInIsolation(withSecrets(input.config), true);
  commands = base.resources
    .filter((r) => r.type === "command:remote:Command")
    .map((r) => r.name.replace(/^example-/, ""))
    .sort();
});

function withSecrets(config: Record<string, unknown>) {
  const input = example();
  return { ...input, config: { ...config } };
}

test("one row per stack key, in the order of CONFIG_KEYS", () => {
  expect(CHANGE_TABLE.map((r) => r.key)).toEqual([...CONFIG_KEYS]);
});

test.each(CHANGE_TABLE.map((r) => [r.key, r] as const))(
  "%s: the provider's rules give what the table says",
  async (_key, row) => {
    const config = structuredClone(example().config);
    row.from?.(config);
    const before = row.from ? await planInIsolation(withSecrets(config), true) : base;
    row.example(config);
    const after = await planInIsolation(withSecrets(config), true);
    const got = classifyChanges(before, after, "example");
    const want = {
      create: [...(row.plan.create ?? [])].sort(),
      update: row.plan.update === "*" ? commands : [...(row.plan.update ?? [])].sort(),
      replace: [...(row.plan.replace ?? [])].sort(),
      delete: [...(row.plan.delete ?? [])].sort(),
    };
    if (row.plan.update === "*") got.update = got.update.filter((n) => commands.includes(n));
    expect(got).toEqual(want);
    // no host step is ever replaced (a replace runs its delete: data, units, the user)
    expect(got.replace.filter((n) => commands.includes(n))).toEqual([]);
    if (row.outcome === "refused") {
      const step = [...(row.plan.update as string[])][0];
      const inputs = after.resources.find((r) => r.name === `example-${step}`)!.inputs;
      expect(inputs.create).toContain(row.refusal);
    }
  },
);

test("docs/changes.md shows the table (to update it: npx tsx stacks/changes.ts)", () => {
  const readme = readFileSync(join(__dirname, "..", "docs", "changes.md"), "utf8");
  expect(readme).toContain(renderChangeTable());
  expect(withChangeTable(readme)).toBe(readme);
});
