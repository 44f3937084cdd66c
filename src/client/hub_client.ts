/**
 * The reconnecting, typed hubbub client: the public class. It wires the parts,
 * each in its own file: the socket lifecycle and reconnect policy
 * (`_socket_lifecycle.ts`), inbound frames and replies (`_inbound.ts`), the
 * pending-request table and offline queue (`_calls.ts`), rooms (`_rooms.ts`),
 * history rooms' stream positions and dedupe (`_positions.ts`), live member lists
 * (`_member_list.ts`), keepalive (`_keepalive.ts`) and the lifecycle emitter
 * (`_lifecycle_emitter.ts`).
 *
 * @module
 */

import type {
  AnyContract,
  ClientMessageType,
  ClientPayload,
  RequestResult,
  ServerData,
  ServerMessage,
  ServerMessageType,
} from "../protocol/contract.ts";
import { type Envelope, ServerEvent } from "../protocol/envelope.ts";
import { assertCloseArgs } from "../protocol/close_codes.ts";
import { Calls } from "./_calls.ts";
import { deferred } from "./_deferred.ts";
import { EventStream } from "../protocol/_event_stream.ts";
import { type AppListener, Inbound } from "./_inbound.ts";
import { Keepalive } from "./_keepalive.ts";
import { LifecycleEmitter } from "./_lifecycle_emitter.ts";
import { LiveMemberList, type MemberListHost } from "./_member_list.ts";
import { type ResolvedOptions, resolveOptions } from "./_options.ts";
import { Positions } from "./_positions.ts";
import { Rooms } from "./_rooms.ts";
import { type ConnectProgress, SocketLifecycle } from "./_socket_lifecycle.ts";
import {
  authenticateFrame,
  encodeMessage,
  historyFrame,
  PING_FRAME,
  presenceFrame,
  type PresenceRead,
  readHistory,
  readPresence,
  readPresenceStats,
  recoverFrame,
  resolveUrl,
  roomFrame,
} from "./_wire.ts";
import type { Reader } from "./_calls.ts";
import { backoffDelay } from "./backoff.ts";
import { DisconnectedError } from "./errors.ts";
import type {
  AuthenticateFields,
  ClientWebSocket,
  EventsOptions,
  HistoryOptions,
  HubClientOptions,
  HubClientState,
  RequestOptions,
} from "./hub_client_options.ts";
import type { CloseInfo, HubClientLifecycle } from "./lifecycle_events.ts";
import type {
  MemberList,
  PresenceClient,
  PresenceEnvelope,
  PresenceEventMap,
  PresenceEventType,
  PresenceJoin,
  PresenceStats,
} from "./presence.ts";
import type { HistoryResult, StreamFields, StreamPosition } from "./stream_position.ts";

/**
 * What an `on()` listener gets as its first argument for event type `K`: the data of a
 * presence built-in (`presence.join`, `presence.leave`), or of the contract's server event.
 */
export type ListenerData<C extends AnyContract, K extends string> = K extends PresenceEventType
  ? PresenceEventMap[K]
  : K extends ServerMessageType<C> ? ServerData<C, K>
  : never;

/**
 * What an `on()` listener gets as its second argument for event type `K`: the whole
 * envelope (with `room` and `offset` for a message of a history room).
 */
export type ListenerEvent<C extends AnyContract, K extends string> = K extends PresenceEventType
  ? Extract<PresenceEnvelope, { type: K }>
  // A contract without literal event names (the default AnyContract): any event.
  :
    & ([Extract<ServerMessage<C>, { type: K }>] extends [never] ? ServerMessage<C>
      : Extract<ServerMessage<C>, { type: K }>)
    & StreamFields;

const HISTORY_READER: Reader = { reply: ServerEvent.HISTORY, parse: readHistory };
const PRESENCE_READER: Reader = { reply: ServerEvent.PRESENCE, parse: readPresence };
const STATS_READER: Reader = { reply: ServerEvent.PRESENCE_STATS, parse: readPresenceStats };

// deno-lint-ignore no-explicit-any
let progressOf: (client: HubClient<any>) => ConnectProgress;

