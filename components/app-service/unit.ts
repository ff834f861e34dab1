import { hardeningPreset } from "../systemd-unit/hardening";
import { rootlessDockerSocket, userRuntimeDir } from "../rootless-docker/unit";
import { UnitFileSections, UnitSection } from "../systemd-unit/render";

import { AppServiceArgs } from "./args";

/** Path of a service's EnvironmentFile on the host. */
export function environmentFilePath(serviceName: string): string {
  return `/etc/hardened-docker/${serviceName}.env`;
}

/**
 * The unit of an app service: runs as the service user, points `DOCKER_HOST` at its rootless
 * daemon, waits for that socket, and gets the hardening preset.
 */
export function appServiceUnit(
  svc: AppServiceArgs,
  user: string,
  uid: number,
  home: string,
): UnitFileSections {
  const after = ["network-online.target", ...(svc.after ?? [])];
  const runtimeDir = userRuntimeDir(uid);
  const socket = rootlessDockerSocket(uid);
  const service: Record<string, UnitSection[string]> = {
    Type: "simple",
    User: user,
    Group: user,
    WorkingDirectory: svc.workingDirectory ?? home,
    Environment: [`DOCKER_HOST=unix://${socket}`, `XDG_RUNTIME_DIR=${runtimeDir}`],
  };
  if (svc.environment && Object.keys(svc.environment).length > 0)
    service.EnvironmentFile = environmentFilePath(svc.name);
  // After a reboot the user's daemon starts in parallel: wait for its socket, not a fixed time.
  service.ExecStartPre = `/usr/bin/timeout 120 /bin/sh -c 'until [ -S ${socket} ]; do sleep 1; done'`;
  service.ExecStart = svc.execStart;
  service.Restart = svc.restart ?? "always";
  service.RestartSec = 5;
  Object.assign(service, hardeningPreset(svc.readWritePaths ?? []));
  return {
    Unit: {
      Description: svc.description ?? `${svc.name} (hardened-docker app service)`,
      After: after.join(" "),
      Wants: after.join(" "),
      // Restart=always must never give up after a burst of failures (e.g. during a reboot)
      StartLimitIntervalSec: 0,
    },
    Service: service,
    Install: { WantedBy: "multi-user.target" },
  };
}
