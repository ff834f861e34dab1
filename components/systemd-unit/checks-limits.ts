/** What a service user may use, when declared: its slice limits and its host ports. */
import { renderSliceLimits, sliceCgroupValues } from "./slice-limits";
import type { UserExpectation } from "../verify/expected";
import type { ContainerFacts, HostFacts } from "../verify/facts";
import { Check, fail, pass } from "../verify/check";

export const SLICE_LIMITS_ID = "cgroup.slice-limits";
export const PORTS_ID = "containers.ports";

/**
 * `cgroup.slice-limits`: the files of `user-<uid>.slice` hold `sliceCgroupValues(limits)`.
 * Without swap accounting the kernel shows no memory.swap.max: nothing to swap to, so its
 * absence is as good as 0 (the limits step accepts it the same way).
 */
export function sliceLimitsCheck(f: HostFacts, e: UserExpectation): Check | undefined {
  if (!e.limits) return undefined;
  const want = sliceCgroupValues(e.limits);
  const uid = f.user?.uid;
  const slice = `user-${uid ?? "<uid>"}.slice`;
  const title = `${slice} runs with the declared limits`;
  const needs = ["linger.enabled"];
  const properties = renderSliceLimits(e.limits)
    .split("\n")
    .filter((l) => /^[A-Za-z]+=/.test(l));
  const fix = `Re-apply the limits step (pulumi up --replace on the ${e.serviceUser} limits step), or apply them now: sudo systemctl set-property ${slice} ${properties.join(" ")}.`;
  const got = f.slice ?? new Map<string, string>();
  const files = Object.keys(want);
  if (files.every((file) => got.get(file) === undefined)) {
    return fail(
      SLICE_LIMITS_ID,
      title,
      `/sys/fs/cgroup/user.slice/${slice} has none of ${files.join(", ")}: the slice does not run (nothing of ${e.serviceUser} runs)`,
      `Start the user manager (sudo loginctl enable-linger ${e.serviceUser}), then verify again; if the files are still missing: ${fix}`,
      needs,
    );
  }
  const seen = files.map((file) => `${file} ${got.get(file) ?? "absent"}`).join(", ");
  const wrong = files.filter((file) => {
    const value = got.get(file);
    if (value === undefined) return file !== "memory.swap.max";
    return value !== want[file];
  });
  return wrong.length === 0
    ? pass(SLICE_LIMITS_ID, title, `${slice}: ${seen}`, needs)
    : fail(
        SLICE_LIMITS_ID,
        title,
        `${slice}: ${wrong.map((file) => `${file} is ${got.get(file) ?? "absent"}, declared ${want[file]}`).join("; ")}`,
        fix,
        needs,
      );
}

/** A published host port: the container, its port, and the host port(s) ("" = random). */
interface Published {
  readonly container: string;
  readonly port: string;
  readonly hostPort: string;
}

function bindings(c: ContainerFacts): Published[] {
  const container = c.Name.replace(/^\//, "");
  const out: Published[] = [];
  const add = (map: Record<string, unknown> | null | undefined) => {
    for (const [port, list] of Object.entries(map ?? {})) {
      if (!Array.isArray(list)) continue;
      for (const b of list as { HostPort?: unknown }[]) {
        const hostPort = typeof b?.HostPort === "string" ? b.HostPort : "";
        if (!out.some((o) => o.port === port && o.hostPort === hostPort))
          out.push({ container, port, hostPort });
      }
    }
  };
  // what runs (NetworkSettings.Ports), and what a stopped container publishes when it starts
  add(c.NetworkSettings?.Ports);
  add(c.HostConfig?.PortBindings);
  return out;
}

/** Whether a HostPort (`8080`, `8000-8010`; "" or "0" is random) lies in [from, to] (from >= 1). */
function inRange(hostPort: string, from: number, to: number): boolean {
  const m = /^(\d+)(?:-(\d+))?$/.exec(hostPort);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = Number(m[2] ?? m[1]);
  return lo >= from && hi <= to;
}

/**
 * `containers.ports`: every host port a container publishes lies in the declared range (the
 * daemon's answer is the user's: this catches a mistake, not a tenant that lies).
 */
export function portsCheck(
  f: HostFacts,
  e: UserExpectation,
  all: readonly ContainerFacts[],
  needs: readonly string[],
): Check | undefined {
  if (!e.ports) return undefined;
  const { from, to } = e.ports;
  const title = `Containers publish host ports only in ${from}-${to}`;
  const published = all.flatMap(bindings);
  const show = (p: Published) => `${p.container} ${p.hostPort || "random"}->${p.port}`;
  const outside = published.filter((p) => !inRange(p.hostPort, from, to));
  const uid = f.user?.uid;
  return outside.length === 0
    ? pass(
        PORTS_ID,
        title,
        published.length
          ? `published: ${published.map(show).join(", ")}`
          : `no published port in ${all.length} containers`,
        needs,
      )
    : fail(
        PORTS_ID,
        title,
        `outside ${from}-${to}: ${outside.map(show).join(", ")}`,
        `Re-create ${[...new Set(outside.map((p) => p.container))].join(", ")} publishing only ports in ${from}-${to} (a random port, -p <port> alone, is outside it): sudo -u ${e.serviceUser} env DOCKER_HOST=unix:///run/user/${uid ?? "<uid>"}/docker.sock docker rm -f <name>, then pulumi up or docker run -p <host port in range>:<port>.`,
        needs,
      );
}
