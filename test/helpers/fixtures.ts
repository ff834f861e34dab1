import * as pulumi from "@pulumi/pulumi";
import type { HardenedDockerHostArgs } from "../../components";

export const HOST_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUOvR8rA0pCj7lZkXa1fJ1u8J0b7yq4Vw8m2l9i0cXc";
export const PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";
export const SECRET_VALUE = "s3cr3t-value-never-in-clear";

/** A complete, valid host: every option a user can set, set. */
export function fullArgs(): HardenedDockerHostArgs {
  return {
    connection: {
      host: "web-1.example.net",
      port: 2222,
      user: "admin",
      privateKey: pulumi.secret(PRIVATE_KEY),
      hostKey: HOST_KEY,
    },
    serviceUser: {
      name: "provisioner",
      uid: 1500,
      subordinateIds: { start: 200000, count: 65536 },
    },
    docker: {
      unprivilegedPortStart: 80,
      portDriver: "slirp4netns",
      daemonConfig: { "log-opts": { "max-size": "20m" } },
    },
    services: [
      {
        name: "provisioner",
        execStart: "/usr/bin/node /opt/provisioner/server.js",
        workingDirectory: "/opt/provisioner",
        readWritePaths: ["/var/lib/provisioner"],
        environment: { PORT: "3000", ADMIN_TOKEN: pulumi.secret(SECRET_VALUE) },
      },
      { name: "worker", execStart: "/usr/local/bin/worker --queue tenants" },
    ],
  };
}

export function minimalArgs(): HardenedDockerHostArgs {
  return {
    connection: { host: "10.0.0.5", privateKey: pulumi.secret(PRIVATE_KEY), hostKey: HOST_KEY },
    serviceUser: { name: "provisioner" },
  };
}

export const DEPLOY_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA3aggjo4Ns/bij2ysBout3Q+gXqlMm0XyxJOpya6u+g ci@deploy";
export const DASHBOARD_USER = "admin:$2y$05$" + "a".repeat(53);

/** fullArgs plus deploy keys, the socket proxy (one named write) and Traefik with a dashboard. */
export function edgeArgs(): HardenedDockerHostArgs {
  const a = fullArgs();
  return {
    ...a,
    serviceUser: { ...a.serviceUser, uid: undefined, deployKeys: [DEPLOY_KEY] },
    socketProxy: { allow: ["traefik", { method: "POST", path: "/containers/{id}/restart" }] },
    traefik: { dashboard: { users: [pulumi.secret(DASHBOARD_USER)] } },
  };
}

export const DEPLOY_KEY_A =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINeY1ApcFyCM9lbdhKa1LLszVbKUH9rs+xQpqQGdciOw ci-a@deploy";
export const DEPLOY_KEY_B =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTO6sCNk37K8m2Bj+JNsTgGXdEhTSeqOdxsyO7xuXiW ci-b@deploy";

/**
 * edgeArgs with slice limits and a port range for the host's own user, plus two tenants: ci-a
 * (its own proxy, Traefik on its own ports, limits, icc off, a service with a secret) and
 * ci-b (the least a tenant takes).
 */
export function tenantArgs(): HardenedDockerHostArgs {
  const a = edgeArgs();
  return {
    ...a,
    limits: { cpuPercent: 100, memoryMiB: 1024, tasks: 2048 },
    ports: { from: 80, to: 443 },
    tenants: [
      {
        serviceUser: { name: "ci-a", deployKeys: [DEPLOY_KEY_A] },
        daemonConfig: { icc: false },
        services: [
          {
            name: "ci-a-runner",
            execStart: "/usr/local/bin/runner",
            environment: { TOKEN: pulumi.secret(SECRET_VALUE) },
          },
        ],
        socketProxy: {},
        traefik: { httpPort: 8080, httpsPort: 8443 },
        limits: { cpuPercent: 50, memoryMiB: 512 },
        ports: { from: 8000, to: 8999 },
      },
      { serviceUser: { name: "ci-b" } },
    ],
  };
}
