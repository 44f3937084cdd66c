/**
 * Node adapter: serve a hub from a `node:http` or `node:https` server, through its
 * `upgrade` event and the [`ws`](https://www.npmjs.com/package/ws) package (8.x).
 *
 * Bring your own `ws`: pass its `WebSocketServer` class, as `./redis` takes `createClient`,
 * so `@hubbub/hubbub` has no dependency on it.
 *
 * - Refusals (426, 403, 401, 429, 503) are answered as HTTP responses on the raw socket
 *   before any upgrade, and the socket is destroyed.
 * - The subprotocol in the 101 is the one the hub decided (none, or `hubbub.batch.v1`).
 * - Frames are framed once per emit (one Buffer shared by every recipient) and written to
 *   the `net.Socket` directly, not through `ws.send` (which builds objects per recipient and
 *   frame); each connection's frames of one event-loop turn leave as one write. Where an
 *   extension was negotiated (`ws` with permessage-deflate), frames go through `ws.send`,
 *   corked per turn.
 * - Backpressure: the socket's buffered bytes against the hub's high-water mark, resuming
 *   on `drain` under its low watermark; the hub's slow-client policy applies as everywhere.
 * - Keepalive: the hub pings (`ws.ping()`), pongs mark the connection alive, silent
 *   sockets are closed with 1001 after `idleTimeoutMs`.
 * - An upgrade whose socket errors or closes before it opens releases its slot at once.
 *
 * @example
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { WebSocketServer } from "ws";
 * import { Hub } from "@hubbub/hubbub";
 * import { createNodeHandler } from "@hubbub/hubbub/node";
 *
 * const hub = new Hub({ canJoin: () => true });
 * const ws = createNodeHandler(hub, { WebSocketServer });
 * const server = createServer((req, res) => {
 *   if (req.url?.startsWith("/ws")) return ws.request(req, res); // 426: not an upgrade
 *   res.end("hi");
 * });
 * server.on("upgrade", (req, socket, head) => {
 *   if (req.url?.startsWith("/ws")) ws.upgrade(req, socket, head);
 *   else socket.destroy();
 * });
 * server.listen(8000);
 * ```
 *
 * @module
 */

import type { Hub } from "../core/hub.ts";
import {
  listenNodeSocket,
  type NodeListener,
  type NodeNetSocketLike,
  NodeTransport,
  type NodeWebSocketLike,
} from "./_node_socket.ts";
import {
  nodeRequest,
  type NodeRequestLike,
  type NodeResponseLike,
  writeNodeResponse,
  writeRawResponse,
} from "./_node_http.ts";

export type {
  NodeListener,
  NodeNetSocketLike,
  NodeRequestLike,
  NodeResponseLike,
  NodeWebSocketLike,
};

/** The options hubbub gives `ws`'s `WebSocketServer`. */
export interface NodeWebSocketServerOptions {
  /** Always `true`: the hub's handler calls `handleUpgrade` from the server's `upgrade` event. */
  noServer: true;
  /** `false`: the hub keeps its own connections. */
  clientTracking: boolean;
  /** `false`: no per-message deflate (it costs CPU on every fan-out). */
  perMessageDeflate: boolean;
  /** Largest frame `ws` accepts before closing with 1009 itself. */
  maxPayload: number;
  /** Names the subprotocol the hub decided for this request, or none (`false`). */
  handleProtocols: (protocols: Set<string>, request: unknown) => string | false;
}

/** The parts of a `ws` `WebSocketServer` this adapter uses. */
export interface NodeWebSocketServerLike {
  /** Complete the upgrade (101) and hand over the open socket. */
  handleUpgrade(
    request: never,
    socket: never,
    head: never,
    callback: (ws: unknown) => void,
  ): void;
}

/** The `WebSocketServer` class of the `ws` package. */
export type NodeWebSocketServerConstructor = new (
  options: NodeWebSocketServerOptions,
) => NodeWebSocketServerLike;

/** Options for {@linkcode createNodeHandler}. */
export interface NodeHandlerOptions {
  /** The `WebSocketServer` class of the `ws` package (`import { WebSocketServer } from "ws"`). */
  WebSocketServer: NodeWebSocketServerConstructor;
  /**
   * Route params to keep on `connection.request.params`, computed per request.
   * @default {no params}
   */
  params?: (request: Request) => Record<string, string>;
}

/** What {@linkcode createNodeHandler} returns. */
export interface NodeHandler {
  /**
   * Handle one `upgrade` event of the server: the hub decides, then the socket is either
   * upgraded into a hub connection or answered with the refusal and destroyed. Never rejects.
   * @param request The `upgrade` event's `http.IncomingMessage`.
   * @param socket Its socket.
   * @param head Its first bytes of the upgraded stream.
   */
  upgrade(request: NodeRequestLike, socket: NodeNetSocketLike, head: Uint8Array): Promise<void>;
  /**
   * Answer a plain HTTP request to the WebSocket route (no `Upgrade` header: Node sends it to
   * the `request` event, not to `upgrade`) with the hub's refusal, 426. Never rejects.
   * @param request The `request` event's `http.IncomingMessage`.
   * @param response Its `http.ServerResponse`.
   */
  request(request: NodeRequestLike, response: NodeResponseLike): Promise<void>;
}

