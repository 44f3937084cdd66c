/**
 * One client connection, as app code sees it.
 *
 * @module
 */

import { CloseCode } from "./close_codes.ts";
import { assertCloseArgs } from "../protocol/close_codes.ts";
import { ConnectionClosedError, SlowClientError } from "./errors.ts";
import { type Frame, SendQueue } from "./send_queue.ts";
import type { Transport } from "./transport.ts";
import { encodeEnvelope, ServerEvent } from "../protocol/envelope.ts";
import {
  type ConnState,
  kAbandon,
  kCloseWith,
  kCompact,
  kDeliver,
  kDrainClose,
  kFlush,
  kFlushTick,
  kLastSeen,
  kPing,
  kRoomAdd,
  kRoomCount,
  kRoomDelete,
  kRoomHas,
  kRoomTake,
  kSettled,
  kSetUser,
  kState,
  kTeardown,
  kTouch,
} from "./_internal.ts";

const OPEN = 0;
/** Modes: send at once while the socket has room; queue and flush per turn in cork; batch. */
const DIRECT = 0;
const CORKED = 1;
const BATCH = 2;
/** Largest batched frame, in UTF-16 code units (about 64 KiB of ASCII). */
const MAX_BATCH_CHARS = 64 * 1024;
const CLOSING = 1;
const CLOSED = 2;

/** The state of a {@linkcode Connection}. */
export type ConnectionState = "open" | "closing" | "closed";

/** What was captured from the upgrade request. Headers are not kept: read them in `identify`. */
export interface ConnectionRequest {
  /** The full request URL. */
  readonly url: string;
  /** Route parameters captured by the adapter (e.g. Hono's `c.req.param()`), else empty. */
  readonly params: Readonly<Record<string, string>>;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
}

/** What a connection needs from its hub. Implemented by `Hub`; not for app code. */
export interface ConnectionOwner {
  /** Add the connection to a room's index. */
  join(conn: Connection, room: string): void;
  /** Remove the connection from a room's index. */
  leave(conn: Connection, room: string): void;
  /** Schedule a flush of the connection's queue on the next turn of the event loop. */
  markDirty(conn: Connection): void;
  /**
   * The connection closed: drop it from every index and run the disconnect hook.
   * `cause` says why, as counted in `HubStats.closes` (`"client"` when the peer closed).
   */
  closed(conn: Connection, code: number, reason: string, cause: string): void;
  /** Current time in Unix ms. */
  now(): number;
  /** Queue and socket limits, shared by the hub's connections. */
  readonly limits: ConnectionLimits;
}

/** A connection's queue and socket limits (the hub's `HubLimits` has them). */
export interface ConnectionLimits {
  /** Most frames queued beyond the socket's buffer. */
  readonly maxQueueMessages: number;
  /** Most bytes queued beyond the socket's buffer (see `frameSize`). */
  readonly maxQueueBytes: number;
  /** Socket buffer size (bytes) above which frames are queued instead of sent. */
  readonly highWaterMark: number;
  /** Resume writing when the socket is under this many bytes. */
  readonly lowWaterMark: number;
}

/** Everything a {@linkcode Connection} is created with. Built by the hub. */
export interface ConnectionInit {
  /** Client id (UUID v4). */
  id: string;
  /** User id from `identify`, if any. */
  userId?: string;
  /** Metadata from `identify`. */
  metadata: Readonly<Record<string, unknown>>;
  /** What was captured from the upgrade request. */
  request: ConnectionRequest;
  /** The socket. */
  transport: Transport;
  /** The hub. */
  owner: ConnectionOwner;
  /** Batched framing was negotiated: coalesce queued text frames with "\n". */
  batch?: boolean;
}

/**
 * One client connection.
 *
 * - Sends never block: a frame goes straight to the socket when it has room,
 *   else into a bounded queue drained by one writer that waits on the socket's
 *   backpressure. Order is always preserved.
 * - A queue that overflows closes the connection with `CloseCode.SLOW_CLIENT`;
 *   `send()` then throws {@linkcode SlowClientError}.
 * - `close()` is idempotent: it sends `connection.closed`, closes the socket,
 *   removes the connection from every index and calls the disconnect hook once.
 *
 * @typeParam Locals The shape of per-connection app state in `locals`.
 */
