// hubbub on Bun.serve (createBunHandler).
import { createBunHandler } from "../../src/adapters/bun.ts";
import { benchHub } from "./_hubbub_app.ts";

const hub = benchHub();
const ws = createBunHandler(hub);
// deno-lint-ignore no-explicit-any
const server = (globalThis as any).Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch: (req: Request, srv: unknown) =>
    new URL(req.url).pathname === "/ws"
      ? ws.upgrade(req, srv as never)
      : new Response("not found", { status: 404 }),
  websocket: ws.websocket,
});
console.log(`READY ${server.port}`);
