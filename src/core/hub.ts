/**
 * The hub: tracks connections by client id, user id and room, and fans
 * messages out to them.
 *
 * @module
 */

import type { StandardSchemaResult, StandardSchemaV1 } from "./standard_schema.ts";
import type {
  FrameInfo,
  FrameWrapper,
  HubEvent,
  HubEventsOptions,
  HubStats,
  Traffic,
} from "./hub_stats.ts";
import {
  type EndpointInfo,
  type HubDescription,
  jsonSchemaOf,
  type MessageDescription,
} from "./describe.ts";
import type { Backplane, BackplaneEnvelope, BackplaneHealth, BackplaneStats } from "./backplane.ts";
import { CloseCode } from "./close_codes.ts";
import { Connection, type ConnectionOwner } from "./connection.ts";
import { MessageError } from "./errors.ts";
import type { Frame } from "./send_queue.ts";
import type { SocketEvents, Transport } from "./transport.ts";
import { compileOriginCheck, type OriginCheck } from "./_origin.ts";
import { RateLimiter, type RateLimitSettings, Verdict } from "./_rate_limit.ts";
import { UpgradeSlots } from "./_upgrade_slots.ts";
import { type HubLimits, resolveLimits } from "./limits.ts";
import { Hmac } from "./_hmac.ts";
import { fromBase64, toBase64 } from "./_base64.ts";
import {
  kAbandon,
  kCloseWith,
  kCompact,
  kDeliver,
  kDrainClose,
  kFlushTick,
  kLastSeen,
  kPing,
  kRoomAdd,
  kRoomCount,
  kRoomDelete,
  kRoomHas,
  kRoomTake,
  kSetUser,
  kTeardown,
  kTouch,
} from "./_internal.ts";
import {
  BATCH_PROTOCOL,
  BUILTIN_TYPES,
  encodeEnvelope,
  ServerEvent,
  utf8Length,
} from "../protocol/envelope.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import type { Target } from "../protocol/target.ts";

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
  | "emit";

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

export type { HubLimits };

export type { Target };

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

const noop = () => {};
const ALLOWED_KEYS_PING = new Set(["type", "id"]);
const ALLOWED_KEYS_ROOM = new Set(["type", "room", "id"]);

/**
 * A WebSocket hub.
 *
 * - Connections are indexed by client id, user id and room; empty sets are pruned.
 * - `emit()` encodes once and hands the frame to every recipient without awaiting
 *   any of them; each connection's own bounded queue absorbs bursts, and a
 *   connection whose queue overflows is closed as a slow client.
 * - Inbound frames are checked (size, JSON, shape, schema) before any hook sees
 *   them; bad input gets an `error` event and the connection stays open.
 * - `close()` closes every connection with 1001 and `connection.closed`, and
 *   resolves once every disconnect hook has run.
 *
 * @typeParam Msg The app's inbound messages (after `schema` validation).
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * const hub = new Hub({ canJoin: (_conn, room) => /^[a-z]+$/.test(room) });
 * hub.emit("notice", { text: "hi" }, { rooms: "lobby" });
 * await hub.close();
 * ```
 */
