// Reference: Bun.serve, room kept in a JS Set, plain loop of ws.send per recipient.
import type { ServerWebSocket } from "bun";
import { envelope, isPublisher } from "./protocol.ts";

type Data = { publisher: boolean };
const room = new Set<ServerWebSocket<Data>>();

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, server) {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    const data: Data = { publisher: isPublisher(req.url) };
    if (server.upgrade(req, { data })) return undefined;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    open(ws: ServerWebSocket<Data>) {
      if (!ws.data.publisher) room.add(ws);
    },
    close(ws: ServerWebSocket<Data>) {
      room.delete(ws);
    },
    message(_ws: ServerWebSocket<Data>, message: string | Uint8Array) {
      const frame = envelope(message);
      if (frame === undefined) return;
      for (const ws of room) ws.send(frame);
    },
  },
});

console.log(`READY ${server.port}`);
