/**
 * The README and docs/ are read on GitHub: every relative link resolves to a file of the
 * repository and every `#anchor` to a heading of its target (GitHub's slugs); every repository
 * path quoted in backticks exists; the README stays a first read (its size, and the two test
 * commands on its first screen).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(__dirname, "..", "..");
const REFERENCE = ["configuration.md", "verify.md", "security.md", "testing.md"];

/** README.md, CHANGELOG.md and docs/*.md, repository-relative. */
function markdownFiles(): string[] {
  const docs = join(ROOT, "docs");
  const inDocs = existsSync(docs)
    ? readdirSync(docs)
        .filter((f) => f.endsWith(".md"))
        .sort()
        .map((f) => `docs/${f}`)
    : [];
  return ["README.md", "CHANGELOG.md", ...inDocs];
}

/** The text outside fenced code blocks, line by line (a fence's lines become ""). */
function prose(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split("\n").map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence === undefined && m) {
      fence = m[1];
      return "";
    }
    if (fence !== undefined) {
      if (line.trim().startsWith(fence)) fence = undefined;
      return "";
    }
    return line;
  });
}

/**
 * A heading's anchor as GitHub makes it (github-slugger): the rendered text, lowercased,
 * everything but letters, digits, `_`, `-` and spaces dropped, each space a hyphen.
 */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/<[^>]+>/g, "") // inline HTML
    .replace(/`([^`]*)`/g, "$1") // code spans: their content
    .replace(/(\*\*|\*)(\S(?:.*?\S)?)\1/g, "$2"); // emphasis
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every heading anchor of a markdown text; repeated headings get -1, -2, ... as on GitHub. */
function anchors(markdown: string): Set<string> {
  const occurrences = new Map<string, number>();
  for (const line of prose(markdown)) {
    const m = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    let id = base;
    while (occurrences.has(id)) {
      const n = occurrences.get(base)! + 1;
      occurrences.set(base, n);
      id = `${base}-${n}`;
    }
    occurrences.set(id, 0);
  }
  return new Set(occurrences.keys());
}

/** Link targets that are not absolute URLs: inline `[..](target)` and `[ref]: target` lines. */
function relativeLinks(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, "");
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]);
    const def = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text);
    if (def) targets.push(def[1]);
  }
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** What is wrong with each relative link of `file` (repository-relative); [] when all resolve. */
function brokenLinks(file: string, markdown: string, read = readRepoFile): string[] {
  const problems: string[] = [];
  for (const target of relativeLinks(markdown)) {
    const hash = target.indexOf("#");
    const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const to = path === "" ? file : relative(ROOT, resolve(ROOT, dirname(file), path));
    if (to.startsWith("..")) {
      problems.push(`${file}: ${target}: outside the repository`);
      continue;
    }
    const text = read(to);
    if (text === undefined) {
      problems.push(`${file}: ${target}: ${to} does not exist`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!to.endsWith(".md"))
      problems.push(`${file}: ${target}: an anchor into a non-markdown file`);
    else if (!anchors(text).has(anchor))
      problems.push(`${file}: ${target}: no heading with the anchor #${anchor} in ${to}`);
  }
  return problems;
}

/** A repository file's text ("" for a directory), or undefined when there is none. */
function readRepoFile(path: string): string | undefined {
  const full = join(ROOT, path);
  if (!existsSync(full)) return undefined;
  try {
    return readFileSync(full, "utf8");
  } catch {
    return ""; // a directory
  }
}

/**
 * Backticked repository paths of a markdown text: a relative path with a slash and an
 * extension whose first segment is not a domain (`docker.io/...`); placeholders such as
 * `stacks/Pulumi.<host>.yaml` and absolute or home paths are not repository paths.
 */
