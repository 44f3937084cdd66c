// Server factories for Node (node:http on port 0): the ./node adapter, and Hono on
// @hono/node-server through the ./hono adapter. Loaded only on Node.
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { Hub, type HubOptions } from "../../mod.ts";
import { createNodeHandler } from "../../src/adapters/node.ts";
import { hubHandler, nodeWebSocketServerOptions } from "../../src/adapters/hono.ts";
import type { ServerHandle } from "../contract/transport_contract.ts";

/** A running Node server that knows its port. */
export interface NodePortServer extends ServerHandle {
  port: number;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?")[0];
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return (server.address() as { port: number }).port;
}

function stopper(server: Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Idle keep-alive connections (a probe's fetch) would hold close() for seconds.
      server.closeAllConnections();
    });
}

function handle(hub: Hub, port: number, stop: () => Promise<void>): NodePortServer {
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    origin: `http://127.0.0.1:${port}`,
    hub,
    close: async () => {
      await hub.close();
      await stop();
    },
  };
}

/** node:http + createNodeHandler, on `port` (0: any free port). */
export async function startNode(options: HubOptions, port = 0): Promise<NodePortServer> {
  const { createServer } = await import("node:http");
  const { WebSocketServer } = await import("ws");
  const hub = new Hub(options);
  const ws = createNodeHandler(hub, { WebSocketServer });
  const server = createServer((req, res) => {
    if (pathOf(req) === "/ws") return void ws.request(req, res);
    res.writeHead(404).end("not found");
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    if (pathOf(req) === "/ws") void ws.upgrade(req, socket, head);
    else socket.destroy();
  });
  return handle(hub, await listen(server, port), stopper(server));
}

/** Hono on @hono/node-server (its upgradeWebSocket and a ws WebSocketServer). */
export async function startHonoNode(options: HubOptions): Promise<ServerHandle> {
  const { Hono } = await import("hono");
  const { createAdaptorServer, upgradeWebSocket } = await import("@hono/node-server");
  const { WebSocketServer } = await import("ws");
  const hub = new Hub(options);
  const app = new Hono();
  app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
  const server = createAdaptorServer({
    fetch: app.fetch,
    websocket: { server: new WebSocketServer(nodeWebSocketServerOptions(hub)) },
  }) as Server;
  return handle(hub, await listen(server, 0), stopper(server));
}
