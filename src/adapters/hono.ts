/**
 * Hono adapter: a route handler that turns a Hono WebSocket route into hub
 * connections, on Deno (`hono/deno`), on Bun (`hono/bun`) and on Node
 * (`@hono/node-server` 2.x, its `upgradeWebSocket` and a `ws` `WebSocketServer`).
 *
 * - Pass the app's own `upgradeWebSocket`; this module does not import Hono.
 * - Connections are keyed on the raw socket (`ws.raw`): Hono makes a new
 *   `WSContext` per event on Bun, and hides Bun's send status and `drain`.
 * - On Bun, wrap Hono's `websocket` object with {@linkcode withBunBackpressure}
 *   before passing it to `Bun.serve`: it adds `drain` and `pong` and the hub's limits.
 * - On Node, create the `WebSocketServer` with {@linkcode nodeWebSocketServerOptions}:
 *   the 101 then names the subprotocol the hub decided, and `ws` enforces the hub's
 *   frame limit. The hub writes through the `ws` socket as the `./node` adapter does
 *   (corked per turn, `drain`, the hub's pings).
 *
 * @example Deno
 * ```ts ignore
 * import { Hono } from "hono";
 * import { upgradeWebSocket } from "hono/deno";
 * import { Hub } from "@hubbub/hubbub";
 * import { hubHandler } from "@hubbub/hubbub/hono";
 *
 * const hub = new Hub();
 * const app = new Hono();
 * app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
 * Deno.serve(app.fetch);
 * ```
 *
 * @example Bun
 * ```ts ignore
 * import { Hono } from "hono";
 * import { upgradeWebSocket, websocket } from "hono/bun";
 * import { Hub } from "@hubbub/hubbub";
 * import { hubHandler, withBunBackpressure } from "@hubbub/hubbub/hono";
 *
 * const hub = new Hub();
 * const app = new Hono();
 * app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
 * Bun.serve({ fetch: app.fetch, websocket: withBunBackpressure(hub, websocket) });
 * ```
 *
 * @example Node
 * ```ts ignore
 * import { Hono } from "hono";
 * import { serve, upgradeWebSocket } from "@hono/node-server";
 * import { WebSocketServer } from "ws";
 * import { Hub } from "@hubbub/hubbub";
 * import { hubHandler, nodeWebSocketServerOptions } from "@hubbub/hubbub/hono";
 *
 * const hub = new Hub();
 * const app = new Hono();
 * app.get("/ws", hubHandler(hub, { upgradeWebSocket }));
 * const wss = new WebSocketServer(nodeWebSocketServerOptions(hub));
 * serve({ fetch: app.fetch, port: 8000, websocket: { server: wss } });
 * ```
 *
 * @module
 */

import type { AcceptedUpgrade, Hub, HubLimits } from "../core/hub.ts";
import {
  badUpgrade,
  denoIdleTimeout,
  messageData,
  setProtocol,
  type WebSocketLike,
  webSocketTransport,
} from "./_web_socket.ts";
import { SocketBinding } from "./_binding.ts";
import {
  bunMessageData,
  type BunServerOptions,
  bunServerOptions,
  type BunSocketLike,
  type BunSocketState,
  BunTransport,
} from "./_bun_socket.ts";
import {
  listenNodeSocket,
  type NodeListener,
  type NodeNetSocketLike,
  NodeTransport,
} from "./_node_socket.ts";

/** The parts of Hono's `Context` this adapter uses. */
export interface HonoContextLike {
  /** Hono's request wrapper. */
  req: { raw: Request; param(): Record<string, string> };
}

/** The parts of Hono's `WSContext` this adapter uses. */
export interface HonoWSContextLike {
  /** The runtime's socket: a Deno WebSocket, a Bun ServerWebSocket or a `ws` WebSocket. */
  raw?: unknown;
}

/** Hono's WebSocket event callbacks (`WSEvents`). */
export interface HonoWSEvents {
  /** Socket opened. */
  onOpen?: (evt: Event, ws: HonoWSContextLike) => void;
  /** Frame arrived. */
  onMessage?: (evt: MessageEvent, ws: HonoWSContextLike) => void;
  /** Socket closed. */
  onClose?: (evt: CloseEvent, ws: HonoWSContextLike) => void;
  /** Socket error (a close follows). */
  onError?: (evt: Event, ws: HonoWSContextLike) => void;
}

/** Hono's `upgradeWebSocket` in its `(c, events, options)` form (from `hono/deno` or `hono/bun`). */
export type HonoUpgradeWebSocket = (
  // deno-lint-ignore no-explicit-any
  c: any,
  // deno-lint-ignore no-explicit-any
  events: any,
  // deno-lint-ignore no-explicit-any
  options?: any,
) => Promise<Response | void> | Response | void;

/** Options for {@linkcode hubHandler}. */
export interface HubHandlerOptions {
  /** The app's `upgradeWebSocket`, from `hono/deno`, `hono/bun` or `@hono/node-server`. */
  upgradeWebSocket: HonoUpgradeWebSocket;
}

