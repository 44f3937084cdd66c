// Alternative: crossws (Deno adapter) with its pub/sub (peer.subscribe / peer.publish).
import crossws from "crossws/adapters/deno";
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

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 0),
  onListen: ({ port }) => console.log(`READY ${port}`),
}, (req, info) => {
  if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
  return ws.handleUpgrade(req, info);
});
