/**
 * Reviewable changes: the per-host program planned twice, with two configs, under mocks. A
 * one-line config change must be a change of exactly the resource it concerns, with the
 * rendered text (unit file, daemon.json, proxy config) visible in the plan; a secret's change
 * must stay a secret; the same config must plan identically.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Plan, PlanInput, REDACTED, diffPlans, renderPlanText } from "./plan";
import { planInIsolation } from "../test/helpers/plan";
import { commandAction } from "./changes";
import { planInputFromStackFile, secretProblems, stackNames } from "./stack-file";

const ROOT = join(__dirname, "..");
const DEPLOY_KEY_2 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc ci@rotated";
jest.setTimeout(60_000);

/** Plans `input` with a fresh SDK instance (its runtime state is per module instance). */
const plan = planInIsolation;

const example = () => planInputFromStackFile("example");
function withConfig(change: (c: Record<string, unknown>) => void): PlanInput {
  const input = example();
  const config = structuredClone(input.config);
  change(config);
  return { ...input, config };
}
const changedNames = (a: Plan, b: Plan) => diffPlans(a, b).map((c) => `${c.change} ${c.name}`);
const inputsOf = (p: Plan, name: string) => p.resources.find((r) => r.name === name)!.inputs;

let base: Plan;
beforeAll(async () => {
  base = await plan(example());
});

test("the same config plans identically (text and JSON), and diffs as no change", async () => {
  const again = await plan(example());
  expect(renderPlanText(again)).toBe(renderPlanText(base));
  expect(JSON.stringify(again)).toBe(JSON.stringify(base));
  expect(diffPlans(base, again)).toEqual([]);
  expect(base.resources.length).toBe(31);
});

test("a unit's content: only that unit's command changes, the new line visible", async () => {
  const after = await plan(
    withConfig((c) => {
      (c.services as { execStart: string }[])[0].execStart =
        "/usr/bin/node /opt/provisioner/server.js --max-tenants 50";
    }),
  );
  expect(diffPlans(base, after)).toEqual([
    { name: "example-provisioner-unit", change: "changed", fields: ["stdin"] },
  ]);
  expect(inputsOf(after, "example-provisioner-unit").stdin).toContain(
    "ExecStart=/usr/bin/node /opt/provisioner/server.js --max-tenants 50\n",
  );
  expect(renderPlanText(after)).toContain(
    "ExecStart=/usr/bin/node /opt/provisioner/server.js --max-tenants 50",
  );
});

test("daemon.json: only the daemon-json step changes, the rendered JSON visible", async () => {
  const after = await plan(
    withConfig((c) => {
      (c.daemonConfig as { "log-opts": Record<string, string> })["log-opts"]["max-size"] = "50m";
    }),
  );
  expect(changedNames(base, after)).toEqual(["changed example-docker-daemon-json"]);
  expect(inputsOf(after, "example-docker-daemon-json").stdin).toContain('"max-size": "50m"');
});

test("the proxy allowlist: the proxy's canary runs the new config, then only the proxy container changes", async () => {
  const after = await plan(
    withConfig((c) => {
      c.socketProxy = { ...(c.socketProxy as object), allow: ["traefik", { sections: ["INFO"] }] };
    }),
  );
  expect(diffPlans(base, after)).toEqual([
    { name: "example-socket-proxy-canary", change: "changed", fields: ["create"] },
    { name: "example-socket-proxy-container", change: "changed", fields: ["envs", "labels"] },
  ]);
  expect(String(inputsOf(after, "example-socket-proxy-canary").create)).toContain("# GET /info");
  const envs = inputsOf(after, "example-socket-proxy-container").envs as string[];
  expect(envs[0]).toContain("  # GET /info\n");
  expect(renderPlanText(after)).toContain("# GET /info");
});

