import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { resolveConnection } from "../core/connection";
import { hostCommand } from "../core/host-command";
import { rootlessDockerSocket, rootlessDockerUnit } from "./unit";
import { renderSystemdUnit } from "../systemd-unit/render";
import {
  PACKAGES_DELETE_SCRIPT,
  daemonJsonCreateScript,
  daemonJsonDeleteScript,
  kernelModulesCreateScript,
  kernelModulesDeleteScript,
  renderKernelModules,
  daemonReadyCreateScript,
  daemonReadyDeleteScript,
  delegationCreateScript,
  tenantDelegationCreateScript,
  delegationDeleteScript,
  packagesCreateScript,
  renderSysctl,
  rootfulOffCreateScript,
  rootfulOffDeleteScript,
  sysctlCreateScript,
  sysctlDeleteScript,
} from "./script";
import { SystemdUnit } from "../systemd-unit/systemd-unit";
import { checkLinuxName } from "../core/validate";
import { RootlessDockerArgs, ResolvedDockerSettings, resolveDockerSettings } from "./args";
import { rethrowAsResourceError } from "../core/resource";
export { resolveDockerSettings } from "./args";
export type { DockerSettings, RootlessDockerArgs, ResolvedDockerSettings } from "./args";

export const ROOTLESS_DOCKER_TYPE = "hardened-docker:docker:RootlessDocker";

/**
 * Rootless Docker for one user: packages, cgroup delegation, optional low-port sysctl and
 * kernel modules, daemon.json, the user-level docker.service, a readiness check that the
 * daemon answers in rootless mode with the `rootless` CLI context current, and then the
 * rootful daemon off. Steps run in that order, each depending on the one before: the rootful
 * daemon is switched off only once the rootless one answers.
 *
 * Every change is an update of the step it concerns (its script runs again and converges the
 * host), never a delete-then-create: a daemon.json change restarts the daemon, health-gated,
 * and a value the daemon refuses puts the previous file back (see docs/changes.md).
 */
export class RootlessDocker extends pulumi.ComponentResource {
  /** `unix:///run/user/<uid>/docker.sock` */
  readonly dockerHost: pulumi.Output<string>;
  /** The rendered daemon.json. */
  readonly daemonJson: string;
  readonly unit: SystemdUnit;
  /** Depend on this to run after the daemon answers. */
  readonly ready: command.remote.Command;
  /** Stops and masks the rootful daemon, after `ready` (unless disableRootfulDaemon is false). */
  readonly rootfulOff?: command.remote.Command;

  constructor(name: string, args: RootlessDockerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(ROOTLESS_DOCKER_TYPE, name, {}, opts);
    const { conn, user, s } = rethrowAsResourceError(this, () => ({
      conn: resolveConnection(args.connection),
      user: checkLinuxName("docker.user", args.user),
      s: resolveDockerSettings(args),
    }));
    this.daemonJson = s.daemonJson;
    const hostWide = args.hostWide ?? true;
    const kernelModules = [...new Set([...s.kernelModules, ...(args.extraKernelModules ?? [])])];
    // a further tenant's first step waits for what the component waits for (its linger)
    let previous: pulumi.ResourceOptions["dependsOn"] = hostWide ? undefined : opts?.dependsOn;
    const step = (role: string, c: Parameters<typeof hostCommand>[2]) => {
      const created = hostCommand(`${name}-${role}`, conn, c, {
        parent: this,
        ...(previous ? { dependsOn: previous } : {}),
      });
      previous = [created];
      return created;
    };
    const packages = packagesCreateScript(s);
    if (hostWide) this.hostWideSteps(user, s, kernelModules, packages, step);
    else
      step("delegation", {
        step: "cgroup delegation",
        create: tenantDelegationCreateScript(user),
        delete: ":",
      });
    step("daemon-json", {
      step: "daemon.json",
      create: daemonJsonCreateScript(user, s.startTimeoutSeconds),
      delete: daemonJsonDeleteScript(user),
      stdin: s.daemonJson,
    });
    this.unit = new SystemdUnit(
      `${name}-daemon`,
      {
        connection: args.connection,
        unitName: "docker.service",
        scope: "user",
        user,
        sections: rootlessDockerUnit(s.portDriver),
      },
      { parent: this, dependsOn: previous ?? [] },
    );
    this.ready = hostCommand(
      `${name}-ready`,
      conn,
      {
        step: "rootless daemon ready",
        create: daemonReadyCreateScript(user, s.startTimeoutSeconds, packages),
        delete: daemonReadyDeleteScript(user),
      },
      { parent: this, dependsOn: [this.unit] },
    );
    // the rootful daemon goes only once the rootless one answers: if rootless never comes up,
    // the host keeps the Docker it had
    if (hostWide && s.disableRootfulDaemon) {
      this.rootfulOff = hostCommand(
        `${name}-rootful-off`,
        conn,
        {
          step: "rootful docker off",
          create: rootfulOffCreateScript(),
          delete: rootfulOffDeleteScript(),
        },
        { parent: this, dependsOn: [this.ready] },
      );
    }
    // resolves only once the daemon answers: a docker.Provider built on it must not dial earlier
    this.dockerHost = pulumi
      .all([args.uid, this.ready.stdout])
      .apply(([uid]) => `unix://${rootlessDockerSocket(uid)}`);
    this.registerOutputs({ dockerHost: this.dockerHost, daemonJson: this.daemonJson });
  }

  /** Packages, cgroup delegation, the low-port sysctl and kernel modules: once per host. */
  private hostWideSteps(
    user: string,
    s: ResolvedDockerSettings,
    kernelModules: readonly string[],
    packages: string,
    step: (role: string, c: Parameters<typeof hostCommand>[2]) => command.remote.Command,
  ): void {
    step("packages", {
      step: "docker packages",
      create: packages,
      delete: PACKAGES_DELETE_SCRIPT,
    });
    const delegateConf = renderSystemdUnit({ Service: { Delegate: "cpu cpuset io memory pids" } });
    const delegation = delegationCreateScript(user);
    step("delegation", {
      step: "cgroup delegation",
      create: delegation,
      delete: delegationDeleteScript(),
      stdin: delegateConf,
    });
    if (s.unprivilegedPortStart !== undefined) {
      const sysctl = renderSysctl(s.unprivilegedPortStart);
      step("sysctl", {
        step: "unprivileged ports",
        create: sysctlCreateScript(),
        delete: sysctlDeleteScript(),
        stdin: sysctl,
      });
    }
    if (kernelModules.length > 0) {
      const modules = renderKernelModules(kernelModules);
      const load = kernelModulesCreateScript(kernelModules);
      step("kernel-modules", {
        step: "kernel modules",
        create: load,
        delete: kernelModulesDeleteScript(),
        stdin: modules,
      });
    }
  }
}
