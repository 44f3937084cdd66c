// hubbub on Deno.serve (createDenoHandler).
import { createDenoHandler } from "../../src/adapters/deno.ts";
import { benchHub } from "./_hubbub_app.ts";

const hub = benchHub();
const ws = createDenoHandler(hub);
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 0),
    onListen: ({ port }) => console.log(`READY ${port}`),
  },
  (req) =>
    new URL(req.url).pathname === "/ws" ? ws(req) : new Response("not found", { status: 404 }),
);