test("an env value (a secret): one resource changes, and the value never shows", async () => {
  const input = example();
  const secretA = {
    ...input,
    config: { ...input.config, serviceSecrets: { provisioner: { ADMIN_TOKEN: "token-AAAA" } } },
  };
  const secretB = {
    ...input,
    config: { ...input.config, serviceSecrets: { provisioner: { ADMIN_TOKEN: "token-BBBB" } } },
  };
  // in memory, with the values: exactly the env file's command differs
  const [a, b] = [await plan(secretA, true), await plan(secretB, true)];
  expect(changedNames(a, b)).toEqual(["changed example-provisioner-env-file"]);
  // as written: the same resource, its body shown as a secret, the values nowhere
  const [ra, rb] = [await plan(secretA), await plan(secretB)];
  expect(inputsOf(rb, "example-provisioner-env-file").stdin).toBe(REDACTED);
  for (const text of [renderPlanText(ra), renderPlanText(rb), JSON.stringify(rb)])
    expect(text).not.toMatch(/token-AAAA|token-BBBB/);
});

test("a new service adds its resources and changes nothing else but the gate's preflight", async () => {
  const after = await plan(
    withConfig((c) => {
      (c.services as unknown[]).push({ name: "worker", execStart: "/usr/local/bin/worker" });
    }),
  );
  // the readiness gate checks, before anything changes, that worker.service is not a unit of
  // the host's own: its script names the new unit
  expect(changedNames(base, after)).toEqual([
    "changed example-ssh-ready",
    "added example-worker",
    "added example-worker-unit",
  ]);
  expect(inputsOf(after, "example-ssh-ready").create).toContain("worker.service");
});

test("npm run plan -- --all writes stable text and JSON for every stack, with no secret", () => {
  const out = mkdtempSync(join(tmpdir(), "hd-plan-"));
  const run = () =>
    spawnSync("npx", ["tsx", join(ROOT, "stacks", "plan-cli.ts"), "--all", "--out", out], {
      cwd: ROOT,
      encoding: "utf8",
    });
  const r = run();
  // (the template stacks note the secrets an up needs; nothing else on stderr)
  expect(
    r.stderr
      .replace(/npm warn.*\n/g, "")
      .replace(/^plan (example|local): note .*\n(  .*\n)*/gm, ""),
  ).toBe("");
  expect(r.status).toBe(0);
  const first = stackNames().map((s) => readFileSync(join(out, `${s}.plan.txt`), "utf8"));
  expect(run().status).toBe(0);
  expect(stackNames().map((s) => readFileSync(join(out, `${s}.plan.txt`), "utf8"))).toEqual(first);
  for (const s of stackNames()) {
    const json = JSON.parse(readFileSync(join(out, `${s}.plan.json`), "utf8")) as Plan;
    expect(json.resources.length).toBeGreaterThan(0);
    expect(JSON.stringify(json)).not.toContain("plan-placeholder");
  }
  expect(r.stdout).toMatch(/plan example: 31 resources/);
}, 60_000);

