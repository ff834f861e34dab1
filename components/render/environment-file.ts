import { MANAGED_HEADER } from "./systemd-unit";
import { checkEnvKey, checkLine } from "../validate";

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
    try {
      checkLine(`${field}.${key}`, value);
    } catch {
      throw new Error(
        `${field}.${key}: the value is not valid: a single line without control characters (value not shown: it may be secret).`,
      );
    }
    lines.push(`${key}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`);
  }
  return lines.join("\n") + "\n";
}
