// Reference for the cross-replica scenarios: a hand-written bridge. Replica A's part takes the
// publisher's frames, builds the envelope once and PUBLISHes it through node-redis (one PUBLISH
// per message and room; node-redis pipelines what is sent in one tick); replica B's part is
// subscribed to every room's channel and hands each message to the corked queues of
// bun_corked.ts (a JS array per connection, flushed once per tick inside ws.cork()). Both parts
// live in this process, each on its own Redis connections. Needs REDIS_URL; BENCH_ROOMS as in
// _cross_app.ts.
import type { ServerWebSocket } from "bun";
import { createClient } from "redis";
import { envelope, isPublisher, ROOM } from "./protocol.ts";

const url = process.env.REDIS_URL;
if (url === undefined) throw new Error("bridge_bun_redis.ts needs REDIS_URL");
const roomCount = Number(process.env.BENCH_ROOMS ?? 0);
const names = roomCount > 0 ? Array.from({ length: roomCount }, (_, i) => `r${i}`) : [ROOM];
const channels = names.map((n) => `bench:room:${n}`);

type Data = { publisher: boolean; queue: string[]; room: Set<ServerWebSocket<Data>> | undefined };
const rooms = new Map<string, Set<ServerWebSocket<Data>>>(channels.map((c) => [c, new Set()]));
const roomList = [...rooms.values()];
const dirty: ServerWebSocket<Data>[] = [];
let scheduled = false;
let next = 0;

function flush(): void {
  scheduled = false;
  for (let i = 0; i < dirty.length; i++) {
    const ws = dirty[i];
    const queue = ws.data.queue;
    if (queue.length === 1) ws.send(queue[0]);
    else {
      ws.cork(() => {
        for (let j = 0; j < queue.length; j++) ws.send(queue[j]);
      });
    }
    queue.length = 0;
  }
  dirty.length = 0;
}

function broadcast(room: Set<ServerWebSocket<Data>>, frame: string): void {
  for (const ws of room) {
    const queue = ws.data.queue;
    if (queue.length === 0) dirty.push(ws);
    queue.push(frame);
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

// Replica A's connection, and replica B's subscriber.
const pub = createClient({ url });
const sub = createClient({ url });
pub.on("error", (e) => console.error("redis pub", e));
sub.on("error", (e) => console.error("redis sub", e));
await Promise.all([pub.connect(), sub.connect()]);
await sub.subscribe(channels, (message, channel) => {
  const room = rooms.get(channel);
  if (room !== undefined) broadcast(room, message);
});

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, server) {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    const publisher = isPublisher(req.url);
    const data: Data = {
      publisher,
      queue: [],
      room: publisher ? undefined : roomList[next++ % roomList.length],
    };
    if (server.upgrade(req, { data })) return undefined;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    open(ws: ServerWebSocket<Data>) {
      ws.data.room?.add(ws);
    },
    close(ws: ServerWebSocket<Data>) {
      ws.data.room?.delete(ws);
      ws.data.queue.length = 0;
    },
    message(_ws: ServerWebSocket<Data>, message: string | Uint8Array) {
      const frame = envelope(message);
      if (frame === undefined) return;
      for (let i = 0; i < channels.length; i++) pub.publish(channels[i], frame).catch(() => {});
    },
  },
});

console.log(`READY ${server.port}`);
