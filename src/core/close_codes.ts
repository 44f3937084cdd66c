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
 * | 4004 | `INSUFFICIENT_STATE` | the server could not keep a history room's stream whole for this connection | yes, and recover |
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

// The table lives in the protocol layer, which the client shares; the core re-exports it.
export {
  CloseCode,
  type CloseCodeValue,
  shouldReconnect,
  TERMINAL_CLOSE_CODES,
} from "../protocol/close_codes.ts";