export class Connection<Locals extends Record<string, unknown> = Record<string, unknown>> {
  /** The client id (UUID v4), unique per connection. */
  readonly id: string;
  /** Metadata returned by `identify`. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** What was captured from the upgrade request. */
  readonly request: ConnectionRequest;
  #userId: string | undefined;
  #locals: Locals | undefined;
  /** No room, one room (most connections: a Set costs ~250 bytes), or a Set of several. */
  #rooms: string | Set<string> | undefined;
  #state = OPEN;
  /**
   * How it closed, once it is closing: one object made at close instead of three fields on
   * every connection (idle memory: on Bun each field of a connection costs ~20 bytes).
   */
  #closeInfo: { code: number; reason: string; cause: string } | undefined;
  readonly #transport: Transport;
  readonly #owner: ConnectionOwner;
  /** Created when a frame must wait; dropped again once an idle connection's queue is empty. */
  #queue: SendQueue | undefined;
  #dirty = false;
  /** DIRECT, CORKED or BATCH: how frames reach the socket. */
  readonly #mode: number;
  /** The last send left the socket over its high-water mark: wait for it to drain. */
  #full = false;
  /** The writer waiting on backpressure: how to stop it, and its promise. */
  #writer: { abort: AbortController; done: Promise<void> | undefined } | undefined;
  #lastSeen: number;
  /**
   * @internal The hub's bookkeeping for this connection (limiter, backlog, auth deadline),
   * added on first use: connections that never need it carry no slot for it.
   */
  declare [kState]: ConnState | undefined;

  /**
   * Connections are created by the hub; app code receives them in hooks.
   * @param init See {@linkcode ConnectionInit}.
   */
  constructor(init: ConnectionInit) {
    this.id = init.id;
    this.#userId = init.userId;
    this.metadata = init.metadata;
    this.request = init.request;
    this.#transport = init.transport;
    this.#owner = init.owner;
    this.#lastSeen = init.owner.now();
    this.#mode = init.batch === true ? BATCH : init.transport.cork !== undefined ? CORKED : DIRECT;
  }

  /** The user id, set by `identify` or by the `authenticate` hook; `undefined` when anonymous. */
  get userId(): string | undefined {
    return this.#userId;
  }

  /** Query parameters of the upgrade request's URL (parsed on each read). */
  get query(): URLSearchParams {
    return new URL(this.request.url).searchParams;
  }

  /** Per-connection app state, created on first use. */
  get locals(): Locals {
    return this.#locals ??= {} as Locals;
  }

  /** The rooms this connection is in (a read-only snapshot). */
  get rooms(): ReadonlySet<string> {
    const rooms = this.#rooms;
    return typeof rooms === "string" ? new Set([rooms]) : new Set(rooms);
  }

  /** `"open"`, `"closing"` or `"closed"`. */
  get state(): ConnectionState {
    return this.#state === OPEN ? "open" : this.#state === CLOSING ? "closing" : "closed";
  }

  /** The close code once closed (0 while open). */
  get closeCode(): number {
    return this.#closeInfo?.code ?? 0;
  }

  /** The close reason once closed. */
  get closeReason(): string {
    return this.#closeInfo?.reason ?? "";
  }

  /** Bytes waiting in this connection's send queue (not counting the socket's own buffer). */
  get queuedBytes(): number {
    return this.#queue === undefined ? 0 : this.#queue.bytes;
  }

