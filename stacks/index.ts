/**
 * The per-host program: one stack per host (stacks/Pulumi.<host>.yaml), one
 * HardenedDockerHost. Config is read here and nowhere else.
 */
import * as pulumi from "@pulumi/pulumi";
import { HardenedDockerHost } from "../components";
import { checkConfigKeys, hostArgsFromConfig, pulumiConfigSource } from "./config";

const project = pulumi.getProject();
const prefix = `${project}:`;
// keys only: a value could be a secret, and an error message must never show one
checkConfigKeys(
  Object.keys(pulumi.runtime.allConfig())
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(prefix.length)),
);

const host = new HardenedDockerHost(
  pulumi.getStack(),
  hostArgsFromConfig(pulumiConfigSource(new pulumi.Config())),
);

export const serviceUser = host.serviceUserName;
export const uid = host.uid;
export const dockerHost = host.dockerHost;
/** `tcp://socket-proxy:2375` when the socket proxy is deployed. */
export const proxyEndpoint = host.proxyEndpoint;