function quotedRepoPaths(markdown: string): string[] {
  const paths: string[] = [];
  for (const line of prose(markdown)) {
    for (const m of line.matchAll(/`([^`\n]+)`/g)) {
      const p = m[1];
      if (!/^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+$/.test(p)) continue;
      if (!/\.[A-Za-z0-9]+$/.test(p.split("/").pop()!)) continue;
      const first = p.split("/")[0];
      if (first === "." || first === ".." || (!first.startsWith(".") && first.includes(".")))
        continue;
      paths.push(p);
    }
  }
  return paths;
}

describe("the checks themselves", () => {
  test("slugs are GitHub's", () => {
    expect(slug("Socket proxy (`socketProxy`)")).toBe("socket-proxy-socketproxy");
    expect(slug("Proving a host is hardened: `verify`")).toBe("proving-a-host-is-hardened-verify");
    expect(slug("What runs on the real engine, and what on the stand-in")).toBe(
      "what-runs-on-the-real-engine-and-what-on-the-stand-in",
    );
    expect(slug("Quick start (one stack per host)")).toBe("quick-start-one-stack-per-host");
    expect(slug("snake_case and **bold** [a link](x.md)")).toBe("snake_case-and-bold-a-link");
    expect([...anchors("# A\n## A\n```sh\n# A\n```\n### A\n")]).toEqual(["a", "a-1", "a-2"]);
  });

  test("a missing file, a missing anchor and a link into code are found; URLs and code are skipped", () => {
    const files: Record<string, string> = { "docs/x.md": "# Title\n## Sub part\n" };
    const md = [
      "[ok](docs/x.md#sub-part) [ok](#here) [url](https://example.com/a.md#nope)",
      "# Here",
      "[gone](docs/nope.md) [bad anchor](docs/x.md#nope) `[code](docs/nope.md)`",
      "```md",
      "[fenced](docs/nope.md)",
      "```",
      "[ref]: docs/missing.md",
    ].join("\n");
    const read = (p: string) => (p === "README.md" ? md : files[p]);
    expect(brokenLinks("README.md", md, read)).toEqual([
      "README.md: docs/nope.md: docs/nope.md does not exist",
      "README.md: docs/x.md#nope: no heading with the anchor #nope in docs/x.md",
      "README.md: docs/missing.md: docs/missing.md does not exist",
    ]);
    expect(brokenLinks("docs/y.md", "[up](../README.md#here) [out](../../x.md)", read)).toEqual([
      "docs/y.md: ../../x.md: outside the repository",
    ]);
  });

  test("quoted repository paths: files with an extension, not placeholders, hosts or absolute paths", () => {
    const md =
      "`stacks/Pulumi.example.yaml` `.github/workflows/preview.yml` `stacks/Pulumi.<host>.yaml` " +
      "`/var/run/docker.sock` `~/.ssh/id.pub` `docker.io/library/haproxy:3.2` `github.com/a/b.go` " +
      "`test/fixtures/verify/` `npm run plan -- --all` `.vm/id_ed25519`";
    expect(quotedRepoPaths(md)).toEqual([
      "stacks/Pulumi.example.yaml",
      ".github/workflows/preview.yml",
    ]);
  });
});

describe("the documentation", () => {
  test("docs/ holds the reference and the README links each file", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const f of REFERENCE) {
      expect(existsSync(join(ROOT, "docs", f))).toBe(true);
      expect(relativeLinks(readme).map((t) => t.split("#")[0])).toContain(`docs/${f}`);
    }
  });

  test.each(markdownFiles())("%s: every relative link and anchor resolves", (file) => {
    expect(brokenLinks(file, readFileSync(join(ROOT, file), "utf8"))).toEqual([]);
  });

  test.each(markdownFiles())("%s: every repository path it quotes exists", (file) => {
    const missing = quotedRepoPaths(readFileSync(join(ROOT, file), "utf8")).filter(
      (p) => !existsSync(join(ROOT, p)),
    );
    expect(missing).toEqual([]);
  });

  const stackFiles = readdirSync(join(ROOT, "stacks")).filter((f) => /^Pulumi\..*\.yaml$/.test(f));
  /** The `docs/<file>.md#anchor` references in a stack file's comments, as links from stacks/. */
  const docRefs = (f: string) =>
    [
      ...readFileSync(join(ROOT, "stacks", f), "utf8").matchAll(/docs\/[\w.-]+\.md(?:#[\w-]+)?/g),
    ].map((m) => `[ref](../${m[0]})`);

  test.each(stackFiles)(
    "stacks/%s: the docs its comments point at exist, at those headings",
    (f) => {
      expect(brokenLinks(`stacks/${f}`, docRefs(f).join("\n"))).toEqual([]);
    },
  );

  test("the example stack's comments point into docs/ (the check above has something to check)", () => {
    expect(docRefs("Pulumi.example.yaml").length).toBeGreaterThan(0);
  });

  test("the README quotes repository paths (the path check has something to check)", () => {
    const quoted = quotedRepoPaths(readFileSync(join(ROOT, "README.md"), "utf8"));
    expect(quoted).toContain("stacks/Pulumi.example.yaml");
  });

  test("the README is a first read: under 25,000 bytes, both test commands in its first 40 lines", () => {
    const readme = readFileSync(join(ROOT, "README.md"));
    expect(readme.length).toBeLessThan(25_000);
    const top = readme.toString("utf8").split("\n").slice(0, 40).join("\n");
    expect(top).toContain("npm test");
    expect(top).toContain("npm run test:e2e");
  });
});

test("the package carries the README's documentation: docs/ and the changelog", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const packed = new Set(
    (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path),
  );
  expect(markdownFiles().filter((f) => !packed.has(f))).toEqual([]);
});
