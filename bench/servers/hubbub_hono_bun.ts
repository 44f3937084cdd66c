// hubbub through Hono on Bun (hono/bun + withBunBackpressure).
import { Hono } from "hono";
import { upgradeWebSocket, websocket } from "hono/bun";
import { hubHandler, withBunBackpressure } from "../../src/adapters/hono.ts";
import { benchHub } from "./_hubbub_app.ts";

const hub = benchHub();
const app = new Hono();
app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
// deno-lint-ignore no-explicit-any
const server = (globalThis as any).Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch: app.fetch,
  websocket: withBunBackpressure(hub, websocket),
});
console.log(`READY ${server.port}`);
