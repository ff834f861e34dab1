/**
 * The labels every library container carries (pure: `verify`, the canary script and the
 * components read them without the Pulumi SDK).
 */

/** Label every library container carries, so `verify` and policies can recognise it. */
export const ROLE_LABEL = "dev.hardened-docker.role";

/**
 * The label that carries a hash of a library container's spec: what the canary compares to
 * decide whether the running container already is the declared one.
 */
export const SPEC_LABEL = "dev.hardened-docker.spec";
