/**
 * Run the chat demo on Node (20 or later), on `node:http` with the `./node` adapter:
 *
 * ```sh
 * npm run start:node        # = node --import tsx examples/chat/main_node.ts (after the bundle)
 * ```
 *
 * The same app as `main.ts` (`app.ts`): the page, the inspector and the client bundle go
 * through `app.fetch`; WebSocket upgrades at `/ws` go from the server's `upgrade` event to
 * `createNodeHandler`. Listens on `$PORT` (default 8000) on `$HOST` (default 127.0.0.1);
 * `$REDIS_URL` keeps the history in Redis and joins a Redis backplane, as in `main.ts`.
 * SIGINT/SIGTERM close the hub (every client gets `connection.closed` and 1001), then the
 * server and the Redis stores, then exit.
 *
 * @module
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import process from "node:process";
import { WebSocketServer } from "ws";
import { createNodeHandler } from "../../src/adapters/node.ts";
import { createChatApp } from "./app.ts";
import { type ChatRedis, chatRedisFromEnv } from "./redis.ts";

const port = Number(process.env.PORT ?? 8000);
const hostname = process.env.HOST ?? "127.0.0.1";
const redis: ChatRedis | undefined = await chatRedisFromEnv((name) => process.env[name]);
const app = createChatApp(redis?.options);
if (redis !== undefined) await app.hub.ready;
const ws = createNodeHandler(app.hub, { WebSocketServer });

/** Answer a plain HTTP request with `app.fetch` (bodies streamed: the inspector uses SSE). */
async function serveHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  // GET and HEAD only in this app: no request body to pass on.
  const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method: req.method,
    headers,
  });
  const response = (await app.fetch(request)) ?? new Response(null, { status: 500 });
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body === null || req.method === "HEAD") return void res.end();
  const reader = response.body.getReader();
  res.once("close", () => void reader.cancel().catch(() => {}));
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      res.write(value);
    }
  } finally {
    res.end();
  }
}

const server = createServer((req, res) => {
  serveHttp(req, res).catch(() => res.destroy());
});
server.on("upgrade", (req, socket, head) => {
  if ((req.url ?? "/").split("?")[0] === "/ws") void ws.upgrade(req, socket, head);
  else socket.destroy();
});
server.listen(port, hostname, () => {
  const actual = (server.address() as { port: number }).port;
  const shown = hostname === "127.0.0.1" || hostname === "0.0.0.0" ? "localhost" : hostname;
  console.log(`hubbub chat demo on http://${shown}:${actual}/`);
});

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log("shutting down…");
  await app.hub.close();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections(); // idle keep-alive connections and open SSE streams
  });
  await redis?.close();
  process.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, shutdown);
