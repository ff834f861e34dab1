/**
 * Pulumi mocks for unit tests. Records every registered resource with its inputs, its raw
 * serialized inputs (to see which are secret), its parent, its dependencies and its options.
 * Import this BEFORE the code under test: `setMocks` must run first.
 */
import * as pulumi from "@pulumi/pulumi";
import { isSecretWrapper, unwrapSecrets } from "../../stacks/plan";
// The mock monitor does not hand dependencies to `newResource`; tests read them off the
// registration request instead.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks");

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly inputs: Record<string, unknown>;
  readonly rawInputs: Record<string, unknown>;
  readonly parent: string;
  readonly dependsOn: string[];
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: string[];
  readonly additionalSecretOutputs: string[];
  /** Provider reference (`urn::id`), empty for the default provider. */
  readonly provider: string;
}

export const recorded: Recorded[] = [];

/** Fake stdout per remote command name (e.g. the service-user report). */
export const commandStdout: Record<string, string> = {};

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getProvider(): string;
}

const original = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (
  req: RegisterRequest,
  callback: (err: unknown, res: unknown) => void,
) {
  const entry = {
    type: req.getType(),
    name: req.getName(),
    parent: req.getParent(),
    rawInputs: req.getObject()?.toJavaScript() ?? {},
    dependsOn: req.getDependenciesList(),
    deleteBeforeReplace: req.getDeletebeforereplace(),
    ignoreChanges: req.getIgnorechangesList(),
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    provider: req.getProvider(),
  };
  return original.call(this, req, (err: unknown, res: { getUrn(): string } | undefined) => {
    const key = entry.type + "::" + entry.name;
    if (res) recorded.push({ ...entry, urn: res.getUrn(), inputs: inputsByKey.get(key) ?? {} });
    callback(err, res);
  });
};
const inputsByKey = new Map<string, Record<string, unknown>>();

void pulumi.runtime.setMocks(
  {
    newResource(args: pulumi.runtime.MockResourceArgs) {
      const state: Record<string, unknown> = { ...args.inputs };
      if (args.type === "command:remote:Command") {
        state.stdout = commandStdout[args.name] ?? defaultStdout(args.name);
        state.stderr = "";
      }
      if (args.type === "docker:index/remoteImage:RemoteImage")
        state.imageId = `sha256:mock-${String(args.inputs.name)}`;
      inputsByKey.set(
        args.type + "::" + args.name,
        unwrapSecrets(args.inputs) as Record<string, unknown>,
      );
      return { id: `${args.name}-id`, state };
    },
    call(args: pulumi.runtime.MockCallArgs) {
      return args.inputs;
    },
  },
  "hardened-docker",
  "test",
  false,
);

function defaultStdout(name: string): string {
  return name.endsWith("-account") ? "uid=1001\nhome=/home/provisioner\n" : "";
}

/** True when the raw serialized value is a Pulumi secret. */
export const isSecret = isSecretWrapper;
export { unwrapSecrets };

/** Resolves an Output in a test. */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply(resolve));
}

/** Lets every pending registration finish, then returns what was recorded. */
export async function settle(): Promise<Recorded[]> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  return recorded;
}

export function reset(): void {
  recorded.length = 0;
  inputsByKey.clear();
}

export function byName(name: string): Recorded {
  const r = recorded.find((x) => x.name === name);
  if (!r)
    throw new Error(`no resource named ${name}; have: ${recorded.map((x) => x.name).join(", ")}`);
  return r;
}
