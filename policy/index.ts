/** The policy pack Pulumi loads: `pulumi preview --policy-pack policy`. See policies.ts. */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("hardened-docker", { policies });
