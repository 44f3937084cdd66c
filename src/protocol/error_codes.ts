/**
 * Stable codes carried in `error` events (`{"type":"error","data":{"code",...}}`).
 *
 * The connection stays open after each of them.
 *
 * @module
 */

/** Stable error codes sent to clients in `error` events. */
export const ErrorCode = {
  /** The frame was not valid JSON. */
  INVALID_JSON: "INVALID_JSON",
  /** The message had the wrong shape, unknown fields, or failed the schema. */
  INVALID_INPUT: "INVALID_INPUT",
  /** No handler takes messages of this type. */
  UNKNOWN_TYPE: "UNKNOWN_TYPE",
  /** The room guard refused a `subscribe`. */
  SUBSCRIBE_REFUSED: "SUBSCRIBE_REFUSED",
  /** The connection has no identity (or the token was refused). */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /** The client sent too much, too fast. */
  RATE_LIMITED: "RATE_LIMITED",
  /** A limit was reached (e.g. rooms per connection, connections per user). */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  /** The app's handler refused the message (see `message` for why). */
  REFUSED: "REFUSED",
  /** The app's handler failed; details stay on the server. */
  INTERNAL_ERROR: "INTERNAL_ERROR",
  /** A `history` (or `presence`) request for a room the connection has not joined. */
  NOT_SUBSCRIBED: "NOT_SUBSCRIBED",
  /** The server cannot serve the request now (e.g. its history or presence store is down): retry later. */
  UNAVAILABLE: "UNAVAILABLE",
  /**
   * A `presence` or `presence.stats` request for a room that does not track presence, or a
   * `presence` request for a counts-only room (ask `presence.stats` there).
   */
  NOT_TRACKED: "NOT_TRACKED",
} as const;

/** One of the codes in {@linkcode ErrorCode}, or an app-defined code. */
export type ErrorCodeValue = typeof ErrorCode[keyof typeof ErrorCode];
