import { InvalidArgument, checkLine } from "../core/validate";

/** A directive value: booleans render as yes/no, arrays as one line per element. */
export type DirectiveValue = string | number | boolean;

/** Directives of one section, in the order they are written. */
export type UnitSection = Readonly<Record<string, DirectiveValue | readonly DirectiveValue[]>>;

/** The typed sections of a unit file. Unknown section names are rejected. */
export interface UnitFileSections {
  readonly Unit?: UnitSection;
  readonly Service?: UnitSection;
  readonly Socket?: UnitSection;
  readonly Timer?: UnitSection;
  readonly Path?: UnitSection;
  readonly Install?: UnitSection;
}

const SECTION_ORDER = ["Unit", "Service", "Socket", "Timer", "Path", "Install"] as const;
const DIRECTIVE = /^[A-Z][A-Za-z0-9]{1,63}$/;

/** First line of every file the library writes, so operators know not to edit it by hand. */
export const MANAGED_HEADER =
  "# Managed by hardened-docker (Pulumi). Local edits are overwritten on the next apply.";

/**
 * Renders a systemd unit file from typed sections. Pure: the same input gives the same text,
 * byte for byte (a preview diff shows exactly the lines that change).
 *
 * @throws InvalidArgument for an unknown section, a malformed directive name, or a value with
 * a newline or control character (which would inject a directive).
 */
export function renderSystemdUnit(sections: UnitFileSections, field = "unit"): string {
  const lines = [MANAGED_HEADER];
  for (const key of Object.keys(sections)) {
    if (!(SECTION_ORDER as readonly string[]).includes(key)) {
      throw new InvalidArgument(
        `${field}.${key}`,
        key,
        `a unit file section: ${SECTION_ORDER.join(", ")}`,
      );
    }
  }
  for (const name of SECTION_ORDER) {
    const section = sections[name];
    if (section === undefined) continue;
    lines.push("", `[${name}]`);
    for (const [directive, raw] of Object.entries(section)) {
      const where = `${field}.${name}.${directive}`;
      if (!DIRECTIVE.test(directive)) {
        throw new InvalidArgument(
          where,
          directive,
          "a directive name like ExecStart: a capital letter, then letters and digits",
        );
      }
      const values = Array.isArray(raw) ? raw : [raw as DirectiveValue];
      for (const v of values) lines.push(`${directive}=${renderValue(where, v)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function renderValue(field: string, value: DirectiveValue): string {
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidArgument(field, value, "a finite number");
    return String(value);
  }
  const text = checkLine(field, value, "a directive value");
  if (text.endsWith("\\")) {
    throw new InvalidArgument(
      field,
      value,
      "a directive value not ending in '\\' (systemd would join the next line)",
    );
  }
  return text;
}
