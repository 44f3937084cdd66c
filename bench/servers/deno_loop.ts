// Reference: Deno.serve + Deno.upgradeWebSocket, room kept in a JS Set, plain loop of
// socket.send per recipient.
import { envelope, isPublisher } from "./protocol.ts";

const room = new Set<WebSocket>();

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 0),
  onListen: ({ port }) => console.log(`READY ${port}`),
}, (req) => {
  if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
  const publisher = isPublisher(req.url);
  const { socket, response } = Deno.upgradeWebSocket(req);
  if (!publisher) {
    socket.onopen = () => room.add(socket);
    socket.onclose = () => room.delete(socket);
    socket.onerror = () => room.delete(socket);
  }
  socket.onmessage = (event) => {
    const frame = envelope(event.data);
    if (frame === undefined) return;
    for (const s of room) {
      if (s.readyState === WebSocket.OPEN) s.send(frame);
    }
  };
  return response;
});
