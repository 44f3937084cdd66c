// hubbub on Bun.serve for the cross-replica and history scenarios (see _cross_app.ts): with
// REDIS_URL, replica A (the publisher's hub) and replica B (the listeners' hub) are two hubs in
// this process bridged through Redis; one Bun.serve routes each upgrade to its hub.
import { createBunHandler } from "../../src/adapters/bun.ts";
import { crossApp } from "./_cross_app.ts";

const app = await crossApp();
await app.ready;
const handlerA = createBunHandler(app.publisherHub);
const handlerB = app.listenerHub === app.publisherHub
  ? handlerA
  : createBunHandler(app.listenerHub);
// deno-lint-ignore no-explicit-any
const server = (globalThis as any).Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch: (req: Request, srv: unknown) => {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    const handler = app.hubFor(req.url) === app.publisherHub ? handlerA : handlerB;
    return handler.upgrade(req, srv as never);
  },
  // The handlers act on each socket's own data (its hub's transport): one serves both hubs.
  websocket: handlerB.websocket,
});
console.log(`READY ${server.port}`);
