// Reference: Bun.serve with a per-connection JS queue. Every publish appends the frame to each
// recipient's queue; all dirty sockets are flushed once per tick, each inside one ws.cork() so
// a socket's frames of that tick go out in one write.
// BENCH_FLUSH=immediate (default) flushes from setImmediate; BENCH_FLUSH=microtask from
// queueMicrotask (see bench/README.md for which measured better).
import type { ServerWebSocket } from "bun";
import { envelope, isPublisher } from "./protocol.ts";

type Data = { publisher: boolean; queue: string[] };
const room = new Set<ServerWebSocket<Data>>();
const dirty: ServerWebSocket<Data>[] = [];
let scheduled = false;
const useMicrotask = process.env.BENCH_FLUSH === "microtask";

function flush(): void {
  scheduled = false;
  for (let i = 0; i < dirty.length; i++) {
    const ws = dirty[i];
    const queue = ws.data.queue;
    if (queue.length === 1) {
      ws.send(queue[0]);
    } else {
      ws.cork(() => {
        for (let j = 0; j < queue.length; j++) ws.send(queue[j]);
      });
    }
    queue.length = 0;
  }
  dirty.length = 0;
}

function broadcast(frame: string): void {
  for (const ws of room) {
    const queue = ws.data.queue;
    if (queue.length === 0) dirty.push(ws);
    queue.push(frame);
  }
  if (!scheduled) {
    scheduled = true;
    if (useMicrotask) queueMicrotask(flush);
    else setImmediate(flush);
  }
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, server) {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    const data: Data = { publisher: isPublisher(req.url), queue: [] };
    if (server.upgrade(req, { data })) return undefined;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    open(ws: ServerWebSocket<Data>) {
      if (!ws.data.publisher) room.add(ws);
    },
    close(ws: ServerWebSocket<Data>) {
      room.delete(ws);
      ws.data.queue.length = 0;
    },
    message(_ws: ServerWebSocket<Data>, message: string | Uint8Array) {
      const frame = envelope(message);
      if (frame !== undefined) broadcast(frame);
    },
  },
});

console.log(`READY ${server.port}`);
