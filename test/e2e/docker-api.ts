/**
 * TEST-ONLY: the Docker Engine API of a host's service user, reached the way `@pulumi/docker`
 * reaches it: SSH as the service user, whose key is forced onto `docker system dial-stdio`.
 * Each exec channel (the forced command runs whatever we ask for) carries HTTP/1.1 with
 * keep-alive, spoken by Node's own client: like the Docker client's connection helper, a
 * channel serves request after request, so the guest starts `docker system dial-stdio` once
 * per open connection, not once per request (in the emulated guest each start costs seconds).
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

/**
 * An http.Agent whose connections are SSH exec channels. A channel is not a net.Socket: the
 * socket methods the agent and the client call are no-ops on it, and keeping it alive skips
 * the agent's keep-alive timer (Node's own `reuseSocket` still runs: it removes the listener
 * a free socket gets, which would otherwise pile up one per request).
 */
class ChannelAgent extends http.Agent {
  /** Channels opened so far (a test reads it: one per connection, not per request). */
  opened = 0;

  constructor(private readonly open: () => Promise<Duplex>) {
    super({ keepAlive: true });
  }

  override createConnection(
    _options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    this.open().then(
      (s) => {
        this.opened++;
        // what http's client and agent call on a socket, as no-ops on a channel
        const stream = s as Duplex & Record<string, unknown>;
        for (const m of ["setKeepAlive", "setNoDelay", "setTimeout", "ref", "unref"])
          stream[m] ??= () => stream;
        callback?.(null, s);
      },
      (e: Error) => callback?.(e, undefined as unknown as Duplex),
    );
    return undefined;
  }

  override keepSocketAlive(): boolean {
    return true;
  }

  /** The most 'error' listeners any open channel holds (a test reads it: none pile up). */
  get mostErrorListeners(): number {
    const all = [...Object.values(this.freeSockets), ...Object.values(this.sockets)].flat();
    return Math.max(0, ...all.map((c) => c?.listenerCount("error") ?? 0));
  }
}

export class DockerApiOverSsh {
  private client?: Client;
  private ready?: Promise<Client>;
  private readonly agent = new ChannelAgent(async () => {
    const client = await this.connect();
    return new Promise<Duplex>((resolve, reject) =>
      // the command is ignored by the forced command; it is what the docker CLI would send
      client.exec("docker system dial-stdio", (err, s) => (err ? reject(err) : resolve(s))),
    );
  });

  constructor(readonly target: SshTarget) {}

  /** The most 'error' listeners an open channel holds. */
  get mostErrorListeners(): number {
    return this.agent.mostErrorListeners;
  }

  /** SSH exec channels opened so far, each one `docker system dial-stdio` in the guest. */
  get channelsOpened(): number {
    return this.agent.opened;
  }

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
  request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          method,
          path,
          agent: this.agent,
          headers: {
            Host: "docker",
            ...(payload
              ? { "Content-Type": "application/json", "Content-Length": payload.length }
              : {}),
          },
        },
        (res) => {
          let data = "";
          res.on("data", (d: Buffer) => (data += d.toString("utf8")));
          res.on("end", () => {
            resolve({
              status: res.statusCode ?? 0,
              body: data,
              json: <T>() => JSON.parse(data) as T,
            });
          });
        },
      );
      // not req.setTimeout: it calls socket.setTimeout, a no-op on an SSH channel (above)
      // (destroying the request destroys its channel: it is never reused mid-answer)
      const timer = setTimeout(() => {
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
    this.agent.destroy();
    this.client?.end();
    this.ready = undefined;
  }
}
