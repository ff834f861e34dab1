/**
 * Serves the local apt repository (a directory) on 127.0.0.1: the guest reaches it as
 * http://10.0.2.2:<port>/ through qemu's user-mode NAT. GET/HEAD of plain files only.
 */
import { createReadStream, statSync } from "node:fs";
import { createServer, Server } from "node:http";
import { join, normalize } from "node:path";

export function serveDirectory(dir: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]));
    const file = join(dir, path);
    if (!file.startsWith(dir) || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(403).end();
      return;
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-length": size });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

// `tsx test/vm/repo-server.ts DIR PORT`: the long-running server `npm run vm -- up` starts
if (require.main === module) {
  const [dir, port] = process.argv.slice(2);
  serveDirectory(dir, Number(port)).then(
    () => console.log(`serving ${dir} on 127.0.0.1:${port}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