/** A Hono handler: `(c, next) => Response`. */
export type HonoHandler = (
  c: HonoContextLike,
  next: () => Promise<void>,
) => Promise<Response>;

export type { BunServerOptions };

// Bun sockets' per-socket state, keyed on the raw socket (Hono makes a new WSContext per event).
const bunStates = new WeakMap<object, BunSocketState>();

// On Node, the subprotocol the hub decided per upgrade request (@hono/node-server's
// `c.env.incoming`), for the `handleProtocols` of nodeWebSocketServerOptions.
const nodeProtocols = new WeakMap<object, string>();

/** A `ws` WebSocket (Hono on Node), with the `net.Socket` ws 8 keeps as `_socket`. */
interface HonoNodeSocket {
  ping(): void;
  terminate(): void;
  on(event: string, listener: NodeListener): unknown;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly _socket?: NodeNetSocketLike | null;
}

function isNodeSocket(raw: unknown): raw is HonoNodeSocket {
  if (typeof raw !== "object" || raw === null) return false;
  const ws = raw as HonoNodeSocket;
  return typeof ws.ping === "function" && typeof ws.terminate === "function" &&
    typeof ws.on === "function" && typeof ws._socket?.cork === "function";
}

function isBunSocket(raw: unknown): raw is BunSocketLike & object {
  return typeof raw === "object" && raw !== null &&
    typeof (raw as BunSocketLike).cork === "function" &&
    typeof (raw as BunSocketLike).getBufferedAmount === "function";
}

/**
 * Make a Hono route handler that upgrades requests into hub connections.
 * Route params (`c.req.param()`) are kept on `connection.request.params`.
 *
 * @param hub The hub.
 * @param options The app's `upgradeWebSocket`.
 * @returns A handler for `app.get(path, handler)`.
 */
// deno-lint-ignore no-explicit-any
export function hubHandler(hub: Hub<any>, options: HubHandlerOptions): HonoHandler {
  const idleTimeout = denoIdleTimeout(hub.limits);
  return async (c) => {
    const decision = await hub.upgrade(c.req.raw, { params: c.req.param() });
    if (!decision.ok) return decision.response;
    const incoming = (c as { env?: { incoming?: unknown } }).env?.incoming;
    if (typeof incoming === "object" && incoming !== null) {
      nodeProtocols.set(incoming, decision.protocol);
    }
    const events = honoEvents(hub, decision);
    let response: Response | void;
    try {
      // The hub decided the subprotocol. Hono's helpers would pick the client's first
      // offer: `protocol: undefined` stops that on Deno (whose own check would also refuse
      // "a,b" offers); on Bun the server's upgrade is given the header (see bunHandshake).
      response = await options.upgradeWebSocket(bunHandshake(c, decision.protocol), events, {
        idleTimeout,
        protocol: undefined,
      });
    } catch (error) {
      decision.cancel();
      throw error;
    }
    if (response === undefined) {
      decision.cancel();
      return badUpgrade();
    }
    try {
      setProtocol(response, decision.protocol);
    } catch { /* immutable headers: Bun's placeholder response, where the upgrade set it */ }
    return response;
  };
}

/** The parts of Bun's server Hono's Bun helper calls. */
interface BunUpgrader {
  upgrade(request: Request, options?: { data?: unknown; headers?: HeadersInit }): boolean;
}

/**
 * On Bun, Hono's helper calls `server.upgrade(req, { data })` with no headers, and Bun then
 * echoes the client's first offered subprotocol. Hand the helper a context whose server adds
 * the header the hub decided (empty: none). Elsewhere `c` is returned as it is.
 */
function bunHandshake(c: HonoContextLike, protocol: string): HonoContextLike {
  const env = (c as { env?: unknown }).env as
    | { server?: BunUpgrader; upgrade?: unknown }
    | undefined;
  const server = env !== null && typeof env === "object" && "server" in env ? env.server : env;
  if (typeof (server as BunUpgrader | undefined)?.upgrade !== "function") return c;
  const bun = server as BunUpgrader;
  const shim: BunUpgrader = {
    upgrade: (request, o) =>
      bun.upgrade(request, {
        ...o,
        headers: { ...o?.headers as Record<string, string>, "sec-websocket-protocol": protocol },
      }),
  };
  return new Proxy(c, {
    get: (target, key) => key === "env" ? shim : Reflect.get(target, key, target),
  });
}

function honoEvents(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  decision: AcceptedUpgrade,
): HonoWSEvents {
  return new HonoSocketEvents(hub.limits, decision);
}

/**
 * One socket's Hono callbacks. A class, not closures, and the upgrade decision is
 * dropped once the socket opens: Hono keeps this object for the socket's whole life
 * (idle memory matters at 10k+). Hono calls these as methods of the object.
 */
class HonoSocketEvents extends SocketBinding implements HonoWSEvents {
  readonly #limits: HubLimits;

