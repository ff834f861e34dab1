import type { UnitSection } from "./render";

/**
 * The `[Service]` hardening preset for application units that drive rootless Docker.
 *
 * It starts from the runbook's directives (`NoNewPrivileges`, `PrivateTmp`,
 * `ProtectSystem=strict` + `ReadWritePaths`, `Restart=always`) and adds what systemd offers a
 * modern network service. One deliberate choice: `ProtectHome=read-only`, not `yes`.
 * `ProtectHome=yes` hides `/run/user`, where the rootless Docker socket lives; read-only
 * keeps the socket reachable (connecting to a unix socket is not a write to the file
 * system) while the app still cannot modify any home directory.
 *
 * Not in the preset because they break common app runtimes: `MemoryDenyWriteExecute`
 * (JIT compilers such as Node's V8) and `PrivateUsers` (the app must reach a socket owned by
 * the service user's real uid). `PrivateNetwork`/`IPAddressDeny` are not set: the app
 * serves HTTP.
 */
export function hardeningPreset(readWritePaths: readonly string[]): UnitSection {
  const preset: Record<string, string | boolean | readonly string[]> = {
    NoNewPrivileges: true,
    PrivateTmp: true,
    PrivateDevices: true,
    ProtectSystem: "strict",
    ProtectHome: "read-only",
    ProtectKernelTunables: true,
    ProtectKernelModules: true,
    ProtectKernelLogs: true,
    ProtectControlGroups: true,
    ProtectClock: true,
    ProtectHostname: true,
    ProtectProc: "invisible",
    ProcSubset: "pid",
    RestrictNamespaces: true,
    RestrictRealtime: true,
    RestrictSUIDSGID: true,
    LockPersonality: true,
    RemoveIPC: true,
    RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
    CapabilityBoundingSet: "",
    AmbientCapabilities: "",
    SystemCallArchitectures: "native",
    SystemCallFilter: ["@system-service", "~@privileged @resources"],
    SystemCallErrorNumber: "EPERM",
    UMask: "0027",
  };
  if (readWritePaths.length > 0) preset.ReadWritePaths = readWritePaths.join(" ");
  return preset;
}
