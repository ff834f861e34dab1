/**
 * Jest's globalTeardown for \`npm test\`: removes the run's temporary directory (TMPDIR, made by
 * test/tools.ts). HD_KEEP_TMP=1 keeps it, and says where it is.
 */
import { rmSync } from "node:fs";

export default function globalTeardown(): void {
  const dir = process.env.HD_TEST_TMPDIR;
  if (!dir) return;
  if (process.env.HD_KEEP_TMP) {
    process.stderr.write(`npm test: kept its temporary files in ${dir}\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}
