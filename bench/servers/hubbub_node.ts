// hubbub on node:http (createNodeHandler, with the ws package's WebSocketServer).
import { createServer } from "node:http";
import process from "node:process";
import { WebSocketServer } from "ws";
import { createNodeHandler } from "../../src/adapters/node.ts";
import { benchHub } from "./_hubbub_app.ts";

const hub = benchHub();
const ws = createNodeHandler(hub, { WebSocketServer });
const server = createServer((req, res) => {
  if ((req.url ?? "/").split("?")[0] === "/ws") return void ws.request(req, res);
  res.writeHead(404).end("not found");
});
server.on("upgrade", (req, socket, head) => {
  if ((req.url ?? "/").split("?")[0] === "/ws") void ws.upgrade(req, socket, head);
  else socket.destroy();
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`READY ${(server.address() as { port: number }).port}`);
});
