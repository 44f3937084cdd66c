// Alternative: crossws (Bun adapter) with its pub/sub (peer.subscribe / peer.publish).
import crossws from "crossws/adapters/bun";
import { envelope, isPublisher, ROOM } from "./protocol.ts";

const ws = crossws({
  hooks: {
    open(peer) {
      if (!isPublisher(peer.request.url)) peer.subscribe(ROOM);
    },
    message(peer, message) {
      const frame = envelope(message.text());
      if (frame !== undefined) peer.publish(ROOM, frame);
    },
  },
});

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, server) {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    return ws.handleUpgrade(req, server);
  },
  websocket: ws.websocket,
});

console.log(`READY ${server.port}`);
