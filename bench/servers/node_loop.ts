// Reference: node:http + ws, room kept in a JS Set, plain loop of ws.send per recipient
// (each send is its own write: ws corks only the header and payload of one frame).
import "./_gc.mjs"; // full GC on SIGUSR2, for the idle-memory phase
import { createServer } from "node:http";
import process from "node:process";
import { type WebSocket, WebSocketServer } from "ws";
import { envelope, isPublisher } from "./protocol.ts";

const room = new Set<WebSocket>();
const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
});
const server = createServer((_req, res) => void res.writeHead(404).end("not found"));

server.on("upgrade", (req, socket, head) => {
  const url = `http://127.0.0.1${req.url ?? "/"}`;
  if (new URL(url).pathname !== "/ws") return void socket.destroy();
  socket.on("error", () => {});
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on("error", () => {});
    if (!isPublisher(url)) room.add(ws);
    ws.on("close", () => room.delete(ws));
    ws.on("message", (data, isBinary) => {
      const frame = envelope(isBinary ? new Uint8Array(data as Uint8Array) : data.toString());
      if (frame === undefined) return;
      for (const r of room) r.send(frame);
    });
  });
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`READY ${(server.address() as { port: number }).port}`);
});
