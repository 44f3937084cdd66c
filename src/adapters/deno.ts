/**
 * Deno adapter: serve a hub from `Deno.serve` through `Deno.upgradeWebSocket`.
 *
 * - Refusals (426, 403, 401, 503) are answered before any socket is opened.
 * - Keepalive uses Deno's own ping/pong (`idleTimeout`, from the hub's `idleTimeoutMs`).
 * - Backpressure: Deno has no drain event, so a waiting writer polls
 *   `bufferedAmount` until it is under the hub's low watermark.
 *
 * @example
 * ```ts ignore
 * import { Hub } from "@hubbub/hubbub";
 * import { createDenoHandler } from "@hubbub/hubbub/deno";
 *
 * const hub = new Hub({ canJoin: () => true });
 * const ws = createDenoHandler(hub);
 * Deno.serve((req) => new URL(req.url).pathname === "/ws" ? ws(req) : new Response("hi"));
 * ```
 *
 * @module
 */

import type { Hub } from "../core/hub.ts";
import {
  badUpgrade,
  denoIdleTimeout,
  messageData,
  setProtocol,
  type WebSocketLike,
  webSocketTransport,
} from "./_web_socket.ts";
import { SocketBinding } from "./_binding.ts";

/** The parts of the `Deno` namespace this adapter uses. */
interface DenoLike {
  upgradeWebSocket(
    request: Request,
    options?: { protocol?: string; idleTimeout?: number },
  ): { socket: WebSocketLike & EventTarget; response: Response };
}

/** Options for {@linkcode createDenoHandler}. */
export interface DenoHandlerOptions {
  /** Route params to keep on `connection.request.params`, computed per request. */
  params?: (request: Request) => Record<string, string>;
}

/**
 * Make a request handler that upgrades WebSocket requests into hub connections.
 *
 * @param hub The hub.
 * @param options See {@linkcode DenoHandlerOptions}.
 * @returns A handler for `Deno.serve` (or for the WebSocket route of your own router).
 *   It always returns Deno's upgrade response for accepted requests, as Deno requires.
 * @throws {TypeError} When called outside Deno.
 */
export function createDenoHandler(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  options: DenoHandlerOptions = {},
): (request: Request) => Promise<Response> {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno === undefined) throw new TypeError("Cannot create Deno handler: not running on Deno");
  const idleTimeout = denoIdleTimeout(hub.limits);
  return async (request) => {
    const decision = await hub.upgrade(request, { params: options.params?.(request) });
    if (!decision.ok) return decision.response;
    let upgraded: ReturnType<DenoLike["upgradeWebSocket"]>;
    try {
      // No `protocol` option: Deno checks it against the offer split on ", " only, and
      // refuses valid offers such as "a,hubbub.batch.v1". The hub has parsed the offer.
      upgraded = deno.upgradeWebSocket(request, { idleTimeout });
    } catch {
      decision.cancel();
      return badUpgrade();
    }
    const { socket, response } = upgraded;
    setProtocol(response, decision.protocol);
    socket.binaryType = "arraybuffer";
    const binding = new SocketBinding(decision);
    socket.addEventListener("open", () => binding.opened(webSocketTransport(socket, hub.limits)));
    socket.addEventListener(
      "message",
      (e) => binding.received(messageData((e as MessageEvent).data)),
    );
    socket.addEventListener("close", (e) => {
      const { code, reason } = e as CloseEvent;
      binding.closed(code, reason);
    });
    // No handler for "error": a close event follows it. When the peer resets before the
    // socket opens, Deno reports nothing at all: the hub's open deadline releases the slot.
    return response;
  };
}
