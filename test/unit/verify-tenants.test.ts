/**
 * verify with tenants: a host without them reports exactly what it did before tenants existed;
 * with them, each tenant's own checks under `tenant.<user>.`, its slice limits and ports, and
 * the checks across tenants.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { noTenantReports } from "./helpers/verify";

describe("a host without tenants", () => {
  test("every recorded probe, against every no-tenant expectation, reports byte for byte what verify printed before tenants", () => {
    const before = readFileSync(
      join(__dirname, "fixtures", "verify", "reports-without-tenants.json"),
      "utf8",
    );
    expect(noTenantReports()).toBe(before);
  });
});
