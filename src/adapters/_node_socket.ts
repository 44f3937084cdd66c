// Transport over a `ws` WebSocket on a Node `net.Socket`. The hub's frames skip `ws.send`: each
// distinct frame is framed once (header + UTF-8 payload, in one Buffer) and every recipient's
// socket gets that same Buffer; a turn's frames for one socket leave as one write. A waiting
// writer resumes on the socket's `drain`.
import type { HubLimits } from "../core/hub.ts";
import type { SocketEvents, Transport } from "../core/transport.ts";
import { BATCH_PROTOCOL, utf8Length } from "../protocol/envelope.ts";

/** The parts of Node's `net.Socket` (a `stream.Duplex`) this adapter uses. */
export interface NodeNetSocketLike {
  /** Buffer writes until {@linkcode NodeNetSocketLike.uncork} (nested calls count). */
  cork(): void;
  /** Write what `cork` buffered, as one `writev` where it can. */
  uncork(): void;
  /** Write `data`, then end the writable side. */
  end(data: string): unknown;
  /** Queue `data` for the network (a `Buffer` is written as it is). */
  write(data: Uint8Array): unknown;
  /** Bytes queued by `write` and not yet handed to the kernel. */
  readonly writableLength: number;
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
  /** The negotiated extensions (`""` for none). */
  readonly extensions?: string;
  /** The negotiated subprotocol (`""` for none). */
  readonly protocol?: string;
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
const OPEN = 1;
/** Frames go through `ws.send` (an extension such as permessage-deflate was negotiated). */
const VIA_WS = 0;
/** Frames are written to the socket directly. */
const DIRECT = 1;
/** Directly, and the socket speaks batched framing (its frames may be joined per turn). */
const DIRECT_BATCHED = 2;
// Where the hub's state for a socket is kept on the `ws` object, so that one set of listener
// functions serves every socket (no closures per connection: idle memory).
const kEvents: unique symbol = Symbol("hubbub.events");

interface Carrier {
  [kEvents]?: SocketEvents;
}

/** The parts of Node's `Buffer` constructor used here (a `Buffer` is written as it is). */
interface BufferStatic {
  allocUnsafe(size: number): Uint8Array;
  byteLength(text: string): number;
}

// Node's global Buffer. `Writable.write` wraps any other Uint8Array in a new Buffer per write.
const NodeBuffer = (globalThis as { Buffer?: BufferStatic }).Buffer;
const alloc = (size: number): Uint8Array =>
  NodeBuffer === undefined ? new Uint8Array(size) : NodeBuffer.allocUnsafe(size);
const encoder = new TextEncoder();
// UTF-8 length: Node's native count (a batched frame is several KiB), else the core's.
const textBytes = (text: string): number =>
  NodeBuffer === undefined ? utf8Length(text) : NodeBuffer.byteLength(text);

// The wire bytes of the frames sent this turn. The hub hands every recipient of an emit the
// same frame, so it is framed and UTF-8 encoded once, not once per socket (which is what
// `ws.send` does: options objects, a header Buffer and a string chunk per recipient, encoded
// again by every socket's writev). Emptied on the next turn, or sooner once it grows large.
const wireCache = new Map<string | Uint8Array, Uint8Array>();
let wireCacheBytes = 0;
let wireClearScheduled = false;
const WIRE_CACHE_MAX_BYTES = 8 * 1024 * 1024;
// V8 hashes a longer string by its length alone, so long frames of one length would share a
// bucket: those are remembered one at a time (the last one framed) instead.
const MAX_HASHED_CHARS = 16_383;
let lastLong: string | undefined;
let lastLongBytes: Uint8Array | undefined;
const timers = globalThis as { setImmediate?: (fn: () => void) => unknown };
const nextTurn = (fn: () => void): unknown =>
  timers.setImmediate !== undefined ? timers.setImmediate(fn) : setTimeout(fn, 0);

function clearWireCache(): void {
  wireClearScheduled = false;
  wireCache.clear();
  wireCacheBytes = 0;
  lastLong = lastLongBytes = undefined;
}

/** One unmasked, final WebSocket frame (text for strings, binary for bytes). */
function wireFrame(frame: string | Uint8Array): Uint8Array {
  const text = typeof frame === "string";
  const length = text ? textBytes(frame) : frame.byteLength;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = alloc(head + length);
  out[0] = text ? 0x81 : 0x82;
  if (head === 2) {
    out[1] = length;
  } else if (head === 4) {
    out[1] = 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 127;
    const high = Math.floor(length / 0x1_0000_0000);
    out[2] = 0;
    out[3] = 0;
    out[4] = (high >>> 8) & 0xff;
    out[5] = high & 0xff;
    out[6] = length >>> 24;
    out[7] = (length >>> 16) & 0xff;
    out[8] = (length >>> 8) & 0xff;
    out[9] = length & 0xff;
  }
  if (!text) {
    out.set(frame, head);
  } else if (encoder.encodeInto(frame, out.subarray(head)).written !== length) {
    // Cannot happen (both count what TextEncoder writes, U+FFFD for a lone surrogate),
    // but never send a header that disagrees with its payload.
    throw new RangeError("frame length mismatch");
  }
  return out;
}

/** The wire bytes of `frame`, framed once per turn however many sockets it goes to. */
function wireBytes(frame: string | Uint8Array): Uint8Array {
  if (typeof frame === "string" && frame.length > MAX_HASHED_CHARS) {
    if (frame !== lastLong || lastLongBytes === undefined) {
      lastLongBytes = wireFrame(frame);
      lastLong = frame;
      scheduleClear();
    }
    return lastLongBytes;
  }
  let bytes = wireCache.get(frame);
  if (bytes === undefined) {
    bytes = wireFrame(frame);
    if (wireCacheBytes > WIRE_CACHE_MAX_BYTES) clearWireCache();
    wireCache.set(frame, bytes);
    wireCacheBytes += bytes.byteLength;
    scheduleClear();
  }
  return bytes;
}

function scheduleClear(): void {
  if (wireClearScheduled) return;
  wireClearScheduled = true;
  nextTurn(clearWireCache);
}

// While a transport's `cork` runs: its frames, written as one chunk when it ends. `cork` is
// synchronous and the hub corks one connection at a time, so one list serves every socket.
let corked: NodeTransport | undefined;
const batch: Uint8Array[] = [];
let batchBytes = 0;
// A turn's frames for one socket are copied into one chunk up to this size (one small copy
// instead of a stream write per frame); larger turns are written frame by frame, corked.
const COALESCE_MAX_BYTES = 64 * 1024;

function writeBatch(socket: NodeNetSocketLike): void {
  const n = batch.length;
  if (n === 1) {
    socket.write(batch[0]);
  } else if (batchBytes <= COALESCE_MAX_BYTES) {
    const out = alloc(batchBytes);
    let at = 0;
    for (let i = 0; i < n; i++) {
      out.set(batch[i], at);
      at += batch[i].byteLength;
    }
    socket.write(out);
  } else {
    socket.cork();
    for (let i = 0; i < n; i++) socket.write(batch[i]);
    socket.uncork();
  }
}

/**
 * The transport over one `ws` socket.
 *
 * - `send` writes the frame to the `net.Socket` itself (framed once per turn for all its
 *   recipients; `ws.send` only where an extension such as permessage-deflate was negotiated)
 *   and reports backpressure once the socket holds the hub's high-water mark.
 * - `cork` runs the hub's per-turn flush and writes the turn's frames as one chunk (one
 *   `write` syscall); with `ws.send` it runs inside `socket.cork()`/`uncork()` (one `writev`).
 * - `writable` waits for the socket's `drain` (or polls, when the buffer is under Node's
 *   own mark and no `drain` is due), and resolves at once when the socket is closing.
 */
export class NodeTransport implements Transport {
  readonly #ws: NodeWebSocketLike;
  readonly #socket: NodeNetSocketLike;
  readonly #limits: HubLimits;
  /** How frames are written: {@linkcode VIA_WS}, {@linkcode DIRECT} or {@linkcode DIRECT_BATCHED}. */
  readonly #mode: number;

