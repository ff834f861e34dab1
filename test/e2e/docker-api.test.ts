/**
 * The stand-in's Docker API client (docker-api.ts) against a real sshd on 127.0.0.1 whose
 * forced command relays to an HTTP server on a unix socket, as `docker system dial-stdio`
 * relays to the daemon's socket. No VM; needs root (sshd).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerApiOverSsh } from "./docker-api";
import { authorizeClientKey, startSshd, waitForPort } from "./fake-fleet";

const PORT = 23900;
/** The forced command: one line in `starts` per session, then stdin/stdout <-> the socket. */
const RELAY = String.raw`#!/usr/bin/perl
use strict; use IO::Socket::UNIX;
my $dir = $0; $dir =~ s{/[^/]+$}{};
open(my $log, ">>", "$dir/starts") or die; print $log "start\n"; close $log;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => "$dir/api.sock") or die "connect: $!";
if (my $pid = fork) { my $b; while (sysread($s, $b, 65536)) { syswrite(STDOUT, $b) } kill "TERM", $pid }
else { my $b; while (sysread(STDIN, $b, 65536)) { syswrite($s, $b) } shutdown($s, 1); exit }
`;

let dir: string;
let stop: () => void;
let api: DockerApiOverSsh;
let served = 0;
const starts = () => readFileSync(join(dir, "starts"), "utf8").split("\n").filter(Boolean).length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hd-docker-api-"));
  writeFileSync(join(dir, "relay"), RELAY, { mode: 0o755 });
  appendFileSync(join(dir, "starts"), "");
  const server = createServer((req, res) => {
    served++;
    if (req.url === "/chunked") {
      // a streamed answer (no Content-Length), as the daemon sends large ones
      res.write('{"a":');
      setTimeout(() => res.end("1}"), 20);
      return;
    }
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ method: req.method, url: req.url }));
  });
  await new Promise<void>((r) => server.listen(join(dir, "api.sock"), r));
  const privateKey = authorizeClientKey(dir);
  const sshd = startSshd(dir, "api", PORT, join(dir, "relay"));
  stop = () => {
    sshd.process.kill("SIGTERM");
    server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  await waitForPort(PORT, 10_000);
  api = new DockerApiOverSsh({
    host: "127.0.0.1",
    port: PORT,
    user: "root",
    privateKey,
    hostKey: sshd.hostKey,
  });
});

afterAll(() => {
  api?.end();
  stop?.();
});

test("sequential requests share one channel: dial-stdio starts once, not once per request", async () => {
  for (let i = 0; i < 30; i++) {
    const r = await api.call("POST", `/containers/${i}/start`, { i });
    expect(r.json()).toEqual({ method: "POST", url: `/containers/${i}/start` });
  }
  expect((await api.request("GET", "/chunked")).json()).toEqual({ a: 1 });
  // nothing piles up on the kept channel (an 'error' listener per request once did)
  expect(api.mostErrorListeners).toBeLessThanOrEqual(3);
  expect(served).toBe(31);
  expect(api.channelsOpened).toBe(1);
  expect(starts()).toBe(1);
});

test("concurrent requests: a channel each at most, kept and reused by the next round", async () => {
  const round = async () => {
    const before = api.channelsOpened;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api.call("GET", `/images/${i}/json`)),
    );
    expect(answers.map((a) => a.json<{ url: string }>().url)).toEqual(
      Array.from({ length: 8 }, (_, i) => `/images/${i}/json`),
    );
    return api.channelsOpened - before;
  };
  // the one free channel serves one of them, the other seven open their own
  expect(await round()).toBe(7);
  expect(await round()).toBe(0);
  expect(starts()).toBe(8);
});

test("a status outside the expected ones throws with the answer", async () => {
  await expect(api.call("GET", "/x", undefined, [404])).rejects.toThrow(
    'docker API GET /x: 200 {"method":"GET","url":"/x"}',
  );
});
