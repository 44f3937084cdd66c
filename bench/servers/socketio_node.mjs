// Alternative: Socket.IO 4 on Node, websocket transport only.
// Engine.IO path /socket.io/ (the load client speaks raw Engine.IO v4 / Socket.IO v5 framing
// over a WebSocket). Listeners join the "bench" room; the publisher (query role=publisher)
// emits "publish" events; each one is broadcast as a "bench" event carrying the same
// envelope {type:"bench",data,timestamp} the other targets send.
import "./_gc.mjs"; // full GC on SIGUSR2, for the idle-memory phase
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer((_req, res) => {
  res.writeHead(404).end("not found");
});
const io = new Server(http, { transports: ["websocket"], serveClient: false });

io.on("connection", (socket) => {
  if (socket.handshake.query.role !== "publisher") socket.join("bench");
  socket.on("publish", (data) => {
    io.to("bench").emit("bench", { type: "bench", data, timestamp: Date.now() });
  });
});

http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`READY ${http.address().port}`);
});