export class Hub<Msg extends InboundMessage = InboundMessage> {
  /** Resolved limits (adapters read them to configure the runtime). */
  readonly limits: HubLimits;
  readonly #options: HubOptions<Msg>;
  readonly #clock: Clock;
  readonly #originOk: OriginCheck;
  readonly #clients = new Map<string, Connection>();
  readonly #users = new Map<string, Set<Connection>>();
  readonly #rooms = new Map<string, Set<Connection>>();
  /** Frames held while a connection's async handler runs (or its connect hook decides). */
  readonly #inbound = new WeakMap<Connection, Backlog>();
  readonly #pendingHooks = new Set<Promise<unknown>>();
  readonly #handlers = new Map<
    string,
    { fn: MessageHandler<Msg>; schema: StandardSchemaV1<unknown, unknown> | undefined }
  >();
  readonly #owner: ConnectionOwner;
  /** Upgrades waiting on `identify`. */
  #identifying = 0;
  /** Accepted upgrades whose socket has not opened yet. */
  readonly #slots: UpgradeSlots;
  /** Sockets whose transport has not reported its close yet. */
  readonly #socketOpen = new WeakSet<Connection>();
  /**
   * Connections the hub closed whose socket the runtime still holds (Deno waits
   * for the peer's close frame, forever if it never comes), with their deadline
   * timers. They count toward `maxConnections` until the close completes or
   * `closeTimeoutMs` passes, so closed-but-held sockets cannot pile up, and a peer
   * that never answers cannot keep its slot (which would lock new clients out).
   */
  readonly #lingering = new Map<Connection, unknown>();
  #dirty: Connection[] = [];
  #dirtySpare: Connection[] = [];
  #cancelFlush: (() => void) | undefined;
  #timer: unknown;
  #closed = false;
  /** Whether the "no canJoin" warning was logged. */
  #warnedNoGuard = false;
  readonly #batchFraming: boolean;
  readonly #n = {
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    emits: 0,
    opened: 0,
    closed: 0,
    rateLimited: 0,
    observerDrops: 0,
  };
  readonly #inByType = new Map<string, { messages: number; bytes: number }>();
  readonly #outByType = new Map<string, { messages: number; bytes: number }>();
  readonly #closes = new Map<string, number>();
  readonly #refused = new Map<string, number>();
  readonly #observers = new Set<(event: HubEvent) => void>();
  #frameWrappers: readonly FrameWrapper[] = [];
  readonly #eventStreams = new Set<() => void>();
  readonly #rateLimit: RateLimitSettings | undefined;
  readonly #limiters = new WeakMap<Connection, RateLimiter>();
  /** The connection whose frame is being handled synchronously (charged for emits). */
  #sender: Connection | undefined;
  readonly #authTimers = new WeakMap<Connection, unknown>();
  readonly #backplane: Backplane | undefined;
  readonly #prefix: string;
  readonly #nodeId: string = crypto.randomUUID();
  #bpHealth: BackplaneHealth = { ok: true };
  readonly #bpCounts = {
    published: 0,
    publishFailed: 0,
    received: 0,
    duplicates: 0,
    malformed: 0,
  };
  readonly #bpChannels = new Set<string>();
  /** Signs and checks backplane envelopes when `backplaneSecret` is set. */
  readonly #signer: Hmac | undefined;
  #seen = new Set<string>();
  #seenOld = new Set<string>();
  #ready: Promise<void> = Promise.resolve();

  /**
   * Create a hub. It accepts connections through an adapter's handler.
   *
   * @param options See {@linkcode HubOptions}.
   * @throws {RangeError} If a limit is not a positive number.
   * @throws {TypeError} If an origin allowlist entry is not an origin.
   */
  constructor(options: HubOptions<Msg> = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const limits = resolveLimits(options);
    this.limits = limits;
    this.#slots = new UpgradeSlots(this.#clock, limits.openTimeoutMs);
    this.#batchFraming = options.batchFraming ?? true;
    const rl = options.rateLimit;
    if (rl !== false) {
      this.#rateLimit = {
        messagesPerSecond: rl?.messagesPerSecond ?? 100,
        messageBurst: rl?.burst ?? 200,
        bytesPerSecond: rl?.bytesPerSecond ?? 1024 * 1024,
        byteBurst: rl?.byteBurst ?? Math.max(2 * 1024 * 1024, 2 * limits.maxMessageBytes),
        closeAfterDropped: rl?.closeAfterDropped ?? 200,
        deliveriesPerSecond: rl?.deliveriesPerSecond ?? 5000,
        deliveryBurst: rl?.deliveryBurst ?? 2 * (rl?.deliveriesPerSecond ?? 5000),
      };
      for (const [key, value] of Object.entries(this.#rateLimit)) {
        if (!(typeof value === "number" && value > 0)) {
          throw new RangeError(`Cannot create hub: rateLimit.${key} must be a positive number`);
        }
      }
    }
    if (options.authTimeoutMs !== undefined && !(options.authTimeoutMs > 0)) {
      throw new RangeError("Cannot create hub: authTimeoutMs must be a positive number");
    }
    this.#backplane = options.backplane;
    this.#prefix = options.channelPrefix ?? "hubbub:";
    const secret = options.backplaneSecret;
    if (secret !== undefined) {
      if (typeof secret !== "string" || secret.length < 16) {
        throw new TypeError(
          "Cannot create hub: backplaneSecret must be a string of 16+ characters",
        );
      }
      this.#signer = new Hmac(secret);
    }
    if (this.#backplane !== undefined) this.#startBackplane(this.#backplane);
    this.#originOk = compileOriginCheck(options.origins ?? [], options.allowNoOrigin ?? true);
    this.#owner = {
      join: (conn, room) => this.#join(conn, room),
      leave: (conn, room) => this.#leave(conn, room),
      markDirty: (conn) => this.#markDirty(conn),
      closed: (conn, code, reason, cause) => this.#removed(conn, code, reason, cause),
      now: () => this.#clock.now(),
      limits: this.limits,
    };
  }

  // ---------------------------------------------------------------- counts

  /** Open connections. */
  get connectionCount(): number {
    return this.#clients.size;
  }

  /** Distinct users with at least one open connection. */
  get userCount(): number {
    return this.#users.size;
  }

  /** Rooms with at least one member. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /**
   * A connection by client id.
   * @param clientId The client id.
   * @returns The connection, or `undefined`.
   */
  connection(clientId: string): Connection | undefined {
    return this.#clients.get(clientId);
  }

  /**
   * Every open connection.
   * @returns A snapshot array.
   */
  connections(): Connection[] {
    return [...this.#clients.values()];
  }

  /**
   * A user's open connections (all their tabs).
   * @param userId The user id.
   * @returns A snapshot array, empty when the user has none.
   */
  userConnections(userId: string): Connection[] {
    return [...this.#users.get(userId) ?? []];
  }

  /**
   * Members of a room.
   * @param room The room name.
   * @returns A snapshot array, empty when the room has none.
   */
  roomMembers(room: string): Connection[] {
    return [...this.#rooms.get(room) ?? []];
  }

  /**
   * How many connections are in a room.
   * @param room The room name.
   * @returns The count (0 for an unknown room).
   */
  roomSize(room: string): number {
    return this.#rooms.get(room)?.size ?? 0;
  }

  /**
   * Every non-empty room with its member count.
   * @returns A snapshot map of room name to count.
   */
  rooms(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [room, set] of this.#rooms) out.set(room, set.size);
    return out;
  }

  // ---------------------------------------------------------------- handlers

  /**
   * Handle one client message type. Messages of this type are validated (by
   * `options.schema`, else the hub's `schema`) and passed to `handler` instead
   * of `onMessage`. If the message carries an `id`, the handler's result is
   * sent back as `ack {id, result}`, and a failure as `error {id, code, message}`.
   *
   * @param type The message type.
   * @param handler The handler; may be async.
   * @param options A schema for this type.
   * @returns The hub, for chaining.
   * @throws {TypeError} For a built-in type (`ping`, `subscribe`, `unsubscribe`,
   *   `authenticate`), an empty type, or a type that already has a handler.
   * @example
   * ```ts
   * import { Hub, MessageError } from "@hubbub/hubbub";
   * type In = { type: "add"; a: number; b: number };
   * const hub = new Hub<In>();
   * hub.on("add", (_conn, m) => {
   *   if (m.a > 1e9) throw new MessageError("TOO_BIG", "Cannot add: a is too big");
   *   return m.a + m.b; // the client gets {"type":"ack","data":{"id":...,"result":3}}
   * });
   * await hub.close();
   * ```
   */
  on<T extends Msg["type"]>(
    type: T,
    handler: MessageHandler<MessageOf<Msg, T>>,
    options: OnOptions<MessageOf<Msg, T>> = {},
  ): this {
    if (typeof type !== "string" || type === "") {
      throw new TypeError("Cannot register handler: type must be a non-empty string");
    }
    if (BUILTIN_TYPES.has(type)) {
      throw new TypeError(`Cannot register handler: "${type}" is a built-in message type`);
    }
    if (this.#handlers.has(type)) {
      throw new TypeError(`Cannot register handler: "${type}" already has one`);
    }
    this.#handlers.set(type, {
      fn: handler as MessageHandler<Msg>,
      schema: options.schema as StandardSchemaV1<unknown, unknown> | undefined,
    });
    return this;
  }

  /**
   * Remove the handler for a type.
   * @param type The message type.
   * @returns Whether there was one.
   */
  off(type: string): boolean {
    return this.#handlers.delete(type);
  }

  // ---------------------------------------------------------------- rooms

  /**
   * Put a connection in a room from server code (no guard). Idempotent.
   * @param connection The connection or its client id.
   * @param room The room name.
   * @returns `false` if there is no such open connection.
   */
  join(connection: Connection | string, room: string): boolean {
    const conn = typeof connection === "string" ? this.#clients.get(connection) : connection;
    if (conn === undefined || conn.state !== "open") return false;
    this.#join(conn, room);
    return true;
  }

  /**
   * Take a connection out of a room. Idempotent.
   * @param connection The connection or its client id.
   * @param room The room name.
   * @returns `false` if there is no such connection.
   */
  leave(connection: Connection | string, room: string): boolean {
    const conn = typeof connection === "string" ? this.#clients.get(connection) : connection;
    if (conn === undefined) return false;
    this.#leave(conn, room);
    return true;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Send an event to a target, encoded once for all recipients. Never waits on
   * any recipient; slow ones are handled by their own queue policy.
   *
   * @param type The event type.
   * @param data The payload (JSON-serialisable).
   * @param target Who receives it; everyone when omitted.
   * @returns How many connections accepted it.
   * @throws {TypeError} If `data` cannot be serialised.
   * @example
   * ```ts
   * import { Hub } from "@hubbub/hubbub";
   * const hub = new Hub();
   * hub.emit("chat", { text: "hi" }, { rooms: "lobby", except: "some-client-id" });
   * hub.emit("notice", { text: "for every tab of ada" }, { users: "ada" });
   * await hub.close();
   * ```
   */
  emit(type: string, data: unknown, target?: Target): number {
    const frame = encodeEnvelope(type, data, this.#clock.now());
    if (this.#backplane !== undefined) this.#publish(frame, target);
    return this.#emitted(type, frame, utf8Length(frame), target);
  }

  #emitted(type: string, frame: Frame, size: number, target: Target | undefined): number {
    if (this.#observers.size === 0) {
      const n = this.#fanout(frame, target);
      this.#countOut(type, n, size);
      if (this.#sender !== undefined) this.#charge(this.#sender, n);
      return n;
    }
    const t0 = performance.now();
    const n = this.#fanout(frame, target);
    const fanoutMs = performance.now() - t0;
    this.#countOut(type, n, size);
    if (this.#sender !== undefined) this.#charge(this.#sender, n);
    this.#notify({
      kind: "emit",
      type,
      recipients: n,
      bytes: size,
      fanoutMs,
      at: this.#clock.now(),
    });
    return n;
  }

  /** Charge a sender's fan-out budget for the deliveries its frame triggered. */
  #charge(sender: Connection, deliveries: number): void {
    if (deliveries > 0) this.#limiters.get(sender)?.charge(deliveries);
  }

  #countOut(type: string, n: number, size: number): void {
    this.#n.emits++;
    if (n === 0) return;
    this.#n.messagesOut += n;
    this.#n.bytesOut += n * size;
    bump(this.#outByType, type, n, n * size);
  }

  /**
   * Send a frame as is (no envelope) to a target.
   *
   * @param frame Text or binary frame.
   * @param target Who receives it; everyone when omitted.
   * @returns How many connections accepted it.
   */
  broadcastRaw(frame: Frame, target?: Target): number {
    const size = typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
    if (this.#backplane !== undefined) this.#publish(frame, target);
    return this.#emitted("raw", frame, size, target);
  }

  /**
   * Send an event to one connection by client id.
   *
   * @param clientId The client id.
   * @param type The event type.
   * @param data The payload.
   * @returns `false` when there is no such local connection or it did not accept the frame
   *   (with a backplane, a client on another replica still gets it).
   */
  sendTo(clientId: string, type: string, data: unknown): boolean {
    const conn = this.#clients.get(clientId);
    const frame = encodeEnvelope(type, data, this.#clock.now());
    if (conn === undefined) {
      // Maybe on another replica.
      if (this.#backplane !== undefined) this.#publish(frame, { clients: clientId });
      return false;
    }
    // Counted and observed like any emit (an `emit` event with 0 or 1 recipients).
    return this.#emitted(type, frame, utf8Length(frame), { clients: clientId }) > 0;
  }

  #fanout(frame: Frame, target: Target | undefined): number {
    // The hot case: one room (or everyone), no exceptions. One monomorphic loop.
    if (target === undefined) {
      let n = 0;
      for (const conn of this.#clients.values()) {
        if (conn[kDeliver](frame)) n++;
      }
      return n;
    }
    if (
      target.except === undefined && typeof target.rooms === "string" &&
      target.users === undefined && target.clients === undefined
    ) {
      const room = this.#rooms.get(target.rooms);
      return room === undefined ? 0 : deliverTo(room, frame);
    }
    const except = target.except === undefined ? undefined : new Set(exceptIds(target.except));
    let n = 0;
    for (const conn of this.#resolve(target)) {
      if (except !== undefined && except.has(conn.id)) continue;
      if (conn[kDeliver](frame)) n++;
    }
    return n;
  }

  #resolve(target: Target | undefined): Iterable<Connection> {
    if (target === undefined) return this.#clients.values();
    const { rooms, users, clients } = target;
    if (rooms === undefined && users === undefined && clients === undefined) {
      return this.#clients.values();
    }
    // The common case: one room, nothing else. Iterate the index directly.
    if (typeof rooms === "string" && users === undefined && clients === undefined) {
      return this.#rooms.get(rooms) ?? [];
    }
    const out = new Set<Connection>();
    const add = (set: Set<Connection> | undefined) => {
      if (set !== undefined) { for (const c of set) out.add(c); }
    };
    if (rooms !== undefined) {
      for (const r of typeof rooms === "string" ? [rooms] : rooms) add(this.#rooms.get(r));
    }
    if (users !== undefined) {
      for (const u of typeof users === "string" ? [users] : users) add(this.#users.get(u));
    }
    if (clients !== undefined) {
      for (const id of typeof clients === "string" ? [clients] : clients) {
        const c = this.#clients.get(id);
        if (c !== undefined) out.add(c);
      }
    }
    return out;
  }

  #markDirty(conn: Connection): void {
    this.#dirty.push(conn);
    // Next turn of the event loop, not a microtask: frames from every event handled
    // in this turn (many inbound messages, timers) then share one write per socket.
    if (this.#cancelFlush === undefined) this.#cancelFlush = nextTurn(this.#flushAll);
  }

  readonly #flushAll = (): void => {
    this.#cancelFlush = undefined;
    // Two lists, swapped: a flush may mark connections dirty for the next one.
    const dirty = this.#dirty;
    this.#dirty = this.#dirtySpare;
    try {
      for (let i = 0; i < dirty.length; i++) dirty[i][kFlushTick]();
    } finally {
      dirty.length = 0;
      this.#dirtySpare = dirty;
    }
  };

  // ---------------------------------------------------------------- upgrade

  /**
   * Decide on an upgrade request: 426 if it is not a WebSocket upgrade, 403 for a
   * refused Origin, 503 when closed or at `maxConnections`, 401 when `identify`
   * refuses. Adapters call this; apps use an adapter.
   *
   * @param request The HTTP request.
   * @param options Route params to keep on the connection.
   * @returns A refusal with its response, or an acceptance to `open()` once upgraded.
   */
  async upgrade(request: Request, options: UpgradeOptions = {}): Promise<UpgradeDecision> {
    const refusal = (
      why: string,
      status: number,
      body: string,
      headers?: Record<string, string>,
    ) => this.#refuse(why, status, body, headers, request);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refusal("not_websocket", 426, "Expected a WebSocket upgrade", {
        upgrade: "websocket",
      });
    }
    if (!this.#originOk(request.headers.get("origin"), request.url)) {
      return refusal("origin", 403, "Origin not allowed");
    }
    if (this.#closed || this.#held() >= this.limits.maxConnections) {
      return refusal("max_connections", 503, "Too many connections", { "retry-after": "5" });
    }
    if (this.#identifying >= this.limits.maxPendingUpgrades) {
      return refusal("pending_upgrades", 503, "Too many pending connections", {
        "retry-after": "1",
      });
    }
    // Held while `identify` runs (bounded by maxPendingUpgrades), then handed to an opening slot.
    this.#identifying++;
    let identity: Identity | undefined | null | false;
    try {
      identity = this.#options.identify ? await this.#options.identify(request) : undefined;
      if (identity && identity.userId !== undefined) {
        if (typeof identity.userId !== "string" || identity.userId === "") {
          throw new TypeError("Cannot identify connection: userId must be a non-empty string");
        }
      }
    } catch (error) {
      this.#identifying--;
      this.#report(error, "identify");
      // A throw is the server's failure (a session store down), not a bad login.
      return refusal("identify_error", 503, "Cannot identify connection now", {
        "retry-after": "5",
      });
    }
    this.#identifying--;
    if (identity === null || identity === false) {
      return refusal("identify", 401, "Unauthorized");
    }
    if (identity?.metadata !== undefined) {
      let size: number;
      try {
        size = utf8Length(JSON.stringify(identity.metadata) ?? "");
      } catch (error) {
        this.#report(error, "identify");
        return refusal("error", 500, "Internal error");
      }
      if (size > this.limits.maxMetadataBytes) {
        this.#report(
          new RangeError(
            `Cannot accept connection: metadata is ${size} bytes, over maxMetadataBytes`,
          ),
          "identify",
        );
        return refusal("error", 500, "Internal error");
      }
    }
    if (this.#closed) return refusal("shutting_down", 503, "Server shutting down");
    // Checked again after `identify`: other upgrades may have taken the last slots meanwhile.
    if (this.#held() >= this.limits.maxConnections) {
      return refusal("max_connections", 503, "Too many connections", { "retry-after": "5" });
    }
    const userId = identity ? identity.userId : undefined;
    if (userId !== undefined && this.#userHeld(userId) >= this.limits.maxConnectionsPerUser) {
      return refusal("user_connections", 429, "Too many connections for this user", {
        "retry-after": "5",
      });
    }
    const protocol = this.#batchFraming &&
        offeredProtocols(request.headers.get("sec-websocket-protocol")).includes(BATCH_PROTOCOL)
      ? BATCH_PROTOCOL
      : "";
    // Bounded by time: Deno reports nothing at all for a peer that resets right after its
    // upgrade request, so without a deadline its slot would be held forever.
    const slot = this.#slots.take(userId);
    const init = {
      userId,
      metadata: identity && identity.metadata !== undefined
        ? Object.freeze({ ...identity.metadata })
        : EMPTY,
      request: Object.freeze({ url: request.url, params: options.params ?? EMPTY, protocol }),
    };
    return {
      ok: true,
      protocol,
      cancel: () => slot.release(),
      open: (transport) => {
        if (!slot.release() || this.#closed) {
          // Opened after its deadline (or after close): it never held a slot; let it retry.
          try {
            transport.close(
              this.#closed ? CloseCode.GOING_AWAY : CloseCode.TRY_AGAIN_LATER,
              this.#closed ? "server shutting down" : "upgrade took too long",
            );
          } catch { /* gone */ }
          return { message: noop, close: noop, pong: noop };
        }
        return this.#open(transport, init);
      },
    };
  }

  /** Connections held against `maxConnections`: open, upgrading, opening and lingering. */
  #held(): number {
    return this.#clients.size + this.#identifying + this.#slots.size + this.#lingering.size;
  }

  /** A user's open connections plus their accepted upgrades that are still opening. */
  #userHeld(userId: string): number {
    return (this.#users.get(userId)?.size ?? 0) + this.#slots.forUser(userId);
  }

  #open(
    transport: Transport,
    init: { userId?: string; metadata: Record<string, unknown>; request: Connection["request"] },
  ): SocketEvents {
    const conn = new Connection({
      id: crypto.randomUUID(),
      userId: init.userId,
      metadata: init.metadata,
      request: init.request,
      transport,
      owner: this.#owner,
      batch: init.request.protocol === BATCH_PROTOCOL,
    });
    this.#clients.set(conn.id, conn);
    this.#interest(this.#prefix + "client:" + conn.id, true);
    if (conn.userId !== undefined) this.#indexUser(conn, conn.userId);
    this.#startTimer();
    this.#n.opened++;
    if (this.#observers.size > 0) {
      this.#notify({
        kind: "connect",
        clientId: conn.id,
        userId: conn.userId,
        at: this.#clock.now(),
      });
    }
    const authTimeout = this.#options.authTimeoutMs;
    if (authTimeout !== undefined && conn.userId === undefined) {
      this.#authTimers.set(
        conn,
        this.#clock.setTimeout(() => {
          this.#authTimers.delete(conn);
          if (conn.userId === undefined) {
            conn[kCloseWith](CloseCode.UNAUTHENTICATED, "authentication timeout", "auth_timeout");
          }
        }, authTimeout),
      );
    }
    this.#reply(
      conn,
      ServerEvent.ESTABLISHED,
      conn.userId === undefined
        ? { clientId: conn.id }
        : { clientId: conn.id, userId: conn.userId },
    );
    this.#socketOpen.add(conn);
    const events = new ConnectionEvents(conn, this.#receiveFn, this.#socketGone);
    const onConnect = this.#options.onConnect;
    if (onConnect !== undefined) {
      // Hold inbound frames until the connect hook has decided.
      this.#inbound.set(conn, newBacklog());
      const decided = (ok: boolean) => {
        if (!ok) {
          this.#inbound.delete(conn);
          conn[kCloseWith](CloseCode.POLICY_VIOLATION, "connection refused", "connect_refused");
          return;
        }
        this.#drainInbound(conn);
      };
      try {
        const result = onConnect(conn);
        if (result instanceof Promise) {
          this.#track(result.then((r) => decided(r !== false), (error) => {
            this.#report(error, "connect");
            decided(false);
          }));
        } else decided(result !== false);
      } catch (error) {
        this.#report(error, "connect");
        decided(false);
      }
    }
    return events;
  }

  // ---------------------------------------------------------------- inbound

  readonly #receiveFn = (conn: Connection, data: string | Uint8Array): void =>
    this.#receive(conn, data);

  #receive(conn: Connection, data: string | Uint8Array): void {
    const max = this.limits.maxMessageBytes;
    // UTF-8 bytes, as on the wire (the rate limit and stats count these). A string's UTF-8
    // size is between its length and 3 × its length: measure only when that range matters.
    const bytes = typeof data !== "string"
      ? data.byteLength
      : data.length > max
      ? max + 1
      : utf8Length(data);
    if (bytes > max) {
      conn[kCloseWith](CloseCode.MESSAGE_TOO_BIG, "message too big", "message_too_big");
      return;
    }
    this.#n.messagesIn++;
    this.#n.bytesIn += bytes;
    const rl = this.#rateLimit;
    if (rl !== undefined) {
      let limiter = this.#limiters.get(conn);
      if (limiter === undefined) {
        this.#limiters.set(conn, limiter = new RateLimiter(rl, this.#clock.now()));
      }
      const verdict = limiter.check(bytes, this.#clock.now());
      if (verdict !== Verdict.Accept) return this.#limited(conn, verdict);
    }
    const backlog = this.#inbound.get(conn);
    if (backlog !== undefined) {
      if (
        backlog.frames.length >= this.limits.maxPendingMessages ||
        backlog.bytes + bytes > this.limits.maxPendingBytes
      ) {
        const limiter = this.#limiters.get(conn);
        return this.#limited(
          conn,
          limiter ? limiter.strike(this.#clock.now()) : Verdict.DropAndWarn,
        );
      }
      backlog.frames.push(data);
      backlog.sizes.push(bytes);
      backlog.bytes += bytes;
      return;
    }
    const pending = this.#handleFrom(conn, data, bytes);
    if (pending !== undefined) {
      this.#inbound.set(conn, newBacklog());
      this.#track(pending.then(() => this.#drainInbound(conn)));
    }
  }

  #limited(conn: Connection, verdict: Verdict): void {
    this.#n.rateLimited++;
    if (verdict === Verdict.Close) {
      conn[kCloseWith](CloseCode.RATE_LIMITED, "rate limited", "rate_limited");
    } else if (verdict === Verdict.DropAndWarn) {
      this.#error(conn, ErrorCode.RATE_LIMITED, "Too many messages: slow down");
    }
  }

  /** Process held frames in order until one goes async or none are left. */
  #drainInbound(conn: Connection): void {
    const backlog = this.#inbound.get(conn);
    if (backlog === undefined) return;
    while (backlog.frames.length > 0 && conn.state === "open") {
      const bytes = backlog.sizes.shift()!;
      backlog.bytes -= bytes;
      const pending = this.#handleFrom(conn, backlog.frames.shift()!, bytes);
      if (pending !== undefined) {
        this.#track(pending.then(() => this.#drainInbound(conn)));
        return;
      }
    }
    this.#inbound.delete(conn);
  }

  /** Handle one frame with `conn` as the sender that the emits made meanwhile are charged to. */
  #handleFrom(
    conn: Connection,
    data: string | Uint8Array,
    bytes: number,
  ): Promise<void> | undefined {
    const outer = this.#sender;
    this.#sender = conn;
    try {
      return this.#handle(conn, data, bytes);
    } finally {
      this.#sender = outer;
    }
  }

  /** Handle one frame. Returns a promise only when something async is in flight. */
  #handle(conn: Connection, data: string | Uint8Array, bytes: number): Promise<void> | undefined {
    if (typeof data !== "string") {
      this.#countIn(conn, "binary", bytes);
      if (this.#frameWrappers.length > 0) {
        return this.#wrapped(conn, "binary", bytes, () => this.#binary(conn, data));
      }
      return this.#binary(conn, data);
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_JSON, "Message is not valid JSON");
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_INPUT, "Message must be a JSON object");
    }
    const message = msg as InboundMessage;
    const type = message.type;
    if (typeof type !== "string" || type === "") {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_INPUT, "Message must have a string type");
    }
    this.#countIn(conn, type, bytes);
    if (this.#frameWrappers.length > 0) {
      return this.#wrapped(conn, type, bytes, () => this.#dispatch(conn, message, type));
    }
    return this.#dispatch(conn, message, type);
  }

  #binary(conn: Connection, data: Uint8Array): Promise<void> | undefined {
    const onBinary = this.#options.onBinary;
    if (onBinary === undefined) {
      this.#error(conn, ErrorCode.INVALID_INPUT, "Binary frames are not accepted");
      return;
    }
    return this.#callHook(conn, "binary", () => onBinary(conn, data));
  }

  #invalid(conn: Connection, bytes: number, code: string, text: string): undefined {
    this.#countIn(conn, "invalid", bytes);
    if (this.#frameWrappers.length > 0) {
      this.#wrapped(conn, "invalid", bytes, () => void this.#error(conn, code, text));
    } else {
      this.#error(conn, code, text);
    }
    return undefined;
  }

  /** Run `run` inside every `aroundFrame` wrapper (first added = outermost). */
  #wrapped(
    conn: Connection,
    type: string,
    bytes: number,
    run: () => Promise<void> | undefined,
  ): Promise<void> | undefined {
    const frame: FrameInfo = {
      clientId: conn.id,
      userId: conn.userId,
      type,
      bytes,
      at: this.#clock.now(),
    };
    let next = run;
    for (let i = this.#frameWrappers.length - 1; i >= 0; i--) {
      const wrapper = this.#frameWrappers[i];
      const inner = next;
      next = () => {
        let ran = false;
        let result: Promise<void> | undefined;
        const handle = () => {
          if (ran) return result;
          ran = true;
          return result = inner();
        };
        let out: Promise<unknown> | void;
        try {
          out = wrapper(frame, handle);
        } catch (error) {
          this.#report(error, "observer");
          return handle();
        }
        if (!ran) {
          this.#report(new Error("aroundFrame: the wrapper did not call handle()"), "observer");
          return handle();
        }
        // A rejecting wrapper must not stall this connection's inbound queue; one that
        // returns nothing still has the hub wait for an async handler.
        if (out instanceof Promise) {
          return out.then(() => {}, (error) => this.#report(error, "observer"));
        }
        return result;
      };
    }
    return next();
  }

  #dispatch(conn: Connection, message: InboundMessage, type: string): Promise<void> | undefined {
    const id = message.id;
    if (
      id !== undefined &&
      !(typeof id === "string" && id.length > 0 && id.length <= 128) &&
      !(typeof id === "number" && Number.isFinite(id))
    ) {
      this.#error(conn, ErrorCode.INVALID_INPUT, "id must be a string (1–128 chars) or a number");
      return;
    }
    const rid = id as RequestId | undefined;
    switch (type) {
      case "ping":
        if (!this.#onlyKeys(conn, message, ALLOWED_KEYS_PING, rid)) return;
        this.#reply(conn, ServerEvent.PONG, { timestamp: this.#clock.now() }, rid);
        return;
      case "subscribe":
        return this.#subscribe(conn, message, rid);
      case "unsubscribe": {
        const room = this.#roomOf(conn, message, rid);
        if (room === undefined) return;
        this.#leave(conn, room, "unsubscribe");
        this.#reply(conn, ServerEvent.UNSUBSCRIBED, { room }, rid);
        return;
      }
      case "authenticate":
        return this.#authenticate(conn, message, rid);
    }
    const handler = this.#handlers.get(type);
    const onMessage = this.#options.onMessage;
    let fn: ((m: Msg) => unknown) | undefined;
    if (handler !== undefined) fn = (m) => handler.fn(conn, m);
    else if (onMessage !== undefined) fn = (m) => onMessage(conn, m);
    if (fn === undefined) {
      this.#error(conn, ErrorCode.UNKNOWN_TYPE, `No handler for message type "${clip(type)}"`, {
        type: clip(type),
      }, rid);
      return;
    }
    const call = fn;
    const schema = handler?.schema ?? this.#options.schema;
    if (schema === undefined) {
      return this.#callHook(conn, "message", () => call(message as Msg), rid);
    }
    let result: StandardSchemaResult<unknown> | Promise<StandardSchemaResult<unknown>>;
    try {
      result = schema["~standard"].validate(message);
    } catch (error) {
      this.#report(error, "message");
      this.#error(conn, ErrorCode.INVALID_INPUT, "Message failed validation", undefined, rid);
      return;
    }
    const next = (r: StandardSchemaResult<unknown>): Promise<void> | undefined => {
      if (r.issues !== undefined) {
        this.#error(conn, ErrorCode.INVALID_INPUT, "Message failed validation", {
          type: clip(type),
          issues: r.issues.slice(0, 20).map((i) => ({
            message: String(i.message),
            path: i.path?.map((p) => String(typeof p === "object" ? p.key : p)),
          })),
        }, rid);
        return;
      }
      return this.#callHook(conn, "message", () => call(r.value as Msg), rid);
    };
    if (result instanceof Promise) {
      return result.then(next, (error) => {
        this.#report(error, "message");
        this.#error(conn, ErrorCode.INVALID_INPUT, "Message failed validation", undefined, rid);
      });
    }
    return next(result);
  }

  #subscribe(conn: Connection, message: InboundMessage, id?: RequestId): Promise<void> | undefined {
    const room = this.#roomOf(conn, message, id);
    if (room === undefined) return;
    const canJoin = this.#options.canJoin;
    const decide = (ok: boolean) => {
      if (conn.state !== "open") return;
      if (ok !== true) {
        this.#error(
          conn,
          ErrorCode.SUBSCRIBE_REFUSED,
          "Cannot subscribe: room refused",
          { room },
          id,
        );
        return;
      }
      if (
        !conn[kRoomHas](room) && conn[kRoomCount]() >= this.limits.maxRoomsPerConnection
      ) {
        this.#error(conn, ErrorCode.LIMIT_EXCEEDED, "Cannot subscribe: too many rooms", {
          room,
          limit: this.limits.maxRoomsPerConnection,
        }, id);
        return;
      }
      this.#join(conn, room);
      this.#reply(conn, ServerEvent.SUBSCRIBED, { room }, id);
    };
    if (canJoin === undefined) {
      if (!this.#warnedNoGuard) {
        this.#warnedNoGuard = true;
        console.warn(
          `hubbub: refused a client's subscribe to "${clip(room)}": this hub has no canJoin ` +
            "option, and without one every subscribe is refused. Pass canJoin (the room " +
            "guard) to decide which rooms clients may join. (Logged once.)",
        );
      }
      decide(false);
      return;
    }
    let result: boolean | Promise<boolean>;
    try {
      result = canJoin(conn, room);
    } catch (error) {
      this.#report(error, "canJoin");
      decide(false);
      return;
    }
    if (result instanceof Promise) {
      return result.then(decide, (error) => {
        this.#report(error, "canJoin");
        decide(false);
      });
    }
    decide(result);
  }

  #authenticate(
    conn: Connection,
    message: InboundMessage,
    id?: RequestId,
  ): Promise<void> | undefined {
    const hook = this.#options.authenticate;
    const done = (userId: string | null | false | undefined) => {
      if (conn.state !== "open") return;
      if (typeof userId === "string" && userId !== "") {
        if (userId !== conn.userId) {
          if (this.#userHeld(userId) >= this.limits.maxConnectionsPerUser) {
            // The same cap as at upgrade: authenticating must not open a way around it.
            this.#error(
              conn,
              ErrorCode.LIMIT_EXCEEDED,
              "Cannot authenticate: too many connections for this user",
              { limit: this.limits.maxConnectionsPerUser },
              id,
            );
            return;
          }
          if (conn.userId !== undefined) this.#unindexUser(conn, conn.userId);
          conn[kSetUser](userId);
          this.#indexUser(conn, userId);
          this.#clearAuthTimer(conn);
        }
      } else if (hook !== undefined || conn.userId === undefined) {
        this.#error(
          conn,
          ErrorCode.UNAUTHENTICATED,
          "Cannot authenticate: not identified",
          undefined,
          id,
        );
        return;
      }
      this.#reply(conn, ServerEvent.AUTHENTICATED, { userId: conn.userId, status: "success" }, id);
    };
    if (hook === undefined) {
      done(conn.userId);
      return;
    }
    let result: ReturnType<typeof hook>;
    try {
      result = hook(conn, message);
    } catch (error) {
      this.#report(error, "authenticate");
      done(null);
      return;
    }
    if (result instanceof Promise) {
      return result.then(done, (error) => {
        this.#report(error, "authenticate");
        done(null);
      });
    }
    done(result);
  }

  #roomOf(conn: Connection, message: InboundMessage, id?: RequestId): string | undefined {
    if (!this.#onlyKeys(conn, message, ALLOWED_KEYS_ROOM, id)) return;
    const room = message.room;
    if (typeof room !== "string" || room.length === 0) {
      this.#error(conn, ErrorCode.INVALID_INPUT, "room must be a non-empty string", undefined, id);
      return;
    }
    if (room.length > this.limits.maxRoomNameLength) {
      this.#error(
        conn,
        ErrorCode.INVALID_INPUT,
        `room must be at most ${this.limits.maxRoomNameLength} characters`,
        undefined,
        id,
      );
      return;
    }
    // deno-lint-ignore no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(room)) {
      this.#error(
        conn,
        ErrorCode.INVALID_INPUT,
        "room must not contain control characters",
        undefined,
        id,
      );
      return;
    }
    return room;
  }

  #onlyKeys(
    conn: Connection,
    message: InboundMessage,
    allowed: ReadonlySet<string>,
    id?: RequestId,
  ): boolean {
    for (const key of Object.keys(message)) {
      if (!allowed.has(key)) {
        this.#error(
          conn,
          ErrorCode.INVALID_INPUT,
          `Unknown field "${clip(key)}" in ${message.type} message`,
          undefined,
          id,
        );
        return false;
      }
    }
    return true;
  }

  #callHook(
    conn: Connection,
    source: HubErrorSource,
    fn: () => unknown,
    id?: RequestId,
  ): Promise<void> | undefined {
    const fail = (error: unknown) => {
      if (error instanceof MessageError) {
        this.#error(conn, error.code, error.message, error.details, id);
      } else {
        this.#report(error, source);
        this.#error(conn, ErrorCode.INTERNAL_ERROR, "Internal error", undefined, id);
      }
    };
    const ok = (value: unknown) => {
      if (id !== undefined && conn.state === "open") {
        this.#reply(conn, ServerEvent.ACK, { result: value === undefined ? null : value }, id);
      }
    };
    try {
      const result = fn();
      if (result instanceof Promise) return result.then(ok, fail);
      ok(result);
    } catch (error) {
      fail(error);
    }
  }

  #reply(conn: Connection, type: string, data: Record<string, unknown>, id?: RequestId): void {
    let frame: string;
    try {
      frame = encodeEnvelope(type, id === undefined ? data : { ...data, id }, this.#clock.now());
    } catch (error) {
      // A handler's result that cannot be serialised (a cycle, a BigInt).
      this.#report(error, "message");
      frame = encodeEnvelope(ServerEvent.ERROR, {
        code: ErrorCode.INTERNAL_ERROR,
        message: "Internal error",
        ...(id === undefined ? {} : { id }),
      }, this.#clock.now());
    }
    const size = utf8Length(frame);
    if (conn[kDeliver](frame)) {
      this.#n.messagesOut++;
      this.#n.bytesOut += size;
      bump(this.#outByType, type, 1, size);
    }
  }

  #error(
    conn: Connection,
    code: string,
    message: string,
    details?: Record<string, unknown>,
    id?: RequestId,
  ): void {
    this.#reply(conn, ServerEvent.ERROR, { ...details, code, message }, id);
  }

  #report(error: unknown, source: HubErrorSource): void {
    const onError = this.#options.onError;
    if (onError === undefined) {
      console.error(`hubbub: error in ${source} hook:`, error);
      return;
    }
    try {
      swallow(onError(error, source));
    } catch { /* the error reporter itself failed: nothing more to do */ }
  }

  /** A hook typed `void` may still be async: report its rejection instead of crashing. */
  #settle(result: unknown, source: HubErrorSource): void {
    if (isThenable(result)) result.then(undefined, (error) => this.#report(error, source));
  }

  #track(promise: Promise<unknown>): void {
    const p = promise.catch((error) => this.#report(error, "message"));
    this.#pendingHooks.add(p);
    p.finally(() => this.#pendingHooks.delete(p));
  }

  // ---------------------------------------------------------------- indexes

  #join(conn: Connection, room: string): void {
    if (!conn[kRoomAdd](room)) return;
    let set = this.#rooms.get(room);
    if (set === undefined) {
      this.#rooms.set(room, set = new Set());
      this.#interest(this.#prefix + "room:" + room, true);
    }
    set.add(conn);
    this.#roomHook(this.#options.onJoin, conn, room, undefined);
  }

  #leave(conn: Connection, room: string, cause: LeaveCause = "server"): void {
    if (!conn[kRoomDelete](room)) return;
    this.#unindexRoom(conn, room);
    this.#roomHook(this.#options.onLeave, conn, room, cause);
  }

  #unindexRoom(conn: Connection, room: string): void {
    const set = this.#rooms.get(room);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) {
      this.#rooms.delete(room);
      this.#interest(this.#prefix + "room:" + room, false);
    }
  }

  #roomHook(
    hook: ((c: Connection, room: string, cause: LeaveCause) => void) | undefined,
    conn: Connection,
    room: string,
    cause: LeaveCause | undefined,
  ): void {
    if (hook === undefined) return;
    const source = cause === undefined ? "join" : "leave";
    try {
      this.#settle(hook(conn, room, cause as LeaveCause), source);
    } catch (error) {
      this.#report(error, source);
    }
  }

  #indexUser(conn: Connection, userId: string): void {
    let set = this.#users.get(userId);
    if (set === undefined) {
      this.#users.set(userId, set = new Set());
      this.#interest(this.#prefix + "user:" + userId, true);
    }
    set.add(conn);
  }

  #unindexUser(conn: Connection, userId: string): void {
    const set = this.#users.get(userId);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) {
      this.#users.delete(userId);
      this.#interest(this.#prefix + "user:" + userId, false);
    }
  }

  /** The transport reported its socket closed (after or before the hub's own teardown). */
  readonly #socketGone = (conn: Connection): void => {
    this.#socketOpen.delete(conn);
    this.#stopLingering(conn);
  };

  /** Count a closed connection's socket until its close completes or closeTimeoutMs passes. */
  #linger(conn: Connection): void {
    this.#lingering.set(
      conn,
      this.#clock.setTimeout(() => {
        this.#lingering.delete(conn);
        // The peer never finished the close: drop it where the runtime can (Bun). Deno keeps
        // the socket until the peer goes away; it no longer holds a slot here.
        conn[kAbandon]();
      }, this.limits.closeTimeoutMs),
    );
  }

  #stopLingering(conn: Connection): void {
    const timer = this.#lingering.get(conn);
    if (timer === undefined && !this.#lingering.has(conn)) return;
    this.#lingering.delete(conn);
    this.#clock.clearTimeout(timer);
  }

  #removed(conn: Connection, code: number, reason: string, cause: string): void {
    if (this.#clients.get(conn.id) !== conn) return;
    this.#clients.delete(conn.id);
    if (this.#socketOpen.has(conn)) this.#linger(conn);
    if (conn.userId !== undefined) this.#unindexUser(conn, conn.userId);
    this.#interest(this.#prefix + "client:" + conn.id, false);
    for (const room of conn[kRoomTake]()) {
      this.#unindexRoom(conn, room);
      this.#roomHook(this.#options.onLeave, conn, room, "disconnect");
    }
    this.#inbound.delete(conn);
    this.#clearAuthTimer(conn);
    this.#n.closed++;
    this.#closes.set(cause, (this.#closes.get(cause) ?? 0) + 1);
    if (this.#observers.size > 0) {
      this.#notify({
        kind: "disconnect",
        clientId: conn.id,
        userId: conn.userId,
        code,
        reason,
        cause,
        at: this.#clock.now(),
      });
    }
    if (this.#clients.size === 0) this.#stopTimer();
    const onDisconnect = this.#options.onDisconnect;
    if (onDisconnect === undefined) return;
    // Deferred: the close may have fired inside a fan-out loop (Bun closes synchronously).
    this.#track(
      Promise.resolve().then(() => onDisconnect(conn, { code, reason })).catch(
        (error) => this.#report(error, "disconnect"),
      ),
    );
  }

  #clearAuthTimer(conn: Connection): void {
    const timer = this.#authTimers.get(conn);
    if (timer === undefined) return;
    this.#authTimers.delete(conn);
    this.#clock.clearTimeout(timer);
  }

  // ---------------------------------------------------------------- keepalive

  #startTimer(): void {
    if (this.#timer !== undefined) return;
    const { pingIntervalMs, idleTimeoutMs } = this.limits;
    const every = Math.max(10, Math.min(pingIntervalMs, idleTimeoutMs) / 2);
    this.#timer = this.#clock.setInterval(() => this.#tick(), every);
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = this.#clock.now();
    const { pingIntervalMs, idleTimeoutMs } = this.limits;
    for (const conn of this.#clients.values()) {
      conn[kCompact]();
      const idle = now - conn[kLastSeen];
      if (idle >= idleTimeoutMs) {
        // Only transports the hub pings are timed out here; others keep alive natively.
        if (conn[kPing]()) conn[kCloseWith](CloseCode.GOING_AWAY, "idle timeout", "idle_timeout");
      } else if (idle >= pingIntervalMs) {
        conn[kPing]();
      }
    }
  }

  // ---------------------------------------------------------------- observability

  /**
   * Describe the endpoint: its metadata, the message types it takes (with JSON
   * Schema where the schema library provides Standard JSON Schema), the events
   * hubbub sends, subprotocols and limits.
   *
   * @returns The description (plain data, JSON-serialisable).
   */
  describe(): HubDescription {
    const messages: MessageDescription[] = [...BUILTIN_TYPES].map((type) => ({
      type,
      kind: "builtin" as const,
      validated: true,
    }));
    for (const [type, h] of this.#handlers) {
      const schema = h.schema ?? this.#options.schema;
      const jsonSchema = jsonSchemaOf(schema);
      messages.push({
        type,
        kind: "handler",
        validated: schema !== undefined,
        ...(jsonSchema ? { jsonSchema } : {}),
      });
    }
    if (this.#options.onMessage !== undefined) {
      const jsonSchema = jsonSchemaOf(this.#options.schema);
      messages.push({
        type: "*",
        kind: "catch-all",
        validated: this.#options.schema !== undefined,
        ...(jsonSchema ? { jsonSchema } : {}),
      });
    }
    const e = this.#options.endpoint ?? {};
    return {
      endpoint: {
        ...(e.description !== undefined ? { description: e.description } : {}),
        tags: [...e.tags ?? []],
        middleware: [...e.middleware ?? []],
      },
      messages,
      serverEvents: Object.values(ServerEvent),
      subprotocols: this.#batchFraming ? [BATCH_PROTOCOL] : [],
      limits: this.limits,
    };
  }

  /**
   * A cheap snapshot of counters and gauges (see {@linkcode HubStats} for each field).
   * Walks the connections once for queue sizes and the rooms once for the top N.
   *
   * @param options `topRooms`: how many of the largest rooms to list (default 10).
   * @returns The snapshot.
   */
  stats(options: { topRooms?: number } = {}): HubStats {
    const queued: number[] = [];
    let total = 0;
    for (const conn of this.#clients.values()) {
      const q = conn.queuedBytes;
      if (q > 0) {
        queued.push(q);
        total += q;
      }
    }
    queued.sort((a, b) => a - b);
    // p99 over every connection (most have nothing queued).
    const all = this.#clients.size;
    const zeros = all - queued.length;
    const index = Math.max(0, Math.ceil(0.99 * all) - 1);
    const p99 = index < zeros ? 0 : queued[index - zeros] ?? 0;
    const top = options.topRooms ?? 10;
    const topRooms: { room: string; members: number }[] = [];
    for (const [room, set] of this.#rooms) {
      if (top <= 0) break;
      if (topRooms.length < top || set.size > topRooms[topRooms.length - 1].members) {
        topRooms.push({ room, members: set.size });
        topRooms.sort((a, b) => b.members - a.members);
        if (topRooms.length > top) topRooms.pop();
      }
    }
    const n = this.#n;
    return {
      connections: this.#clients.size,
      users: this.#users.size,
      rooms: this.#rooms.size,
      topRooms,
      connectionsOpened: n.opened,
      connectionsClosed: n.closed,
      in: { messages: n.messagesIn, bytes: n.bytesIn },
      out: { messages: n.messagesOut, bytes: n.bytesOut },
      inByType: record(this.#inByType),
      outByType: record(this.#outByType),
      emits: n.emits,
      queuedBytes: { total, max: queued.at(-1) ?? 0, p99 },
      closes: Object.fromEntries(this.#closes),
      refused: Object.fromEntries(this.#refused),
      rateLimited: n.rateLimited,
      observerDrops: n.observerDrops,
      backplane: this.backplaneStats(),
    };
  }

  /**
   * Call `fn` for every {@linkcode HubEvent} (frames, emits, connects,
   * disconnects), synchronously. Keep it fast: it runs on the hot path. A
   * throwing observer is reported to `onError` and does not stop the hub.
   *
   * @param fn The observer.
   * @returns A function that stops observing.
   */
  observe(fn: (event: HubEvent) => void): () => void {
    this.#observers.add(fn);
    return () => void this.#observers.delete(fn);
  }

  /**
   * Every {@linkcode HubEvent} as an async iterator. Bounded: a consumer that
   * falls behind loses the oldest events (counted in `stats().observerDrops`),
   * so a slow observer never slows the hub. Ends when `signal` aborts, the hub
   * closes, or the loop breaks.
   *
   * @param options Signal and buffer size.
   * @returns The iterator.
   * @example
   * ```ts ignore
   * for await (const ev of hub.events({ signal })) console.log(ev.kind);
   * ```
   */
  events(options: HubEventsOptions = {}): AsyncIterableIterator<HubEvent> {
    const size = options.bufferSize ?? 1024;
    const buffer: HubEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const stop = () => {
      done = true;
      unobserve();
      this.#eventStreams.delete(stop);
      options.signal?.removeEventListener("abort", stop);
      wake?.();
    };
    const unobserve = this.observe((event) => {
      if (buffer.length >= size) {
        buffer.shift();
        this.#n.observerDrops++;
      }
      buffer.push(event);
      wake?.();
    });
    this.#eventStreams.add(stop);
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener("abort", stop, { once: true });
    const iterator: AsyncIterableIterator<HubEvent> = {
      next: async (): Promise<IteratorResult<HubEvent>> => {
        while (buffer.length === 0 && !done) {
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
        }
        if (buffer.length > 0) return { value: buffer.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: (): Promise<IteratorResult<HubEvent>> => {
        stop();
        buffer.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  #notify(event: HubEvent): void {
    for (const fn of this.#observers) {
      try {
        this.#settle(fn(event), "observer");
      } catch (error) {
        this.#report(error, "observer");
      }
    }
  }

  /**
   * Wrap the handling of every accepted inbound frame (after the rate limit):
   * validation, the built-in or the app's handler, and the reply. Call
   * `handle()` exactly once, synchronously: it returns a promise only while an
   * async handler is in flight. The hub waits for that promise, or for the one
   * the wrapper returns, before the connection's next frame. For tracing (a
   * span around the handler, active while it runs) and timing.
   *
   * - Wrappers nest in the order added (the first is outermost).
   * - A wrapper that throws, or returns without calling `handle()`, is
   *   reported to `onError` (source `"observer"`) and the frame is handled anyway.
   * - Handler errors never reach the wrapper: they become `error` replies.
   *
   * @param fn The wrapper.
   * @returns A function that removes it.
   * @example
   * ```ts
   * import { Hub } from "@hubbub/hubbub";
   * const hub = new Hub();
   * const stop = hub.aroundFrame((frame, handle) => {
   *   const t0 = performance.now();
   *   const done = () => console.log(frame.type, performance.now() - t0, "ms");
   *   const pending = handle();
   *   if (pending === undefined) done();
   *   else return pending.finally(done);
   * });
   * stop();
   * await hub.close();
   * ```
   */
  aroundFrame(fn: FrameWrapper): () => void {
    this.#frameWrappers = [...this.#frameWrappers, fn];
    return () => {
      this.#frameWrappers = this.#frameWrappers.filter((w) => w !== fn);
    };
  }

  #countIn(conn: Connection, type: string, bytes: number): void {
    bump(this.#inByType, type, 1, bytes);
    if (this.#observers.size > 0) {
      this.#notify({ kind: "frame", clientId: conn.id, type, bytes, at: this.#clock.now() });
    }
  }

  #refuse(
    why: string,
    status: number,
    body: string,
    headers?: Record<string, string>,
    request?: Request,
  ): RefusedUpgrade {
    this.#refused.set(why, (this.#refused.get(why) ?? 0) + 1);
    if (this.#observers.size > 0 && request !== undefined) {
      this.#notify({
        kind: "refused",
        cause: why,
        status,
        origin: request.headers.get("origin"),
        url: request.url,
        at: this.#clock.now(),
      });
    }
    return refuse(status, body, headers);
  }

  // ---------------------------------------------------------------- backplane

  /**
   * Resolves once the backplane is started and subscribed to broadcasts
   * (immediately without one). Emits before then still reach local connections.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** The backplane's health: `{ ok: true }` without a backplane. */
  get backplaneHealth(): BackplaneHealth {
    return this.#bpHealth;
  }

  /**
   * Backplane counters (all zero without a backplane).
   * @returns A snapshot.
   */
  backplaneStats(): BackplaneStats {
    return {
      nodeId: this.#nodeId,
      health: this.#bpHealth,
      ...this.#bpCounts,
      channels: this.#bpChannels.size,
    };
  }

  #startBackplane(bp: Backplane): void {
    this.#ready = bp.start(
      (channel, payload) => this.#fromBus(channel, payload),
      (health) => {
        this.#bpHealth = health;
      },
    ).then(() => {
      // `ready` means subscribed to broadcasts: await that subscription too.
      const all = this.#prefix + "all";
      if (this.#bpChannels.has(all)) return;
      this.#bpChannels.add(all);
      return bp.subscribe(all);
    }).catch((error) => {
      this.#bpHealth = { ok: false, error: String((error as Error)?.message ?? error) };
      this.#report(error, "backplane");
    });
  }

  /** Subscribe to (or drop) a channel on the backplane, if there is one. */
  #interest(channel: string, on: boolean): void {
    const bp = this.#backplane;
    if (bp === undefined) return;
    if (on) {
      if (this.#bpChannels.has(channel)) return;
      this.#bpChannels.add(channel);
      bp.subscribe(channel).catch((error) => this.#report(error, "backplane"));
    } else if (this.#bpChannels.delete(channel)) {
      bp.unsubscribe(channel).catch((error) => this.#report(error, "backplane"));
    }
  }

  #publish(frame: Frame, target: Target | undefined): void {
    const bp = this.#backplane!;
    const t: BackplaneEnvelope["t"] = {};
    const channels: string[] = [];
    const list = (v: string | Iterable<string> | undefined) =>
      v === undefined ? undefined : typeof v === "string" ? [v] : [...v];
    const rooms = list(target?.rooms);
    const users = list(target?.users);
    const clients = list(target?.clients);
    if (rooms === undefined && users === undefined && clients === undefined) {
      t.a = 1;
      channels.push(this.#prefix + "all");
    }
    if (rooms !== undefined) {
      t.r = rooms;
      for (const r of rooms) channels.push(this.#prefix + "room:" + r);
    }
    if (users !== undefined) {
      t.u = users;
      for (const u of users) channels.push(this.#prefix + "user:" + u);
    }
    if (clients !== undefined) {
      t.c = clients;
      for (const c of clients) channels.push(this.#prefix + "client:" + c);
    }
    if (target?.except !== undefined) t.x = exceptIds(target.except);
    if (channels.length === 0) return;
    const envelope: BackplaneEnvelope = typeof frame === "string"
      ? { v: 1, o: this.#nodeId, i: crypto.randomUUID(), t, f: frame }
      : { v: 1, o: this.#nodeId, i: crypto.randomUUID(), t, f: toBase64(frame), b: 1 };
    const json = JSON.stringify(envelope);
    // Signed: "<43-char base64url MAC>.<json>"; an unsigned hub's JSON.parse refuses it.
    const payload = this.#signer === undefined ? json : this.#signer.signText(json) + "." + json;
    for (const channel of channels) {
      this.#bpCounts.published++;
      bp.publish(channel, payload).catch(() => {
        this.#bpCounts.publishFailed++;
      });
    }
  }

  #fromBus(_channel: string, payload: string): void {
    // One bad envelope costs exactly itself: nothing in it may throw into the backplane's
    // receive loop (that would drop the messages behind it in the same read).
    try {
      this.#fromBusUnsafe(payload);
    } catch (error) {
      this.#bpCounts.malformed++;
      this.#report(error, "backplane");
    }
  }

  #fromBusUnsafe(payload: string): void {
    if (typeof payload !== "string") {
      this.#bpCounts.malformed++;
      return;
    }
    let json = payload;
    if (this.#signer !== undefined) {
      const dot = payload.indexOf(".");
      if (dot !== 43 || !this.#signer.verifyText(payload.slice(44), payload.slice(0, 43))) {
        this.#bpCounts.malformed++;
        return;
      }
      json = payload.slice(44);
    }
    let env: unknown;
    try {
      env = JSON.parse(json);
    } catch {
      this.#bpCounts.malformed++;
      return;
    }
    if (!isEnvelope(env)) {
      this.#bpCounts.malformed++;
      return;
    }
    if (env.o === this.#nodeId) return;
    let frame: Frame;
    if (env.b === 1) {
      const bytes = fromBase64(env.f);
      if (bytes === undefined) {
        this.#bpCounts.malformed++;
        return;
      }
      frame = bytes;
    } else frame = env.f;
    if (this.#seen.has(env.i) || this.#seenOld.has(env.i)) {
      this.#bpCounts.duplicates++;
      return;
    }
    // Two generations of ids: bounded memory, and a copy arriving soon after is still caught.
    this.#seen.add(env.i);
    if (this.#seen.size >= 10_000) {
      this.#seenOld = this.#seen;
      this.#seen = new Set();
    }
    this.#bpCounts.received++;
    const t = env.t;
    const target: Target = t.a === 1 ? {} : { rooms: t.r, users: t.u, clients: t.c };
    if (t.x !== undefined) target.except = t.x;
    this.#fanout(frame, target);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stop accepting connections, close every open one (default 1001 with
   * `connection.closed`), and resolve once every disconnect hook has run.
   * Idempotent.
   *
   * @param options Close code and reason.
   * @returns A promise that resolves when all hooks have settled.
   */
  async close(options: HubCloseOptions = {}): Promise<void> {
    this.#closed = true;
    const {
      code = CloseCode.GOING_AWAY,
      reason = "server shutting down",
      drainMs = 0,
      timeoutMs = 5000,
    } = options;
    this.#slots.releaseAll();
    for (const conn of [...this.#lingering.keys()]) this.#stopLingering(conn);
    const conns = [...this.#clients.values()];
    if (drainMs > 0) {
      await Promise.all(conns.map((conn) => conn[kDrainClose](code, reason, drainMs)));
    } else {
      for (const conn of conns) conn[kCloseWith](code, reason, "shutdown");
    }
    this.#stopTimer();
    for (const stop of [...this.#eventStreams]) stop();
    this.#cancelFlush?.();
    this.#cancelFlush = undefined;
    this.#dirty = [];
    const settled = async () => {
      if (this.#backplane !== undefined) {
        await this.#ready.catch(() => {});
        await this.#backplane.close().catch((error) => this.#report(error, "backplane"));
      }
      while (this.#pendingHooks.size > 0) await Promise.allSettled([...this.#pendingHooks]);
    };
    let timer: unknown;
    const late = new Promise<boolean>((resolve) => {
      timer = this.#clock.setTimeout(() => resolve(true), timeoutMs);
    });
    const timedOut = await Promise.race([settled().then(() => false), late]);
    this.#clock.clearTimeout(timer);
    if (timedOut) {
      this.#report(
        new Error(
          `Cannot finish closing: ${this.#pendingHooks.size} hook(s) still pending after ` +
            `${timeoutMs} ms (timeoutMs); left behind`,
        ),
        "disconnect",
      );
    }
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function refuse(status: number, body: string, headers?: Record<string, string>): RefusedUpgrade {
  return {
    ok: false,
    response: new Response(body, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    }),
  };
}

const MAX_TYPES = 256;

function bump(
  map: Map<string, { messages: number; bytes: number }>,
  type: string,
  messages: number,
  bytes: number,
): void {
  let t = map.get(type);
  if (t === undefined) {
    if (map.size >= MAX_TYPES) type = "other";
    t = map.get(type);
    if (t === undefined) map.set(type, t = { messages: 0, bytes: 0 });
  }
  t.messages += messages;
  t.bytes += bytes;
}

function record(map: Map<string, { messages: number; bytes: number }>): Record<string, Traffic> {
  const out: Record<string, Traffic> = {};
  for (const [k, v] of map) {
    // A client picks the key (its message type): "__proto__" must stay an own key.
    Object.defineProperty(out, k, {
      value: { messages: v.messages, bytes: v.bytes },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/** Inbound frames held for one connection, with their UTF-8 sizes. */
interface Backlog {
  frames: (string | Uint8Array)[];
  sizes: number[];
  bytes: number;
}

function newBacklog(): Backlog {
  return { frames: [], sizes: [], bytes: 0 };
}

/** The event sink an adapter feeds for one socket (a class: no closures per connection). */
class ConnectionEvents implements SocketEvents {
  readonly #conn: Connection;
  readonly #receive: (conn: Connection, data: string | Uint8Array) => void;
  readonly #gone: (conn: Connection) => void;

  constructor(
    conn: Connection,
    receive: (conn: Connection, data: string | Uint8Array) => void,
    gone: (conn: Connection) => void,
  ) {
    this.#conn = conn;
    this.#receive = receive;
    this.#gone = gone;
  }

  message(data: string | Uint8Array): void {
    const conn = this.#conn;
    if (conn.state !== "open") return;
    conn[kTouch]();
    this.#receive(conn, data);
  }

  close(code: number, reason: string): void {
    this.#gone(this.#conn);
    this.#conn[kTeardown](code, reason);
  }

  pong(): void {
    this.#conn[kTouch]();
  }
}

/** Hand `frame` to every connection in a room; how many accepted it. */
function deliverTo(conns: Set<Connection>, frame: Frame): number {
  let n = 0;
  for (const conn of conns) {
    if (conn[kDeliver](frame)) n++;
  }
  return n;
}

const timers = globalThis as {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
};

/** Run `fn` on the next turn of the event loop (setImmediate where there is one). */
function nextTurn(fn: () => void): () => void {
  if (timers.setImmediate !== undefined && timers.clearImmediate !== undefined) {
    const handle = timers.setImmediate(fn);
    return () => timers.clearImmediate!(handle);
  }
  const handle = setTimeout(fn, 0);
  return () => clearTimeout(handle);
}

/** The client ids in a target's `except`: one id, one connection, or several of either. */
function exceptIds(e: NonNullable<Target["except"]>): string[] {
  if (typeof e === "string") return [e];
  if (!(Symbol.iterator in e)) return [e.id];
  const out: string[] = [];
  for (const x of e as Iterable<string | { readonly id: string }>) {
    out.push(typeof x === "string" ? x : x.id);
  }
  return out;
}

/** The subprotocols a client offered (`Sec-WebSocket-Protocol`, comma-separated, any spacing). */
function offeredProtocols(header: string | null): string[] {
  if (header === null) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Longest id (node id, envelope id) accepted in an envelope. */
const MAX_ENVELOPE_ID = 128;

function isId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_ENVELOPE_ID;
}

/** Every field checked before any is used (the bus is input like any other). */
function isEnvelope(e: unknown): e is BackplaneEnvelope {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
  const env = e as Record<string, unknown>;
  if (env.v !== 1 || !isId(env.o) || !isId(env.i)) return false;
  if (typeof env.f !== "string" || (env.b !== undefined && env.b !== 1)) return false;
  const t = env.t as Record<string, unknown> | null;
  if (typeof t !== "object" || t === null || Array.isArray(t)) return false;
  if (t.a !== undefined && t.a !== 1) return false;
  for (const k of ["r", "u", "c", "x"]) {
    if (t[k] !== undefined && !isStringArray(t[k])) return false;
  }
  return t.a === 1 || t.r !== undefined || t.u !== undefined || t.c !== undefined;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
}

/** Ignore a rejection of what a void-typed callback returned (an async function, say). */
function swallow(result: unknown): void {
  if (isThenable(result)) result.then(undefined, () => {});
}

function clip(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + "…" : s;
}
