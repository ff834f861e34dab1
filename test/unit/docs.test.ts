/**
 * TSDoc `@default`s that restate a value defined in code must state that value (an editor's
 * hover is where a user of the components reads them), and npm test's own tool check.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as semver from "semver";
import { DEFAULT_SOCKET_PROXY_IMAGE } from "../../components/socket-proxy/args";
import { DEFAULT_TRAEFIK_IMAGE } from "../../components/traefik/args";
import { DEFAULT_DAEMON_CONFIG } from "../../components/rootless-docker/daemon-json";
import { ensureTools, missingTools } from "../tools";

const source = (f: string) => readFileSync(join(__dirname, "..", "..", "components", f), "utf8");
/** The `@default` of the doc comment right above `readonly <field>`. */
function defaultOf(file: string, field: string): string {
  const m = new RegExp(
    `@default ([^\\n]*?)\\s*(?:\\*/)?\\n(?:\\s*\\*/\\n)?\\s*readonly ${field}\\??:`,
  ).exec(source(file));
  if (!m) throw new Error(`no @default above ${field} in ${file}`);
  return m[1];
}

test("the proxy's and Traefik's image defaults name the images, not constants", () => {
  expect(defaultOf("socket-proxy/args.ts", "image")).toBe(
    JSON.stringify(DEFAULT_SOCKET_PROXY_IMAGE),
  );
  expect(defaultOf("traefik/args.ts", "image")).toBe(JSON.stringify(DEFAULT_TRAEFIK_IMAGE));
});

test("daemonConfig's default is the config the renderer merges (icc is not in it)", () => {
  const doc = defaultOf("rootless-docker/args.ts", "daemonConfig");
  const json = /^(\{.*\}) \(/.exec(doc)?.[1];
  expect(JSON.parse(json ?? "null")).toEqual(DEFAULT_DAEMON_CONFIG);
  expect(DEFAULT_DAEMON_CONFIG).not.toHaveProperty("icc");
  expect(doc).not.toMatch(/icc off/);
});

test("npm test's tool check names the missing tools and the exact apt command", () => {
  const tools = { "hd-no-such-tool": "hd-pkg-b", bash: "bash", "hd-other-missing": "hd-pkg-a" };
  expect(missingTools(tools)).toEqual({
    missing: ["hd-no-such-tool", "hd-other-missing"],
    install: "apt-get update && apt-get install -y --no-install-recommends hd-pkg-a hd-pkg-b",
  });
  expect(() => ensureTools(tools, { HD_NO_INSTALL: "1" })).toThrow(
    "npm test needs hd-no-such-tool, hd-other-missing, missing here. Install them with:\n  sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends hd-pkg-a hd-pkg-b'",
  );
  expect(() => ensureTools({ bash: "bash" })).not.toThrow();
});

test("the Node.js the README asks for is package.json's engines, and the one running the tests", () => {
  const root = join(__dirname, "..", "..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    engines: { node: string };
  };
  const min = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
  expect(min).not.toBeNull();
  expect(readFileSync(join(root, "README.md"), "utf8")).toContain(
    `Node.js ${min![1]}.${min![2]} or newer`,
  );
  const [major, minor] = process.versions.node.split(".").map(Number);
  expect(major * 1000 + minor).toBeGreaterThanOrEqual(Number(min![1]) * 1000 + Number(min![2]));
});

test("package.json's engines is one every dependency a consumer installs accepts", () => {
  const root = join(__dirname, "..", "..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    engines: { node: string };
  };
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean; engines?: { node?: string } }>;
  };
  const ours = semver.minVersion(pkg.engines.node)!.version;
  const refusing = Object.entries(lock.packages)
    .filter(([path, p]) => path && !p.dev && p.engines?.node)
    .filter(([, p]) => !semver.satisfies(ours, p.engines!.node!))
    .map(([path, p]) => `${path.replace(/^.*node_modules\//, "")} wants ${p.engines!.node}`);
  expect(refusing).toEqual([]);
  // and the check bites: Node 20 is refused by the Pulumi SDK
  expect(
    semver.satisfies("20.20.0", lock.packages["node_modules/@pulumi/pulumi"].engines!.node!),
  ).toBe(false);
});
