/**
 * Errors that callers of the client catch.
 *
 * Timeouts and aborts are the platform's: a `DOMException` named
 * `"TimeoutError"` (from a `timeout`) or the signal's reason (an
 * `"AbortError"` `DOMException` unless you abort with your own reason).
 *
 * @module
 */

/**
 * The server answered a request (or a `subscribe`) with an `error` event; or,
 * reported through the client's `error` lifecycle event, it sent an `error`
 * that answers no request (e.g. a `send()` that failed validation).
 *
 * @example
 * ```ts ignore
 * import { RequestError } from "@hubbub/hubbub/client";
 * try {
 *   await client.request("chat.send", { room: "lobby", text: "hi" });
 * } catch (e) {
 *   if (e instanceof RequestError && e.code === "NOT_IN_ROOM") await client.subscribe("lobby");
 * }
 * ```
 */
export class RequestError extends Error {
  /** The stable error code (`INVALID_INPUT`, `SUBSCRIBE_REFUSED`, or an app code). */
  readonly code: string;
  /** The request id it answers, if any. */
  readonly id: string | number | undefined;
  /** Every field of the `error` event's data (code, message, id, and app details). */
  readonly data: Readonly<Record<string, unknown>>;
  /**
   * Create the error from an `error` event's data.
   *
   * @param data The event's data: `{code, message, id?, ...}`.
   */
  constructor(data: Record<string, unknown>) {
    super(typeof data.message === "string" ? data.message : "Request failed");
    this.name = "RequestError";
    this.code = typeof data.code === "string" ? data.code : "UNKNOWN";
    const id = data.id;
    this.id = typeof id === "string" || typeof id === "number" ? id : undefined;
    this.data = Object.freeze({ ...data });
  }
}

/**
 * The connection closed before a request was answered, or the client is
 * closed (for good) so nothing more can be sent.
 *
 * A request that was already on the wire when the socket dropped is rejected
 * with this error (the client cannot know whether the server handled it);
 * requests still queued are sent after the reconnect instead.
 *
 * @example
 * ```ts ignore
 * import { DisconnectedError } from "@hubbub/hubbub/client";
 * try {
 *   await client.request("order.place", { sku: "a1" });
 * } catch (e) {
 *   if (e instanceof DisconnectedError) console.log("unknown outcome; closed with", e.code);
 * }
 * ```
 */
export class DisconnectedError extends Error {
  /** The close code of the connection that ended. */
  readonly code: number;
  /** The close reason. */
  readonly reason: string;
  /**
   * Create the error.
   *
   * @param code The close code.
   * @param reason The close reason.
   * @param message What could not be done.
   */
  constructor(code: number, reason: string, message?: string) {
    super(
      message ??
        `Cannot complete request: connection closed (${code}${reason ? ` ${reason}` : ""})`,
    );
    this.name = "DisconnectedError";
    this.code = code;
    this.reason = reason;
  }
}

/**
 * The client is offline and its send queue is full: the newest message is
 * refused (thrown by `send()`, rejected by `request()`), so what was queued
 * earlier keeps its order and nothing already accepted is lost.
 *
 * @example
 * ```ts ignore
 * import { QueueFullError } from "@hubbub/hubbub/client";
 * try {
 *   client.send("cursor.move", { x, y });
 * } catch (e) {
 *   if (!(e instanceof QueueFullError)) throw e; // offline for a while: drop cursor moves
 * }
 * ```
 */
export class QueueFullError extends Error {
  /** The queue's limit (messages). */
  readonly limit: number;
  /**
   * Create the error.
   *
   * @param limit The queue's limit.
   */
  constructor(limit: number) {
    super(`Cannot queue message: ${limit} messages already wait for the connection`);
    this.name = "QueueFullError";
    this.limit = limit;
  }
}
