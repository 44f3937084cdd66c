// Server factories for the transport contract: one per adapter, real servers on port 0.
import { Hub, type HubOptions } from "../../mod.ts";
import { createDenoHandler } from "../../src/adapters/deno.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";
import { hubHandler, withBunBackpressure } from "../../src/adapters/hono.ts";
import type { ServerHandle } from "../contract/transport_contract.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

function handle(hub: Hub, port: number, stop: () => Promise<void>): ServerHandle {
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    origin: `http://127.0.0.1:${port}`,
    hub,
    close: async () => {
      await hub.close();
      await stop();
    },
  };
}

function denoServe(
  fetch: (req: Request) => Response | Promise<Response>,
): { port: number; stop(): Promise<void> } {
  const server = g.Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, fetch);
  return { port: server.addr.port, stop: () => server.shutdown() };
}

/** Deno.serve + createDenoHandler. */
export function startDeno(options: HubOptions): Promise<ServerHandle> {
  const hub = new Hub(options);
  const ws = createDenoHandler(hub);
  const s = denoServe((req) =>
    new URL(req.url).pathname === "/ws" ? ws(req) : new Response("not found", { status: 404 })
  );
  return Promise.resolve(handle(hub, s.port, s.stop));
}

/** Bun.serve + createBunHandler. */
export function startBun(options: HubOptions): Promise<ServerHandle> {
  const hub = new Hub(options);
  const ws = createBunHandler(hub);
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req: Request, srv: unknown) =>
      new URL(req.url).pathname === "/ws"
        ? ws.upgrade(req, srv as never)
        : new Response("not found", { status: 404 }),
    websocket: ws.websocket,
  });
  return Promise.resolve(handle(hub, server.port, async () => void (await server.stop(true))));
}

/** Hono on Deno (hono/deno's upgradeWebSocket). */
export async function startHonoDeno(options: HubOptions): Promise<ServerHandle> {
  const { Hono } = await import("hono");
  const { upgradeWebSocket } = await import("hono/deno");
  const hub = new Hub(options);
  const app = new Hono();
  app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
  const s = denoServe(app.fetch);
  return handle(hub, s.port, s.stop);
}

/** Hono on Bun (hono/bun's upgradeWebSocket and websocket, with drain added). */
export async function startHonoBun(options: HubOptions): Promise<ServerHandle> {
  const { Hono } = await import("hono");
  const { upgradeWebSocket, websocket } = await import("hono/bun");
  const hub = new Hub(options);
  const app = new Hono();
  app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: app.fetch,
    websocket: withBunBackpressure(hub, websocket),
  });
  return handle(hub, server.port, async () => void (await server.stop(true)));
}
