/**
 * A Pulumi `Output`, recognised without loading the SDK: the same test as
 * `pulumi.Output.isInstance` (a `__pulumiOutput` member that is `true`, so that it holds across
 * copies of the SDK). `verify` and the policy pack share this module and never load the SDK.
 */
export function isOutput(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { __pulumiOutput?: unknown }).__pulumiOutput === true
  );
}
