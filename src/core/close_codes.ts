/**
 * The close codes hubbub uses, in one table.
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
 *
 * A client can also see codes that come from the runtime, not from hubbub: 1002
 * (a malformed frame), 1007 (invalid UTF-8 in a text frame; Bun), 1009 from the
 * runtime itself for a frame far over the limit (Bun), and 1005/1006 when the
 * connection ends without a close frame: Deno ends protocol errors that way, may
 * drop the close frame when a client keeps sending after the server closed, and a
 * slow client (4000) is terminated without one on Bun. Reconnect after any of them.
 *
 * @module
 */

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
 * import { shouldReconnect } from "@hubbub/hubbub";
 * shouldReconnect(4000); // true: slow client, try again
 * shouldReconnect(1008); // false: refused by the app
 * ```
 */
export function shouldReconnect(code: number): boolean {
  return !TERMINAL_CLOSE_CODES.has(code);
}
