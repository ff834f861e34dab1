import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { utils } from "ssh2";
import { ed25519KeyPair } from "../keys";

describe("test keys (ssh2 makes a malformed ed25519 key about 1 time in 256)", () => {
  test("2000 pairs: every one parses, with a 32-byte public key", () => {
    // without the check in ed25519KeyPair, 2000 raw pairs hold a bad one with p > 0.9998
    for (let i = 0; i < 2000; i++) {
      const pair = ed25519KeyPair("unit@keys");
      expect(utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
      expect(pair.public).toMatch(
        /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} unit@keys$/,
      );
    }
  });

  test("OpenSSH derives the same public key from the private one", () => {
    const pair = ed25519KeyPair();
    const file = join(mkdtempSync(join(tmpdir(), "hd-keys-")), "id");
    writeFileSync(file, pair.private, { mode: 0o600 });
    const r = spawnSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split(" ").slice(0, 2)).toEqual(pair.public.split(" ").slice(0, 2));
  });

  test("no test makes an ed25519 key with ssh2 directly", () => {
    const root = join(__dirname, "..");
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.ts$/.test(name) && p !== join(root, "keys.ts") && p !== __filename) {
          if (/generateKeyPairSync\(\s*["']ed25519/.test(readFileSync(p, "utf8")))
            offenders.push(p);
        }
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});
