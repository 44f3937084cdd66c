/**
 * The reconnecting, typed hubbub client.
 *
 * @module
 */

import type {
  AnyContract,
  ClientMessageType,
  ClientPayload,
  RequestResult,
  ServerData,
  ServerMessage,
  ServerMessageType,
} from "../protocol/contract.ts";
import { BATCH_PROTOCOL, BUILTIN_TYPES } from "../protocol/envelope.ts";
import { shouldReconnect } from "../core/close_codes.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { DisconnectedError, QueueFullError, RequestError } from "./errors.ts";
import { EventStream } from "./_event_stream.ts";

const OPEN = 1;

/**
 * Where a client is:
 * - `"connecting"`: the first connection is being made;
 * - `"open"`: connected (after `connection.established`, rooms re-joined and the queue flushed);
 * - `"reconnecting"`: the connection was lost (or never made) and a retry is scheduled or under way;
 * - `"closed"`: for good (by `close()`, a terminal close code, or `maxRetries`).
 */
export type HubClientState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * The parts of a WHATWG `WebSocket` the client uses. The global `WebSocket` of
 * browsers, Deno, Bun and Node ≥ 22 fits, and so does the `ws` package's.
 */
export interface ClientWebSocket {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** The subprotocol the server selected, or `""`. */
  readonly protocol: string;
  /** Set to `"arraybuffer"` by the client. */
  binaryType: string;
  /** Send a text frame. */
  send(data: string): void;
  /** Start the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Listen for `open`, `message` (`event.data`), `close` (`event.code`, `event.reason`) and `error`. */
  // deno-lint-ignore no-explicit-any
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A `WebSocket` constructor: `new WebSocket(url, protocols)`. */
export type ClientWebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => ClientWebSocket;

/** Timers the client uses (reconnect delays, keepalive, request timeouts), injectable for tests. */
export interface ClientTimers {
  /** Like the global `setTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Like the global `clearTimeout`. */
  clearTimeout(handle: unknown): void;
}

const systemTimers: ClientTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** Fields of the `authenticate` message (anything but `type` and `id`, e.g. `{ token }`). */
export type AuthenticateFields = Record<string, unknown>;

/** Options for {@linkcode HubClient}. Every option has a default. */
export interface HubClientOptions extends BackoffOptions {
  /**
   * The `WebSocket` constructor, for runtimes without a global one (Node 20:
   * the `ws` package) and for tests.
   * @default {globalThis.WebSocket}
   */
  WebSocket?: ClientWebSocketConstructor;
  /**
   * Reconnect attempts in a row (without a successful open in between) before
   * giving up; `0` never reconnects.
   * @default {Infinity}
   */
  maxRetries?: number;
  /**
   * A source of numbers in `[0, 1)` for the backoff jitter.
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * Timers, for tests.
   * @default {the global setTimeout and clearTimeout}
   */
  timers?: ClientTimers;
  /**
   * Send an app-level `ping` when no frame has arrived for this long (ms); `0` turns keepalive off.
   * The idle check runs once per interval, so a ping goes out 1–2 intervals after the last frame.
   * @default {25000}
   */
  pingIntervalMs?: number;
  /**
   * After a ping, how long to wait for any frame before declaring the
   * connection dead, closing it and reconnecting (ms).
   * @default {10000}
   */
  pongTimeoutMs?: number;
  /**
   * How long a connection attempt may take, up to `connection.established`,
   * before it is dropped and retried (ms); `0` waits forever.
   * @default {15000}
   */
  connectTimeoutMs?: number;
  /**
   * Default timeout of `request()`, `subscribe()` and `unsubscribe()` (ms),
   * counted from the call (time spent queued while offline counts); `0` waits forever.
   * @default {10000}
   */
  requestTimeoutMs?: number;
  /**
   * Most messages (sends and requests) queued while offline. When full, the
   * newest is refused with {@linkcode QueueFullError}; `0` queues nothing.
   * @default {1000}
   */
  maxQueuedMessages?: number;
  /**
   * How long `close()` waits for sockets to finish closing (ms).
   * @default {2000}
   */
  closeTimeoutMs?: number;
  /**
   * Offer the `hubbub.batch.v1` subprotocol: the server may then pack several
   * events into one frame ("\n"-separated), which costs it fewer syscalls.
   * @default {false}
   */
  batch?: boolean;
  /**
   * Fields for an `authenticate` message sent first on every connection (e.g.
   * a fresh token), before rooms are re-joined. A throw drops the connection and retries.
   * @default {no authenticate message}
   */
  authenticate?: () => AuthenticateFields | Promise<AuthenticateFields>;
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions extends HubClientOptions {
  /** Abort waiting for the first open: the client is closed and `connect()` rejects with the reason. */
  signal?: AbortSignal;
}

/** Options for `request()`, `subscribe()` and `unsubscribe()`. */
export interface RequestOptions {
  /**
   * Reject with a `TimeoutError` `DOMException` after this many ms; `0` waits forever.
   * @default {the client's requestTimeoutMs}
   */
  timeout?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** Options for `events()`. */
export interface EventsOptions {
  /** End the iteration when the signal aborts. */
  signal?: AbortSignal;
  /**
   * Most events held for a slow reader; beyond it the oldest are dropped.
   * @default {1024}
   */
  bufferSize?: number;
}

/** How a connection (or the client) closed. */
export interface CloseInfo {
  /** The close code (1006 when the socket dropped without one). */
  code: number;
  /** The close reason. */
  reason: string;
}

/** The `open` lifecycle event. */
export interface OpenEvent {
  /** The server's id for this connection (new on every connection). */
  clientId: string;
  /** The user id the server assigned, if any. */
  userId: string | undefined;
  /** Whether this is a reconnection (not the first open). */
  reconnected: boolean;
}

/** The `close` lifecycle event. */
export interface ClientCloseEvent extends CloseInfo {
  /** Whether the client will try again (false: it is closed for good). */
  willReconnect: boolean;
}

/** The `reconnecting` lifecycle event. */
export interface ReconnectingEvent {
  /** The attempt number, from 1 (reset by every successful open). */
  attempt: number;
  /** How long the client waits before the attempt (ms). */
  delayMs: number;
}

/** Where an `error` lifecycle event came from. */
export type ClientErrorSource =
  | "server"
  | "resubscribe"
  | "authenticate"
  | "listener"
  | "parse"
  | "socket";

/** The `error` lifecycle event. */
export interface ClientErrorEvent {
  /** The error: a {@linkcode RequestError} for `server`, `resubscribe` and `authenticate`. */
  error: unknown;
  /** Where it came from. */
  source: ClientErrorSource;
}

/** The client's lifecycle events and their payloads. */
export interface HubClientLifecycle {
  /**
   * Connected (first time or again): `authenticate` and the room re-joins are
   * sent and the offline queue is flushed. The server handles the re-joins
   * before anything the client sends afterwards, so a message sent from this
   * listener already reaches the rooms (their acks may still be in flight).
   */
  open: OpenEvent;
  /** A connection ended (only connections that opened), or the client stopped for good. */
  close: ClientCloseEvent;
  /** A reconnect attempt is scheduled. */
  reconnecting: ReconnectingEvent;
  /** Something went wrong that no promise reports. */
  error: ClientErrorEvent;
}

/** A server event as delivered to `on()` and `events()`. */
type Envelope = { type: string; data: unknown; timestamp: number };

interface Call {
  kind: "request" | "unsubscribe" | "auth";
  frame: string;
  sent: boolean;
  settle(error: unknown, value?: unknown): void;
}
interface RoomCall {
  kind: "subscribe";
  room: string;
}
type Entry = Call | RoomCall;

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}
interface Room {
  acked: boolean;
  waiters: Set<Waiter>;
}

interface Queued {
  frame: string;
  call?: Call;
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function resolveUrl(url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let u: URL;
  try {
    u = new URL(String(url), base);
  } catch {
    throw new TypeError(`Cannot create client: invalid URL "${url}"`);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`Cannot create client: URL scheme must be ws, wss, http or https`);
  }
  u.hash = "";
  return u.href;
}

function encode(type: string, payload: unknown, id?: number): string {
  if (typeof type !== "string" || type === "") {
    throw new TypeError("Cannot send: type must be a non-empty string");
  }
  if (BUILTIN_TYPES.has(type)) {
    throw new TypeError(`Cannot send "${type}": a built-in type (use the client's own method)`);
  }
  const fields = payload ?? {};
  if (typeof fields !== "object" || Array.isArray(fields)) {
    throw new TypeError(`Cannot send "${type}": payload must be an object`);
  }
  if (Object.hasOwn(fields, "type") || Object.hasOwn(fields, "id")) {
    throw new TypeError(`Cannot send "${type}": "type" and "id" are reserved field names`);
  }
  return JSON.stringify(id === undefined ? { type, ...fields } : { type, ...fields, id });
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(`Cannot create client: ${name} must be a number ≥ 0`);
  }
  return value;
}

function utf8Bytes(s: string): number {
  return new TextEncoder().encode(s).byteLength;
}

function timeoutError(what: string, ms: number): DOMException {
  return new DOMException(`Cannot complete ${what}: timed out after ${ms} ms`, "TimeoutError");
}

/**
 * A typed WebSocket client for a hubbub server that reconnects by itself.
 *
 * - **Connecting**: it opens at construction and is `"open"` once the server's
 *   `connection.established` arrives (`clientId`, `userId`).
 * - **Reconnecting**: after a lost connection it retries with exponential
 *   backoff and full jitter, re-sends `authenticate` (if configured), re-joins
 *   its rooms, then flushes what was queued while offline, in order. It stops
 *   on the terminal close codes (1000, 1008, 4001, 4003), after `maxRetries`,
 *   or on `close()`; `closed` then resolves with the code and reason.
 * - **Offline queue**: `send()` and `request()` made while not open are
 *   queued (bounded: the newest is refused with {@linkcode QueueFullError}).
 *   `send()` is at most once: a message written to a socket that is dying may
 *   be lost; `request()` tells you (a request already sent when the
 *   connection dropped rejects with {@linkcode DisconnectedError}).
 * - **Keepalive**: an app-level `ping` after `pingIntervalMs` without a frame;
 *   no frame within `pongTimeoutMs` drops the connection and reconnects.
 * - **Events**: `on(type, fn)` and `events()` get app events in arrival order;
 *   `onLifecycle()` gets `open`, `close`, `reconnecting` and `error`.
 * - **close()** is idempotent, rejects what is pending with
 *   {@linkcode DisconnectedError}, ends `events()` iterators, and resolves
 *   once the socket has closed.
 *
 * @typeParam C The app's contract (`typeof contract`), for typed `send`, `request` and `on`.
 * @example
 * ```ts ignore
 * import { HubClient } from "@hubbub/hubbub/client";
 * import type { contract } from "./contract.ts";
 *
 * const client = new HubClient<typeof contract>("wss://example.com/ws");
 * client.on("chat.message", (m) => console.log(`${m.from}: ${m.text}`));
 * await client.subscribe("lobby");
 * const { seq } = await client.request("chat.send", { room: "lobby", text: "hi" });
 * await client.close();
 * ```
 */
export class HubClient<C extends AnyContract = AnyContract> implements AsyncDisposable {
  readonly #url: string;
  readonly #WebSocket: ClientWebSocketConstructor;
  readonly #timers: ClientTimers;
  readonly #random: () => number;
  readonly #backoff: BackoffOptions;
  readonly #maxRetries: number;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxQueued: number;
  readonly #closeTimeoutMs: number;
  readonly #batch: boolean;
  readonly #authenticate: HubClientOptions["authenticate"];

