/**
 * Errors that callers of hubbub catch.
 *
 * @module
 */

/** Thrown by `Connection.send()` when the connection is closed or closing. */
export class ConnectionClosedError extends Error {
  /**
   * Create the error.
   *
   * @param message What could not be done.
   */
  constructor(message = "Cannot send: connection is closed") {
    super(message);
    this.name = "ConnectionClosedError";
  }
}

/**
 * Thrown by `Connection.send()` when the connection's send queue is full. The
 * connection is closed with `CloseCode.SLOW_CLIENT` when this happens.
 */
export class SlowClientError extends Error {
  /**
   * Create the error.
   *
   * @param message What could not be done.
   */
  constructor(message = "Cannot send: send queue is full (slow client)") {
    super(message);
    this.name = "SlowClientError";
  }
}

/**
 * Throw from a message handler to refuse a message: the client gets an `error`
 * event with this `code` and `message`, and the connection stays open.
 *
 * @example
 * ```ts
 * import { MessageError } from "@hubbub/hubbub";
 * throw new MessageError("NOT_IN_ROOM", "Cannot send to room: you have not joined it");
 * ```
 */
export class MessageError extends Error {
  /** The stable error code sent to the client. */
  readonly code: string;
  /** Extra fields for the `error` event's data. */
  readonly details: Record<string, unknown> | undefined;
  /**
   * Create the error.
   *
   * @param code The stable error code sent to the client.
   * @param message A human-readable message sent to the client.
   * @param details Extra fields for the `error` event's data.
   */
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "MessageError";
    this.code = code;
    this.details = details;
  }
}
