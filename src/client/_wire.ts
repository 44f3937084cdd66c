// What the client writes and reads: its URL, client → server frames, and parsing one
// server envelope. Names and framing rules come from the protocol layer.

import { BUILTIN_TYPES, type Envelope, ServerEvent } from "../protocol/envelope.ts";
import type { PresenceClient, PresenceStats } from "./presence.ts";
import type { HistoryResult, StreamPosition } from "./stream_position.ts";

/** `ws:`/`wss:` URL of the hub (http(s) mapped, relative URLs resolved against the page). */
export function resolveUrl(url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let u: URL;
  try {
    u = new URL(String(url), base);
  } catch {
    throw new TypeError(`Cannot create client: invalid URL "${url}"`);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`Cannot create client: URL scheme must be ws, wss, http or https`);
  }
  u.hash = "";
  return u.href;
}

/**
 * An app message: `{type, ...payload}`, plus `id` for a request.
 * @throws {TypeError} For an empty or built-in type, a payload that is not an
 *   object or has `type`/`id` fields, or one that cannot be serialised.
 */
export function encodeMessage(type: string, payload: unknown, id?: number): string {
  if (typeof type !== "string" || type === "") {
    throw new TypeError("Cannot send: type must be a non-empty string");
  }
  if (BUILTIN_TYPES.has(type)) {
    throw new TypeError(`Cannot send "${type}": a built-in type (use the client's own method)`);
  }
  const fields = payload ?? {};
  if (typeof fields !== "object" || Array.isArray(fields)) {
    throw new TypeError(`Cannot send "${type}": payload must be an object`);
  }
  if (Object.hasOwn(fields, "type") || Object.hasOwn(fields, "id")) {
    throw new TypeError(`Cannot send "${type}": "type" and "id" are reserved field names`);
  }
  return JSON.stringify(id === undefined ? { type, ...fields } : { type, ...fields, id });
}

/** The built-in `ping`. */
export const PING_FRAME = '{"type":"ping"}';

/** A built-in `subscribe` or `unsubscribe` (with an `id` when an ack is awaited). */
export function roomFrame(type: "subscribe" | "unsubscribe", room: string, id?: number): string {
  return JSON.stringify(id === undefined ? { type, room } : { type, room, id });
}

/**
 * A `subscribe` that asks to recover from `from`:
 * `{"type":"subscribe","room":R,"recover":{"epoch":E,"offset":n},"id":X}`.
 */
export function recoverFrame(room: string, from: StreamPosition, id: number): string {
  return JSON.stringify({
    type: "subscribe",
    room,
    recover: { epoch: from.epoch, offset: from.offset },
    id,
  });
}

/** A `history` request: `{"type":"history","room":R,"limit":k,"id":X}` (no `limit` when unset). */
export function historyFrame(room: string, limit: number | undefined, id: number): string {
  return JSON.stringify(
    limit === undefined
      ? { type: ServerEvent.HISTORY, room, id }
      : { type: ServerEvent.HISTORY, room, limit, id },
  );
}

/** The presence reads (a request and its reply have the same name). */
export type PresenceRead = typeof ServerEvent.PRESENCE | typeof ServerEvent.PRESENCE_STATS;

/** A `presence` or `presence.stats` request: `{"type":T,"room":R,"id":X}`. */
export function presenceFrame(type: PresenceRead, room: string, id: number): string {
  return JSON.stringify({ type, room, id });
}

/** The built-in `authenticate` with the app's fields. */
export function authenticateFrame(fields: Record<string, unknown>, id: number): string {
  return JSON.stringify({ ...fields, type: "authenticate", id });
}

/** One server envelope from its JSON text, or the error that says why it is not one. */
export function parseEnvelope(text: string): Envelope | Error {
  let env: Envelope;
  try {
    env = JSON.parse(text);
  } catch (error) {
    return error as Error;
  }
  if (typeof env !== "object" || env === null || typeof env.type !== "string") {
    return new TypeError("Cannot read event: not an envelope");
  }
  return env;
}

/** A `history` reply's data as `history()` resolves with it (without the request's `id`). */
export function readHistory(data: Record<string, unknown>): HistoryResult {
  const { epoch, offset, messages } = data;
  return {
    room: typeof data.room === "string" ? data.room : "",
    epoch: typeof epoch === "string" ? epoch : undefined,
    offset: typeof offset === "number" ? offset : undefined,
    messages: Array.isArray(messages) ? messages : [],
  };
}

/** A `presence` reply's member list (entries without a string `clientId` are dropped). */
export function readPresence(data: Record<string, unknown>): PresenceClient[] {
  const clients = Array.isArray(data.clients) ? data.clients : [];
  return clients.filter((c): c is PresenceClient =>
    typeof c === "object" && c !== null && typeof c.clientId === "string"
  );
}

/** A `presence.stats` reply's counts. */
export function readPresenceStats(data: Record<string, unknown>): PresenceStats {
  const count = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) ? v : 0;
  return { clients: count(data.clients), users: count(data.users) };
}