/**
 * How a client's current connection attempt stands (package-internal: for
 * `connect()`'s errors; not exported from the entry point).
 *
 * @param client The client.
 * @returns Its progress.
 */
export function connectProgress<C extends AnyContract>(client: HubClient<C>): ConnectProgress {
  return progressOf(client);
}

/**
 * A typed WebSocket client for a hubbub server that reconnects by itself.
 *
 * - **Connecting**: it opens at construction and is `"open"` once the server's
 *   `connection.established` arrives (`clientId`, `userId`).
 * - **Reconnecting**: after a lost connection it retries with exponential
 *   backoff and full jitter, re-sends `authenticate` (if configured), re-joins
 *   its rooms, then flushes what was queued while offline, in order. It stops
 *   on the terminal close codes (1000, 1008, 4001, 4003), after `maxRetries`,
 *   or on `close()`; `closed` then resolves with the code and reason.
 * - **Offline queue**: `send()` and `request()` made while not open are
 *   queued (bounded: the newest is refused with {@linkcode QueueFullError}).
 *   `send()` is at most once: a message written to a socket that is dying may
 *   be lost; `request()` tells you (a request already sent when the
 *   connection dropped rejects with {@linkcode DisconnectedError}).
 * - **Keepalive**: an app-level `ping` after `pingIntervalMs` without a frame;
 *   no frame within `pongTimeoutMs` drops the connection and reconnects.
 * - **Events**: `on(type, fn)` and `events()` get app events in arrival order;
 *   `onLifecycle()` gets `open`, `close`, `reconnecting`, `recovery` and `error`.
 * - **History rooms** (the server decides which rooms keep one): the client keeps
 *   each room's epoch and last delivered offset, re-joins with `recover` after a
 *   reconnect (the server replays what it missed), reports per room whether it was
 *   recovered (`recovery` event), delivers each room's messages in offset order
 *   and never twice (a duplicate or older offset is dropped), and reads the recent
 *   past with `history()`.
 * - **Presence rooms** (the server decides which rooms track presence): `presence()`
 *   and `presenceStats()` read a room's members and counts across every replica,
 *   `on("presence.join")` / `on("presence.leave")` get the typed join and leave
 *   events, and `members(room)` keeps a live member list (users, tabs merged).
 * - **close()** is idempotent, rejects what is pending with
 *   {@linkcode DisconnectedError}, ends `events()` iterators, and resolves
 *   once the socket has closed.
 *
 * @typeParam C The app's contract (`typeof contract`), for typed `send`, `request` and `on`.
 * @example
 * ```ts ignore
 * import { HubClient } from "@hubbub/hubbub/client";
 * import type { contract } from "./contract.ts";
 *
 * const client = new HubClient<typeof contract>("wss://example.com/ws");
 * client.on("chat.message", (m) => console.log(`${m.from}: ${m.text}`));
 * await client.subscribe("lobby");
 * const { seq } = await client.request("chat.send", { room: "lobby", text: "hi" });
 * await client.close();
 * ```
 */
export class HubClient<C extends AnyContract = AnyContract> implements AsyncDisposable {
  static {
    progressOf = (client) => client.#link.progress();
  }

  readonly #o: ResolvedOptions;
  readonly #events = new LifecycleEmitter();
  readonly #calls: Calls;
  readonly #rooms: Rooms;
  readonly #positions = new Positions();
  readonly #keepalive: Keepalive;
  readonly #link: SocketLifecycle;
  readonly #inbound: Inbound;
  /** Live member lists, by room. */
  readonly #lists = new Map<string, Set<LiveMemberList>>();
  /** Rooms whose join was acked on the current connection. */
  readonly #joinedNow = new Set<string>();
  #listHost: MemberListHost | undefined;
  #everOpened = false;
  #clientId: string | undefined;
  #userId: string | undefined;
  #closeInfo: CloseInfo | undefined;
  readonly #closed = deferred<CloseInfo>();

