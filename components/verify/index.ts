export * from "./types";
export * from "./expected";
export * from "./facts";
export * from "./probe";
export * from "./verify-host";
export { SshConnectError, hostKeyMatches } from "./ssh";
export * from "./format";
export { FAILURE_MODES } from "../app-service/checks";
