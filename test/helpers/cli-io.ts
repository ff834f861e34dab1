import type { CliIo } from "../../cli/verify";

/**
 * A `CliIo` that records what the command writes: no terminal, an agent socket in the
 * environment (never dialled by a stubbed `verify`), and whatever `extra` replaces.
 */
export function recordingIo(extra: Partial<CliIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t: string) => void out.push(t),
    stderr: (t: string) => void err.push(t),
    env: { SSH_AUTH_SOCK: "/tmp/agent.sock" },
    isTty: false,
    ...extra,
  };
  return { out, err, io, stdout: () => out.join(""), stderr: () => err.join("") };
}
