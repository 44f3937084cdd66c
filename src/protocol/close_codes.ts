/**
 * The close codes hubbub uses, in one table, and the rules both ends follow.
 *
 * RFC 6455 codes where one fits; library codes in 4000–4999. Each entry says
 * whether a well-behaved client should reconnect after seeing it.
 *
 * | code | name | meaning | reconnect? |
 * | ---- | ---- | ------- | ---------- |
 * | 1000 | `NORMAL` | normal closure, e.g. `connection.close()` from app code | no |
 * | 1001 | `GOING_AWAY` | the hub is shutting down, or the connection was idle too long | yes |
 * | 1008 | `POLICY_VIOLATION` | the app rejected the connection (connect hook) | no |
 * | 1009 | `MESSAGE_TOO_BIG` | an inbound frame exceeded `maxMessageBytes` | yes |
 * | 1011 | `INTERNAL_ERROR` | an unexpected server error | yes, with backoff |
 * | 1013 | `TRY_AGAIN_LATER` | the server is overloaded | yes, with backoff |
 * | 4000 | `SLOW_CLIENT` | the client did not read fast enough; its send queue overflowed | yes |
 * | 4001 | `UNAUTHENTICATED` | the connection failed to authenticate | no |
 * | 4002 | `RATE_LIMITED` | the client kept sending over its rate limit | yes, with backoff |
 * | 4003 | `REPLACED` | the server closed this connection in favour of another | no |
 * | 4004 | `INSUFFICIENT_STATE` | the server lost part of a history room's stream it cannot repair; reconnect and recover | yes, and recover |
 *
 * A client can also see codes that come from the runtime, not from hubbub: 1002
 * (a malformed frame), 1007 (invalid UTF-8 in a text frame; Bun), 1009 from the
 * runtime itself for a frame far over the limit (Bun), and 1005/1006 when the
 * connection ends without a close frame: Deno ends protocol errors that way, may
 * drop the close frame when a client keeps sending after the server closed, and a
 * slow client (4000) is terminated without one on Bun. Reconnect after any of them.
 * Deno reports an abrupt disconnect as code 0: {@linkcode normalizeCloseCode} maps
 * it to 1006, as browsers and Bun report it.
 *
 * Which codes each end may send ({@linkcode isSendableCloseCode}): a server
 * 1000–1003, 1007–1014 and 3000–4999 (what browsers accept from a server); a
 * client 1000 and 3000–4999 (what `WebSocket.close()` accepts). A close reason
 * is at most {@linkcode MAX_CLOSE_REASON_BYTES} UTF-8 bytes (Deno throws beyond
 * it, Bun truncates).
 *
 * This module is part of the protocol layer: the server (`@hubbub/hubbub`) and
 * the client (`@hubbub/hubbub/client`) both build on it.
 *
 * @module
 */

import { utf8Length } from "./envelope.ts";

/** Close codes used by hubbub. See the module docs for the full table. */
export const CloseCode = {
  /** Normal closure. Do not reconnect. */
  NORMAL: 1000,
  /** Server shutting down or idle timeout. Reconnect. */
  GOING_AWAY: 1001,
  /** The app refused the connection. Do not reconnect. */
  POLICY_VIOLATION: 1008,
  /** An inbound frame was over the size limit. Reconnect. */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server error. Reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** Server overloaded. Reconnect with backoff. */
  TRY_AGAIN_LATER: 1013,
  /** The client's send queue overflowed. Reconnect. */
  SLOW_CLIENT: 4000,
  /** Authentication failed or timed out. Do not reconnect. */
  UNAUTHENTICATED: 4001,
  /** The client kept exceeding its rate limit. Reconnect with backoff. */
  RATE_LIMITED: 4002,
  /** Replaced by another connection. Do not reconnect. */
  REPLACED: 4003,
  /**
   * The server could not deliver a history room's stream without a gap (e.g. a
   * pub/sub message lost around a Redis hiccup that the store could not repair).
   * Reconnect, and resubscribe with `recover` from the last offset delivered.
   */
  INSUFFICIENT_STATE: 4004,
} as const;

