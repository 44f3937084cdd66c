// Reference: Bun.serve with native pub/sub (ws.subscribe + server.publish).
import { envelope, isPublisher, ROOM } from "./protocol.ts";

type Data = { publisher: boolean };

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
    open(ws) {
      if (!(ws.data as Data).publisher) ws.subscribe(ROOM);
    },
    message(_ws, message) {
      const frame = envelope(message);
      if (frame !== undefined) server.publish(ROOM, frame);
    },
  },
});

console.log(`READY ${server.port}`);