  /**
   * @param ws The open `ws` socket.
   * @param socket Its `net.Socket` (the `upgrade` event's socket).
   * @param limits The hub's limits (for the high-water mark).
   */
  constructor(ws: NodeWebSocketLike, socket: NodeNetSocketLike, limits: HubLimits) {
    this.#ws = ws;
    this.#socket = socket;
    this.#limits = limits;
    this.#mode = ws.extensions !== "" || typeof socket.write !== "function"
      ? VIA_WS
      : ws.protocol === BATCH_PROTOCOL
      ? DIRECT_BATCHED
      : DIRECT;
  }

  send(frame: string | Uint8Array): number {
    const ws = this.#ws;
    const mode = this.#mode;
    if (mode === VIA_WS) {
      try {
        ws.send(frame);
      } catch {
        return 1; // closing: the close event tears the connection down
      }
      return ws.bufferedAmount >= this.#limits.highWaterMark ? -1 : 1;
    }
    // Closing (our close frame or the peer's is out): nothing more may follow it, and the
    // close event tears the connection down. `ws.send` drops such frames too.
    if (ws.readyState !== OPEN) return 1;
    // Batched framing joins a turn's frames with "\n" (which JSON never holds raw): such a
    // frame is this socket's own, and framing it once is all the cache could do.
    const bytes = mode === DIRECT_BATCHED && typeof frame === "string" && frame.includes("\n")
      ? wireFrame(frame)
      : wireBytes(frame);
    const socket = this.#socket;
    if (corked === this) {
      batch.push(bytes);
      batchBytes += bytes.byteLength;
      return socket.writableLength + batchBytes >= this.#limits.highWaterMark ? -1 : 1;
    }
    socket.write(bytes);
    return socket.writableLength >= this.#limits.highWaterMark ? -1 : 1;
  }

  bufferedAmount(): number {
    if (this.#mode === VIA_WS) return this.#ws.bufferedAmount;
    return this.#socket.writableLength + (corked === this ? batchBytes : 0);
  }

  cork(fn: () => void): void {
    const socket = this.#socket;
    if (this.#mode === VIA_WS || corked !== undefined) {
      socket.cork();
      try {
        fn();
      } finally {
        socket.uncork();
      }
      return;
    }
    corked = this;
    try {
      fn();
    } finally {
      corked = undefined;
      if (batch.length > 0) {
        try {
          // Not after a close frame (or onto a destroyed socket), should `fn` have closed it.
          if (this.#ws.readyState === OPEN && !socket.destroyed) writeBatch(socket);
        } finally {
          batch.length = 0;
          batchBytes = 0;
        }
      }
    }
  }

  ping(): void {
    this.#ws.ping();
  }

  writable(lowWater: number, signal: AbortSignal): Promise<void> {
    const ws = this.#ws;
    const socket = this.#socket;
    const buffered = () => this.bufferedAmount();
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
        if (buffered() <= lowWater || ws.readyState >= 2 || socket.destroyed) {
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
