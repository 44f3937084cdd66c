/**
 * The client's lifecycle events (`open`, `close`, `reconnecting`, `error`) and
 * their payloads, as types.
 *
 * @module
 */

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
  /**
   * The error: a {@linkcode RequestError} for `server`, `resubscribe` and
   * `authenticate`; for `socket`, an {@linkcode UpgradeError} when the server
   * refused the WebSocket upgrade with an HTTP status the runtime reported (Deno,
   * Bun, the `ws` package; browsers do not say), or what the `WebSocket`
   * constructor threw.
   */
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