  #state: HubClientState = "connecting";
  #ws: ClientWebSocket | undefined;
  #batched = false;
  #handshaking = false;
  #everOpened = false;
  #closing = false;
  #clientId: string | undefined;
  #userId: string | undefined;
  #serverClose: CloseInfo | undefined;
  #closeInfo: CloseInfo | undefined;
  readonly #closed = deferred<CloseInfo>();

  #attempt = 0;
  #retryTimer: unknown;
  #kaTimer: unknown;
  #frames = 0;
  #framesSeen = 0;

  #nextId = 1;
  readonly #pending = new Map<number, Entry>();
  #queue: Queued[] = [];
  readonly #rooms = new Map<string, Room>();
  readonly #listeners = new Map<string, Set<(data: unknown, event: Envelope) => void>>();
  readonly #lifecycle = new Map<string, Set<(event: never) => void>>();
  readonly #streams = new Set<EventStream<Envelope>>();
  readonly #sockets = new Set<ClientWebSocket>();
  #socketsGone: (() => void)[] = [];

  /**
   * Create a client and start connecting.
   *
   * @param url The hub's URL: `ws:`, `wss:`, `http:` or `https:` (relative
   *   URLs resolve against the page in browsers).
   * @param options See {@linkcode HubClientOptions}.
   * @throws {TypeError} If the URL is invalid or there is no `WebSocket` constructor.
   * @throws {RangeError} If a numeric option is negative.
   */
  constructor(url: string | URL, options: HubClientOptions = {}) {
    this.#url = resolveUrl(url);
    const WS = options.WebSocket ??
      (globalThis as { WebSocket?: ClientWebSocketConstructor }).WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "Cannot create client: no global WebSocket; pass one as options.WebSocket",
      );
    }
    this.#WebSocket = WS;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#backoff = {
      minDelayMs: nonNegative(options.minDelayMs, 500, "minDelayMs"),
      maxDelayMs: nonNegative(options.maxDelayMs, 30_000, "maxDelayMs"),
    };
    this.#maxRetries = nonNegative(options.maxRetries, Infinity, "maxRetries");
    this.#pingIntervalMs = nonNegative(options.pingIntervalMs, 25_000, "pingIntervalMs");
    this.#pongTimeoutMs = nonNegative(options.pongTimeoutMs, 10_000, "pongTimeoutMs");
    this.#connectTimeoutMs = nonNegative(options.connectTimeoutMs, 15_000, "connectTimeoutMs");
    this.#requestTimeoutMs = nonNegative(options.requestTimeoutMs, 10_000, "requestTimeoutMs");
    this.#maxQueued = nonNegative(options.maxQueuedMessages, 1000, "maxQueuedMessages");
    this.#closeTimeoutMs = nonNegative(options.closeTimeoutMs, 2000, "closeTimeoutMs");
    this.#batch = options.batch === true;
    this.#authenticate = options.authenticate;
    this.#connect();
  }

  // ---------------------------------------------------------------- state

  /** Where the client is: see {@linkcode HubClientState}. */
  get state(): HubClientState {
    return this.#state;
  }

  /** The server's id for the current connection; `undefined` while not connected. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The user id the server assigned to the current connection, if any. */
  get userId(): string | undefined {
    return this.#userId;
  }

  /** The rooms the client is in or joining (re-joined after every reconnect). */
  get rooms(): string[] {
    return [...this.#rooms.keys()];
  }

  /** How the client closed for good, or `undefined` while it is not closed. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Resolves (never rejects) once the client is closed for good, with the code and reason. */
  get closed(): Promise<CloseInfo> {
    return this.#closed.promise;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Send a message (fire and forget). While offline it is queued and sent,
   * in order, after the reconnect.
   *
   * @param type A client message type of the contract.
   * @param payload Its fields (not `type` or `id`).
   * @throws {TypeError} If the type is empty or built-in, or the payload is
   *   not an object, has `type`/`id` fields, or cannot be serialised.
   * @throws {QueueFullError} If offline and the queue is full.
   * @throws {DisconnectedError} If the client is closed.
   * @example
   * ```ts ignore
   * client.send("chat.send", { room: "lobby", text: "hi" });
   * ```
   */
  send<K extends ClientMessageType<C>>(type: K, payload: ClientPayload<C, K>): void {
    this.#assertNotClosed("send");
    const frame = encode(type, payload);
    const ws = this.#writable();
    if (ws !== undefined) ws.send(frame);
    else this.#enqueue({ frame });
  }

  /**
   * Send a request and wait for the server's answer: the handler's result
   * (`ack`), or its refusal (`error`). While offline it is queued.
   *
   * @param type A client message type of the contract.
   * @param payload Its fields (not `type` or `id`).
   * @param options Timeout and abort signal.
   * @returns The result the server's handler returned.
   * @throws {RequestError} The server answered with an error (rejection).
   * @throws {DOMException} `TimeoutError` on timeout; the signal's reason on abort (rejection).
   * @throws {DisconnectedError} The connection dropped after sending, or the client closed (rejection).
   * @throws {QueueFullError} Offline with a full queue (rejection).
   * @throws {TypeError} Bad type or payload, as for `send()` (rejection).
   * @example
   * ```ts ignore
   * const { seq } = await client.request("chat.send", { room: "lobby", text: "hi" }, {
   *   timeout: 5000,
   * });
   * ```
   */
  request<K extends ClientMessageType<C>>(
    type: K,
    payload: ClientPayload<C, K>,
    options: RequestOptions = {},
  ): Promise<RequestResult<C, K>> {
    let frame: string;
    const id = this.#nextId++;
    try {
      this.#assertNotClosed("request");
      frame = encode(type, payload, id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#call("request", id, frame, `request "${type}"`, options) as Promise<
      RequestResult<C, K>
    >;
  }

  /**
   * Join a room. Resolves when the server acks it; the room is re-joined after
   * every reconnect. If the server refuses, the room is dropped and the promise
   * rejects; a refusal on a later re-join is reported as an `error` lifecycle
   * event (source `"resubscribe"`). A timeout or abort before the first ack
   * drops the room too.
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns A promise that resolves once joined.
   * @throws {RequestError} `SUBSCRIBE_REFUSED` (or `INVALID_INPUT`) from the server (rejection).
   * @throws {DOMException} `TimeoutError` or the signal's reason (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @throws {TypeError} If `room` is not a non-empty string (rejection).
   * @example
   * ```ts ignore
   * await client.subscribe("lobby");
   * ```
   */
  subscribe(room: string, options: RequestOptions = {}): Promise<void> {
    try {
      this.#assertNotClosed("subscribe");
      if (typeof room !== "string" || room === "") {
        throw new TypeError("Cannot subscribe: room must be a non-empty string");
      }
    } catch (error) {
      return Promise.reject(error);
    }
    let state = this.#rooms.get(room);
    const isNew = state === undefined;
    if (state === undefined) this.#rooms.set(room, state = { acked: false, waiters: new Set() });
    const joined = state;
    const { promise, resolve, reject } = deferred<void>();
    const ms = options.timeout ?? this.#requestTimeoutMs;
    const signal = options.signal;
    let timer: unknown;
    const cleanup = () => {
      if (timer !== undefined) this.#timers.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const waiter: Waiter = {
      resolve: () => {
        cleanup();
        resolve();
      },
      reject: (error) => {
        cleanup();
        reject(error);
      },
    };
    const giveUp = (error: unknown) => {
      if (!joined.waiters.delete(waiter)) return;
      waiter.reject(error);
      if (!joined.acked && joined.waiters.size === 0 && this.#rooms.get(room) === joined) {
        this.#rooms.delete(room);
        const ws = this.#writable();
        ws?.send(JSON.stringify({ type: "unsubscribe", room }));
      }
    };
    const onAbort = () => giveUp(signal!.reason);
    if (signal?.aborted) {
      if (isNew) this.#rooms.delete(room);
      return Promise.reject(signal.reason);
    }
    joined.waiters.add(waiter);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (ms > 0 && Number.isFinite(ms)) {
      timer = this.#timers.setTimeout(
        () => giveUp(timeoutError(`subscribe "${room}"`, ms)),
        ms,
      );
    }
    if (this.#writable() !== undefined) this.#sendRoom("subscribe", room);
    return promise;
  }

  /**
   * Leave a room: it is no longer re-joined. Resolves when the server acks it,
   * or at once while offline (a new connection starts outside the room).
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns A promise that resolves once left.
   * @throws {RequestError} The server refused the message (rejection).
   * @throws {DOMException} `TimeoutError` or the signal's reason (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @example
   * ```ts ignore
   * await client.unsubscribe("lobby");
   * ```
   */
  unsubscribe(room: string, options: RequestOptions = {}): Promise<void> {
    try {
      this.#assertNotClosed("unsubscribe");
    } catch (error) {
      return Promise.reject(error);
    }
    const state = this.#rooms.get(room);
    if (state !== undefined) {
      this.#rooms.delete(room);
      for (const w of state.waiters) {
        w.reject(new DOMException(`Cannot subscribe "${room}": unsubscribed`, "AbortError"));
      }
      state.waiters.clear();
    }
    if (this.#writable() === undefined) return Promise.resolve();
    const id = this.#nextId++;
    const frame = JSON.stringify({ type: "unsubscribe", room, id });
    return this.#call("unsubscribe", id, frame, `unsubscribe "${room}"`, options).then(() => {});
  }

  // ---------------------------------------------------------------- receiving

  /**
   * Call `listener` for every app event of one type, in arrival order.
   *
   * @param type A server event type of the contract.
   * @param listener Gets the event's data and the whole envelope. A throw is
   *   reported as an `error` lifecycle event (source `"listener"`).
   * @returns A function that removes the listener.
   * @example
   * ```ts ignore
   * const off = client.on("chat.message", (m) => console.log(m.from, m.text));
   * off();
   * ```
   */
  on<K extends ServerMessageType<C>>(
    type: K,
    listener: (data: ServerData<C, K>, event: Extract<ServerMessage<C>, { type: K }>) => void,
  ): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, set = new Set());
    const fn = listener as (data: unknown, event: Envelope) => void;
    set.add(fn);
    return () => {
      const s = this.#listeners.get(type);
      if (s === undefined) return;
      s.delete(fn);
      if (s.size === 0) this.#listeners.delete(type);
    };
  }

  /**
   * Iterate over every app event (`{type, data, timestamp}`), in arrival
   * order. A slow reader keeps the newest `bufferSize` events (older ones are
   * dropped). The iteration ends when the client closes for good (after what
   * is buffered), when `signal` aborts, or on `break` (`return()` detaches it).
   *
   * @param options Abort signal and buffer size.
   * @returns An async iterator of events.
   * @throws {RangeError} If `bufferSize` is not a positive integer.
   * @example
   * ```ts ignore
   * for await (const event of client.events({ signal: AbortSignal.timeout(60_000) })) {
   *   if (event.type === "chat.message") console.log(event.data.text);
   * }
   * ```
   */
  events(options: EventsOptions = {}): AsyncIterableIterator<ServerMessage<C>> {
    const size = options.bufferSize ?? 1024;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError("Cannot iterate events: bufferSize must be an integer ≥ 1");
    }
    const signal = options.signal;
    const onAbort = () => stream.end();
    const stream: EventStream<Envelope> = new EventStream<Envelope>(size, () => {
      this.#streams.delete(stream);
      signal?.removeEventListener("abort", onAbort);
    });
    if (this.#state === "closed" || signal?.aborted) {
      stream.end();
    } else {
      this.#streams.add(stream);
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    return stream as unknown as AsyncIterableIterator<ServerMessage<C>>;
  }

  /**
   * Listen for a lifecycle event: `open`, `close`, `reconnecting` or `error`.
   *
   * @param name The event name.
   * @param listener Gets the event's payload.
   * @returns A function that removes the listener.
   * @example
   * ```ts ignore
   * client.onLifecycle("close", ({ code, reason, willReconnect }) => {
   *   if (!willReconnect) console.log("gone for good:", code, reason);
   * });
   * client.onLifecycle("reconnecting", ({ attempt, delayMs }) => console.log(attempt, delayMs));
   * ```
   */
  onLifecycle<K extends keyof HubClientLifecycle>(
    name: K,
    listener: (event: HubClientLifecycle[K]) => void,
  ): () => void {
    let set = this.#lifecycle.get(name);
    if (set === undefined) this.#lifecycle.set(name, set = new Set());
    set.add(listener as (event: never) => void);
    return () => {
      this.#lifecycle.get(name)?.delete(listener as (event: never) => void);
    };
  }

  // ---------------------------------------------------------------- closing

  /**
   * Close for good: no reconnect. Pending requests and subscribes reject with
   * {@linkcode DisconnectedError}, the queue is dropped, `events()` iterators
   * end, and `close` fires with `willReconnect: false`. Idempotent; safe in any state.
   *
   * @param code The close code sent to the server: 1000 or 3000–4999.
   * @param reason The close reason (at most 123 UTF-8 bytes).
   * @returns A promise that resolves once the sockets have closed (or after `closeTimeoutMs`).
   * @throws {RangeError} If the code or reason is not allowed.
   * @example
   * ```ts ignore
   * await client.close();
   * ```
   */
  close(code: number = 1000, reason: string = ""): Promise<void> {
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
      throw new RangeError(`Cannot close: code must be 1000 or 3000–4999, got ${code}`);
    }
    if (utf8Bytes(reason) > 123) {
      throw new RangeError("Cannot close: reason is over 123 UTF-8 bytes");
    }
    if (!this.#closing) {
      this.#closing = true;
      const ws = this.#ws;
      this.#ws = undefined;
      if (ws !== undefined) {
        try {
          ws.close(code, reason);
        } catch { /* already closing */ }
      }
      this.#finish({ code, reason });
    }
    return this.#socketsClosed();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- internals: socket

  #connect(): void {
    if (this.#closing || this.#state === "closed") return;
    let ws: ClientWebSocket;
    try {
      ws = new this.#WebSocket(this.#url, this.#batch ? [BATCH_PROTOCOL] : undefined);
    } catch (error) {
      this.#report(error, "socket");
      this.#lost(1006, "cannot open socket");
      return;
    }
    try {
      ws.binaryType = "arraybuffer";
    } catch { /* not settable: binary frames are ignored anyway */ }
    this.#ws = ws;
    this.#batched = false;
    this.#handshaking = true;
    this.#serverClose = undefined;
    this.#sockets.add(ws);
    ws.addEventListener("open", () => {
      if (ws === this.#ws) this.#batched = ws.protocol === BATCH_PROTOCOL;
    });
    ws.addEventListener("message", (event: { data: unknown }) => this.#onMessage(ws, event.data));
    ws.addEventListener("close", (event: { code?: number; reason?: string }) => {
      this.#socketGone(ws);
      if (ws === this.#ws) this.#lost(event.code ?? 1006, event.reason ?? "");
    });
    ws.addEventListener("error", () => {
      // A close event follows; reconnecting happens there.
    });
    if (this.#connectTimeoutMs > 0 && Number.isFinite(this.#connectTimeoutMs)) {
      this.#kaTimer = this.#timers.setTimeout(() => {
        this.#kaTimer = undefined;
        if (ws === this.#ws && this.#handshaking) this.#abandon(ws, "connect timeout");
      }, this.#connectTimeoutMs);
    }
  }

  #socketGone(ws: ClientWebSocket): void {
    if (!this.#sockets.delete(ws) || this.#sockets.size > 0) return;
    const waiters = this.#socketsGone;
    this.#socketsGone = [];
    for (const w of waiters) w();
  }

  #socketsClosed(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#timers.setTimeout(done, this.#closeTimeoutMs);
      const timers = this.#timers;
      function done() {
        timers.clearTimeout(timer);
        resolve();
      }
      this.#socketsGone.push(done);
    });
  }

  /** Give up on a socket now (dead or too slow): close it and carry on as if it had closed. */
  #abandon(ws: ClientWebSocket, reason: string): void {
    try {
      ws.close(1000, reason);
    } catch { /* already closing */ }
    this.#lost(1006, reason);
  }

  /** The current socket is gone: settle what depended on it, then reconnect or stop. */
  #lost(code: number, reason: string): void {
    this.#ws = undefined;
    this.#handshaking = false;
    this.#stopTimer();
    const wasOpen = this.#state === "open";
    let info: CloseInfo = { code: code === 0 ? 1006 : code, reason };
    const server = this.#serverClose;
    if (server !== undefined && (info.code === 1005 || info.code === 1006)) info = server;
    this.#serverClose = undefined;
    this.#clientId = undefined;
    this.#userId = undefined;
    for (const [id, entry] of this.#pending) {
      if (entry.kind === "subscribe" || entry.kind === "auth") this.#pending.delete(id);
      else if (entry.kind === "unsubscribe") entry.settle(undefined);
      else if (entry.sent) entry.settle(new DisconnectedError(info.code, info.reason));
    }
    if (this.#closing) return;
    const retry = shouldReconnect(info.code) && this.#attempt < this.#maxRetries;
    if (!retry) {
      this.#finish(info);
      return;
    }
    if (wasOpen) this.#emit("close", { ...info, willReconnect: true });
    if (this.#closing) return;
    this.#attempt++;
    const delayMs = backoffDelay(this.#attempt, this.#backoff, this.#random);
    this.#state = "reconnecting";
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs });
    if (this.#closing) return;
    this.#retryTimer = this.#timers.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, delayMs);
  }

  /** Closed for good. */
  #finish(info: CloseInfo): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#closeInfo = info;
    this.#clientId = undefined;
    this.#userId = undefined;
    this.#stopTimer();
    if (this.#retryTimer !== undefined) {
      this.#timers.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    const error = () =>
      new DisconnectedError(info.code, info.reason, "Cannot complete: the client is closed");
    for (const entry of [...this.#pending.values()]) {
      if (entry.kind !== "subscribe") entry.settle(error());
    }
    this.#pending.clear();
    for (const q of this.#queue) q.call?.settle(error());
    this.#queue = [];
    for (const room of this.#rooms.values()) {
      for (const w of room.waiters) w.reject(error());
      room.waiters.clear();
    }
    for (const stream of [...this.#streams]) stream.end();
    this.#emit("close", { ...info, willReconnect: false });
    this.#closed.resolve(info);
  }

  #stopTimer(): void {
    if (this.#kaTimer === undefined) return;
    this.#timers.clearTimeout(this.#kaTimer);
    this.#kaTimer = undefined;
  }

  // ---------------------------------------------------------------- internals: inbound

  #onMessage(ws: ClientWebSocket, raw: unknown): void {
    if (ws !== this.#ws) return;
    this.#frames++; // any frame, even a binary one the client ignores, shows the link is alive
    if (typeof raw !== "string") return;
    if (this.#batched && raw.includes("\n")) {
      for (const line of raw.split("\n")) {
        if (line !== "") this.#parse(ws, line);
        if (ws !== this.#ws) return;
      }
    } else this.#parse(ws, raw);
  }

  #parse(ws: ClientWebSocket, text: string): void {
    let env: Envelope;
    try {
      env = JSON.parse(text);
    } catch (error) {
      this.#report(error, "parse");
      return;
    }
    if (typeof env !== "object" || env === null || typeof env.type !== "string") {
      this.#report(new TypeError("Cannot read event: not an envelope"), "parse");
      return;
    }
    this.#dispatch(ws, env);
  }

  #dispatch(ws: ClientWebSocket, env: Envelope): void {
    const data = env.data as Record<string, unknown> | null | undefined;
    switch (env.type) {
      case "connection.established":
        this.#established(ws, data ?? {});
        return;
      case "connection.closed":
        if (data != null && typeof data.code === "number") {
          this.#serverClose = { code: data.code, reason: String(data.reason ?? "") };
        }
        return;
      case "ack":
      case "error":
      case "subscribed":
      case "unsubscribed":
      case "authenticated":
      case "pong":
        this.#reply(env.type, data ?? {});
        return;
    }
    const set = this.#listeners.get(env.type);
    if (set !== undefined) {
      for (const fn of set) {
        try {
          fn(env.data, env);
        } catch (error) {
          this.#report(error, "listener");
        }
      }
    }
    for (const stream of this.#streams) stream.push(env);
  }

  #reply(type: string, data: Record<string, unknown>): void {
    const id = data.id;
    const entry = typeof id === "number" ? this.#pending.get(id) : undefined;
    if (type === "authenticated" && typeof data.userId === "string") this.#userId = data.userId;
    if (entry === undefined) {
      // An error with an id answers a request already settled (timed out, aborted): drop it.
      if (type === "error" && id === undefined) this.#report(new RequestError(data), "server");
      return;
    }
    if (entry.kind === "subscribe" || entry.kind === "auth") this.#pending.delete(id as number);
    if (entry.kind === "subscribe") {
      const room = this.#rooms.get(entry.room);
      if (room === undefined) return;
      if (type === "error") {
        this.#rooms.delete(entry.room);
        const error = new RequestError(data);
        if (room.waiters.size === 0) this.#report(error, "resubscribe");
        for (const w of room.waiters) w.reject(error);
      } else {
        room.acked = true;
        for (const w of room.waiters) w.resolve();
      }
      room.waiters.clear();
      return;
    }
    if (type === "error") {
      const error = new RequestError(data);
      if (entry.kind === "auth") this.#report(error, "authenticate");
      else entry.settle(error);
    } else {
      entry.settle(undefined, type === "ack" ? data.result : undefined);
    }
  }

  #established(ws: ClientWebSocket, data: Record<string, unknown>): void {
    if (!this.#handshaking) return;
    this.#handshaking = false;
    this.#stopTimer();
    this.#clientId = typeof data.clientId === "string" ? data.clientId : undefined;
    this.#userId = typeof data.userId === "string" ? data.userId : undefined;
    const auth = this.#authenticate;
    if (auth === undefined) {
      this.#ready(ws, undefined);
      return;
    }
    let fields: AuthenticateFields | Promise<AuthenticateFields>;
    try {
      fields = auth();
    } catch (error) {
      this.#authFailed(ws, error);
      return;
    }
    if (fields instanceof Promise) {
      fields.then(
        (f) => ws === this.#ws && this.#ready(ws, f),
        (error) => this.#authFailed(ws, error),
      );
    } else this.#ready(ws, fields);
  }

  #authFailed(ws: ClientWebSocket, error: unknown): void {
    if (ws !== this.#ws) return;
    this.#report(error, "authenticate");
    this.#abandon(ws, "authenticate hook failed");
  }

  /** Connected: authenticate, re-join rooms, flush the queue, then announce `open`. */
  #ready(ws: ClientWebSocket, auth: AuthenticateFields | undefined): void {
    if (auth !== undefined) {
      const id = this.#nextId++;
      const frame = JSON.stringify({ ...auth, type: "authenticate", id });
      this.#pending.set(id, { kind: "auth", frame, sent: true, settle: () => {} });
      ws.send(frame);
    }
    for (const room of this.#rooms.keys()) this.#sendRoom("subscribe", room);
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) {
      ws.send(q.frame);
      if (q.call !== undefined) q.call.sent = true;
    }
    const reconnected = this.#everOpened;
    this.#everOpened = true;
    this.#attempt = 0;
    this.#state = "open";
    this.#armPing();
    this.#emit("open", { clientId: this.#clientId ?? "", userId: this.#userId, reconnected });
  }

  // ---------------------------------------------------------------- internals: keepalive

  #armPing(): void {
    if (!(this.#pingIntervalMs > 0) || !Number.isFinite(this.#pingIntervalMs)) return;
    this.#framesSeen = this.#frames;
    this.#kaTimer = this.#timers.setTimeout(this.#onPingTimer, this.#pingIntervalMs);
  }

  readonly #onPingTimer = (): void => {
    this.#kaTimer = undefined;
    const ws = this.#ws;
    if (ws === undefined || this.#state !== "open") return;
    if (this.#frames !== this.#framesSeen) {
      this.#armPing();
      return;
    }
    try {
      ws.send('{"type":"ping"}');
    } catch { /* closing: the close event follows */ }
    this.#kaTimer = this.#timers.setTimeout(() => {
      this.#kaTimer = undefined;
      if (ws !== this.#ws) return;
      if (this.#frames !== this.#framesSeen) this.#armPing();
      else this.#abandon(ws, "keepalive timeout");
    }, this.#pongTimeoutMs);
  };

  // ---------------------------------------------------------------- internals: outbound

  #assertNotClosed(what: string): void {
    if (this.#state === "closed") {
      const info = this.#closeInfo ?? { code: 1000, reason: "" };
      throw new DisconnectedError(info.code, info.reason, `Cannot ${what}: the client is closed`);
    }
  }

  /** The socket, if app frames may be written to it right now. */
  #writable(): ClientWebSocket | undefined {
    const ws = this.#ws;
    return this.#state === "open" && ws !== undefined && ws.readyState === OPEN ? ws : undefined;
  }

  #enqueue(item: Queued): void {
    if (this.#queue.length >= this.#maxQueued) throw new QueueFullError(this.#maxQueued);
    this.#queue.push(item);
  }

  #sendRoom(kind: "subscribe", room: string): void {
    const id = this.#nextId++;
    this.#pending.set(id, { kind, room });
    this.#ws?.send(JSON.stringify({ type: kind, room, id }));
  }

  #call(
    kind: "request" | "unsubscribe",
    id: number,
    frame: string,
    what: string,
    options: RequestOptions,
  ): Promise<unknown> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ms = options.timeout ?? this.#requestTimeoutMs;
    const { promise, resolve, reject } = deferred<unknown>();
    let timer: unknown;
    const onAbort = () => call.settle(signal!.reason);
    const call: Call = {
      kind,
      frame,
      sent: false,
      settle: (error, value) => {
        if (this.#pending.get(id) !== call) return;
        this.#pending.delete(id);
        if (!call.sent) {
          const i = this.#queue.findIndex((q) => q.call === call);
          if (i >= 0) this.#queue.splice(i, 1);
        }
        if (timer !== undefined) this.#timers.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve(value);
        else reject(error);
      },
    };
    this.#pending.set(id, call);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (ms > 0 && Number.isFinite(ms)) {
      timer = this.#timers.setTimeout(() => call.settle(timeoutError(what, ms)), ms);
    }
    const ws = this.#writable();
    if (ws !== undefined) {
      call.sent = true;
      ws.send(frame);
    } else {
      try {
        this.#enqueue({ frame, call });
      } catch (error) {
        call.settle(error);
      }
    }
    return promise;
  }

  // ---------------------------------------------------------------- internals: lifecycle

  #emit<K extends keyof HubClientLifecycle>(name: K, event: HubClientLifecycle[K]): void {
    const set = this.#lifecycle.get(name);
    if (set === undefined) return;
    for (const fn of set) {
      try {
        (fn as (e: HubClientLifecycle[K]) => void)(event);
      } catch (error) {
        if (name !== "error") this.#report(error, "listener");
      }
    }
  }

  #report(error: unknown, source: ClientErrorSource): void {
    const set = this.#lifecycle.get("error");
    if (set === undefined || set.size === 0) {
      if (source === "listener") console.error("hubbub client: a listener threw:", error);
      return;
    }
    this.#emit("error", { error, source });
  }
}