test("plan refuses an unknown stack, naming the ones it has", () => {
  const r = spawnSync("npx", ["tsx", join(ROOT, "stacks", "plan-cli.ts"), "--stack", "nope"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/no Pulumi\.nope\.yaml in stacks \(have: example, local\)/);
}, 30_000);

/**
 * What `@pulumi/command` does with a changed resource: a change of `triggers` replaces it
 * (with deleteBeforeReplace, the old delete runs first); any other input change is an update
 * (create runs again).
 */
const providerAction = (a: Plan, b: Plan, name: string) =>
  commandAction(inputsOf(a, name), inputsOf(b, name)) ?? "none";

test("a service user change is an update of its step, never a replace (its delete removes the user's data)", async () => {
  const withRemoval = await plan(
    withConfig((c) => (c.removeServiceUserOnDestroy = true)),
    true,
  );
  for (const [what, change] of [
    ["shell", (c: Record<string, unknown>) => (c.serviceUserShell = "/bin/sh")],
    ["uid", (c: Record<string, unknown>) => (c.serviceUserUid = 1600)],
    ["subordinate range", (c: Record<string, unknown>) => (c.subordinateIdStart = 300000)],
    [
      "deploy key rotation",
      (c: Record<string, unknown>) => ((c.deployKeys as string[])[0] = DEPLOY_KEY_2),
    ],
  ] as const) {
    const after = await plan(
      withConfig((c) => {
        c.removeServiceUserOnDestroy = true;
        change(c);
      }),
      true, // values, not [secret]: a trigger hidden on both sides would look unchanged
    );
    for (const step of ["example-service-user-account", "example-service-user-deploy-keys"])
      expect([what, step, providerAction(withRemoval, after, step)]).toEqual([
        what,
        step,
        expect.stringMatching(/^(update|none)$/),
      ]);
  }
  // renaming the user is an update too: its create refuses it on the host, before any change
  const renamed = await plan(
    withConfig((c) => {
      c.removeServiceUserOnDestroy = true;
      c.serviceUser = "builder";
    }),
    true,
  );
  expect(providerAction(withRemoval, renamed, "example-service-user-account")).toBe("update");
  expect(inputsOf(renamed, "example-service-user-account").create).toContain(
    "/var/lib/hardened-docker/service-users/example-service-user",
  );
});

describe("a stack file with tenants", () => {
  const TENANT_KEY =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGsD7WDaJmdRbsvRlK03IXNCXo6sL5k21hb4jhXHYYQE ci-a";
  /** A host stack file whose tenant has a secret environment value and a Traefik dashboard. */
  function stackDir(secretsPart: string): string {
    const dir = mkdtempSync(join(tmpdir(), "hd-stacks-"));
    writeFileSync(
      join(dir, "Pulumi.web-1.yaml"),
      `config:
  hardened-docker:host: 10.0.0.5
  hardened-docker:hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample
  hardened-docker:privateKey:
    secure: v1:AAAA
  hardened-docker:tenants:
    - serviceUser:
        name: ci-a
        deployKeys: ["${TENANT_KEY}"]
      services:
        - name: ci-a-runner
          execStart: /usr/local/bin/runner
          secretEnvironment: [TOKEN]
      socketProxy: {}
      traefik:
        httpPort: 8080
        httpsPort: 8443
        dashboard: {}
${secretsPart}`,
    );
    return dir;
  }

  test("plans with its tenants' secrets (a service's and a dashboard's) as placeholders", async () => {
    const dir = stackDir(`  hardened-docker:serviceSecrets:
    secure: v1:BBBB
  hardened-docker:tenantDashboardUsers:
    ci-a:
      - secure: v1:CCCC
`);
    expect(secretProblems("web-1", dir)).toEqual({ unset: [], clearText: [] });
    const p = await plan(planInputFromStackFile("web-1", dir));
    const names = p.resources.map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining(["web-1-ci-a-ci-a-runner-unit", "web-1-ci-a-traefik-container"]),
    );
    expect(JSON.stringify(p)).not.toContain("plan-placeholder");
  });

  test("secrets a tenant needs: unset ones named with their command, clear ones refused", () => {
    const unset = secretProblems("web-1", stackDir(""));
    expect(unset.unset).toEqual([
      "serviceSecrets.ci-a-runner.TOKEN: pulumi config set --secret --path 'serviceSecrets.ci-a-runner.TOKEN' <value> -s web-1",
      `tenantDashboardUsers.ci-a: pulumi config set --secret --path 'tenantDashboardUsers.ci-a[0]' "$(htpasswd -nbB admin <password>)" -s web-1`,
    ]);
    const clear = secretProblems(
      "web-1",
      stackDir(`  hardened-docker:tenantDashboardUsers:
    ci-a: ["admin:hunter2"]
`),
    );
    expect(clear.clearText).toEqual([
      expect.stringMatching(
        /^tenantDashboardUsers\.ci-a is in clear text in .*Pulumi\.web-1\.yaml: set it with pulumi config set --secret --path 'tenantDashboardUsers\.ci-a\[0\]'/,
      ),
    ]);
  });
});
