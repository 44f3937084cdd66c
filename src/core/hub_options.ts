/**
 * The hub's public option and upgrade types: what an app passes to `new Hub()`,
 * the hooks it can set, and what `hub.upgrade()` decides.
 *
 * @module
 */

import type { StandardSchemaV1 } from "./standard_schema.ts";
import type { Backplane } from "./backplane.ts";
import type { Connection } from "./connection.ts";
import type { EndpointInfo } from "./describe.ts";
import type { HistoryPolicy, HistoryStore } from "./history_store.ts";
import type { PresenceStore } from "./presence_store.ts";
import type { SocketEvents, Transport } from "./transport.ts";

/** An inbound app message: a JSON object with a string `type`. */
export interface InboundMessage {
  /** The message type. */
  type: string;
  /** Any other fields, as sent. */
  [key: string]: unknown;
}

/** Why a connection left a room. */
export type LeaveCause = "unsubscribe" | "server" | "disconnect";

/** A request id sent by a client (`{"type":..., "id": ...}`), echoed in its reply. */
export type RequestId = string | number;

/**
 * A handler for one message type, registered with {@linkcode Hub.on}. Its return
 * value (or resolved value) is sent back as `ack {id, result}` when the message
 * carried an `id`; a thrown `MessageError` becomes `error {id, code, message}`.
 */
export type MessageHandler<M> = (connection: Connection, message: M) => unknown;

/**
 * The message of type `T` in the union `Msg`; on an untyped hub (no member of
 * that type), `Msg` narrowed to `{ type: T }`.
 */
export type MessageOf<Msg, T> = [Extract<Msg, { type: T }>] extends [never] ? Msg & { type: T }
  : Extract<Msg, { type: T }>;

/** Options for {@linkcode Hub.on}. */
export interface OnOptions<M> {
  /** A Standard Schema for this type only (instead of the hub's `schema`). */
  schema?: StandardSchemaV1<unknown, M>;
}

/** Who a connection is, as decided by the server in `identify` or `authenticate`. */
export interface Identity {
  /** The user id. Omit for an anonymous connection. */
  userId?: string;
  /** App metadata kept on the connection (`connection.metadata`). */
  metadata?: Record<string, unknown>;
}

/** Time source and timers, injectable so tests need not wait 30 s. */
export interface Clock {
  /** Unix time in ms. */
  now(): number;
  /** Like the global `setInterval`. */
  setInterval(fn: () => void, ms: number): unknown;
  /** Like the global `clearInterval`. */
  clearInterval(handle: unknown): void;
  /** Like the global `setTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Like the global `clearTimeout`. */
  clearTimeout(handle: unknown): void;
}

/** Inbound rate limit per connection (token buckets). */
export interface RateLimitOptions {
  /**
   * Sustained frames per second.
   * @default {100}
   */
  messagesPerSecond?: number;
  /**
   * Frames allowed in a burst.
   * @default {200}
   */
  burst?: number;
  /**
   * Sustained inbound bytes per second.
   * @default {1048576}
   */
  bytesPerSecond?: number;
  /**
   * Bytes allowed in a burst.
   * @default {max(2 MiB, 2 × maxMessageBytes)}
   */
  byteBurst?: number;
  /**
   * Frames a client may have dropped for going over the limit (the allowance
   * refills over 10 s) before it is closed with `CloseCode.RATE_LIMITED`.
   * @default {200}
   */
  closeAfterDropped?: number;
  /**
   * Fan-out budget: deliveries per second that one client's messages may
   * trigger. Every emit made while the hub handles a client's frame (synchronously,
   * in its handler) is charged to that client by its recipient count; past the
   * budget the client's frames are refused with `RATE_LIMITED`. A chat message to a
   * 200-member room costs 200. Raise it for apps whose users legitimately post to
   * large rooms often; emits from server code (timers, the backplane) are not charged.
   * @default {5000}
   */
  deliveriesPerSecond?: number;
  /**
   * Deliveries allowed in a burst.
   * @default {2 × deliveriesPerSecond}
   */
  deliveryBurst?: number;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as number),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** Where an error reported through `onError` came from. */
export type HubErrorSource =
  | "identify"
  | "connect"
  | "message"
  | "binary"
  | "disconnect"
  | "authenticate"
  | "canJoin"
  | "join"
  | "leave"
  | "backplane"
  | "observer"
  | "emit"
  | "history"
  | "presence";

