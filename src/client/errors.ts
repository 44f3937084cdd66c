/**
 * Errors that callers of the client catch.
 *
 * Timeouts are a {@linkcode TimeoutError}: a `DOMException` named
 * `"TimeoutError"`, like the platform's own (`AbortSignal.timeout()`), so
 * checking `error.name === "TimeoutError"` catches both. Aborts reject with the
 * signal's reason (an `"AbortError"` `DOMException` unless you abort with your
 * own reason).
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

/**
 * A client operation did not finish in time: `request()`, `subscribe()` or
 * `unsubscribe()` after its `timeout`, or `connect()` when its `signal` timed
 * out (the message then says what it waited for and how the attempts went; the
 * signal's own reason is the `cause`). A `DOMException` named `"TimeoutError"`,
 * like the one `AbortSignal.timeout()` makes.
 *
 * @example
 * ```ts ignore
 * import { TimeoutError } from "@hubbub/hubbub/client";
 * try {
 *   await client.request("chat.send", { room: "lobby", text: "hi" }, { timeout: 2000 });
 * } catch (e) {
 *   if (e instanceof TimeoutError) console.log("no answer in 2 s:", e.message);
 * }
 * ```
 */
export class TimeoutError extends DOMException {
  /** What led to the timeout, if known (for `connect()`: the signal's reason). */
  declare readonly cause?: unknown;
  /**
   * Create the error.
   *
   * @param message What timed out, e.g. `Cannot complete request "x": timed out after 100 ms`.
   * @param options The `cause`.
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, "TimeoutError");
    if ("cause" in options) {
      Object.defineProperty(this, "cause", {
        value: options.cause,
        configurable: true,
        writable: true,
      });
    }
  }
}

/**
 * A connection attempt ended before its WebSocket opened: the server refused
 * the upgrade (its HTTP `status`, e.g. 401 from `identify`, 403 for a refused
 * Origin, 503 at max connections) or could not be reached.
 *
 * - Where the runtime reports the status (Deno, Bun and the `ws` package do;
 *   browsers do not), each refused attempt is reported as an `error` lifecycle
 *   event (source `"socket"`) with this error, and the attempt's close reason
 *   reads `upgrade refused: HTTP <status>`.
 * - `connect()` rejects with it when the client closes for good (e.g. after
 *   `maxRetries`) without ever opening: `attempts` says how many attempts in a
 *   row failed before open, `status` the last refusal's status, if known.
 *   Without a status, a refusal cannot be told from a server that is down.
 *
 * It is a {@linkcode DisconnectedError} (code 1006), so existing checks still hold.
 *
 * @example
 * ```ts ignore
 * import { UpgradeError } from "@hubbub/hubbub/client";
 * client.onLifecycle("error", ({ error }) => {
 *   if (error instanceof UpgradeError && error.status === 401) location.href = "/login";
 * });
 * ```
 */
export class UpgradeError extends DisconnectedError {
  /** The HTTP status of the refusal, when the runtime reports it. */
  readonly status: number | undefined;
  /** How many attempts in a row ended before the WebSocket opened. */
  readonly attempts: number;
  /**
   * Create the error.
   *
   * @param status The HTTP status, if known.
   * @param attempts Attempts in a row that ended before open.
   * @param url The URL the client connects to.
   */
  constructor(status: number | undefined, attempts: number, url: string) {
    const what = status !== undefined
      ? `the server refused the WebSocket upgrade with HTTP ${status}`
      : "the server refused the WebSocket upgrade or is unreachable (this runtime does not " +
        "report the HTTP status)";
    super(
      1006,
      status !== undefined ? `upgrade refused: HTTP ${status}` : "",
      `Cannot connect to ${url}: ${what}` +
        (attempts > 1 ? `; ${attempts} attempts in a row ended before the socket opened` : ""),
    );
    this.name = "UpgradeError";
    this.status = status;
    this.attempts = attempts;
  }
}
