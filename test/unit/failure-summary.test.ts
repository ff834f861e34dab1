// the reporter is CommonJS, loaded by Jest itself; the test loads it the same way
// eslint-disable-next-line @typescript-eslint/no-require-imports
const FailureSummary = require("../failure-summary.js") as new () => {
  onRunComplete(contexts: unknown, results: unknown): void;
  onTestCaseResult(test: unknown, result: unknown): void;
};

/** What `write` sent to stderr (where the reporter writes). */
function stderrOf(write: () => void): string {
  const written: string[] = [];
  const spy = jest.spyOn(process.stderr, "write").mockImplementation((s) => {
    written.push(String(s));
    return true;
  });
  try {
    write();
  } finally {
    spy.mockRestore();
  }
  return written.join("");
}

function summaryOf(failures: number, passes = 2): string[] {
  const testResults = [
    ...Array.from({ length: passes }, (_, i) => ({
      status: "passed",
      fullName: `ok ${i}`,
      failureMessages: [],
    })),
    ...Array.from({ length: failures }, (_, i) => ({
      status: "failed",
      fullName: `broken ${i}`,
      failureMessages: [
        `\u001b[31mError: cause ${i}\u001b[39m\n${Array.from({ length: 20 }, (_, j) => `  detail ${j}`).join("\n")}\n    at Object.<anonymous> (x.ts:1:1)`,
      ],
    })),
  ];
  return stderrOf(() =>
    new FailureSummary().onRunComplete([], { testResults: [{ testFilePath: "f", testResults }] }),
  ).split("\n");
}

describe("the failure summary at the end of a Jest run", () => {
  test("nothing when all pass", () => {
    expect(summaryOf(0)).toEqual([""]);
  });

  test("the first failures in detail, without colours or stack lines", () => {
    const lines = summaryOf(1);
    expect(lines).toContain("- broken 0");
    expect(lines).toContain("    Error: cause 0");
    expect(lines.join("\n")).not.toMatch(/\u001b|at Object/);
    expect(lines.filter((l) => l.startsWith("    "))).toHaveLength(12);
  });

  test("28 failures: 3 in detail, the rest one line each, under 70 lines in all", () => {
    const lines = summaryOf(28);
    expect(lines[1]).toBe("failed (28), in run order; the first ones in detail:");
    expect(lines).toContain("    Error: cause 2");
    expect(lines).not.toContain("    Error: cause 3");
    expect(lines).toContain("then 25 more:");
    expect(lines).toContain("- broken 27");
    expect(lines.length).toBeLessThan(70);
  });

  test("past 25 more, the count of the rest", () => {
    const lines = summaryOf(40);
    expect(lines).toContain("- ... and 12 more");
    expect(lines.length).toBeLessThan(70);
  });
});

describe("progress of long tests, as each ends", () => {
  const lineOf = (duration: number) =>
    stderrOf(() =>
      new FailureSummary().onTestCaseResult(
        {},
        { status: "passed", fullName: "converge", duration },
      ),
    );
  test("a test of 20 s or more: its status, time and the run's clock", () => {
    expect(lineOf(461_500)).toMatch(/^\[\d+ s\] passed in 461\.5 s: converge\n$/);
  });
  test("a short test: nothing (npm test stays quiet)", () => {
    expect(lineOf(19_999)).toBe("");
  });
});