/** One of the close codes in {@linkcode CloseCode}. */
export type CloseCodeValue = typeof CloseCode[keyof typeof CloseCode];

/** Codes after which a client should not reconnect on its own. */
export const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set<number>([
  CloseCode.NORMAL,
  CloseCode.POLICY_VIOLATION,
  CloseCode.UNAUTHENTICATED,
  CloseCode.REPLACED,
]);

/**
 * Whether a client should reconnect after a close with `code`.
 *
 * @param code The close code the client saw.
 * @returns `false` for the terminal codes in {@linkcode TERMINAL_CLOSE_CODES}, `true` otherwise.
 * @example
 * ```ts
 * import { shouldReconnect } from "./close_codes.ts";
 * shouldReconnect(4000); // true: slow client, try again
 * shouldReconnect(4004); // true: insufficient state, reconnect and recover
 * shouldReconnect(1008); // false: refused by the app
 * ```
 */
export function shouldReconnect(code: number): boolean {
  return !TERMINAL_CLOSE_CODES.has(code);
}

/** The code for "closed without a close frame" (RFC 6455: abnormal closure). */
export const ABNORMAL_CLOSURE = 1006;

/**
 * The close code as browsers and Bun report it: Deno reports an abrupt
 * disconnect as `0`, everyone else as 1006.
 *
 * @param code The code a runtime's `close` event carried.
 * @returns 1006 for `0`, the code otherwise.
 * @example
 * ```ts
 * import { normalizeCloseCode } from "./close_codes.ts";
 * normalizeCloseCode(0); // 1006
 * normalizeCloseCode(1001); // 1001
 * ```
 */
export function normalizeCloseCode(code: number): number {
  return code === 0 ? ABNORMAL_CLOSURE : code;
}

/** Which end sends a close frame: the codes each may send differ. */
export type CloseSender = "server" | "client";

/** The longest close reason, in UTF-8 bytes (RFC 6455: a control frame's 125 bytes less the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Whether `sender` may send close code `code`: a server 1000–1003, 1007–1014
 * and 3000–4999 (what browsers accept from a server); a client 1000 and
 * 3000–4999 (what the WHATWG `WebSocket.close()` accepts). 1004–1006 and 1015
 * never go on the wire.
 *
 * @param code The code.
 * @param sender Who sends it.
 * @returns Whether it is allowed.
 * @example
 * ```ts
 * import { isSendableCloseCode } from "./close_codes.ts";
 * isSendableCloseCode(1001, "server"); // true
 * isSendableCloseCode(1001, "client"); // false: browsers throw
 * ```
 */
export function isSendableCloseCode(code: number, sender: CloseSender): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  if (sender === "client") return code === 1000;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/**
 * Check the arguments of a close before anything is closed.
 *
 * @param code The close code.
 * @param reason The close reason.
 * @param sender Who closes: see {@linkcode isSendableCloseCode}.
 * @throws {RangeError} If `sender` may not send the code, or the reason is
 *   over {@linkcode MAX_CLOSE_REASON_BYTES} UTF-8 bytes.
 * @example
 * ```ts
 * import { assertCloseArgs } from "./close_codes.ts";
 * assertCloseArgs(4000, "slow", "server"); // fine
 * ```
 */
export function assertCloseArgs(code: number, reason: string, sender: CloseSender): void {
  if (!isSendableCloseCode(code, sender)) {
    const allowed = sender === "client" ? "1000 or 3000–4999" : "1000–1003, 1007–1014 or 3000–4999";
    throw new RangeError(`Cannot close: a ${sender} may close with ${allowed}, got ${code}`);
  }
  if (utf8Length(reason) > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`Cannot close: reason is over ${MAX_CLOSE_REASON_BYTES} UTF-8 bytes`);
  }
}