  /**
   * Send one event to this connection.
   *
   * @param type The event type.
   * @param data The payload (JSON-serialisable).
   * @throws {ConnectionClosedError} If the connection is closed or closing.
   * @throws {SlowClientError} If the queue overflowed; the connection is then closed.
   * @example
   * ```ts ignore
   * conn.send("notice", { text: "hello" });
   * ```
   */
  send(type: string, data: unknown): void {
    this.sendRaw(encodeEnvelope(type, data, this.#owner.now()));
  }

  /**
   * Send one frame as is, without the envelope.
   *
   * @param frame A text or binary frame.
   * @throws {ConnectionClosedError} If the connection is closed or closing.
   * @throws {SlowClientError} If the queue overflowed; the connection is then closed.
   */
  sendRaw(frame: Frame): void {
    if (this.#state !== OPEN) throw new ConnectionClosedError();
    if (!this[kDeliver](frame)) {
      throw this.#closeInfo?.code === CloseCode.SLOW_CLIENT
        ? new SlowClientError()
        : new ConnectionClosedError();
    }
  }

  /**
   * Join a room from server code. Always allowed; idempotent.
   * @param room The room name.
   */
  join(room: string): void {
    if (this.#state !== OPEN) return;
    this.#owner.join(this, room);
  }

  /**
   * Leave a room. Idempotent.
   * @param room The room name.
   */
  leave(room: string): void {
    this.#owner.leave(this, room);
  }

  /**
   * Close the connection: sends `connection.closed {code, reason}`, then closes
   * the socket. Idempotent and safe in any state.
   *
   * @param code What a server may send: 1000–1003, 1007–1014, or 3000–4999 (see `CloseCode`).
   * @param reason At most 123 UTF-8 bytes.
   * @throws {RangeError} If the code or reason is not allowed.
   */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    // The protocol layer's rules, which the client shares.
    assertCloseArgs(code, reason, "server");
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#closeInfo ??= { code: 0, reason: "", cause: "server" };
    if (code === CloseCode.SLOW_CLIENT) this.#queue?.clear();
    else this.#sendQueued();
    this.#finish(code, reason);
  }

  /**
   * @internal Close for a reason of the hub's own, counted as `cause` (e.g. `"idle_timeout"`).
   */
  [kCloseWith](code: number, reason: string, cause: string): void {
    if (this.#state !== OPEN) return;
    this.#closeInfo = { code: 0, reason: "", cause };
    this.close(code, reason);
  }

  /**
   * @internal Close after letting queued frames drain for up to `drainMs`:
   * no new frames are accepted meanwhile. Resolves once closed.
   */
  async [kDrainClose](code: number, reason: string, drainMs: number): Promise<void> {
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#closeInfo = { code: 0, reason: "", cause: "shutdown" };
    if (this.#writer === undefined) this.#sendQueued();
    if (this.#queued() > 0 && this.#writer === undefined) this.#startWriter();
    const writer = this.#writer?.done;
    if (this.#writer !== undefined && writer !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        writer,
        new Promise<void>((resolve) => timer = setTimeout(resolve, drainMs)),
      ]);
      clearTimeout(timer);
    }
    // Still backed up at the deadline: the peer is not reading, so cut it off.
    if (this.#state === CLOSING) this.#finish(code, reason, this.#writer !== undefined);
  }

  /** Send `connection.closed` and close; or, for a peer that is not reading, terminate. */
  #finish(code: number, reason: string, terminate = false): void {
    const transport = this.#transport;
    if (terminate && transport.terminate !== undefined) {
      // Teardown first, so the hub records this code, not the runtime's for the abort.
      this[kTeardown](code, reason);
      transport.terminate();
      return;
    }
    try {
      this.#transport.send(encodeEnvelope(ServerEvent.CLOSED, { code, reason }, this.#owner.now()));
    } catch { /* the socket may already be gone */ }
    try {
      this.#transport.close(code, reason);
    } catch { /* idem */ }
    this[kTeardown](code, reason);
  }

  /** @internal Deliver an encoded frame; `false` if it was not accepted. */
  [kDeliver](frame: Frame): boolean {
    if (this.#state !== OPEN) return false;
    if (this.#mode !== DIRECT) {
      const queue = this.#queue ?? this.#newQueue();
      if (!queue.push(frame)) {
        // A burst within one tick: hand what is queued to the socket now, then retry.
        if (this.#writer !== undefined) return this.#overflow();
        this[kFlush]();
        if (this.#state !== OPEN || !(this.#queue ?? this.#newQueue()).push(frame)) {
          return this.#overflow();
        }
      }
      if (!this.#dirty && this.#writer === undefined) {
        this.#dirty = true;
        this.#owner.markDirty(this);
      }
      return true;
    }
    const queue = this.#queue;
    if (this.#writer === undefined && (queue === undefined || queue.length === 0)) {
      const status = this.#transport.send(frame);
      if (status > 0) return true;
      if (status === 0) return this.#overflow();
      if (this.#transport.bufferedAmount() >= this.#owner.limits.highWaterMark) this.#startWriter();
      return true;
    }
    if (!(queue ?? this.#newQueue()).push(frame)) return this.#overflow();
    if (this.#writer === undefined) this.#startWriter();
    return true;
  }

  /**
   * @internal Hand what is queued to the socket now; resolves once the queue is empty and
   * the socket is under its low-water mark, or `undefined` when it already is (or the
   * connection is not open). A large replay waits on it between batches, so it never
   * overflows the queue the way a live burst to a slow client would.
   */
  [kSettled](): Promise<void> | undefined {
    if (this.#state !== OPEN) return undefined;
    if (this.#writer === undefined) this[kFlush]();
    return this.#writer?.done;
  }

  /** @internal The once-per-tick flush for corked transports. */
  [kFlushTick](): void {
    this.#dirty = false;
    this[kFlush]();
  }

  /** @internal Send what is queued while the socket has room; wait for it otherwise. */
  [kFlush](): void {
    if (this.#state !== OPEN || this.#writer !== undefined) return;
    this.#sendQueued();
    // Also when the queue is empty but the last send filled the socket: otherwise the next
    // flush would send straight into it again, and a trickle would never be queued (Bun
    // buffers up to its backpressureLimit, 16 MiB, before it drops anything).
    if (this.#queued() > 0 || this.#full) this.#startWriter();
  }

  /** @internal The socket closed or the hub tore the connection down. Idempotent. */
  [kTeardown](code: number, reason: string): void {
    if (this.#state === CLOSED) return;
    const info = this.#state === CLOSING && this.#closeInfo !== undefined
      ? this.#closeInfo
      : (this.#closeInfo = {
        code: 0,
        reason: "",
        cause: this.#state === CLOSING ? "server" : "client",
      });
    const cause = info.cause;
    this.#state = CLOSED;
    info.code = code;
    info.reason = reason;
    this.#writer?.abort.abort();
    this.#queue?.clear();
    this.#queue?.close();
    this.#owner.closed(this, code, reason, cause);
  }

  /**
   * @internal The peer never completed the close: drop the socket without a handshake,
   * where the transport can.
   */
  [kAbandon](): void {
    try {
      this.#transport.terminate?.();
    } catch { /* gone */ }
  }

  /** @internal Mark the connection alive now. */
  [kTouch](): void {
    this.#lastSeen = this.#owner.now();
  }

  /** @internal When the connection last showed signs of life. */
  get [kLastSeen](): number {
    return this.#lastSeen;
  }

  /** @internal Send a protocol ping if the transport can; `false` if it cannot. */
  [kPing](): boolean {
    if (this.#transport.ping === undefined) return false;
    try {
      this.#transport.ping();
    } catch { /* closing */ }
    return true;
  }

  /** @internal Set the user id (authenticate hook). */
  [kSetUser](userId: string | undefined): void {
    this.#userId = userId;
  }

  /** @internal Whether the connection is in `room`. */
  [kRoomHas](room: string): boolean {
    const rooms = this.#rooms;
    return typeof rooms === "string" ? rooms === room : rooms !== undefined && rooms.has(room);
  }

  /** @internal How many rooms the connection is in. */
  [kRoomCount](): number {
    const rooms = this.#rooms;
    return rooms === undefined ? 0 : typeof rooms === "string" ? 1 : rooms.size;
  }

  /** @internal Record `room`; `false` if already in it. */
  [kRoomAdd](room: string): boolean {
    const rooms = this.#rooms;
    if (rooms === undefined) {
      this.#rooms = room;
    } else if (typeof rooms === "string") {
      if (rooms === room) return false;
      this.#rooms = new Set([rooms, room]);
    } else {
      if (rooms.has(room)) return false;
      rooms.add(room);
    }
    return true;
  }

  /** @internal Forget `room`; `false` if not in it. */
  [kRoomDelete](room: string): boolean {
    const rooms = this.#rooms;
    if (typeof rooms === "string") {
      if (rooms !== room) return false;
      this.#rooms = undefined;
      return true;
    }
    if (rooms === undefined || !rooms.delete(room)) return false;
    if (rooms.size === 0) this.#rooms = undefined;
    return true;
  }

  /** @internal Forget every room; returns them. */
  [kRoomTake](): string[] {
    const rooms = this.#rooms;
    this.#rooms = undefined;
    return rooms === undefined ? [] : typeof rooms === "string" ? [rooms] : [...rooms];
  }

  #overflow(): false {
    if (this.#state === OPEN) {
      // Not reading: drop it rather than queue a close frame behind its backlog.
      this.#state = CLOSING;
      this.#closeInfo = { code: 0, reason: "", cause: "slow_client" };
      this.#queue?.clear();
      this.#finish(CloseCode.SLOW_CLIENT, "slow client", true);
    }
    return false;
  }

  /** Frames waiting in the queue. */
  #queued(): number {
    return this.#queue === undefined ? 0 : this.#queue.length;
  }

  #newQueue(): SendQueue {
    const limits = this.#owner.limits;
    return this.#queue = new SendQueue({
      maxMessages: limits.maxQueueMessages,
      maxBytes: limits.maxQueueBytes,
    });
  }

  /**
   * @internal Drop an empty queue (and the capacity a burst left in it) while the
   * connection is idle: idle connections hold no queue. Called by the hub's timer.
   */
  [kCompact](): void {
    const queue = this.#queue;
    if (queue !== undefined && queue.length === 0 && !this.#dirty && this.#writer === undefined) {
      this.#queue = undefined;
    }
  }

  #sendQueued(): void {
    if (this.#queued() === 0) return;
    const cork = this.#transport.cork;
    if (cork !== undefined) {
      // One shared callback, not a closure per connection (idle memory): cork runs it at once.
      Connection.#corking = this;
      cork.call(this.#transport, Connection.#drainCorking);
    } else {
      this.#drainSync();
    }
  }

  /** The connection whose queue the transport's `cork` is about to drain. */
  static #corking: Connection | undefined;

  /** The one `cork` callback for every connection (not a closure each: idle memory). */
  static readonly #drainCorking = (): void => {
    const conn = Connection.#corking;
    Connection.#corking = undefined;
    if (conn !== undefined) conn.#drainSync();
  };

  /** Send queued frames while the socket has room. */
  #drainSync(): void {
    const queue = this.#queue;
    if (queue === undefined) return;
    if (this.#mode !== BATCH) {
      // The hot path: one pass over the queue, bookkeeping once at the end.
      const n = queue.length;
      queue.drainWhile(this.#sendFrame, this);
      // A trickle (a frame or two per turn) keeps no queue between turns; a busy connection
      // keeps its queue and array for the next turn (the hub's timer drops it once idle).
      if (n <= 2 && queue.length === 0 && this.#queue === queue) this.#queue = undefined;
      return;
    }
    let frame: Frame | undefined;
    while ((frame = queue.shift()) !== undefined) {
      if (typeof frame === "string") {
        // Batched framing: consecutive text frames go out as one, newline-separated.
        let next = queue.peek();
        let bytes = frame.length;
        while (typeof next === "string" && bytes + next.length < MAX_BATCH_CHARS) {
          frame += "\n" + next;
          bytes += next.length + 1;
          queue.shift();
          next = queue.peek();
        }
      }
      if (!this.#sendFrame(frame)) return;
    }
  }

  /** Send one frame; `false` when the socket is full (or dropped it) and writing must stop. */
  #sendFrame(frame: Frame): boolean {
    const status = this.#transport.send(frame);
    if (status > 0) return true;
    if (status === 0) {
      this.#overflow();
      return false;
    }
    if (this.#transport.bufferedAmount() < this.#owner.limits.highWaterMark) return true;
    this.#full = true;
    return false;
  }

  #startWriter(): void {
    if (this.#writer !== undefined || this.#state === CLOSED) return;
    const writer: { abort: AbortController; done: Promise<void> | undefined } = {
      abort: new AbortController(),
      done: undefined,
    };
    this.#writer = writer;
    writer.done = this.#write(writer.abort.signal);
  }

  /** The one writer: waits for the socket to drain, then sends what is queued. */
  async #write(signal: AbortSignal): Promise<void> {
    try {
      while (this.#state !== CLOSED) {
        await this.#transport.writable(this.#owner.limits.lowWaterMark, signal);
        this.#full = false;
        if (this.#state === CLOSED) return;
        this.#sendQueued();
        if (this.#queued() === 0) return;
      }
    } catch {
      // Aborted by teardown, or the socket failed: teardown follows from the close event.
    } finally {
      // Synchronously with the last step, so no frame can slip between "empty" and "idle".
      this.#writer = undefined;
    }
  }
}
