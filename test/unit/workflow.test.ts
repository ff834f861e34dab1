/**
 * The CI workflow users copy (.github/workflows/preview.yml): valid against GitHub's workflow
 * schema (action-validator, from npm), wired as the README says, and its stack listing run
 * for real.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateWorkflow } from "@action-validator/core";
import { parse } from "yaml";

const ROOT = join(__dirname, "..", "..");
const SOURCE = readFileSync(join(ROOT, ".github", "workflows", "preview.yml"), "utf8");

interface Step {
  uses?: string;
  run?: string;
  id?: string;
  with?: Record<string, unknown>;
  "working-directory"?: string;
}
interface Job {
  if?: string;
  needs?: string;
  environment?: string;
  permissions?: Record<string, string>;
  strategy?: { "max-parallel"?: number; matrix: Record<string, unknown> };
  steps: Step[];
  outputs?: Record<string, string>;
}
const workflow = parse(SOURCE) as {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
  env: Record<string, string>;
};

test("the workflow is valid for GitHub Actions (action-validator)", () => {
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  expect(validateWorkflow(SOURCE).errors).toEqual([]);
  // the only thing it cannot check: the path globs of `on.pull_request.paths`
  expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
    "WARNING: Glob validation is not yet supported. Glob at /on/pull_request/paths will not be validated.",
  ]);
  warn.mockRestore();
});

test("the validator is not a rubber stamp: a broken workflow fails", () => {
  jest.spyOn(console, "warn").mockImplementation(() => undefined);
  const broken = SOURCE.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest");
  expect(validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  expect(validateWorkflow("on: push\njobs: 3\n").errors.length).toBeGreaterThan(0);
});

test("pull requests: one preview per host stack, with a diff, a PR comment and the policy pack", () => {
  expect(Object.keys(workflow.on).sort()).toEqual(["pull_request", "push"]);
  const preview = workflow.jobs.preview;
  expect(preview.if).toContain("github.event_name == 'pull_request'");
  expect(preview.needs).toBe("stacks");
  expect(preview.strategy?.matrix.stack).toBe("${{ fromJson(needs.stacks.outputs.stacks) }}");
  expect(preview.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  const pulumi = preview.steps.find((s) => s.uses?.startsWith("pulumi/actions@"))!;
  expect(pulumi.with).toMatchObject({
    command: "preview",
    "stack-name": "${{ matrix.stack }}",
    diff: true,
    "comment-on-pr": true,
    policyPacks: "policy",
  });
  // the deploy key reaches the Docker provider through an agent, before Pulumi runs
  const agent = preview.steps.findIndex((s) => s.uses?.startsWith("webfactory/ssh-agent@"));
  expect(agent).toBeGreaterThan(-1);
  expect(agent).toBeLessThan(preview.steps.indexOf(pulumi));
  expect(preview.steps.some((s) => s["working-directory"] === "policy" && s.run === "npm ci")).toBe(
    true,
  );
  expect(preview.steps.some((s) => s.run?.includes("npm run plan -- --stack"))).toBe(true);
});

test("main: pulumi up per host, one at a time, behind the production environment", () => {
  const up = workflow.jobs.up;
  expect(up.if).toContain("github.event_name == 'push'");
  expect(up.if).toContain("refs/heads/main");
  expect(up.environment).toBe("production");
  expect(up.strategy?.["max-parallel"]).toBe(1);
  const pulumi = up.steps.find((s) => s.uses?.startsWith("pulumi/actions@"))!;
  expect(pulumi.with).toMatchObject({ command: "up", policyPacks: "policy" });
});

test("a self-managed backend and the passphrase come from repository settings, never inline", () => {
  expect(workflow.env.PULUMI_BACKEND_URL).toBe("${{ vars.PULUMI_BACKEND_URL }}");
  expect(workflow.env.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
  expect(SOURCE).not.toMatch(/PULUMI_ACCESS_TOKEN/);
});

test("the stack list step finds host stacks and leaves out example and local", () => {
  const step = workflow.jobs.stacks.steps.find((s) => s.id === "list")!;
  const dir = mkdtempSync(join(tmpdir(), "hd-wf-"));
  mkdirSync(join(dir, "stacks"));
  for (const f of ["Pulumi.example.yaml", "Pulumi.local.yaml"])
    copyFileSync(join(ROOT, "stacks", f), join(dir, "stacks", f));
  for (const host of ["web-2", "web-1", "db.eu-1"])
    writeFileSync(join(dir, "stacks", `Pulumi.${host}.yaml`), "config: {}\n");
  writeFileSync(join(dir, "stacks", "config.ts"), "");
  const out = join(dir, "github_output");
  const r = spawnSync("bash", ["-e", "-o", "pipefail", "-c", step.run!], {
    cwd: dir,
    env: { ...process.env, GITHUB_OUTPUT: out },
    encoding: "utf8",
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  expect(readFileSync(out, "utf8")).toBe('stacks=["db.eu-1","web-1","web-2"]\n');
});
