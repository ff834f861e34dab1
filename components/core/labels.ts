/**
 * The labels every library container carries (pure: `verify`, the canary script and the
 * components read them without the Pulumi SDK).
 */

/** Label every library container carries, so `verify` and policies can recognise it. */
export const ROLE_LABEL = "dev.hardened-docker.role";

/** The roles of the library's containers (values of `ROLE_LABEL`). */
export const ROLES = { socketProxy: "socket-proxy", traefik: "traefik" } as const;
export type Role = (typeof ROLES)[keyof typeof ROLES];

/** Whether a container's labels give it `role`: the one test verify and the policy pack use. */
export function hasRole(
  labels: Readonly<Record<string, string>> | null | undefined,
  role: Role,
): boolean {
  return labels?.[ROLE_LABEL] === role;
}

/**
 * The label that carries a hash of a library container's spec: what the canary compares to
 * decide whether the running container already is the declared one.
 */
export const SPEC_LABEL = "dev.hardened-docker.spec";
