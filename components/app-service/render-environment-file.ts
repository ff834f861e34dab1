import { MANAGED_HEADER } from "../systemd-unit/render";
import { checkEnvKey, secretLineProblem } from "../core/validate";

/**
 * Renders a systemd `EnvironmentFile=`: one `KEY="value"` per line, keys sorted. Values are
 * double-quoted with `\`, `"`, `$` and backtick escaped, which systemd reads back verbatim
 * (no variable expansion, no word splitting).
 *
 * @throws InvalidArgument for a bad key or a value with a newline or control character.
 */
export function renderEnvironmentFile(
  values: Readonly<Record<string, string>>,
  field = "environment",
): string {
  const lines = [MANAGED_HEADER];
  for (const key of Object.keys(values).sort()) {
    checkEnvKey(`${field}.${key}`, key);
    // The value is never echoed in an error: it may be a secret.
    const value = values[key];
    const problem = secretLineProblem(`${field}.${key}`, value);
    if (problem) throw new Error(problem);
    lines.push(`${key}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`);
  }
  return lines.join("\n") + "\n";
}
