// A hub server on a chosen port (so a test can restart it on the same port), on the
// current runtime: Deno.serve + createDenoHandler, Bun.serve + createBunHandler, or on Node
// node:http + createNodeHandler (tests/node/_servers.ts, imported only there).
import { Hub, type HubOptions } from "../../mod.ts";
import { createDenoHandler } from "../../src/adapters/deno.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";
import { isDeno, isNode } from "../_harness.ts";
import type { ServerHandle } from "../contract/transport_contract.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** A running server that knows its port. */
export interface PortServer extends ServerHandle {
  port: number;
}

/**
 * Start a hub on `port` (0: any free port) on the current runtime.
 * @param options Hub options.
 * @param port The port.
 */
export async function startOnPort(options: HubOptions, port = 0): Promise<PortServer> {
  if (isNode) return (await import("../node/_servers.ts")).startNode(options, port);
  const hub = new Hub(options);
  let actual: number;
  let stop: () => Promise<void>;
  if (isDeno) {
    const ws = createDenoHandler(hub);
    const server = g.Deno.serve(
      { hostname: "127.0.0.1", port, onListen: () => {} },
      (req: Request) =>
        new URL(req.url).pathname === "/ws" ? ws(req) : new Response("not found", { status: 404 }),
    );
    actual = server.addr.port;
    stop = () => server.shutdown();
  } else {
    const ws = createBunHandler(hub);
    const server = g.Bun.serve({
      hostname: "127.0.0.1",
      port,
      fetch: (req: Request, srv: unknown) =>
        new URL(req.url).pathname === "/ws"
          ? ws.upgrade(req, srv as never)
          : new Response("not found", { status: 404 }),
      websocket: ws.websocket,
    });
    actual = server.port;
    stop = async () => void (await server.stop(true));
  }
  return {
    port: actual,
    url: `ws://127.0.0.1:${actual}/ws`,
    origin: `http://127.0.0.1:${actual}`,
    hub,
    close: async () => {
      await hub.close();
      await stop();
    },
  };
}
