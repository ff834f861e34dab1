/** Facts across tenants, from the probe's `isolation-*` sections (tenants/probe.ts). */

/** A runtime directory or home as root lstat()ed it. */
export interface PathFacts {
  readonly user: string;
  readonly kind: "runtime" | "home";
  /** Permission bits (e.g. 0o700), when stat could read the path. */
  readonly mode?: number;
  readonly owner?: number;
  /** `directory`, `symbolic link`, ... (stat's %F). */
  readonly type?: string;
  /** stat's error, when it could not. */
  readonly error?: string;
}

/** One tenant's attempt on another's Docker socket, as root judged it (`socket_verdict`). */
export interface SocketAttempt {
  readonly from: string;
  readonly to: string;
  readonly verdict: string;
}

export interface IsolationFacts {
  readonly paths: readonly PathFacts[];
  /** Undefined when the host has no curl (nothing was tried). */
  readonly sockets?: readonly SocketAttempt[];
}

const lines = (text: string | undefined) => (text ?? "").split("\n").filter((l) => l.trim() !== "");

/** The `isolation-paths` and `isolation-sockets` sections; undefined when there are none. */
export function parseIsolation(
  paths: string | undefined,
  sockets: string | undefined,
): IsolationFacts | undefined {
  if (paths === undefined && sockets === undefined) return undefined;
  const parsedPaths = lines(paths).flatMap((l): PathFacts[] => {
    const m = /^(\S+) (runtime|home) (.*)$/.exec(l);
    if (!m) return [];
    const [, user, kind, rest] = m as unknown as [string, string, "runtime" | "home", string];
    const st = /^([0-7]{3,4}) (\d+) (.+)$/.exec(rest);
    return [
      st
        ? { user, kind, mode: parseInt(st[1], 8), owner: Number(st[2]), type: st[3] }
        : { user, kind, error: rest.trim() },
    ];
  });
  const attempts = lines(sockets);
  return {
    paths: parsedPaths,
    ...(attempts.length === 1 && attempts[0].trim() === "no curl"
      ? {}
      : {
          sockets: attempts.flatMap((l) => {
            const [from, to, verdict, ...more] = l.trim().split(/\s+/);
            return verdict !== undefined && more.length === 0 ? [{ from, to, verdict }] : [];
          }),
        }),
  };
}
