// hubbub through Hono on Deno (hono/deno).
import { Hono } from "hono";
import { upgradeWebSocket } from "hono/deno";
import { hubHandler } from "../../src/adapters/hono.ts";
import { benchHub } from "./_hubbub_app.ts";

const hub = benchHub();
const app = new Hono();
app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 0),
  onListen: ({ port }) => console.log(`READY ${port}`),
}, app.fetch);
