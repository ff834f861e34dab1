/**
 * A Jest reporter: after the run, a short summary of what failed, without colours, as the very
 * last output. A CI log that keeps only the head and the tail of a long VM run still shows what
 * failed and why. In a VM suite the first failure is usually the cause and the others follow
 * from it, so the first failures get their error's first lines and every other failed test one
 * line: the summary stays under ~70 lines however many fail. Before it, when a test took a
 * minute or more, the slowest tests with their times: a VM run's log shows where its time went.
 */
const DETAILED = 3;
const DETAIL_LINES = 12;
const LISTED = 25;
/** The slowest tests, when some took a minute or more (the VM suite): where its time goes. */
const SLOWEST = 12;
const SLOW_MS = 60_000;

/** A test that took this long is named as it ends, with the run's clock (see onTestCaseResult). */
const PROGRESS_MS = 20_000;

class FailureSummary {
  constructor() {
    this.started = Date.now();
  }

  /**
   * As each long test ends (the VM suites), one line: its status, its time and the run's
   * clock. Jest prints a file's results only when the whole file ends, so without this a run
   * cut off by a time limit shows nothing of where its hour went.
   */
  onTestCaseResult(_test, t) {
    const ms = t.duration ?? 0;
    if (ms < PROGRESS_MS) return;
    const clock = ((Date.now() - this.started) / 1000).toFixed(0);
    const took = (ms / 1000).toFixed(1);
    process.stderr.write(`[${clock} s] ${t.status} in ${took} s: ${t.fullName.slice(0, 110)}\n`);
  }

  onRunComplete(_contexts, results) {
    this.slowest(results);
    this.failures(results);
  }

  slowest(results) {
    const all = results.testResults.flatMap((f) =>
      f.testResults.map((t) => ({ name: t.fullName, ms: t.duration ?? 0 })),
    );
    if (!all.some((t) => t.ms >= SLOW_MS)) return;
    const total = all.reduce((sum, t) => sum + t.ms, 0);
    const top = [...all].sort((a, b) => b.ms - a.ms).slice(0, SLOWEST);
    const lines = [
      `\nslowest ${top.length} of ${all.length} tests (all: ${(total / 1000).toFixed(0)} s):`,
    ];
    for (const t of top)
      lines.push(`${(t.ms / 1000).toFixed(1).padStart(8)} s  ${t.name.slice(0, 110)}`);
    process.stderr.write(`${lines.join("\n")}\n`);
  }

  failures(results) {
    const failed = [];
    for (const file of results.testResults) {
      if (file.testExecError)
        failed.push({ name: file.testFilePath, message: file.testExecError.message });
      for (const t of file.testResults)
        if (t.status === "failed")
          failed.push({ name: t.fullName, message: t.failureMessages.join("\n") });
    }
    if (failed.length === 0) return;
    const clean = (s) => s.replace(/\u001b\[[0-9;]*m/g, "");
    const lines = [`\nfailed (${failed.length}), in run order; the first ones in detail:`];
    for (const f of failed.slice(0, DETAILED)) {
      const message = clean(f.message)
        .split("\n")
        .filter((l) => l.trim() !== "" && !/^\s+at /.test(l))
        .slice(0, DETAIL_LINES);
      lines.push(`- ${f.name}`, ...message.map((l) => `    ${l.slice(0, 300)}`));
    }
    const rest = failed.slice(DETAILED);
    if (rest.length > 0) {
      lines.push(`then ${rest.length} more:`);
      for (const f of rest.slice(0, LISTED)) lines.push(`- ${f.name.slice(0, 200)}`);
      if (rest.length > LISTED) lines.push(`- ... and ${rest.length - LISTED} more`);
    }
    process.stderr.write(`${lines.join("\n")}\n`);
  }
}
module.exports = FailureSummary;
