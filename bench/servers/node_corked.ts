// Reference: node:http + ws with a per-connection JS queue. Every publish appends the frame to
// each recipient's queue; all dirty sockets are flushed once per turn (setImmediate), each
// inside one socket.cork()/uncork() of its net.Socket, so a socket's frames of that turn go
// out in one writev. The Node counterpart of bun_corked.ts.
import "./_gc.mjs"; // full GC on SIGUSR2, for the idle-memory phase
import { createServer } from "node:http";
import type { Duplex } from "node:stream";
import process from "node:process";
import { type WebSocket, WebSocketServer } from "ws";
import { envelope, isPublisher } from "./protocol.ts";

interface Peer {
  ws: WebSocket;
  socket: Duplex;
  queue: string[];
}

const room = new Set<Peer>();
const dirty: Peer[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  for (let i = 0; i < dirty.length; i++) {
    const { ws, socket, queue } = dirty[i];
    socket.cork();
    for (let j = 0; j < queue.length; j++) ws.send(queue[j]);
    socket.uncork();
    queue.length = 0;
  }
  dirty.length = 0;
}

function broadcast(frame: string): void {
  for (const peer of room) {
    if (peer.queue.length === 0) dirty.push(peer);
    peer.queue.push(frame);
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

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
    const peer: Peer = { ws, socket, queue: [] };
    if (!isPublisher(url)) room.add(peer);
    ws.on("close", () => {
      room.delete(peer);
      peer.queue.length = 0;
    });
    ws.on("message", (data, isBinary) => {
      const frame = envelope(isBinary ? new Uint8Array(data as Uint8Array) : data.toString());
      if (frame !== undefined) broadcast(frame);
    });
  });
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`READY ${(server.address() as { port: number }).port}`);
});
