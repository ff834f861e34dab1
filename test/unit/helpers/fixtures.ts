import * as pulumi from "@pulumi/pulumi";
import type { HardenedDockerHostArgs } from "../../../components";

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
