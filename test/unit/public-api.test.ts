/**
 * The public API, pinned: the names `components/index.ts` exports (values and types), and the
 * plans of the example stack, the local stack and a host with tenants (every resource's type
 * token, name, parent and inputs), and the probe `verify` runs on that host. A change to any
 * of them is a change to what users import, to what `pulumi up` would do on their hosts or to
 * what verify runs as root there: it must be deliberate. Rewrite the goldens with
 * `HD_UPDATE_GOLDEN=1 npx jest test/unit/public-api.test.ts` and review the diff.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { expectationFromArgs, probeScript, probeTarget } from "../../components/verify";
import { hostArgsFromConfig, plainConfigSource } from "../../stacks/config";
import { renderPlanText } from "../../stacks/plan";
import { planInputFromStackFile } from "../../stacks/stack-file";
import { planInIsolation } from "../helpers/plan";

const ROOT = join(__dirname, "..", "..");
const GOLDEN = join(ROOT, "test", "fixtures", "public-api");
jest.setTimeout(120_000);

function matchesGolden(file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (process.env.HD_UPDATE_GOLDEN === "1") writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, "utf8"));
}

/** Every name the package entry exports, with what it is (value, type, or both). */
function exportedNames(): string {
  const entry = join(ROOT, "components", "index.ts");
  const program = ts.createProgram([entry], { strict: true, noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return checker
    .getExportsOfModule(module)
    .map((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      const kinds = [
        target.flags & ts.SymbolFlags.Class ? "class" : "",
        target.flags & ts.SymbolFlags.Function ? "function" : "",
        target.flags & ts.SymbolFlags.Variable ? "const" : "",
        target.flags & ts.SymbolFlags.Enum ? "enum" : "",
        target.flags & ts.SymbolFlags.Interface ? "interface" : "",
        target.flags & ts.SymbolFlags.TypeAlias ? "type" : "",
      ].filter(Boolean);
      return `${s.name} ${kinds.join(",")}`;
    })
    .sort()
    .join("\n")
    .concat("\n");
}

test("components/index.ts exports the same names, of the same kinds", () => {
  matchesGolden("exports.txt", exportedNames());
});

test("the runtime exports are the ones the type checker sees", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtime = Object.keys(require("../../components")).sort();
  const values = exportedNames()
    .trim()
    .split("\n")
    .filter((l) => /\b(class|function|const|enum)\b/.test(l))
    .map((l) => l.split(" ")[0]);
  expect(runtime).toEqual(values);
});

test.each([
  ["example", join(ROOT, "stacks")],
  ["local", join(ROOT, "stacks")],
  ["tenants", GOLDEN],
])("the %s stack plans byte for byte as before", async (stack, dir) => {
  const plan = await planInIsolation(planInputFromStackFile(stack, dir));
  matchesGolden(`${stack}.plan.txt`, renderPlanText(plan));
});

test.each(["auto", "cli"] as const)(
  "the probe verify runs on the tenants stack's host (docker client %s) is byte for byte as before",
  (dockerClient) => {
    const { config } = planInputFromStackFile("tenants", GOLDEN);
    const expected = expectationFromArgs(hostArgsFromConfig(plainConfigSource(config)));
    const script = probeScript(probeTarget(expected, dockerClient), "MARKER");
    matchesGolden(`probe-${dockerClient}.sh.txt`, script);
  },
);
