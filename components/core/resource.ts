/** The bridge from validation (core/validate.ts, pure) to a Pulumi resource's errors and inputs. */
import * as pulumi from "@pulumi/pulumi";
import { InvalidArgument } from "./validate";

/**
 * Runs `checks` and returns what it returns; an `InvalidArgument` becomes a `ResourceError`
 * attached to `resource`.
 */
export function rethrowAsResourceError<T>(resource: pulumi.Resource, checks: () => T): T {
  try {
    return checks();
  } catch (e) {
    if (e instanceof InvalidArgument) throw new pulumi.ResourceError(e.message, resource);
    throw e;
  }
}
