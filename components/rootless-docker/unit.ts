import { ROOTLESS_SCRIPT_LINK } from "./script";
import type { UnitFileSections } from "../systemd-unit/render";

export type PortDriver = "builtin" | "slirp4netns";

/** The service user's runtime directory, `/run/user/<uid>` (XDG_RUNTIME_DIR). */
export function userRuntimeDir(uid: number): string {
  return `/run/user/${uid}`;
}

/** The rootless daemon's socket: `/run/user/<uid>/docker.sock`. */
export function rootlessDockerSocket(uid: number): string {
  return `${userRuntimeDir(uid)}/docker.sock`;
}

/**
 * The user-level `docker.service` that runs the rootless daemon, equivalent to what
 * `dockerd-rootless-setuptool.sh install` writes, but rendered here so its content is
 * reviewable and its start does not depend on the tool's fixed 3-second wait.
 *
 * No `NoNewPrivileges`/`ProtectKernelTunables`: rootlesskit runs the setuid `newuidmap`,
 * which those break (measured on the test VM).
 */
export function rootlessDockerUnit(portDriver: PortDriver): UnitFileSections {
  return {
    Unit: {
      Description: "Docker Application Container Engine (Rootless)",
      Documentation: "https://docs.docker.com/go/rootless/",
      StartLimitIntervalSec: "60s",
      StartLimitBurst: 3,
    },
    Service: {
      Environment: [
        "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        // slirp4netns keeps client source IPs; builtin is faster but shows the gateway instead
        `DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=${portDriver}`,
        "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns",
      ],
      ExecStart: ROOTLESS_SCRIPT_LINK,
      ExecReload: "/bin/kill -s HUP $MAINPID",
      TimeoutSec: 0,
      RestartSec: 2,
      Restart: "always",
      LimitNOFILE: "infinity",
      LimitNPROC: "infinity",
      LimitCORE: "infinity",
      TasksMax: "infinity",
      Delegate: true,
      Type: "notify",
      NotifyAccess: "all",
      KillMode: "mixed",
    },
    Install: { WantedBy: "default.target" },
  };
}