function noop(): void {}

// Bytes a client may send before its upgrade is decided (it should send none).
const MAX_EARLY_BYTES = 64 * 1024;

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Make the `upgrade` (and plain-request) handlers that turn a Node server's WebSocket
 * requests into hub connections.
 *
 * @param hub The hub.
 * @param options The `ws` package's `WebSocketServer`, and route params.
 * @returns `{ upgrade, request }` for the server's `upgrade` and `request` events.
 * @throws {TypeError} When `options.WebSocketServer` is not a constructor.
 */
export function createNodeHandler(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  options: NodeHandlerOptions,
): NodeHandler {
  if (typeof options?.WebSocketServer !== "function") {
    throw new TypeError(
      "Cannot create Node handler: pass the ws package's WebSocketServer as options.WebSocketServer",
    );
  }
  const limits = hub.limits;
  // The subprotocol the hub decided, per request, for `handleProtocols` (which `ws` calls
  // synchronously inside `handleUpgrade`, and only when the client offered any).
  const decided = new WeakMap<object, string>();
  const wss = new options.WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // Frames a little over the limit reach the hub (which closes with 1009 after
    // `connection.closed`); `ws` itself closes on anything larger.
    maxPayload: limits.maxMessageBytes + 1024,
    handleProtocols: (_offered, request) => decided.get(request as object) || false,
  });
  const params = options.params;

  async function upgrade(
    req: NodeRequestLike,
    socket: NodeNetSocketLike,
    head: Uint8Array,
  ): Promise<void> {
    // No error listener is left on an upgrade socket: without one, a reset would crash the
    // process. A `close` follows every error.
    socket.on("error", noop);
    let cancel: (() => void) | undefined;
    let gone = false;
    const onGone = () => {
      gone = true;
      cancel?.();
    };
    socket.once("close", onGone);
    // Node stops reading an upgrade socket, so a peer that leaves while the hub decides would
    // go unnoticed (until the open deadline): read it meanwhile. The peer's end (a FIN: the
    // server allows half-open sockets) means it is gone; bytes it sent early go to `ws` with
    // `head`, up to a bound.
    let early: Uint8Array[] | undefined;
    let earlyBytes = 0;
    const onData = (chunk: Uint8Array) => {
      (early ??= []).push(chunk);
      earlyBytes += chunk.byteLength;
      if (earlyBytes > MAX_EARLY_BYTES) socket.destroy();
    };
    const onEnd = () => socket.destroy();
    socket.on("data", onData);
    socket.once("end", onEnd);
    const stopReading = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
    };
    try {
      const request = nodeRequest(req, socket);
      if (request === undefined) {
        stopReading();
        return await writeRawResponse(socket, badRequest());
      }
      const decision = await hub.upgrade(request, { params: params?.(request) });
      stopReading();
      if (!decision.ok) return await writeRawResponse(socket, decision.response);
      cancel = decision.cancel;
      if (gone || socket.destroyed) return decision.cancel();
      decided.set(req, decision.protocol);
      // `ws` starts reading in `handleUpgrade`, synchronously: nothing is read in between.
      const first = early === undefined ? head : concat([head, ...early]);
      try {
        wss.handleUpgrade(req as never, socket as never, first as never, (open: unknown) => {
          const ws = open as NodeWebSocketLike;
          socket.off("close", onGone);
          cancel = undefined;
          listenNodeSocket(ws, decision.open(new NodeTransport(ws, socket, limits)));
        });
      } finally {
        decided.delete(req);
      }
      // When `ws` refused the handshake (a bad key or version: it answers 400 itself) the
      // socket is destroyed, and `onGone` releases the slot.
    } catch {
      stopReading();
      cancel?.();
      socket.destroy();
    }
  }

  async function request(req: NodeRequestLike, res: NodeResponseLike): Promise<void> {
    try {
      const request = nodeRequest(req, req.socket);
      const decision = request === undefined ? undefined : await hub.upgrade(request);
      if (decision?.ok) {
        // Only an upgrade request is ever accepted, and this one came without `Upgrade`.
        decision.cancel();
        return await writeNodeResponse(res, badRequest());
      }
      await writeNodeResponse(res, decision?.response ?? badRequest());
    } catch {
      res.destroy();
    }
  }

  return { upgrade, request };
}

function badRequest(): Response {
  return new Response("Bad WebSocket upgrade request", {
    status: 400,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
