/**
 * The account step's subordinate ranges against the ids of the host's accounts, run for real as
 * root in a private mount namespace over a copy of this machine's /etc (and an empty /home): no
 * uid or gid of an account may lie in a service user's range (a container user mapped onto it
 * would be that account), nor the service user's own id in another's range. Needs root
 * (unshare, useradd); no VM, nothing of this machine's own /etc changes.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  serviceUserCreateScript,
  ServiceUserScriptArgs,
} from "../../components/service-user/script";
import { remoteScript, shellQuote } from "../../components/core/shell";

/** Runs `setup` (shell), then the account step for `args`, in a namespace; /etc's id files after. */
function accountStep(setup: string, args: Partial<ServiceUserScriptArgs> & { name: string }) {
  if (process.getuid?.() !== 0)
    throw new Error("these tests need root (unshare, useradd): run as root");
  const dir = mkdtempSync(join(tmpdir(), "hd-ids-"));
  try {
    cpSync("/etc", join(dir, "etc"), { recursive: true, verbatimSymlinks: true });
    const step = join(dir, "step.sh");
    writeFileSync(
      step,
      remoteScript(
        "service-user",
        serviceUserCreateScript({ shell: "/bin/sh", subordinateIdCount: 65536, ...args }),
        { sudo: false },
      ),
    );
    const inside = [
      `mount --bind ${shellQuote(join(dir, "etc"))} /etc`,
      "mount -t tmpfs tmpfs /home",
      `{ ${setup}; } >/dev/null 2>&1`,
      `sh ${shellQuote(step)}; echo "rc=$?"`,
      "echo ---; cat /etc/subuid; echo ---; cat /etc/subgid; echo ---; id -u " +
        shellQuote(args.name),
    ].join("\n");
    const r = spawnSync("unshare", ["-m", "--propagation", "private", "bash", "-c", inside], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const [out, subuid, subgid, uid] = r.stdout.split("---\n");
    return { out: out + r.stderr, subuid, subgid, uid: Number(uid) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rangeOf = (file: string, user: string) => {
  const l = file.split("\n").find((x) => x.startsWith(`${user}:`));
  return l ? l.split(":").slice(1).map(Number) : undefined;
};

test("a new user's range skips an account's uid and gid that useradd's range would hold", () => {
  const r = accountStep("useradd -M -u 100500 holder; groupadd -g 100700 gholder", { name: "svc" });
  expect(r.out).toContain("rc=0");
  const [us, uc] = rangeOf(r.subuid, "svc")!;
  const [gs, gc] = rangeOf(r.subgid, "svc")!;
  expect([uc, gc]).toEqual([65536, 65536]);
  // useradd gave svc 100000:65536 (it only avoids other ranges): replaced, past the ids
  expect(100500 >= us && 100500 < us + uc).toBe(false);
  expect(100700 >= gs && 100700 < gs + gc).toBe(false);
  expect(us).toBeGreaterThanOrEqual(100501);
  expect(r.out).toMatch(/changed: added svc:\d+:65536 to \/etc\/subuid/);
  // nothing of this machine's own /etc changed
  expect(readFileSync("/etc/passwd", "utf8")).not.toMatch(/^(holder|svc):/m);
});

test("a declared range that holds an account's uid is refused, naming it", () => {
  const r = accountStep("useradd -M -u 100500 holder", {
    name: "svc",
    subordinateIdStart: 100400,
  });
  expect(r.out).toContain("rc=1");
  expect(r.out).toContain(
    "the range 100400:65536 of svc in /etc/subuid holds the passwd id of holder (100500): a container user",
  );
});

test("a declared uid inside another user's range is refused, naming the range's owner", () => {
  const r = accountStep("printf 'other:300000:65536\\n' >>/etc/subuid", {
    name: "svc",
    uid: 300010,
  });
  expect(r.out).toContain("rc=1");
  expect(r.out).toContain(
    "svc's id 300010 lies in the range of other in /etc/subuid: a container user of other would be svc",
  );
});
