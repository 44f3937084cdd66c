// Transport over a `ws` WebSocket on a Node `net.Socket`: the hub's frames for one socket are
// written per event-loop turn inside the socket's cork()/uncork() (one writev), and a waiting
// writer resumes on the socket's `drain`.
import type { HubLimits } from "../core/hub.ts";
import type { SocketEvents, Transport } from "../core/transport.ts";

/** The parts of Node's `net.Socket` (a `stream.Duplex`) this adapter uses. */
export interface NodeNetSocketLike {
  /** Buffer writes until {@linkcode NodeNetSocketLike.uncork} (nested calls count). */
  cork(): void;
  /** Write what `cork` buffered, as one `writev` where it can. */
  uncork(): void;
  /** Write `data`, then end the writable side. */
  end(data: string): unknown;
  /** Close at once. */
  destroy(): unknown;
  /** Whether the socket is destroyed. */
  readonly destroyed: boolean;
  /** Whether a write returned `false`, so that `drain` will fire once the buffer empties. */
  readonly writableNeedDrain: boolean;
  /** Whether the socket is TLS (`tls.TLSSocket`). */
  readonly encrypted?: boolean;
  /** Add a listener. */
  on(event: string, listener: NodeListener): unknown;
  /** Add a one-time listener. */
  once(event: string, listener: NodeListener): unknown;
  /** Remove a listener. */
  off(event: string, listener: NodeListener): unknown;
}

/** An event listener, as Node's `EventEmitter` types take it (any arguments). */
// deno-lint-ignore no-explicit-any
export type NodeListener = (...args: any[]) => void;

/** The parts of a server-side `ws` WebSocket (ws 8) this adapter uses. */
export interface NodeWebSocketLike {
  /** Queue a frame on the socket (text for strings, binary for bytes). */
  send(data: string | Uint8Array): void;
  /** Bytes written to the socket and not yet flushed to the kernel. */
  readonly bufferedAmount: number;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Send a protocol ping. */
  ping(): void;
  /** Start the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Destroy the socket without a closing handshake. */
  terminate(): void;
  /** Add a listener (`message`, `pong`, `close`, `error`). */
  on(event: string, listener: NodeListener): unknown;
}

const POLL_MS = 5;
// Where the hub's state for a socket is kept on the `ws` object, so that one set of listener
// functions serves every socket (no closures per connection: idle memory).
const kEvents: unique symbol = Symbol("hubbub.events");

interface Carrier {
  [kEvents]?: SocketEvents;
}

/**
 * The transport over one `ws` socket.
 *
 * - `send` hands the frame to `ws` (which writes it to the `net.Socket`) and reports
 *   backpressure once the socket holds the hub's high-water mark.
 * - `cork` runs the hub's per-turn flush inside `socket.cork()`/`uncork()`: every frame of
 *   the turn leaves in one `writev`.
 * - `writable` waits for the socket's `drain` (or polls, when the buffer is under Node's
 *   own mark and no `drain` is due), and resolves at once when the socket is closing.
 */
export class NodeTransport implements Transport {
  readonly #ws: NodeWebSocketLike;
  readonly #socket: NodeNetSocketLike;
  readonly #limits: HubLimits;

  /**
   * @param ws The open `ws` socket.
   * @param socket Its `net.Socket` (the `upgrade` event's socket).
   * @param limits The hub's limits (for the high-water mark).
   */
  constructor(ws: NodeWebSocketLike, socket: NodeNetSocketLike, limits: HubLimits) {
    this.#ws = ws;
    this.#socket = socket;
    this.#limits = limits;
  }

  send(frame: string | Uint8Array): number {
    const ws = this.#ws;
    try {
      ws.send(frame);
    } catch {
      return 1; // closing: the close event tears the connection down
    }
    return ws.bufferedAmount >= this.#limits.highWaterMark ? -1 : 1;
  }

  bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  cork(fn: () => void): void {
    const socket = this.#socket;
    socket.cork();
    try {
      fn();
    } finally {
      socket.uncork();
    }
  }

  ping(): void {
    this.#ws.ping();
  }

  writable(lowWater: number, signal: AbortSignal): Promise<void> {
    const ws = this.#ws;
    const socket = this.#socket;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        socket.off("drain", check);
        socket.off("close", check);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      function check(): void {
        clearTimeout(timer);
        if (ws.bufferedAmount <= lowWater || ws.readyState >= 2 || socket.destroyed) {
          done();
          return resolve();
        }
        // `drain` comes only after a write that found the buffer over Node's own mark
        // (16 KiB): under it, with a lower `lowWater`, nothing would say when it emptied.
        if (!socket.writableNeedDrain) timer = setTimeout(check, POLL_MS);
      }
      signal.addEventListener("abort", onAbort, { once: true });
      socket.on("drain", check);
      socket.on("close", check);
      check();
    });
  }

  close(code: number, reason: string): void {
    try {
      this.#ws.close(code, reason);
    } catch {
      // `ws` refuses a reason over 123 bytes (or a code it does not allow): close anyway.
      try {
        this.#ws.close(code);
      } catch { /* already closed */ }
    }
  }

  terminate(): void {
    try {
      this.#ws.terminate();
    } catch { /* already closed */ }
  }
}

/** Bytes of a `ws` binary message, as a plain `Uint8Array` over the same memory. */
export function nodeBytes(data: Uint8Array | ArrayBuffer | Uint8Array[]): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) {
    // binaryType "fragments": join them.
    const out = new Uint8Array(data.reduce((n, d) => n + d.byteLength, 0));
    let at = 0;
    for (const d of data) {
      out.set(d, at);
      at += d.byteLength;
    }
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function onMessage(this: Carrier, data: Uint8Array, isBinary: boolean): void {
  const events = this[kEvents];
  if (events === undefined) return;
  events.message(isBinary ? nodeBytes(data) : data.toString());
}

function onPong(this: Carrier): void {
  this[kEvents]?.pong();
}

function onClose(this: Carrier, code: number, reason: Uint8Array): void {
  const events = this[kEvents];
  // Let go of the hub's objects: the socket may outlive the connection.
  this[kEvents] = undefined;
  events?.close(code, reason.toString());
}

function ignore(): void {}

/**
 * Feed a `ws` socket's `message`, `pong` and `close` events into the hub (its `error` is
 * ignored: `close` follows it). The listeners are shared by every socket.
 *
 * @param ws The open socket.
 * @param events The hub's event sink for it.
 * @param withMessages Also forward `message` (false where another layer, e.g. Hono, does).
 */
export function listenNodeSocket(
  ws: NodeWebSocketLike,
  events: SocketEvents,
  withMessages = true,
): void {
  (ws as unknown as Carrier)[kEvents] = events;
  if (withMessages) ws.on("message", onMessage);
  ws.on("pong", onPong);
  ws.on("close", onClose);
  ws.on("error", ignore);
}
