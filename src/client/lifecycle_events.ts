/**
 * The client's lifecycle events (`open`, `close`, `reconnecting`, `recovery`,
 * `error`) and their payloads, as types.
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

/**
 * The `recovery` lifecycle event: a room the client was in before a reconnect is
 * joined again on the new connection. `recovered` tells the app whether it
 * missed anything.
 *
 * - `true`: the room keeps a history and still held every message after the
 *   client's position; the server replays them next, in order, then the live
 *   ones. The app's state stays valid (listeners get each missed message once).
 * - `false`: nothing is replayed (a room without history, a new epoch, or a
 *   position older than the history holds): the client is in the room from now,
 *   and the app should reload the room's state (e.g. with `history()`).
 */
export interface RecoveryEvent {
  /** The room. */
  room: string;
  /** Whether every message missed while away follows (see above). */
  recovered: boolean;
  /** The room's stream epoch; `undefined` when the room keeps no history. */
  epoch: string | undefined;
  /**
   * The stream's latest offset at the re-join (a replay ends there); `undefined`
   * when the room keeps no history.
   */
  offset: number | undefined;
}

/** Where an `error` lifecycle event came from. */
export type ClientErrorSource =
  | "server"
  | "resubscribe"
  | "authenticate"
  | "listener"
  | "parse"
  | "socket"
  | "members";

/** The `error` lifecycle event. */
export interface ClientErrorEvent {
  /**
   * The error: a {@linkcode RequestError} for `server`, `resubscribe`,
   * `authenticate` and `members` (a member list's load that failed); for `socket`, an {@linkcode UpgradeError} when the server
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
  /**
   * After a reconnect, once per room that was joined before: the server acked its
   * re-join and said whether what the client missed follows. Fires before the
   * replayed messages are delivered.
   */
  recovery: RecoveryEvent;
  /** Something went wrong that no promise reports. */
  error: ClientErrorEvent;
}