  /**
   * Create a client and start connecting.
   *
   * @param url The hub's URL: `ws:`, `wss:`, `http:` or `https:` (relative
   *   URLs resolve against the page in browsers).
   * @param options See {@linkcode HubClientOptions}.
   * @throws {TypeError} If the URL is invalid or there is no `WebSocket` constructor.
   * @throws {RangeError} If a numeric option is negative.
   */
  constructor(url: string | URL, options: HubClientOptions = {}) {
    const href = resolveUrl(url);
    const o = this.#o = resolveOptions(options);
    this.#calls = new Calls(o.timers, o.maxQueued);
    this.#rooms = new Rooms(o.timers);
    this.#keepalive = new Keepalive(o.timers, o.pingIntervalMs, o.pongTimeoutMs);
    const link = this.#link = new SocketLifecycle(href, o, this.#events, {
      message: (ws, data) => this.#inbound.frame(ws, data),
      disconnected: (info) => this.#disconnected(info),
      stopped: (info) => this.#finish(info),
    });
    this.#inbound = new Inbound({
      link,
      calls: this.#calls,
      rooms: this.#rooms,
      positions: this.#positions,
      events: this.#events,
      keepalive: this.#keepalive,
      host: {
        established: (ws, data) => this.#established(ws, data),
        authenticated: (userId) => void (this.#userId = userId),
        rejoinLater: (room) => this.#rejoinLater(room),
        joined: (room) => {
          this.#joinedNow.add(room);
          for (const list of this.#listsOf(room)) list.joined();
        },
        dropped: (room) => this.#left(room),
      },
    });
    const presenceEvent = (joined: boolean) => (data: unknown) => {
      const room = (data as { room?: unknown } | null)?.room;
      if (typeof room !== "string") return;
      for (const list of this.#listsOf(room)) list.event(joined, data as PresenceJoin);
    };
    this.#inbound.on(ServerEvent.PRESENCE_JOIN, presenceEvent(true));
    this.#inbound.on(ServerEvent.PRESENCE_LEAVE, presenceEvent(false));
    link.start();
  }

  // ---------------------------------------------------------------- state

  /** Where the client is: see {@linkcode HubClientState}. */
  get state(): HubClientState {
    return this.#link.state;
  }

  /** The server's id for the current connection; `undefined` while not connected. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The user id the server assigned to the current connection, if any. */
  get userId(): string | undefined {
    return this.#userId;
  }

  /** The rooms the client is in or joining (re-joined after every reconnect). */
  get rooms(): string[] {
    return this.#rooms.names();
  }

  /**
   * Where the client stands in a history room's stream: its epoch and the last
   * offset delivered to the app (right after a subscribe: the stream's latest
   * offset then). This is what a re-join after a reconnect asks to recover from.
   *
   * @param room The room name.
   * @returns The position, or `undefined` when the room keeps no history or is
   *   not (yet) joined.
   * @example
   * ```ts ignore
   * await client.subscribe("lobby");
   * const at = client.position("lobby"); // { epoch: "e1", offset: 41 }
   * ```
   */
  position(room: string): StreamPosition | undefined {
    return this.#positions.get(room);
  }

  /** How the client closed for good, or `undefined` while it is not closed. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Resolves (never rejects) once the client is closed for good, with the code and reason. */
  get closed(): Promise<CloseInfo> {
    return this.#closed.promise;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Send a message (fire and forget). While offline it is queued and sent,
   * in order, after the reconnect.
   *
   * @param type A client message type of the contract.
   * @param payload Its fields (not `type` or `id`).
   * @throws {TypeError} If the type is empty or built-in, or the payload is
   *   not an object, has `type`/`id` fields, or cannot be serialised.
   * @throws {QueueFullError} If offline and the queue is full.
   * @throws {DisconnectedError} If the client is closed.
   * @example
   * ```ts ignore
   * client.send("chat.send", { room: "lobby", text: "hi" });
   * ```
   */
  send<K extends ClientMessageType<C>>(type: K, payload: ClientPayload<C, K>): void {
    this.#assertNotClosed("send");
    const frame = encodeMessage(type, payload);
    const ws = this.#link.writable;
    if (ws !== undefined) ws.send(frame);
    else this.#calls.enqueue(frame);
  }

  /**
   * Send a request and wait for the server's answer: the handler's result
   * (`ack`), or its refusal (`error`). While offline it is queued.
   *
   * @param type A client message type of the contract.
   * @param payload Its fields (not `type` or `id`).
   * @param options Timeout and abort signal.
   * @returns The result the server's handler returned.
   * @throws {RequestError} The server answered with an error (rejection).
   * @throws {DOMException} `TimeoutError` on timeout; the signal's reason on abort (rejection).
   * @throws {DisconnectedError} The connection dropped after sending, or the client closed (rejection).
   * @throws {QueueFullError} Offline with a full queue (rejection).
   * @throws {TypeError} Bad type or payload, as for `send()` (rejection).
   * @example
   * ```ts ignore
   * const { seq } = await client.request("chat.send", { room: "lobby", text: "hi" }, {
   *   timeout: 5000,
   * });
   * ```
   */
  request<K extends ClientMessageType<C>>(
    type: K,
    payload: ClientPayload<C, K>,
    options: RequestOptions = {},
  ): Promise<RequestResult<C, K>> {
    let frame: string;
    const id = this.#calls.nextId();
    try {
      this.#assertNotClosed("request");
      frame = encodeMessage(type, payload, id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#call("request", id, frame, `request "${type}"`, options) as Promise<
      RequestResult<C, K>
    >;
  }

  /**
   * Join a room. Resolves when the server acks it; the room is re-joined after
   * every reconnect. If the server refuses, the room is dropped and the promise
   * rejects; a refusal on a later re-join is reported as an `error` lifecycle
   * event (source `"resubscribe"`). A timeout or abort before the first ack
   * drops the room too.
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns A promise that resolves once joined.
   * @throws {RequestError} `SUBSCRIBE_REFUSED` (or `INVALID_INPUT`) from the server (rejection).
   * @throws {DOMException} `TimeoutError` or the signal's reason (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @throws {TypeError} If `room` is not a non-empty string (rejection).
   * @example
   * ```ts ignore
   * await client.subscribe("lobby");
   * ```
   */
  subscribe(room: string, options: RequestOptions = {}): Promise<void> {
    try {
      this.#assertNotClosed("subscribe");
      if (typeof room !== "string" || room === "") {
        throw new TypeError("Cannot subscribe: room must be a non-empty string");
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ms = options.timeout ?? this.#o.requestTimeoutMs;
    const joined = this.#rooms.wait(room, ms, signal, () => {
      // Given up before any ack: tell the server, in case the subscribe got through.
      this.#positions.forget(room);
      this.#left(room);
      this.#link.writable?.send(roomFrame("unsubscribe", room));
    });
    if (this.#link.writable !== undefined) this.#sendSubscribe(room, false);
    return joined;
  }

  /**
   * Leave a room: it is no longer re-joined. Resolves when the server acks it,
   * or at once while offline (a new connection starts outside the room).
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns A promise that resolves once left.
   * @throws {RequestError} The server refused the message (rejection).
   * @throws {DOMException} `TimeoutError` or the signal's reason (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @example
   * ```ts ignore
   * await client.unsubscribe("lobby");
   * ```
   */
  unsubscribe(room: string, options: RequestOptions = {}): Promise<void> {
    try {
      this.#assertNotClosed("unsubscribe");
    } catch (error) {
      return Promise.reject(error);
    }
    this.#rooms.leave(room);
    this.#positions.forget(room);
    this.#left(room);
    if (this.#link.writable === undefined) return Promise.resolve();
    const id = this.#calls.nextId();
    const frame = roomFrame("unsubscribe", room, id);
    return this.#call("unsubscribe", id, frame, `unsubscribe "${room}"`, options).then(() => {});
  }

  /**
   * Read the last messages of a history room (the client must be in it). While
   * offline the request is queued; if the connection drops before the answer, it
   * is sent again on the next one.
   *
   * The messages are not delivered to `on()` listeners or `events()`, and do not
   * move the room's {@linkcode HubClient.position}: to rebuild a room's state, read
   * the history and then apply the live messages whose offset is greater than the
   * result's last message's.
   *
   * @param room The room name.
   * @param options `limit` (how many of the most recent messages), timeout and abort signal.
   * @returns The server's `history` reply: `{room, epoch, offset, messages}`, the
   *   messages oldest first, each the envelope as first sent (with `room` and `offset`).
   * @throws {RequestError} `NOT_SUBSCRIBED` (not in the room), `UNAVAILABLE` (the
   *   server's history store cannot serve it now: retry later) or `INVALID_INPUT` (rejection).
   * @throws {DOMException} `TimeoutError` on timeout; the signal's reason on abort (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @throws {QueueFullError} Offline with a full queue (rejection).
   * @throws {TypeError} If `room` is not a non-empty string (rejection).
   * @throws {RangeError} If `limit` is not a positive integer (rejection).
   * @example
   * ```ts ignore
   * await client.subscribe("lobby");
   * const { messages } = await client.history("lobby", { limit: 50 });
   * for (const m of messages) if (m.type === "chat.message") console.log(m.offset, m.data.text);
   * ```
   */
  history(room: string, options: HistoryOptions = {}): Promise<HistoryResult<C>> {
    let frame: string;
    const id = this.#calls.nextId();
    try {
      this.#assertNotClosed("read history");
      if (typeof room !== "string" || room === "") {
        throw new TypeError("Cannot read history: room must be a non-empty string");
      }
      const limit = options.limit;
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
        throw new RangeError(`Cannot read history: limit must be a positive integer, got ${limit}`);
      }
      frame = historyFrame(room, limit, id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#call("read", id, frame, `history "${room}"`, options, HISTORY_READER) as Promise<
      HistoryResult<C>
    >;
  }

  /**
   * Read who is in a presence room: every connection in it, on every replica (the
   * client must be in the room). While offline the request is queued; if the
   * connection drops before the answer, it is sent again on the next one.
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns The room's connections: `{clientId, userId?, info?}` each, the
   *   client's own included (for a live list, see {@linkcode HubClient.members}).
   * @throws {RequestError} `NOT_SUBSCRIBED` (not in the room), `UNAVAILABLE` (the
   *   server's presence store cannot serve it now: retry later) or another code the
   *   server chose (rejection).
   * @throws {DOMException} `TimeoutError` on timeout; the signal's reason on abort (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @throws {QueueFullError} Offline with a full queue (rejection).
   * @throws {TypeError} If `room` is not a non-empty string (rejection).
   * @example
   * ```ts ignore
   * await client.subscribe("lobby");
   * const clients = await client.presence("lobby");
   * console.log(clients.map((c) => c.userId ?? c.clientId));
   * ```
   */
  presence(room: string, options: RequestOptions = {}): Promise<PresenceClient[]> {
    return this.#readPresence(ServerEvent.PRESENCE, room, options, PRESENCE_READER) as Promise<
      PresenceClient[]
    >;
  }

  /**
   * Count a presence room's connections and distinct users, on every replica (the
   * client must be in the room). Cheaper than {@linkcode HubClient.presence} for a
   * big room. Queued while offline and re-sent after a drop, as `presence()`.
   *
   * @param room The room name.
   * @param options Timeout and abort signal.
   * @returns `{clients, users}`.
   * @throws {RequestError} `NOT_SUBSCRIBED`, `UNAVAILABLE` or another code the
   *   server chose (rejection).
   * @throws {DOMException} `TimeoutError` on timeout; the signal's reason on abort (rejection).
   * @throws {DisconnectedError} The client closed (rejection).
   * @throws {QueueFullError} Offline with a full queue (rejection).
   * @throws {TypeError} If `room` is not a non-empty string (rejection).
   * @example
   * ```ts ignore
   * const { clients, users } = await client.presenceStats("lobby");
   * console.log(`${users} people in ${clients} tabs`);
   * ```
   */
  presenceStats(room: string, options: RequestOptions = {}): Promise<PresenceStats> {
    return this.#readPresence(ServerEvent.PRESENCE_STATS, room, options, STATS_READER) as Promise<
      PresenceStats
    >;
  }

  /**
   * Keep a live member list of a presence room: users with their tabs merged,
   * loaded with `presence` whenever the client's join of the room is acked (the
   * first `subscribe()` and every re-join after a reconnect) and kept current by
   * `presence.join` / `presence.leave` events, including those that race the load.
   * See {@linkcode MemberList} for the details.
   *
   * It does not join the room: call `subscribe(room)` (before or after). Create the
   * list before subscribing to see the events that arrive with the join. Close the
   * list when you no longer need it; leaving the room empties it.
   *
   * @param room The room name.
   * @returns The live list.
   * @throws {TypeError} If `room` is not a non-empty string.
   * @throws {DisconnectedError} If the client is closed.
   * @example
   * ```ts ignore
   * const lobby = client.members("lobby");
   * lobby.onChange((change) => {
   *   if (change.kind === "join") console.log(`${change.member.userId} joined`);
   *   render(lobby.members.map((m) => `${m.userId} (${m.clientIds.length} tabs)`));
   * });
   * await client.subscribe("lobby");
   * ```
   */
  members(room: string): MemberList {
    this.#assertNotClosed("keep a member list");
    if (typeof room !== "string" || room === "") {
      throw new TypeError("Cannot keep a member list: room must be a non-empty string");
    }
    this.#listHost ??= {
      presence: (r) => this.presence(r),
      retryDelay: (attempt) => backoffDelay(attempt, this.#o.backoff, this.#o.random),
      timers: this.#o.timers,
      report: (error, source) => this.#events.report(error, source),
      detach: (list) => {
        const set = this.#lists.get(list.room);
        set?.delete(list);
        if (set?.size === 0) this.#lists.delete(list.room);
      },
    };
    const list = new LiveMemberList(room, this.#listHost);
    let set = this.#lists.get(room);
    if (set === undefined) this.#lists.set(room, set = new Set());
    set.add(list);
    if (this.#joinedNow.has(room)) list.joined();
    return list;
  }

  // ---------------------------------------------------------------- receiving

  /**
   * Call `listener` for every app event of one type, in arrival order, or for
   * the built-in `presence.join` / `presence.leave` events of presence rooms.
   *
   * @param type A server event type of the contract, `"presence.join"` or `"presence.leave"`.
   * @param listener Gets the event's data and the whole envelope (with `room` and
   *   `offset` for a message of a history room). A throw is reported as an `error`
   *   lifecycle event (source `"listener"`).
   * @returns A function that removes the listener.
   * @example
   * ```ts ignore
   * const off = client.on("chat.message", (m) => console.log(m.from, m.text));
   * off();
   * client.on("presence.join", ({ room, userId }) => console.log(`${userId} joined ${room}`));
   * ```
   */
  on<K extends ServerMessageType<C> | PresenceEventType>(
    type: K,
    listener: (data: ListenerData<C, K>, event: ListenerEvent<C, K>) => void,
  ): () => void {
    return this.#inbound.on(type, listener as AppListener);
  }

  /**
   * Iterate over every app event (`{type, data, timestamp}`, plus `room` and
   * `offset` for a message of a history room) and presence event, in arrival order. A slow reader keeps the newest `bufferSize` events (older ones are
   * dropped). The iteration ends when the client closes for good (after what
   * is buffered), when `signal` aborts, or on `break` (`return()` detaches it).
   *
   * @param options Abort signal and buffer size.
   * @returns An async iterator of events.
   * @throws {RangeError} If `bufferSize` is not a positive integer.
   * @example
   * ```ts ignore
   * for await (const event of client.events({ signal: AbortSignal.timeout(60_000) })) {
   *   if (event.type === "chat.message") console.log(event.data.text);
   * }
   * ```
   */
  events(
    options: EventsOptions = {},
  ): AsyncIterableIterator<(ServerMessage<C> | PresenceEnvelope) & StreamFields> {
    const size = options.bufferSize ?? 1024;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError("Cannot iterate events: bufferSize must be an integer ≥ 1");
    }
    const signal = options.signal;
    const onAbort = () => stream.end();
    const stream: EventStream<Envelope> = new EventStream<Envelope>(size, () => {
      this.#inbound.deleteStream(stream);
      signal?.removeEventListener("abort", onAbort);
    });
    if (this.#link.state === "closed" || signal?.aborted) {
      stream.end();
    } else {
      this.#inbound.addStream(stream);
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    return stream as unknown as AsyncIterableIterator<
      (ServerMessage<C> | PresenceEnvelope) & StreamFields
    >;
  }

  /**
   * Listen for a lifecycle event: `open`, `close`, `reconnecting`, `recovery` or
   * `error` (see {@linkcode HubClientLifecycle}).
   *
   * @param name The event name.
   * @param listener Gets the event's payload.
   * @returns A function that removes the listener.
   * @example
   * ```ts ignore
   * client.onLifecycle("close", ({ code, reason, willReconnect }) => {
   *   if (!willReconnect) console.log("gone for good:", code, reason);
   * });
   * client.onLifecycle("reconnecting", ({ attempt, delayMs }) => console.log(attempt, delayMs));
   * client.onLifecycle("recovery", ({ room, recovered }) => {
   *   if (!recovered) console.log(`missed messages in ${room}: reload it`);
   * });
   * ```
   */
  onLifecycle<K extends keyof HubClientLifecycle>(
    name: K,
    listener: (event: HubClientLifecycle[K]) => void,
  ): () => void {
    return this.#events.on(name, listener);
  }

  // ---------------------------------------------------------------- closing

  /**
   * Close for good: no reconnect. Pending requests and subscribes reject with
   * {@linkcode DisconnectedError}, the queue is dropped, `events()` iterators
   * end, and `close` fires with `willReconnect: false`. Idempotent; safe in any state.
   *
   * @param code The close code sent to the server: 1000 or 3000–4999.
   * @param reason The close reason (at most 123 UTF-8 bytes).
   * @returns A promise that resolves once the sockets have closed (or after `closeTimeoutMs`).
   * @throws {RangeError} If the code or reason is not allowed.
   * @example
   * ```ts ignore
   * await client.close();
   * ```
   */
  close(code: number = 1000, reason: string = ""): Promise<void> {
    assertCloseArgs(code, reason, "client");
    if (!this.#link.closing) {
      this.#link.shutdown(code, reason);
      this.#finish({ code, reason });
    }
    return this.#link.socketsClosed();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- internals

  #assertNotClosed(what: string): void {
    if (this.#link.state === "closed") {
      const info = this.#closeInfo ?? { code: 1000, reason: "" };
      throw new DisconnectedError(info.code, info.reason, `Cannot ${what}: the client is closed`);
    }
  }

  #call(
    kind: "request" | "read" | "unsubscribe",
    id: number,
    frame: string,
    what: string,
    options: RequestOptions,
    reader?: Reader,
  ): Promise<unknown> {
    const ms = options.timeout ?? this.#o.requestTimeoutMs;
    const ws = this.#link.writable;
    return this.#calls.call(kind, id, frame, what, ms, options.signal, ws, reader);
  }

  #readPresence(
    type: PresenceRead,
    room: string,
    options: RequestOptions,
    reader: Reader,
  ): Promise<unknown> {
    let frame: string;
    const id = this.#calls.nextId();
    try {
      this.#assertNotClosed("read presence");
      if (typeof room !== "string" || room === "") {
        throw new TypeError("Cannot read presence: room must be a non-empty string");
      }
      frame = presenceFrame(type, room, id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#call("read", id, frame, `${type} "${room}"`, options, reader);
  }

  #listsOf(room: string): Iterable<LiveMemberList> {
    const set = this.#lists.get(room);
    return set === undefined ? [] : [...set];
  }

  /** The client is out of `room` (left, refused, or given up): its member lists empty. */
  #left(room: string): void {
    this.#joinedNow.delete(room);
    for (const list of this.#listsOf(room)) list.left();
  }

  #eachList(fn: (list: LiveMemberList) => void): void {
    for (const set of [...this.#lists.values()]) for (const list of [...set]) fn(list);
  }

  /**
   * Send a `subscribe` on the current socket. A re-join (a room acked on an earlier
   * connection) asks to recover from the room's position, when it has one.
   */
  #sendSubscribe(room: string, rejoin: boolean): void {
    const id = this.#calls.nextId();
    const from = rejoin ? this.#positions.get(room) : undefined;
    this.#calls.expectRoom(id, room, rejoin, from);
    this.#link.ws?.send(
      from === undefined ? roomFrame("subscribe", room, id) : recoverFrame(room, from, id),
    );
  }

  /**
   * A re-join that may work later (the server said `UNAVAILABLE`, or refused the
   * `recover` field): sent again after a backoff delay, on this connection.
   */
  #rejoinLater(room: string): void {
    const ws = this.#link.ws;
    const { backoff, random } = this.#o;
    this.#rooms.retry(room, (attempt) => backoffDelay(attempt, backoff, random), () => {
      if (ws !== undefined && ws === this.#link.writable) this.#sendSubscribe(room, true);
    });
  }

  /** `connection.established`: run the authenticate hook (if any), then get ready. */
  #established(ws: ClientWebSocket, data: Record<string, unknown>): void {
    if (!this.#link.established()) return;
    this.#clientId = typeof data.clientId === "string" ? data.clientId : undefined;
    this.#userId = typeof data.userId === "string" ? data.userId : undefined;
    const auth = this.#o.authenticate;
    if (auth === undefined) {
      this.#ready(ws, undefined);
      return;
    }
    let fields: AuthenticateFields | Promise<AuthenticateFields>;
    try {
      fields = auth();
    } catch (error) {
      this.#authFailed(ws, error);
      return;
    }
    if (fields instanceof Promise) {
      fields.then(
        (f) => ws === this.#link.ws && this.#ready(ws, f),
        (error) => this.#authFailed(ws, error),
      );
    } else this.#ready(ws, fields);
  }

  #authFailed(ws: ClientWebSocket, error: unknown): void {
    if (ws !== this.#link.ws) return;
    this.#events.report(error, "authenticate");
    this.#link.abandon(ws, "authenticate hook failed");
  }

  /** Connected: authenticate, re-join rooms, flush the queue, then announce `open`. */
  #ready(ws: ClientWebSocket, auth: AuthenticateFields | undefined): void {
    if (auth !== undefined) {
      const id = this.#calls.nextId();
      const frame = authenticateFrame(auth, id);
      this.#calls.expectAuth(id, frame);
      ws.send(frame);
    }
    for (const room of this.#rooms.names()) {
      this.#sendSubscribe(room, this.#rooms.joinedBefore(room));
    }
    this.#calls.flush(ws);
    const reconnected = this.#everOpened;
    this.#everOpened = true;
    this.#link.opened();
    this.#keepalive.start(
      () => {
        try {
          ws.send(PING_FRAME);
        } catch { /* closing: the close event follows */ }
      },
      () => this.#link.abandon(ws, "keepalive timeout"),
    );
    this.#events.emit("open", {
      clientId: this.#clientId ?? "",
      userId: this.#userId,
      reconnected,
    });
  }

  /** The current socket is gone: what depended on it settles (a retry may follow). */
  #disconnected(info: CloseInfo): void {
    this.#keepalive.stop();
    this.#clientId = undefined;
    this.#userId = undefined;
    this.#calls.connectionLost(info);
    this.#rooms.connectionLost();
    this.#positions.connectionLost();
    this.#joinedNow.clear();
    this.#eachList((list) => list.connectionLost());
  }

  /** Closed for good. */
  #finish(info: CloseInfo): void {
    if (!this.#link.finish()) return;
    this.#closeInfo = info;
    this.#clientId = undefined;
    this.#userId = undefined;
    this.#keepalive.stop();
    const error = () =>
      new DisconnectedError(info.code, info.reason, "Cannot complete: the client is closed");
    this.#calls.rejectAll(error);
    this.#rooms.rejectAll(error);
    this.#joinedNow.clear();
    this.#eachList((list) => list.connectionLost());
    this.#inbound.endStreams();
    this.#events.emit("close", { ...info, willReconnect: false });
    this.#closed.resolve(info);
  }
}
