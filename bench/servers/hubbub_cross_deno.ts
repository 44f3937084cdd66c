// hubbub on Deno.serve for the cross-replica and history scenarios (see _cross_app.ts).
import { createDenoHandler } from "../../src/adapters/deno.ts";
import { crossApp } from "./_cross_app.ts";

const app = await crossApp();
await app.ready;
const handlerA = createDenoHandler(app.publisherHub);
const handlerB = app.listenerHub === app.publisherHub
  ? handlerA
  : createDenoHandler(app.listenerHub);
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 0),
    onListen: ({ port }) => console.log(`READY ${port}`),
  },
  (req) => {
    if (new URL(req.url).pathname !== "/ws") return new Response("not found", { status: 404 });
    return (app.hubFor(req.url) === app.publisherHub ? handlerA : handlerB)(req);
  },
);
