/**
 * The client's options and the platform parts it takes (a `WebSocket`
 * constructor, timers), as types.
 *
 * @module
 */

import type { BackoffOptions } from "./backoff.ts";

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
   * How long a connection attempt may take, from opening the socket until the
   * client is open (`connection.established` and, with `authenticate`, the hook's
   * fields), before it is dropped and retried (ms); `0` waits forever. Its timer
   * is separate from keepalive's, which starts once the client is open.
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
   * events into one frame ("\n"-separated), which costs it fewer syscalls (on
   * Deno the difference between ~200k and ~5M deliveries/s). The client splits
   * such frames itself, so the app sees one event at a time either way. Pass
   * `false` to opt out (one event per frame, e.g. for a proxy that inspects frames).
   * @default {true}
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
   * Reject with a {@linkcode TimeoutError} (a `DOMException` named `"TimeoutError"`)
   * after this many ms; `0` waits forever.
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

/** Options for `history()`. */
export interface HistoryOptions extends RequestOptions {
  /**
   * How many of the room's most recent messages to get (a positive integer; the
   * server caps it at what it keeps).
   * @default {all the room's history holds (up to the server's cap)}
   */
  limit?: number;
}
