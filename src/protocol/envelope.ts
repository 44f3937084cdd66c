/**
 * The default wire protocol's envelope and built-in message names.
 *
 * Server → client: `{"type": string, "data": any, "timestamp": number}`, one
 * JSON message per text frame.
 *
 * @module
 */

/** A server → client message as it appears on the wire. */
export interface Envelope<T extends string = string, D = unknown> {
  /** The event type, e.g. `"message"` or `"connection.established"`. */
  type: T;
  /** The payload. */
  data: D;
  /** Unix time in milliseconds when the server encoded it. */
  timestamp: number;
}

/** Server → client event types that hubbub itself sends. */
export const ServerEvent = {
  /** First frame on every connection: `{clientId, userId?}`. */
  ESTABLISHED: "connection.established",
  /** Sent before a server-initiated close: `{code, reason}`. */
  CLOSED: "connection.closed",
  /** Reply to `ping`: `{timestamp}`. */
  PONG: "pong",
  /** Ack of `subscribe`: `{room}`. */
  SUBSCRIBED: "subscribed",
  /** Ack of `unsubscribe`: `{room}`. */
  UNSUBSCRIBED: "unsubscribed",
  /** Reply to `authenticate`: `{userId, status: "success"}`. */
  AUTHENTICATED: "authenticated",
  /** The result of a client request that carried an `id`: `{id, result}`. */
  ACK: "ack",
  /** An error: `{code, message, ...}` (with the request's `id` when it had one). */
  ERROR: "error",
  /** Reply to `history`: `{room, epoch, offset, messages}` (envelopes as sent, oldest first). */
  HISTORY: "history",
  /** Reply to `presence`: `{room, clients: [{clientId, userId?, info?}]}` (every replica's). */
  PRESENCE: "presence",
  /** Reply to `presence.stats`: `{room, clients, users}` (counts across replicas). */
  PRESENCE_STATS: "presence.stats",
  /** A member joined a presence room on some replica: `{room, clientId, userId?, info?}`. */
  PRESENCE_JOIN: "presence.join",
  /** A member left a presence room (or its replica died): `{room, clientId, userId?}`. */
  PRESENCE_LEAVE: "presence.leave",
} as const;

/**
 * The subprotocol for batched framing: when a client offers it and the server
 * selects it, one text frame may carry several envelopes separated by `"\n"`
 * (JSON text never contains a raw newline). Without it: one message per frame.
 */
export const BATCH_PROTOCOL = "hubbub.batch.v1";

/** Client → server message types handled by hubbub itself. */
export const BUILTIN_TYPES: ReadonlySet<string> = new Set([
  "ping",
  "subscribe",
  "unsubscribe",
  "authenticate",
]);

/**
 * Encode one envelope as a JSON text frame.
 *
 * @param type The event type.
 * @param data The payload; must be JSON-serialisable.
 * @param timestamp Unix ms; defaults to now.
 * @returns The frame.
 * @throws {TypeError} If `data` cannot be serialised (e.g. a cycle or a BigInt).
 * @example
 * ```ts
 * import { encodeEnvelope } from "@hubbub/hubbub";
 * encodeEnvelope("pong", { timestamp: 1 }, 1); // '{"type":"pong","data":{"timestamp":1},"timestamp":1}'
 * ```
 */
export function encodeEnvelope(
  type: string,
  data: unknown,
  timestamp: number = Date.now(),
): string {
  const body = JSON.stringify(data) ?? "null";
  return `{"type":${JSON.stringify(type)},"data":${body},"timestamp":${timestamp}}`;
}

/**
 * UTF-8 byte length of a string, without allocating.
 *
 * @param s The string.
 * @returns Its length in UTF-8 bytes (lone surrogates count as 3, as encoders replace them).
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 2;
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}
