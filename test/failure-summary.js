/**
 * A Jest reporter: after the run, one short block per failed test (its name and the first lines
 * of its error, without colours), as the very last output. A CI log that keeps only the head
 * and the tail of a long VM run still shows what failed and why.
 */
class FailureSummary {
  onRunComplete(_contexts, results) {
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
    const lines = [`\nfailed (${failed.length}), in run order:`];
    for (const f of failed) {
      const message = clean(f.message)
        .split("\n")
        .filter((l) => l.trim() !== "" && !/^\s+at /.test(l))
        .slice(0, 12);
      lines.push(`- ${f.name}`, ...message.map((l) => `    ${l.slice(0, 300)}`));
    }
    process.stderr.write(`${lines.join("\n")}\n`);
  }
}
module.exports = FailureSummary;
