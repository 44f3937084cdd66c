/**
 * The hub: a thin facade that wires its parts and keeps the public API.
 *
 * - registry.ts: connections by client, user and room;
 * - fanout.ts → connection.ts: the send path (which connections get a frame; how one
 *   connection writes it), with flush_scheduler.ts for once-per-turn writes;
 * - inbound.ts → dispatch.ts: the receive path (guard and parse; what a message does);
 * - upgrade.ts: admission; keepalive.ts; counters.ts; backplane_bridge.ts; hooks.ts.
 *
 * @module
 */

import type { Target } from "../protocol/target.ts";
import type { HubDescription } from "./describe.ts";
import { describeHub } from "./_describe_hub.ts";
import { type BackplaneHealth, type BackplaneStats, MemoryBackplane } from "./backplane.ts";
import { BackplaneBridge } from "./backplane_bridge.ts";
import { CloseCode } from "./close_codes.ts";
import type { Connection, ConnectionOwner } from "./connection.ts";
import { Counters } from "./counters.ts";
import { Dispatcher } from "./dispatch.ts";
import { fanout } from "./fanout.ts";
import { History } from "./history.ts";
import { applyControl, checkControl, type ControlCommand } from "./control.ts";
import { type HistoryPolicy, MemoryHistoryStore } from "./history_store.ts";
import { FlushScheduler } from "./flush_scheduler.ts";
import { DEFAULT_PRESENCE_TTL_MS, Presence } from "./presence.ts";
import {
  MemoryPresenceStore,
  type PresenceCounts,
  type PresenceEntry,
  type UserPresence,
} from "./presence_store.ts";
import { Hooks } from "./hooks.ts";
import type {
  Clock,
  HubCloseOptions,
  HubHistory,
  HubHistoryOptions,
  HubOptions,
  InboundMessage,
  MessageHandler,
  MessageOf,
  OnOptions,
  PublishOptions,
  PublishResult,
  UpgradeDecision,
  UpgradeOptions,
} from "./hub_options.ts";
import { systemClock } from "./hub_options.ts";
import type { FrameWrapper, HubEvent, HubEventsOptions, HubStats } from "./hub_stats.ts";
import { Inbound } from "./inbound.ts";
import { Keepalive } from "./keepalive.ts";
import { type HubLimits, resolveLimits } from "./limits.ts";
import { Registry } from "./registry.ts";
import type { Frame } from "./send_queue.ts";
import { Admission } from "./upgrade.ts";
import { Lifecycle } from "./lifecycle.ts";
import { resolveRateLimit } from "./_rate_limit.ts";
import { kCloseWith, kDrainClose } from "./_internal.ts";
import { BUILTIN_TYPES, encodeEnvelope, utf8Length } from "../protocol/envelope.ts";

