/**
 * Test keys. ssh2's `utils.generateKeyPairSync("ed25519")` strips leading zero bytes from the
 * public key: about 1 key in 256 comes out with a 31-byte public key that ssh2's own parser
 * (and OpenSSH) reject as malformed (mscdex/ssh2#1390, #1513, open). One such key in a VM suite
 * broke every later step of the run. Tests get their ed25519 keys here, where only pairs that
 * parse are returned.
 */
import { utils } from "ssh2";

export interface KeyPair {
  readonly public: string;
  readonly private: string;
}

/** An ed25519 key pair in OpenSSH format that ssh2 and OpenSSH both accept. */
export function ed25519KeyPair(comment?: string): KeyPair {
  for (let attempt = 0; attempt < 64; attempt++) {
    const pair = utils.generateKeyPairSync("ed25519", comment ? { comment } : undefined);
    const blob = Buffer.from(pair.public.split(" ")[1], "base64");
    // string "ssh-ed25519" (4 + 11 bytes), then string key: 4 + 32 bytes
    if (
      blob.length === 51 &&
      !(utils.parseKey(pair.public) instanceof Error) &&
      !(utils.parseKey(pair.private) instanceof Error)
    )
      return pair;
  }
  throw new Error("ssh2 made 64 malformed ed25519 keys in a row");
}