/** Options for {@linkcode Hub}. Every limit has a safe default. */
export interface HubOptions<Msg extends InboundMessage = InboundMessage> {
  /**
   * Decide who a connection is from the upgrade request (cookie, header, token
   * in the query). Return an {@linkcode Identity}, `undefined` for anonymous,
   * or `null`/`false` to refuse with 401. Throwing also refuses (and is reported).
   * @default {anonymous}
   */
  identify?: (
    request: Request,
  ) => Identity | undefined | null | false | Promise<Identity | undefined | null | false>;
  /**
   * Verify an `authenticate` message (e.g. a token in it) and return the user
   * id, or `null`/`false` to refuse. The client can never name its own user id:
   * only what this hook returns is used.
   * @default {only connections identified at upgrade are authenticated}
   */
  authenticate?: (
    connection: Connection,
    message: InboundMessage,
  ) => string | null | false | undefined | Promise<string | null | false | undefined>;
  /**
   * The room guard: may this connection join `room` through a client
   * `subscribe`? Server-side `join()` is always allowed.
   * @default {refuse every room}
   */
  canJoin?: (connection: Connection, room: string) => boolean | Promise<boolean>;
  /** A connection opened. Return `false` (or throw) to reject it: it is closed with 1008. */
  onConnect?: (connection: Connection) => void | boolean | Promise<void | boolean>;
  /**
   * An app message arrived (already validated by `schema`). Throw a
   * `MessageError` to refuse it with an `error` event.
   * Messages from one connection are handled one at a time, in order.
   * Without this hook (and without `schema`), app messages get `UNKNOWN_TYPE`.
   */
  onMessage?: (connection: Connection, message: Msg) => void | Promise<void>;
  /** A binary frame arrived. Without this hook, binary frames get `INVALID_INPUT`. */
  onBinary?: (connection: Connection, data: Uint8Array) => void | Promise<void>;
  /** A connection closed. Called exactly once per connection that opened. */
  onDisconnect?: (
    connection: Connection,
    info: { code: number; reason: string },
  ) => void | Promise<void>;
  /**
   * Errors thrown by hooks (the client only sees a generic error).
   * @default {console.error}
   */
  onError?: (error: unknown, source: HubErrorSource) => void;
  /** A Standard Schema (zod, valibot, arktype, ...) that app messages must pass. */
  schema?: StandardSchemaV1<unknown, Msg>;
  /**
   * Origins allowed besides the request's own. Entries: `"https://app.example.com"`,
   * `"https://*.example.com"`, `"*.example.com"`, or `"*"` for any.
   * @default {[] (same-origin only)}
   */
  origins?: readonly string[];
  /**
   * Accept requests with no `Origin` header (non-browser clients).
   * @default {true}
   */
  allowNoOrigin?: boolean;
  /**
   * Most open (and opening) connections; more get 503.
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * Largest inbound frame in bytes; a larger one closes the connection with 1009.
   * @default {524288}
   */
  maxMessageBytes?: number;
  /**
   * Most bytes queued per connection beyond the socket's buffer (text frames
   * counted in UTF-16 code units, exact for ASCII; see `frameSize`).
   * @default {1048576}
   */
  maxQueueBytes?: number;
  /**
   * Most frames queued per connection beyond the socket's buffer.
   * @default {1024}
   */
  maxQueueMessages?: number;
  /**
   * Socket buffer size (bytes) above which frames are queued instead of sent.
   * @default {262144}
   */
  highWaterMark?: number;
  /**
   * Socket buffer size (bytes) under which a waiting writer resumes.
   * @default {65536}
   */
  lowWaterMark?: number;
  /**
   * How often idle connections are pinged (ms).
   * @default {30000}
   */
  pingIntervalMs?: number;
  /**
   * A connection that shows no sign of life for this long is closed with 1001 (ms).
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * Longest room name a client may subscribe to (UTF-16 code units).
   * @default {128}
   */
  maxRoomNameLength?: number;
  /**
   * Inbound rate limit per connection: over it, frames are dropped with a
   * `RATE_LIMITED` error (at most one a second); a client that keeps flooding
   * is closed with 4002. `false` turns it off.
   * @default {{ messagesPerSecond: 100, burst: 200, bytesPerSecond: 1 MiB }}
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Most rooms one connection may `subscribe` to (server `join()` is not limited).
   * @default {100}
   */
  maxRoomsPerConnection?: number;
  /**
   * Most open connections per user; more get 429 at upgrade.
   * @default {100}
   */
  maxConnectionsPerUser?: number;
  /**
   * Largest `metadata` (as JSON) that `identify` may return; larger is an error (500).
   * @default {16384}
   */
  maxMetadataBytes?: number;
  /**
   * Most upgrades waiting on `identify` at once; more get 503.
   * @default {1000}
   */
  maxPendingUpgrades?: number;
  /**
   * After the hub closes a connection, its socket still counts toward
   * `maxConnections` until the peer completes the close, or for at most this many
   * ms: then it is dropped where the runtime can (Bun), and no longer counted
   * where it cannot (Deno keeps such a socket until the peer goes away).
   * @default {5000}
   */
  closeTimeoutMs?: number;
  /**
   * An accepted upgrade whose socket has not opened within this many ms is
   * released (a peer that resets its TCP connection right after the upgrade
   * request is reported by no runtime event on Deno). If its socket opens later
   * after all, it is closed with 1013 (try again).
   * @default {10000}
   */
  openTimeoutMs?: number;
  /**
   * Most inbound frames held per connection while an async handler runs; more
   * are dropped as rate-limited.
   * @default {256}
   */
  maxPendingMessages?: number;
  /**
   * Most inbound bytes (UTF-8) held per connection while an async handler runs;
   * more are dropped as rate-limited.
   * @default {max(1 MiB, 2 × maxMessageBytes)}
   */
  maxPendingBytes?: number;
  /**
   * Connections without a user id must `authenticate` within this many ms, or
   * are closed with `CloseCode.UNAUTHENTICATED` (4001). Off when unset.
   */
  authTimeoutMs?: number;
  /**
   * Make many hubs act as one: emits are published to the backplane's channels
   * and messages from other hubs are delivered to local connections. See
   * `./redis` and `./broadcast-channel`, or `MemoryBus` for one process.
   */
  backplane?: Backplane;
  /**
   * Prefix for backplane channel names (to share one bus between apps).
   * @default {"hubbub:"}
   */
  channelPrefix?: string;
  /**
   * A secret shared by every replica: envelopes are signed with HMAC-SHA256, and
   * envelopes that are unsigned or badly signed are dropped and counted as
   * `malformed`. Without it, anyone who can publish to the backplane's channels
   * can reach any user, room or client (see the README's Security section).
   * At least 16 characters.
   */
  backplaneSecret?: string;
  /**
   * The bus format this hub publishes emits in. Format 2 (a header line, then the frame as
   * encoded; see `BackplaneHeader`) costs no escaping and no parse of the frame; format 1
   * wraps the frame in one JSON envelope (`BackplaneEnvelope`). Every hub reads both. Pass 1
   * during a rolling deploy from a version that reads only format 1, until every replica runs
   * this one.
   * @default {2}
   */
  backplaneFormat?: 1 | 2;
  /**
   * Which rooms keep a history, and how much: return bounds for a room that does
   * (`{ maxMessages, maxAgeMs }`, defaults 100 and 10 minutes), or `undefined`.
   * Messages to such a room carry `room` and `offset`; a client that reconnects
   * recovers what it missed (`subscribe` with `recover`), and `history` requests
   * and `hub.history()` read it. Needs a shared `historyStore` with a backplane.
   * @default {no room keeps a history}
   */
  history?: (room: string) => HistoryPolicy | undefined | null | false;
  /**
   * Where the rooms' streams live.
   * @default {a MemoryHistoryStore (this process only)}
   */
  historyStore?: HistoryStore;
  /**
   * Which rooms track presence (who is in them, on every replica): return `true` or a
   * {@linkcode PresencePolicy} for a room that does, `false` or `undefined` for one that does
   * not. Members of such a room may ask `presence` and `presence.stats`; with `events` (the
   * default) they get `presence.join` / `presence.leave` for every member that joins or leaves
   * on any replica. Also keeps every user's connection count across replicas
   * (`hub.userPresence()`). Needs a shared `presenceStore` with a backplane. See
   * docs/presence.md.
   * @default {no room tracks presence}
   */
  presence?: (room: string) => PresencePolicy | boolean | undefined | null;
  /**
   * Where presence lives (shared by every replica).
   * @default {a MemoryPresenceStore (this process only)}
   */
  presenceStore?: PresenceStore;
  /**
   * How long a replica's presence entries outlive its last heartbeat: a replica that dies
   * without a goodbye has its members removed (and `presence.leave` sent for them) within
   * about `presenceTtlMs × 4/3`. Heartbeats and sweeps run every `presenceTtlMs / 3`.
   * At least 1000.
   * @default {15000}
   */
  presenceTtlMs?: number;
  /**
   * App-chosen data for a member's presence entry (e.g. a display name from
   * `connection.metadata`): any JSON value of at most 1024 bytes as JSON. Called when the
   * connection joins a presence room (not in counts-only rooms); return `undefined` for none.
   * Info over the bound is dropped (the entry is kept) and reported to `onError`.
   * @default {no info}
   */
  presenceInfo?: (connection: Connection, room: string) => unknown;
  /** A connection joined a room (membership changed; not called for repeat joins). */
  onJoin?: (connection: Connection, room: string) => void;
  /** A connection left a room: by `unsubscribe`, server `leave()`, or because it disconnected. */
  onLeave?: (connection: Connection, room: string, cause: LeaveCause) => void;
  /** Endpoint metadata for `hub.describe()`: description, tags, middleware names. */
  endpoint?: EndpointInfo;
  /**
   * Accept batched framing (`hubbub.batch.v1`) when a client offers it: several
   * messages per frame, fewer frames, much higher fan-out on Deno. Clients that
   * do not offer it always get one message per frame.
   * @default {true}
   */
  batchFraming?: boolean;
  /**
   * Time source and timers.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * How a room tracks presence (see the hub's `presence` option).
 *
 * - Default (`{}` or `true`): a member list (`presence` requests, `hub.presence()`), counts,
 *   and `presence.join` / `presence.leave` to the room's members.
 * - `events: false`: the list and counts, no join/leave fan-out (members ask when they need it).
 * - `countsOnly: true`: counts only (`presence.stats`, `hub.presenceStats()`), no list, no
 *   events, no info: a join costs one O(1) store write and no fan-out, for rooms with
 *   thousands of members (a live audience, a broadcast channel).
 */
export interface PresencePolicy {
  /**
   * Members get `presence.join` and `presence.leave` events.
   * @default {true}
   */
  events?: boolean;
  /**
   * Counts only: no member list, no events (`events` is ignored).
   * @default {false}
   */
  countsOnly?: boolean;
}

/** An upgrade that the hub refused: send this response instead. */
export interface RefusedUpgrade {
  /** Always `false`. */
  readonly ok: false;
  /** 426, 403, 401 or 503, with a plain-text body. */
  readonly response: Response;
}

/** An upgrade that the hub accepted: the adapter upgrades, then calls `open`. */
export interface AcceptedUpgrade {
  /** Always `true`. */
  readonly ok: true;
  /** The subprotocol to select, or `""`. */
  readonly protocol: string;
  /**
   * The socket is open: register the connection and get the event sink.
   * @param transport The socket, as the core sees it.
   * @returns Where the adapter reports messages, pongs and the close.
   */
  open(transport: Transport): SocketEvents;
  /** The upgrade failed or the socket closed before opening: release the slot. Idempotent. */
  cancel(): void;
}

/** What {@linkcode Hub.upgrade} decides. */
export type UpgradeDecision = RefusedUpgrade | AcceptedUpgrade;

/** Options for {@linkcode Hub.upgrade}. */
export interface UpgradeOptions {
  /** Route parameters to keep on `connection.request.params`. */
  params?: Record<string, string>;
}

/** Options for {@linkcode Hub.close}. */
export interface HubCloseOptions {
  /**
   * Close code sent to every connection.
   * @default {1001}
   */
  code?: number;
  /**
   * Close reason sent to every connection.
   * @default {"server shutting down"}
   */
  reason?: string;
  /**
   * Let each connection's queued frames drain for up to this many ms before
   * closing it (new emits are not accepted meanwhile). 0 closes at once,
   * dropping what is still queued.
   * @default {0}
   */
  drainMs?: number;
  /**
   * After the connections are closed, wait at most this many ms for hooks still
   * running (message handlers, disconnect hooks, backplane shutdown). A hook that
   * has not settled by then is left behind and reported to `onError` (source
   * `"disconnect"`), so a handler that never settles cannot hang a shutdown.
   * `close()` resolves within `drainMs + timeoutMs` (plus one turn).
   * @default {5000}
   */
  timeoutMs?: number;
}

/** Options for `hub.publish()`. */
export interface PublishOptions {
  /** Client ids (or connections) to skip: not sent live, nor replayed to them. */
  except?: string | { readonly id: string } | Iterable<string | { readonly id: string }>;
}

/** What `hub.publish()` resolves with. */
export interface PublishResult {
  /** The room's stream epoch. */
  readonly epoch: string;
  /** The message's offset in it. */
  readonly offset: number;
  /** Local connections it was delivered to. */
  readonly delivered: number;
}

/** Options for `hub.history()`. */
export interface HubHistoryOptions {
  /** At most this many messages, the latest (bounded by the room's `maxMessages`). */
  limit?: number;
  /** Only the messages after this offset. */
  since?: number;
}

/** One message of a room's history: the envelope as sent. */
export interface HistoryMessage {
  /** The event type. */
  readonly type: string;
  /** The payload. */
  readonly data: unknown;
  /** When it was sent (Unix ms). */
  readonly timestamp: number;
  /** The room. */
  readonly room: string;
  /** Its offset in the room's stream. */
  readonly offset: number;
}

/** What `hub.history()` resolves with. */
export interface HubHistory {
  /** The stream's epoch. */
  readonly epoch: string;
  /** Its latest offset (0 when empty). */
  readonly offset: number;
  /** The messages, oldest first. */
  readonly messages: readonly HistoryMessage[];
}
