/**
 * Bun adapter: the `fetch`-side upgrade and the `websocket` handlers for `Bun.serve`.
 *
 * - Refusals (426, 403, 401, 503) are answered before any socket is opened.
 * - Writes are coalesced per socket per tick inside `ws.cork()`.
 * - Backpressure: `send()` status plus `drain`, resuming under the hub's low watermark.
 * - Keepalive: the hub pings (`ws.ping()`) and times out silent sockets itself;
 *   Bun's own idle timeout is only a backstop for sockets the hub already
 *   closed (a peer that never reads would otherwise keep one open forever).
 *
 * @example
 * ```ts ignore
 * import { Hub } from "@hubbub/hubbub";
 * import { createBunHandler } from "@hubbub/hubbub/bun";
 *
 * const hub = new Hub({ canJoin: () => true });
 * const ws = createBunHandler(hub);
 * Bun.serve({
 *   fetch(req, server) {
 *     if (new URL(req.url).pathname === "/ws") return ws.upgrade(req, server);
 *     return new Response("hi");
 *   },
 *   websocket: ws.websocket,
 * });
 * ```
 *
 * @module
 */

import type { Hub } from "../core/hub.ts";
import type { AcceptedUpgrade } from "../core/hub.ts";
import type { Transport } from "../core/transport.ts";
import { badUpgrade } from "./_web_socket.ts";
export type { BunServerOptions, BunSocketLike, BunSocketState };
import {
  bunMessageData,
  type BunServerOptions,
  bunServerOptions,
  type BunSocketLike,
  type BunSocketState,
  BunTransport,
} from "./_bun_socket.ts";

/** The parts of Bun's `Server` this adapter uses. */
export interface BunServerLike {
  /** Bun's `server.upgrade`. */
  upgrade(request: Request, options: { data: unknown; headers?: HeadersInit }): boolean;
}

/** What the adapter keeps in `ws.data`: one object per socket, which is also its transport. */
export interface BunSocketData extends BunSocketState {
  /** The hub's acceptance, until the socket opens. */
  decision: AcceptedUpgrade | undefined;
  /** Bind the opened socket; returns the transport the hub writes through. */
  attach(ws: BunSocketLike): Transport;
  /** The socket opened: register it with the hub (once). */
  opened(transport: Transport): void;
  /** The socket closed, before or after it opened (idempotent). */
  closed(code: number, reason: string): void;
}

/** A Bun server-side socket carrying hubbub's data. */
export interface BunServerSocket extends BunSocketLike {
  /** Set at upgrade. */
  readonly data: BunSocketData;
}

/** The `websocket` handler object for `Bun.serve`. */
export interface BunWebSocketHandler extends BunServerOptions {
  /** Socket opened. */
  open(ws: BunServerSocket): void;
  /** Frame arrived. */
  message(ws: BunServerSocket, message: string | Uint8Array): void;
  /** Socket closed. */
  close(ws: BunServerSocket, code: number, reason: string): void;
  /** Socket buffer drained. */
  drain(ws: BunServerSocket): void;
  /** Pong arrived. */
  pong(ws: BunServerSocket): void;
}

/** What {@linkcode createBunHandler} returns. */
export interface BunHandler {
  /**
   * Call from `fetch` for the WebSocket route.
   * @returns `undefined` once upgraded (as Bun expects), or the refusal response.
   */
  upgrade(request: Request, server: BunServerLike): Promise<Response | undefined>;
  /** Pass as `websocket` to `Bun.serve`. */
  websocket: BunWebSocketHandler;
}

/**
 * Make the Bun upgrade function and `websocket` handlers for a hub.
 *
 * @param hub The hub.
 * @returns `{ upgrade, websocket }` for `Bun.serve`.
 */
// deno-lint-ignore no-explicit-any
export function createBunHandler(hub: Hub<any>): BunHandler {
  const limits = hub.limits;
  return {
    async upgrade(request, server) {
      const decision = await hub.upgrade(request);
      if (!decision.ok) return decision.response;
      // One object per socket: the transport doubles as the adapter's state.
      const data: BunSocketData = new BunTransport();
      data.decision = decision;
      // Always set: without the header, Bun echoes the client's first offer even when
      // the hub selected none (an empty value makes Bun name none).
      const headers = { "sec-websocket-protocol": decision.protocol };
      if (!server.upgrade(request, { data, headers })) {
        decision.cancel();
        return badUpgrade();
      }
      return undefined;
    },
    websocket: {
      open(ws) {
        ws.data.opened(ws.data.attach(ws));
      },
      message(ws, message) {
        ws.data.events?.message(bunMessageData(message));
      },
      close(ws, code, reason) {
        ws.data.closed(code, reason);
      },
      drain(ws) {
        ws.data.drained?.();
      },
      pong(ws) {
        ws.data.events?.pong();
      },
      ...bunServerOptions(limits),
    },
  };
}