/**
 * Create a client and wait until it is open. The client keeps retrying (per
 * its reconnect options) until the first open, so a server that is not up yet
 * is fine; pass `signal` (e.g. `AbortSignal.timeout(10_000)`) or `maxRetries`
 * to bound the wait.
 *
 * @typeParam C The app's contract (`typeof contract`).
 * @param url The hub's URL (`ws:`, `wss:`, `http:`, `https:`, or relative in browsers).
 * @param options Client options, plus `signal` for the wait.
 * @returns The open client.
 * @throws {DisconnectedError} The client closed for good before opening (rejection).
 * @throws {DOMException} The signal's reason when it aborts (rejection).
 * @throws {TypeError} As the {@linkcode HubClient} constructor.
 * @example
 * ```ts ignore
 * import { connect } from "@hubbub/hubbub/client";
 * import type { contract } from "./contract.ts";
 * await using client = await connect<typeof contract>("/ws", {
 *   signal: AbortSignal.timeout(10_000),
 * });
 * await client.subscribe("lobby");
 * ```
 */
export function connect<C extends AnyContract = AnyContract>(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<HubClient<C>> {
  let client: HubClient<C>;
  try {
    client = new HubClient<C>(url, options);
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options.signal;
  return new Promise<HubClient<C>>((resolve, reject) => {
    const offOpen = client.onLifecycle("open", () => {
      done();
      resolve(client);
    });
    const offClose = client.onLifecycle("close", (e) => {
      if (e.willReconnect) return;
      done();
      const error = new DisconnectedError(
        e.code,
        e.reason,
        `Cannot connect: closed (${e.code}${e.reason ? ` ${e.reason}` : ""})`,
      );
      client.close().then(() => reject(error));
    });
    const onAbort = () => {
      done();
      client.close().then(() => reject(signal!.reason));
    };
    function done() {
      offOpen();
      offClose();
      signal?.removeEventListener("abort", onAbort);
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