export * from "./hub_options.ts";
export type { HubLimits, Target };

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
  readonly #hooks: Hooks;
  readonly #counters: Counters;
  readonly #registry: Registry;
  readonly #bridge: BackplaneBridge;
  readonly #flush = new FlushScheduler();
  readonly #dispatcher: Dispatcher<Msg>;
  readonly #inbound: Inbound;
  readonly #admission: Admission;
  readonly #keepalive: Keepalive;
  readonly #lifecycle: Lifecycle;
  readonly #batchFraming: boolean;
  /** The history part, when the app keeps any (`history` option). */
  readonly #history: History | undefined;
  /** The presence part, when the app tracks any (`presence` option). */
  readonly #presence: Presence | undefined;
  #closed = false;

  /**
   * Create a hub. It accepts connections through an adapter's handler.
   *
   * @param options See {@linkcode HubOptions}.
   * @throws {RangeError} If a limit is not a positive number.
   * @throws {TypeError} If an origin allowlist entry is not an origin.
   */
  constructor(options: HubOptions<Msg> = {}) {
    this.#options = options;
    const clock = this.#clock = options.clock ?? systemClock;
    const limits = this.limits = resolveLimits(options);
    if (options.authTimeoutMs !== undefined && !(options.authTimeoutMs > 0)) {
      throw new RangeError("Cannot create hub: authTimeoutMs must be a positive number");
    }
    const hooks = this.#hooks = new Hooks(options.onError);
    const counters = this.#counters = new Counters(hooks);
    const registry = this.#registry = new Registry(hooks, {
      onJoin: options.onJoin,
      onLeave: options.onLeave,
      membership: (conn, room, joined) =>
        joined ? this.#presence?.joined(conn, room) : this.#presence?.left(conn, room),
      userChanged: (userId) => this.#presence?.userChanged(userId),
      identified: (conn) => this.#presence?.identified(conn),
      interest: (kind, name, on) => {
        this.#bridge.interest(kind, name, on);
        if (kind === "room" && !on) this.#history?.left(name);
      },
    });
    this.#bridge = new BackplaneBridge({
      backplane: options.backplane,
      prefix: options.channelPrefix ?? "hubbub:",
      secret: options.backplaneSecret,
      format: options.backplaneFormat,
      registry,
      hooks,
    });
    this.#batchFraming = options.batchFraming ?? true;
    if (options.history !== undefined) {
      if (typeof options.history !== "function") {
        throw new TypeError("Cannot create hub: history must be a function of the room name");
      }
      const shared = options.historyStore;
      if (
        options.backplane !== undefined &&
        (shared === undefined ||
          // In-process replicas (one MemoryBus) may share a memory store; isolates may not.
          (shared instanceof MemoryHistoryStore && !(options.backplane instanceof MemoryBackplane)))
      ) {
        throw new TypeError(
          "Cannot create hub: history with a backplane needs a historyStore that every replica " +
            "shares, such as RedisHistoryStore from @hubbub/hubbub/redis (a MemoryHistoryStore " +
            "lives in one process: the isolates of `deno serve --parallel` behind a " +
            "BroadcastChannel backplane do not share it, so replicas would disagree on offsets)",
        );
      }
      this.#history = new History({
        option: options.history,
        store: options.historyStore ?? new MemoryHistoryStore({ now: () => clock.now() }),
        registry,
        hooks,
        counters,
        bridge: this.#bridge,
        clock,
        limits,
        charge: (n) => this.#inbound.charge(n),
      });
      const history = this.#history;
      this.#bridge.onHistory = (room, entry) => history.arrived(room, entry);
      this.#bridge.onRestored = () => history.restored();
    }
    this.#presence = this.#makePresence(options, clock);
    const dispatcher = this.#dispatcher = new Dispatcher<Msg>({
      options,
      limits,
      clock,
      registry,
      hooks,
      counters,
      userHeld: (userId) => this.#admission.userHeld(userId),
      authenticated: (conn) => this.#lifecycle.stopAuthTimer(conn),
      history: this.#history,
      presence: this.#presence,
    });
    this.#inbound = new Inbound({
      limits,
      clock,
      rateLimit: resolveRateLimit(options.rateLimit, limits.maxMessageBytes),
      counters,
      hooks,
      dispatcher,
    });
    this.#admission = new Admission({
      identify: options.identify,
      origins: options.origins,
      allowNoOrigin: options.allowNoOrigin,
      batchFraming: this.#batchFraming,
      limits,
      clock,
      registry,
      counters,
      hooks,
      isClosed: () => this.#closed,
      open: (transport, init) => this.#lifecycle.open(transport, init),
    });
    this.#keepalive = new Keepalive(clock, limits, registry.clients);
    const owner: ConnectionOwner = {
      join: (conn, room) => registry.join(conn, room),
      leave: (conn, room) => registry.leave(conn, room),
      markDirty: (conn) => this.#flush.markDirty(conn),
      closed: (conn, code, reason, cause) => this.#lifecycle.removed(conn, code, reason, cause),
      now: () => clock.now(),
      limits,
    };
    this.#lifecycle = new Lifecycle({
      options,
      clock,
      owner,
      registry,
      keepalive: this.#keepalive,
      counters,
      dispatcher,
      admission: this.#admission,
      inbound: this.#inbound,
      hooks,
      receive: (conn, data) => this.#inbound.receive(conn, data),
    });
  }

  // ---------------------------------------------------------------- counts

  /** Open connections. */
  get connectionCount(): number {
    return this.#registry.clients.size;
  }

  /** Distinct users with at least one open connection. */
  get userCount(): number {
    return this.#registry.users.size;
  }

  /** Rooms with at least one member. */
  get roomCount(): number {
    return this.#registry.rooms.size;
  }

  /**
   * A connection by client id.
   * @param clientId The client id.
   * @returns The connection, or `undefined`.
   */
  connection(clientId: string): Connection | undefined {
    return this.#registry.clients.get(clientId);
  }

  /**
   * Every open connection.
   * @returns A snapshot array.
   */
  connections(): Connection[] {
    return [...this.#registry.clients.values()];
  }

  /**
   * A user's open connections (all their tabs).
   * @param userId The user id.
   * @returns A snapshot array, empty when the user has none.
   */
  userConnections(userId: string): Connection[] {
    return [...this.#registry.users.get(userId) ?? []];
  }

  /**
   * Members of a room.
   * @param room The room name.
   * @returns A snapshot array, empty when the room has none.
   */
  roomMembers(room: string): Connection[] {
    return [...this.#registry.rooms.get(room) ?? []];
  }

  /**
   * How many connections are in a room.
   * @param room The room name.
   * @returns The count (0 for an unknown room).
   */
  roomSize(room: string): number {
    return this.#registry.rooms.get(room)?.size ?? 0;
  }

  /**
   * Every non-empty room with its member count.
   * @returns A snapshot map of room name to count.
   */
  rooms(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [room, set] of this.#registry.rooms) out.set(room, set.size);
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
   *   `authenticate`, `history` on a hub that keeps history, `presence` and `presence.stats` on
   *   a hub that tracks presence), an empty type, or a type
   *   that already has a handler.
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
    if (
      BUILTIN_TYPES.has(type) || (type === "history" && this.#history !== undefined) ||
      ((type === "presence" || type === "presence.stats") && this.#presence !== undefined)
    ) {
      throw new TypeError(`Cannot register handler: "${type}" is a built-in message type`);
    }
    const handlers = this.#dispatcher.handlers;
    if (handlers.has(type)) {
      throw new TypeError(`Cannot register handler: "${type}" already has one`);
    }
    handlers.set(type, {
      fn: handler as MessageHandler<Msg>,
      schema: options.schema as OnOptions<unknown>["schema"],
    });
    return this;
  }

  /**
   * Remove the handler for a type.
   * @param type The message type.
   * @returns Whether there was one.
   */
  off(type: string): boolean {
    return this.#dispatcher.handlers.delete(type);
  }

  // ---------------------------------------------------------------- rooms

  /**
   * Put a connection in a room from server code (no guard). Idempotent.
   * @param connection The connection or its client id.
   * @param room The room name.
   * @returns `false` if there is no such open connection.
   */
  join(connection: Connection | string, room: string): boolean {
    const conn = typeof connection === "string"
      ? this.#registry.clients.get(connection)
      : connection;
    if (conn === undefined || conn.state !== "open") return false;
    this.#registry.join(conn, room);
    return true;
  }

  /**
   * Take a connection out of a room. Idempotent.
   * @param connection The connection or its client id.
   * @param room The room name.
   * @returns `false` if there is no such connection.
   */
  leave(connection: Connection | string, room: string): boolean {
    const conn = typeof connection === "string"
      ? this.#registry.clients.get(connection)
      : connection;
    if (conn === undefined) return false;
    this.#registry.leave(conn, room);
    return true;
  }

  /**
   * Put every connection `target` names in `room` (no guard), on every replica: this one at
   * once, the others through the backplane when the command reaches them. E.g. every tab of a
   * user, wherever it is connected.
   * @param target Rooms, users and/or clients (with `except`); it must name someone.
   * @param room The room name.
   * @returns How many connections on this replica joined (or already were members).
   * @throws {TypeError} If the target names nobody or the room is not a non-empty string.
   * @example
   * ```ts
   * import { Hub } from "@hubbub/hubbub";
   * const hub = new Hub();
   * hub.joinAll({ users: "ada" }, "team:7"); // every tab of ada, on every replica
   * await hub.close();
   * ```
   */
  joinAll(target: Target, room: string): number {
    return this.#control("join", target, { op: "join", room });
  }

  /**
   * Take every connection `target` names out of `room`, on every replica (see
   * {@linkcode Hub.joinAll}).
   * @param target Rooms, users and/or clients (with `except`); it must name someone.
   * @param room The room name.
   * @returns How many connections on this replica it acted on.
   * @throws {TypeError} If the target names nobody or the room is not a non-empty string.
   */
  leaveAll(target: Target, room: string): number {
    return this.#control("leave", target, { op: "leave", room });
  }

  /**
   * Close every connection `target` names, on every replica: log a user out everywhere, or
   * ban them (together with refusing them in `identify`). Each gets `connection.closed` and
   * the close code (default 1000, on which the bundled client does not reconnect).
   * @param target Rooms, users and/or clients (with `except`); it must name someone.
   * @param options Close code (1000, 1001-1003, 1007-1014 or 3000-4999) and reason.
   * @returns How many connections on this replica were closed.
   * @throws {TypeError} If the target names nobody.
   * @throws {RangeError} If the code or reason is not one a server may send.
   * @example
   * ```ts
   * import { CloseCode, Hub } from "@hubbub/hubbub";
   * const hub = new Hub();
   * hub.disconnect({ users: "mallory" }, { code: CloseCode.UNAUTHENTICATED, reason: "banned" });
   * await hub.close();
   * ```
   */
  disconnect(target: Target, options: { code?: number; reason?: string } = {}): number {
    const { code = CloseCode.NORMAL, reason = "disconnected by the server" } = options;
    return this.#control("disconnect", target, { op: "disconnect", code, reason });
  }

  #control(action: string, target: Target, command: ControlCommand): number {
    checkControl(action, target, command);
    this.#bridge.publishControl(target, command);
    return applyControl(this.#registry, target, command);
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
    if (this.#history !== undefined && target?.rooms !== undefined) {
      const n = this.#history.emit(type, frame, target);
      if (n !== undefined) return n;
    }
    this.#bridge.publish(frame, target);
    return this.#emitted(type, frame, utf8Length(frame), target);
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
    this.#bridge.publish(frame, target);
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
    const frame = encodeEnvelope(type, data, this.#clock.now());
    if (!this.#registry.clients.has(clientId)) {
      this.#bridge.publish(frame, { clients: clientId }); // maybe on another replica
      return false;
    }
    // Counted and observed like any emit (an `emit` event with 0 or 1 recipients).
    return this.#emitted(type, frame, utf8Length(frame), { clients: clientId }) > 0;
  }

  /**
   * Publish a message to a history room and learn its offset: it is stored, then
   * delivered to the room's members (on every replica), each frame carrying `room`
   * and `offset`. It is never half-delivered: if the store fails, the promise
   * rejects and nobody gets it.
   *
   * @param room A room that keeps a history (see the `history` option).
   * @param type The event type.
   * @param data The payload (JSON-serialisable).
   * @param options Who to skip (`except`).
   * @returns The message's epoch and offset, and how many local connections got it. Rejects
   *   with a `TypeError` if the room keeps no history or `data` cannot be serialised, and with
   *   the store's error if it failed (then nobody got the message).
   * @example
   * ```ts
   * import { Hub } from "@hubbub/hubbub";
   * const hub = new Hub({ history: (room) => room.startsWith("chat:") ? {} : undefined });
   * const { epoch, offset } = await hub.publish("chat:lobby", "chat", { text: "hi" });
   * console.log(epoch, offset); // a random epoch, 1
   * await hub.close();
   * ```
   */
  publish(
    room: string,
    type: string,
    data: unknown,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    try {
      const [history, policy] = this.#historyPart("publish", room);
      const frame = encodeEnvelope(type, data, this.#clock.now());
      return history.publish(room, policy, frame, type, options.except);
    } catch (error) {
      return Promise.reject(error); // a promise API: refusals reject, never throw
    }
  }

  /**
   * Read a history room's stream: its position and its last messages.
   *
   * @param room A room that keeps a history.
   * @param options `limit`: at most this many (the latest); `since`: only after this offset.
   * @returns The epoch, the latest offset and the messages (envelopes as sent, oldest first).
   *   Rejects with a `TypeError` if the room keeps no history.
   */
  history(room: string, options: HubHistoryOptions = {}): Promise<HubHistory> {
    try {
      const [history, policy] = this.#historyPart("read history", room);
      return history.history(room, policy, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The history part, or a TypeError for a hub (or room) that keeps none. */
  #historyPart(action: string, room: string): [History, Required<HistoryPolicy>] {
    const policy = this.#history?.policyOf(room);
    if (policy === undefined) {
      throw new TypeError(
        `Cannot ${action}: room "${room}" keeps no history (see the history option)`,
      );
    }
    return [this.#history!, policy];
  }

  /**
   * Every replica's members of a presence room.
   *
   * @param room A room that tracks presence, not counts-only (see the `presence` option).
   * @returns Their entries `{clientId, userId?, info?}`, in no particular order. Rejects with a
   *   `TypeError` if the room tracks no member list, and with the store's error if it failed.
   * @example
   * ```ts
   * import { Hub } from "@hubbub/hubbub";
   * const hub = new Hub({ presence: (room) => room.startsWith("chat:") });
   * console.log(await hub.presence("chat:lobby")); // []
   * console.log(await hub.presenceStats("chat:lobby")); // { clients: 0, users: 0 }
   * console.log(await hub.userPresence("ada")); // { online: false, connections: 0 }
   * await hub.close();
   * ```
   */
  presence(room: string): Promise<PresenceEntry[]> {
    try {
      const presence = this.#presencePart("list presence", room, true);
      return Promise.resolve(presence.members(room)).then((m) => [...m]);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A presence room's counts across replicas, in O(1) (also for counts-only rooms).
   *
   * @param room A room that tracks presence.
   * @returns `{clients, users}`: connections in the room and distinct user ids among them.
   *   Rejects with a `TypeError` if the room tracks no presence, and with the store's error.
   */
  presenceStats(room: string): Promise<PresenceCounts> {
    try {
      const presence = this.#presencePart("count presence", room, false);
      return Promise.resolve(presence.counts(room));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Whether a user is online on any replica, and their open connections (all tabs, all
   * replicas). Kept for every user on a hub that tracks presence (any `presence` option),
   * whatever rooms they are in.
   *
   * @param userId The user id.
   * @returns `{online, connections}`. Rejects with a `TypeError` on a hub without a `presence`
   *   option, and with the store's error if it failed.
   */
  userPresence(userId: string): Promise<UserPresence> {
    const presence = this.#presence;
    if (presence === undefined) {
      return Promise.reject(
        new TypeError("Cannot read user presence: this hub tracks no presence (see presence)"),
      );
    }
    try {
      return Promise.resolve(presence.user(userId));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The presence part, or a TypeError for a hub (or room) that tracks none. */
  #presencePart(action: string, room: string, list: boolean): Presence {
    const policy = this.#presence?.policyOf(room);
    if (policy === undefined || (list && policy.countsOnly)) {
      throw new TypeError(
        `Cannot ${action}: room "${room}" ` +
          (policy === undefined
            ? "tracks no presence (see the presence option)"
            : "keeps presence counts only (use presenceStats)"),
      );
    }
    return this.#presence!;
  }

  /** Build the presence part (`presence` option), or `undefined`. */
  #makePresence(options: HubOptions<Msg>, clock: Clock): Presence | undefined {
    if (options.presence === undefined) return undefined;
    if (typeof options.presence !== "function") {
      throw new TypeError("Cannot create hub: presence must be a function of the room name");
    }
    if (options.backplane !== undefined && options.presenceStore === undefined) {
      throw new TypeError(
        "Cannot create hub: presence with a backplane needs a presenceStore that every replica " +
          "shares (a MemoryPresenceStore is this process's only)",
      );
    }
    const ttlMs = options.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS;
    if (!(ttlMs >= 1000) || !Number.isFinite(ttlMs)) {
      throw new RangeError("Cannot create hub: presenceTtlMs must be a number >= 1000");
    }
    return new Presence({
      option: options.presence,
      store: options.presenceStore ?? new MemoryPresenceStore({ now: () => clock.now() }),
      registry: this.#registry,
      hooks: this.#hooks,
      clock,
      ttlMs,
      info: options.presenceInfo,
      // The plain path (never a history room's stream): local fan-out and the backplane.
      emit: (type, data, target) => {
        const frame = encodeEnvelope(type, data, clock.now());
        this.#bridge.publish(frame, target);
        this.#emitted(type, frame, utf8Length(frame), target);
      },
    });
  }

  /** Fan a frame out locally; count it, charge its sender, tell observers. */
  #emitted(type: string, frame: Frame, size: number, target: Target | undefined): number {
    const counters = this.#counters;
    if (counters.observers.size === 0) {
      const n = fanout(this.#registry, frame, target);
      counters.countEmit(type, n, size);
      this.#inbound.charge(n);
      return n;
    }
    const t0 = performance.now();
    const n = fanout(this.#registry, frame, target);
    const fanoutMs = performance.now() - t0;
    counters.countEmit(type, n, size);
    this.#inbound.charge(n);
    counters.notify({
      kind: "emit",
      type,
      recipients: n,
      bytes: size,
      fanoutMs,
      at: this.#clock.now(),
    });
    return n;
  }

  // ---------------------------------------------------------------- connections

  /**
   * Decide on an upgrade request: 426 if it is not a WebSocket upgrade, 403 for a
   * refused Origin, 503 when closed or at `maxConnections`, 401 when `identify`
   * refuses. Adapters call this; apps use an adapter.
   *
   * @param request The HTTP request.
   * @param options Route params to keep on the connection.
   * @returns A refusal with its response, or an acceptance to `open()` once upgraded.
   */
  upgrade(request: Request, options: UpgradeOptions = {}): Promise<UpgradeDecision> {
    return this.#admission.upgrade(request, options);
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
    return describeHub({
      handlers: this.#dispatcher.handlers,
      schema: this.#options.schema,
      catchAll: this.#options.onMessage !== undefined,
      endpoint: this.#options.endpoint,
      batchFraming: this.#batchFraming,
      limits: this.limits,
    });
  }

  /**
   * A cheap snapshot of counters and gauges (see {@linkcode HubStats} for each field).
   * Walks the connections once for queue sizes and the rooms once for the top N.
   *
   * @param options `topRooms`: how many of the largest rooms to list (default 10).
   * @returns The snapshot.
   */
  stats(options: { topRooms?: number } = {}): HubStats {
    const h = this.#history?.repairs;
    return this.#counters.snapshot(this.#registry, options.topRooms ?? 10, this.#bridge.stats(), {
      repairs: h?.reads ?? 0,
      lost: h?.lost ?? 0,
    });
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
    return this.#counters.observe(fn);
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
    return this.#counters.events(options);
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
    return this.#inbound.aroundFrame(fn);
  }

  // ---------------------------------------------------------------- backplane

  /**
   * Resolves once the backplane is started and subscribed to broadcasts
   * (immediately without one). Emits before then still reach local connections.
   */
  get ready(): Promise<void> {
    return this.#bridge.ready;
  }

  /** The backplane's health: `{ ok: true }` without a backplane. */
  get backplaneHealth(): BackplaneHealth {
    return this.#bridge.health;
  }

  /**
   * Backplane counters (all zero without a backplane).
   * @returns A snapshot.
   */
  backplaneStats(): BackplaneStats {
    return this.#bridge.stats();
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
    this.#admission.close();
    const conns = [...this.#registry.clients.values()];
    if (drainMs > 0) {
      await Promise.all(conns.map((conn) => conn[kDrainClose](code, reason, drainMs)));
    } else {
      for (const conn of conns) conn[kCloseWith](code, reason, "shutdown");
    }
    this.#keepalive.stop();
    this.#history?.close();
    this.#counters.endStreams();
    this.#flush.cancel();
    // Presence's last writes and leaves (they go through the backplane), then the backplane's
    // shutdown and every pending hook, at most timeoutMs in all.
    const presence = this.#presence;
    const bridgeClosed = presence === undefined
      ? this.#bridge.close()
      : presence.close(timeoutMs).then(() => this.#bridge.close());
    await this.#hooks.settledWithin(bridgeClosed, this.#clock, timeoutMs);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
