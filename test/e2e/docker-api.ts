/**
 * TEST-ONLY: the Docker Engine API of a host's service user, reached the way `@pulumi/docker`
 * reaches it: SSH as the service user, whose key is forced onto `docker system dial-stdio`.
 * Each request opens one exec channel (the forced command runs whatever we ask for) and
 * speaks HTTP/1.1 over it with Node's own client.
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import { Client } from "ssh2";
import { SshTarget, hostKeyMatches } from "../vm/ssh";

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
  json<T = unknown>(): T;
}

export class DockerApiOverSsh {
  private client?: Client;
  private ready?: Promise<Client>;

  constructor(readonly target: SshTarget) {}

  private connect(): Promise<Client> {
    this.ready ??= new Promise((resolve, reject) => {
      const c = new Client();
      c.on("ready", () => resolve(c))
        .on("error", (e) => {
          this.ready = undefined;
          reject(new Error(`docker api ssh ${this.target.user}@${this.target.host}: ${e.message}`));
        })
        .on("close", () => (this.ready = undefined))
        .connect({
          host: this.target.host,
          port: this.target.port,
          username: this.target.user,
          privateKey: this.target.privateKey,
          readyTimeout: 30_000,
          hostVerifier: (key: Buffer) => hostKeyMatches(this.target.hostKey, key),
        });
      this.client = c;
    });
    return this.ready;
  }

  /** One API call. `body` objects are sent as JSON. */
  async request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const client = await this.connect();
    const stream = await new Promise<Duplex>((resolve, reject) =>
      // the command is ignored by the forced command; it is what the docker CLI would send
      client.exec("docker system dial-stdio", (err, s) => (err ? reject(err) : resolve(s))),
    );
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          method,
          path,
          createConnection: () => stream as unknown as import("node:net").Socket,
          headers: {
            Host: "docker",
            Connection: "close",
            ...(payload
              ? { "Content-Type": "application/json", "Content-Length": payload.length }
              : {}),
          },
        },
        (res) => {
          let data = "";
          res.on("data", (d: Buffer) => (data += d.toString("utf8")));
          res.on("end", () => {
            stream.destroy();
            resolve({
              status: res.statusCode ?? 0,
              body: data,
              json: <T>() => JSON.parse(data) as T,
            });
          });
        },
      );
      // not req.setTimeout: it calls socket.setTimeout, which an SSH channel does not have
      const timer = setTimeout(() => {
        stream.destroy();
        req.destroy(new Error(`${method} ${path}: timed out`));
      }, 120_000);
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.on("close", () => clearTimeout(timer));
      req.end(payload);
    });
  }

  /** Like `request`, but a status outside `ok` throws with the daemon's message. */
  async call(method: string, path: string, body?: unknown, ok = [200, 201, 204]) {
    const r = await this.request(method, path, body);
    if (!ok.includes(r.status))
      throw new Error(`docker API ${method} ${path}: ${r.status} ${r.body.trim()}`);
    return r;
  }

  end(): void {
    this.client?.end();
    this.ready = undefined;
  }
}
