/**
 * The key table (stacks/keys.ts) is the one definition of a stack key: the docs' table and
 * Pulumi.yaml's schema must be what it renders, each default it declares must be the one the
 * program uses (planned both ways), and each key it maps by path must land on that argument.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { hostArgsFromConfig, plainConfigSource } from "./config";
import {
  CONFIG_KEYS,
  STACK_KEYS,
  StackKey,
  declaredSchema,
  renderKeyTable,
  withTable,
} from "./keys";
import { renderPlanText } from "./plan";
import { planInputFromStackFile } from "./stack-file";
import { planInIsolation } from "../test/helpers/plan";

const ROOT = join(__dirname, "..");
jest.setTimeout(120_000);
const rows = Object.entries(STACK_KEYS as Record<string, StackKey>);

test("docs/configuration.md shows the table (to update it: npx tsx stacks/keys.ts)", () => {
  const doc = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");
  expect(doc).toContain(renderKeyTable());
  expect(withTable(doc, "key-table", renderKeyTable())).toBe(doc);
});

test("Pulumi.yaml declares what the table declares, in its order (npx tsx stacks/keys.ts)", () => {
  const project = parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  expect(project.config).toEqual(declaredSchema());
  expect(Object.keys(project.config)).toEqual(Object.keys(declaredSchema()));
  expect(CONFIG_KEYS).toEqual(expect.arrayContaining(Object.keys(project.config)));
});

test("a key the table gives a default has one of the types Pulumi's schema takes", () => {
  for (const [key, k] of rows)
    if (k.default !== undefined || k.declared !== undefined)
      expect([key, k.type]).not.toEqual([key, "object"]);
});

/** A value of each path-mapped key that the program accepts, to see where it lands. */
const SAMPLES: Record<string, unknown> = {
  host: "10.0.0.9",
  port: 2202,
  user: "admin",
  sudo: true,
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample",
  insecureIgnoreHostKey: false,
  serviceUser: "builder",
  serviceUserUid: 1700,
  serviceUserShell: "/bin/sh",
  subordinateIdStart: 300000,
  subordinateIdCount: 70000,
  removeServiceUserOnDestroy: true,
  serviceUserLimits: { cpuPercent: 150 },
  serviceUserPorts: { from: 8000, to: 8100 },
  dockerInstall: "docker-repo",
  dockerVersion: "28.5.1",
  dockerSha256: "a".repeat(64),
  dockerRootlessExtrasSha256: "b".repeat(64),
  unprivilegedPortStart: 80,
  portDriver: "builtin",
  disableRootfulDaemon: false,
  deployKeys: [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc d",
  ],
  dockerIdentityFile: "/home/ci/.ssh/deploy",
};
const pathKeys = rows.filter(([, k]) => k.mapping === "path").map(([key]) => key);

test("every key mapped by path has a sample here", () => {
  expect(Object.keys(SAMPLES).sort()).toEqual([...pathKeys].sort());
});

test.each(pathKeys)("%s lands on the argument the table names", (key) => {
  const args = hostArgsFromConfig(
    plainConfigSource({ host: "h", privateKey: "K", [key]: SAMPLES[key] }),
  ) as unknown as Record<string, unknown>;
  const at = STACK_KEYS[key as keyof typeof STACK_KEYS].arg
    .split(".")
    .reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], args);
  expect(at).toEqual(SAMPLES[key]);
});

describe("each default the table declares is the program's own", () => {
  const withDefaults = rows.filter(([, k]) => k.default !== undefined);
  test.each(withDefaults)(
    "%s: written out or unset, the example stack plans the same",
    async (key, k) => {
      const input = planInputFromStackFile("example");
      const base: Record<string, unknown> = {
        ...input.config,
        hostKey: undefined,
        insecureIgnoreHostKey: true,
      };
      if (key === "insecureIgnoreHostKey") base.hostKey = input.config.hostKey;
      const unset = { ...base, [key]: undefined };
      const written = { ...base, [key]: k.default };
      const clean = (c: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
      const a = await planInIsolation({ ...input, config: clean(unset) });
      const b = await planInIsolation({ ...input, config: clean(written) });
      expect(renderPlanText(b)).toBe(renderPlanText(a));
    },
  );
});

describe("unset, as the stack file can write it", () => {
  const argsOf = (values: Record<string, unknown>) =>
    hostArgsFromConfig(plainConfigSource({ host: "h", privateKey: "K", ...values }));

  test("a blank where the table says so, and null anywhere, is unset", () => {
    const a = argsOf({ hostKey: "", dockerIdentityFile: "", serviceUser: null, port: null });
    expect(a.connection).not.toHaveProperty("hostKey");
    expect(a.connection).not.toHaveProperty("port");
    expect(a).not.toHaveProperty("dockerApi");
    expect(a.serviceUser.name).toBe(STACK_KEYS.serviceUser.default);
  });

  test("a blank elsewhere stays, for validation to refuse by name", () => {
    expect(argsOf({ serviceUserShell: "" }).serviceUser.shell).toBe("");
  });

  test("a secret written as text is never parsed (the error would show it)", () => {
    const source = plainConfigSource({ serviceSecrets: "{hunter2" });
    expect(() => source.getSecretObject("serviceSecrets")).not.toThrow();
    expect(() => plainConfigSource({ daemonConfig: "{x" }).get("daemonConfig")).toThrow(
      /daemonConfig/,
    );
  });
});