  constructor(limits: HubLimits, decision: AcceptedUpgrade) {
    super(decision);
    this.#limits = limits;
  }

  onOpen(_evt: Event, ws: HonoWSContextLike): void {
    if (this.decision === undefined) return;
    const raw = ws.raw;
    if (isBunSocket(raw)) {
      const state = new BunTransport().attach(raw);
      bunStates.set(raw, state);
      this.opened(state);
      state.events = this.events; // withBunBackpressure hands Bun's frames to it directly
    } else if (isNodeSocket(raw)) {
      // Hono forwards messages and the close; pongs come from the socket itself.
      this.opened(new NodeTransport(raw, raw._socket!, this.#limits));
      if (this.events !== undefined) listenNodeSocket(raw, this.events, false);
    } else {
      const socket = raw as WebSocketLike;
      socket.binaryType = "arraybuffer";
      this.opened(webSocketTransport(socket, this.#limits));
    }
  }

  onMessage(evt: MessageEvent, ws: HonoWSContextLike): void {
    const raw = evt.data;
    this.received(
      isBunSocket(ws.raw) && typeof raw !== "string"
        ? bunMessageData(raw as ArrayBuffer)
        : messageData(raw),
    );
  }

  onClose(evt: CloseEvent, ws: HonoWSContextLike): void {
    this.closed(evt.code, evt.reason);
    const raw = ws.raw;
    if (typeof raw === "object" && raw !== null) {
      const state = bunStates.get(raw);
      if (state !== undefined) state.events = undefined;
      bunStates.delete(raw);
    }
  }
}

/** Hono's Bun `websocket` handler object (from `hono/bun`). */
export interface HonoBunWebSocket {
  /** Hono's open handler. */
  // deno-lint-ignore no-explicit-any
  open(ws: any): void;
  /** Hono's message handler. */
  // deno-lint-ignore no-explicit-any
  message(ws: any, message: any): void;
  /** Hono's close handler. */
  // deno-lint-ignore no-explicit-any
  close(ws: any, code?: number, reason?: string): void;
}

/** Hono's Bun handlers plus what the hub needs from Bun. */
export interface BunBackpressureWebSocket extends HonoBunWebSocket, BunServerOptions {
  /** Resumes waiting writers. */
  drain(ws: object): void;
  /** Marks the connection alive. */
  pong(ws: object): void;
}

/**
 * Add `drain`, `pong` and the hub's limits to Hono's Bun `websocket` object.
 * Hono's own handlers keep working for other WebSocket routes of the app.
 *
 * @param hub The hub (for its limits).
 * @param websocket The `websocket` export of `hono/bun`.
 * @returns The object to pass as `websocket` to `Bun.serve`.
 */
export function withBunBackpressure(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  websocket: HonoBunWebSocket,
): BunBackpressureWebSocket {
  const limits = hub.limits;
  return {
    open: (ws) => websocket.open(ws),
    message: (ws, message) => {
      // Hub sockets skip Hono's per-event WSContext (and its loss of the Buffer's offset).
      const events = bunStates.get(ws)?.events;
      if (events !== undefined) events.message(bunMessageData(message));
      else websocket.message(ws, message);
    },
    close: (ws, code, reason) => websocket.close(ws, code, reason),
    drain: (ws) => bunStates.get(ws)?.drained?.(),
    pong: (ws) => bunStates.get(ws)?.events?.pong(),
    ...bunServerOptions(limits),
  };
}

/** The `WebSocketServer` options {@linkcode nodeWebSocketServerOptions} returns. */
export interface NodeWebSocketServerOptions {
  /** `true`: @hono/node-server calls `handleUpgrade` from the server's `upgrade` event. */
  noServer: true;
  /** `false`: no per-message deflate (it costs CPU on every fan-out). */
  perMessageDeflate: boolean;
  /** Largest frame `ws` accepts before closing with 1009 itself. */
  maxPayload: number;
  /** Names the subprotocol the hub decided for the request, or none (`false`). */
  handleProtocols: (protocols: Set<string>, request: unknown) => string | false;
}

/**
 * Options for the `ws` `WebSocketServer` that @hono/node-server upgrades with
 * (`new WebSocketServer(nodeWebSocketServerOptions(hub))`): the 101 names the subprotocol
 * the hub decided (without them `ws` picks the client's first offer), `ws` closes frames
 * far over the hub's `maxMessageBytes` itself, and there is no per-message deflate.
 * Other WebSocket routes of the app get no subprotocol from this server.
 *
 * @param hub The hub (for its limits).
 * @returns Options for `new WebSocketServer(...)`.
 */
export function nodeWebSocketServerOptions(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
): NodeWebSocketServerOptions {
  return {
    noServer: true,
    perMessageDeflate: false,
    maxPayload: hub.limits.maxMessageBytes + 1024,
    handleProtocols: (_offered, request) => {
      const protocol = nodeProtocols.get(request as object);
      nodeProtocols.delete(request as object);
      return protocol || false;
    },
  };
}
