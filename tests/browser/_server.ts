// The browser test's server (Bun): the test page, the client bundle, and a chat hub on /ws.
import { z } from "zod";
import { Hub, MessageError } from "../../mod.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";
import {
  type ClientMessage,
  contractSchema,
  defineContract,
  typedEmitter,
} from "../../src/protocol/contract.ts";

/** The page's messages. */
export const pageChat = defineContract({
  client: { "chat.send": z.object({ room: z.string(), text: z.string().min(1).max(200) }) },
  server: { "chat.message": z.object({ room: z.string(), from: z.string(), text: z.string() }) },
});

/** A running page server. */
export interface PageServer {
  port: number;
  hub: Hub<ClientMessage<typeof pageChat>>;
  close(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/**
 * Serve the page, the bundle and the hub on 127.0.0.1.
 * @param bundlePath The client bundle's path.
 * @param port The port (0: any free one).
 */
export function startPageServer(bundlePath: string, port = 0): PageServer {
  const hub = new Hub<ClientMessage<typeof pageChat>>({
    schema: contractSchema(pageChat),
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? "anon" }),
    canJoin: (_conn, room) => room === "lobby",
    onError: () => {},
  });
  const out = typedEmitter(hub, pageChat);
  hub.on("chat.send", (conn, m) => {
    if (!conn.rooms.has(m.room)) throw new MessageError("NOT_IN_ROOM", "Cannot post: not in room");
    out.emit("chat.message", { room: m.room, from: conn.userId ?? "?", text: m.text }, {
      rooms: m.room,
    });
  });
  // deno-lint-ignore no-explicit-any
  const ws = createBunHandler(hub as Hub<any>);
  const page = new URL("./index.html", import.meta.url);
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch(req: Request, srv: unknown) {
      const path = new URL(req.url).pathname;
      if (path === "/ws") return ws.upgrade(req, srv as never);
      if (path === "/") {
        return new Response(g.Bun.file(page), { headers: { "content-type": "text/html" } });
      }
      if (path === "/hubbub-client.js") {
        return new Response(g.Bun.file(bundlePath), {
          headers: { "content-type": "text/javascript" },
        });
      }
      return new Response("not found", { status: 404 });
    },
    websocket: ws.websocket,
  });
  return {
    port: server.port,
    hub,
    close: async () => {
      await hub.close();
      await server.stop(true);
    },
  };
}
