// The receive path, part 2: what a parsed message does. Built-ins (ping, subscribe,
// unsubscribe, authenticate) are answered here; anything else goes to its `hub.on()` handler or
// `onMessage`, after the schema. Results become `ack`, refusals `error`: never silence.
// Part 1 (inbound.ts) has already checked size, rate and shape.
import type { StandardSchemaResult, StandardSchemaV1 } from "./standard_schema.ts";
import type { Connection } from "./connection.ts";
import type { Counters } from "./counters.ts";
import { MessageError } from "./errors.ts";
import type { Hooks } from "./hooks.ts";
import type {
  Clock,
  HubErrorSource,
  HubOptions,
  InboundMessage,
  MessageHandler,
  RequestId,
} from "./hub_options.ts";
import type { HubLimits } from "./limits.ts";
import type { Registry } from "./registry.ts";
import { type History, parseRecover } from "./history.ts";
import type { HistoryRead } from "./history_store.ts";
import type { Presence } from "./presence.ts";
import type { PresenceCounts, PresenceEntry } from "./presence_store.ts";
import { kDeliver, kRoomCount, kRoomHas } from "./_internal.ts";
import { encodeEnvelope, ServerEvent, utf8Length } from "../protocol/envelope.ts";
import { ErrorCode } from "../protocol/error_codes.ts";

const ALLOWED_KEYS_PING = new Set(["type", "id"]);
const ALLOWED_KEYS_ROOM = new Set(["type", "room", "id"]);
const ALLOWED_KEYS_SUBSCRIBE = new Set(["type", "room", "id", "recover"]);
const ALLOWED_KEYS_HISTORY = new Set(["type", "room", "id", "limit"]);
/** Most messages one `history` request may ask for. */
const MAX_HISTORY_LIMIT = 1000;

/** A registered handler and its own schema. */
export interface Handler<Msg> {
  fn: MessageHandler<Msg>;
  schema: StandardSchemaV1<unknown, unknown> | undefined;
}

/** What the dispatcher is made with. */
export interface DispatcherOptions<Msg extends InboundMessage> {
  options: HubOptions<Msg>;
  limits: HubLimits;
  clock: Clock;
  registry: Registry;
  hooks: Hooks;
  counters: Counters;
  /** A user's connections, open and still opening (for `maxConnectionsPerUser`). */
  userHeld(userId: string): number;
  /** The connection authenticated: stop its auth deadline. */
  authenticated(conn: Connection): void;
  /** The history part, when the hub keeps any. */
  history: History | undefined;
  /** The presence part, when the hub tracks any. */
  presence?: Presence | undefined;
}

/** Answers one hub's messages. */
export class Dispatcher<Msg extends InboundMessage> {
  /** Handlers by message type (`hub.on()`). */
  readonly handlers: Map<string, Handler<Msg>> = new Map();
  readonly #o: DispatcherOptions<Msg>;
  /** Whether the "no canJoin" warning was logged. */
  #warnedNoGuard = false;

  constructor(options: DispatcherOptions<Msg>) {
    this.#o = options;
  }

  /** Handle one parsed message. Returns a promise only while something async is in flight. */
  dispatch(conn: Connection, message: InboundMessage, type: string): Promise<void> | undefined {
    const id = message.id;
    if (
      id !== undefined &&
      !(typeof id === "string" && id.length > 0 && id.length <= 128) &&
      !(typeof id === "number" && Number.isFinite(id))
    ) {
      this.error(conn, ErrorCode.INVALID_INPUT, "id must be a string (1–128 chars) or a number");
      return;
    }
    const rid = id as RequestId | undefined;
    switch (type) {
      case "ping":
        if (!this.#onlyKeys(conn, message, ALLOWED_KEYS_PING, rid)) return;
        this.reply(conn, ServerEvent.PONG, { timestamp: this.#o.clock.now() }, rid);
        return;
      case "subscribe":
        return this.#subscribe(conn, message, rid);
      case "unsubscribe": {
        const room = this.#roomOf(conn, message, rid);
        if (room === undefined) return;
        this.#o.registry.leave(conn, room, "unsubscribe");
        this.reply(conn, ServerEvent.UNSUBSCRIBED, { room }, rid);
        return;
      }
      case "authenticate":
        return this.#authenticate(conn, message, rid);
      case "history":
        // A built-in only on a hub that keeps history; elsewhere an app message as before.
        if (this.#o.history !== undefined) return this.#historyRequest(conn, message, rid);
        break;
      case "presence":
      case "presence.stats":
        // Built-ins only on a hub that tracks presence.
        if (this.#o.presence !== undefined) return this.#presenceRequest(conn, message, type, rid);
    }
    return this.#app(conn, message, type, rid);
  }

  /** Handle a binary frame (`onBinary`, else `INVALID_INPUT`). */
  binary(conn: Connection, data: Uint8Array): Promise<void> | undefined {
    const onBinary = this.#o.options.onBinary;
    if (onBinary === undefined) {
      this.error(conn, ErrorCode.INVALID_INPUT, "Binary frames are not accepted");
      return;
    }
    return this.#run(conn, "binary", () => onBinary(conn, data));
  }

  /** Send `type` with `data` (and the request id) to one connection, counted. */
  reply(conn: Connection, type: string, data: Record<string, unknown>, id?: RequestId): void {
    const now = this.#o.clock.now();
    let frame: string;
    try {
      frame = encodeEnvelope(type, id === undefined ? data : { ...data, id }, now);
    } catch (error) {
      // A handler's result that cannot be serialised (a cycle, a BigInt).
      this.#o.hooks.report(error, "message");
      frame = encodeEnvelope(ServerEvent.ERROR, {
        code: ErrorCode.INTERNAL_ERROR,
        message: "Internal error",
        ...(id === undefined ? {} : { id }),
      }, now);
    }
    if (conn[kDeliver](frame)) this.#o.counters.countOut(type, 1, utf8Length(frame));
  }

  /** Send an `error {code, message, ...details}` (and the request id). */
  error(
    conn: Connection,
    code: string,
    message: string,
    details?: Record<string, unknown>,
    id?: RequestId,
  ): void {
    this.reply(conn, ServerEvent.ERROR, { ...details, code, message }, id);
  }

  /** An app message: its handler (or onMessage), after its schema. */
  #app(
    conn: Connection,
    message: InboundMessage,
    type: string,
    id: RequestId | undefined,
  ): Promise<void> | undefined {
    const handler = this.handlers.get(type);
    const onMessage = this.#o.options.onMessage;
    let fn: ((m: Msg) => unknown) | undefined;
    if (handler !== undefined) fn = (m) => handler.fn(conn, m);
    else if (onMessage !== undefined) fn = (m) => onMessage(conn, m);
    if (fn === undefined) {
      this.error(conn, ErrorCode.UNKNOWN_TYPE, `No handler for message type "${clip(type)}"`, {
        type: clip(type),
      }, id);
      return;
    }
    const call = fn;
    const schema = handler?.schema ?? this.#o.options.schema;
    if (schema === undefined) return this.#run(conn, "message", () => call(message as Msg), id);
    const hooks = this.#o.hooks;
    let next: Promise<void> | undefined;
    const validated = hooks.call(
      () => schema["~standard"].validate(message),
      (r: StandardSchemaResult<unknown>) => {
        if (r.issues !== undefined) {
          this.error(conn, ErrorCode.INVALID_INPUT, "Message failed validation", {
            type: clip(type),
            issues: r.issues.slice(0, 20).map((i) => ({
              message: String(i.message),
              path: i.path?.map((p) => String(typeof p === "object" ? p.key : p)),
            })),
          }, id);
          return;
        }
        next = this.#run(conn, "message", () => call(r.value as Msg), id);
      },
      (error) => {
        hooks.report(error, "message");
        this.error(conn, ErrorCode.INVALID_INPUT, "Message failed validation", undefined, id);
      },
    );
    // A sync schema: the handler ran (or is running) already. An async one: wait for both.
    if (validated === undefined) return next;
    return validated.then(() => next);
  }

  /** Run app code for a message: its result is the `ack`, a MessageError an `error`. */
  #run(
    conn: Connection,
    source: HubErrorSource,
    fn: () => unknown,
    id?: RequestId,
  ): Promise<void> | undefined {
    return this.#o.hooks.call(fn, (value) => {
      if (id !== undefined && conn.state === "open") {
        this.reply(conn, ServerEvent.ACK, { result: value === undefined ? null : value }, id);
      }
    }, (error) => {
      if (error instanceof MessageError) {
        this.error(conn, error.code, error.message, error.details, id);
      } else {
        this.#o.hooks.report(error, source);
        this.error(conn, ErrorCode.INTERNAL_ERROR, "Internal error", undefined, id);
      }
    });
  }

  #subscribe(conn: Connection, message: InboundMessage, id?: RequestId): Promise<void> | undefined {
    const room = this.#roomOf(conn, message, id, ALLOWED_KEYS_SUBSCRIBE);
    if (room === undefined) return;
    const recover = parseRecover(message.recover);
    if (recover === null) {
      this.error(
        conn,
        ErrorCode.INVALID_INPUT,
        "recover must be {epoch: string, offset: integer >= 0}",
        { room },
        id,
      );
      return;
    }
    const { options, limits, hooks } = this.#o;
    let pending: Promise<void> | undefined;
    const decide = (ok: boolean) => {
      if (conn.state !== "open") return;
      if (ok !== true) {
        this.error(
          conn,
          ErrorCode.SUBSCRIBE_REFUSED,
          "Cannot subscribe: room refused",
          { room },
          id,
        );
        return;
      }
      if (!conn[kRoomHas](room) && conn[kRoomCount]() >= limits.maxRoomsPerConnection) {
        this.error(conn, ErrorCode.LIMIT_EXCEEDED, "Cannot subscribe: too many rooms", {
          room,
          limit: limits.maxRoomsPerConnection,
        }, id);
        return;
      }
      this.#o.registry.join(conn, room);
      const history = this.#o.history;
      const policy = history?.policyOf(room);
      if (history === undefined || policy === undefined) {
        this.reply(
          conn,
          ServerEvent.SUBSCRIBED,
          recover === undefined ? { room } : { room, recovered: false },
          id,
        );
        return;
      }
      pending = history.subscribed(
        conn,
        room,
        policy,
        recover,
        (data) => this.reply(conn, ServerEvent.SUBSCRIBED, { ...data }, id),
        (error) => {
          // Joined, but its position is unknown: say so; the client resubscribes later.
          hooks.report(error, "history");
          this.#o.registry.leave(conn, room, "server");
          this.error(conn, ErrorCode.UNAVAILABLE, "Cannot subscribe now: history unavailable", {
            room,
          }, id);
        },
      );
    };
    const canJoin = options.canJoin;
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
    const guarded = hooks.call(() => canJoin(conn, room), decide, (error) => {
      hooks.report(error, "canJoin");
      decide(false);
    });
    // The next frame of this connection waits for the guard and for the replay's read.
    if (guarded === undefined) return pending;
    return guarded.then(() => pending);
  }

  /** `{"type":"history","room":R,"limit":k}` → `history {room, epoch, offset, messages}`. */
  #historyRequest(
    conn: Connection,
    message: InboundMessage,
    id?: RequestId,
  ): Promise<void> | undefined {
    const room = this.#roomOf(conn, message, id, ALLOWED_KEYS_HISTORY);
    if (room === undefined) return;
    const limit = message.limit;
    if (
      limit !== undefined &&
      !(Number.isInteger(limit) && (limit as number) > 0 && (limit as number) <= MAX_HISTORY_LIMIT)
    ) {
      this.error(conn, ErrorCode.INVALID_INPUT, `limit must be an integer 1–${MAX_HISTORY_LIMIT}`, {
        room,
      }, id);
      return;
    }
    if (!conn[kRoomHas](room)) {
      this.error(conn, ErrorCode.NOT_SUBSCRIBED, "Cannot read history: not in this room", {
        room,
      }, id);
      return;
    }
    const history = this.#o.history!;
    const policy = history.policyOf(room);
    if (policy === undefined) {
      this.reply(conn, ServerEvent.HISTORY, { room, messages: [] }, id);
      return;
    }
    const hooks = this.#o.hooks;
    return hooks.call(
      () => history.read(room, policy, { limit: limit as number | undefined }),
      (read: HistoryRead) => {
        if (conn.state !== "open") return;
        this.reply(conn, ServerEvent.HISTORY, {
          room,
          epoch: read.epoch,
          offset: read.offset,
          messages: read.entries.filter((e) => !e.except?.includes(conn.id)).map((e) =>
            JSON.parse(e.frame)
          ),
        }, id);
      },
      (error) => {
        hooks.report(error, "history");
        this.error(conn, ErrorCode.UNAVAILABLE, "Cannot read history now", { room }, id);
      },
    );
  }

  /**
   * `{"type":"presence","room":R}` → `presence {room, clients}`;
   * `{"type":"presence.stats","room":R}` → `presence.stats {room, clients, users}`.
   */
  #presenceRequest(
    conn: Connection,
    message: InboundMessage,
    type: string,
    id?: RequestId,
  ): Promise<void> | undefined {
    const room = this.#roomOf(conn, message, id);
    if (room === undefined) return;
    const stats = type === "presence.stats";
    if (!conn[kRoomHas](room)) {
      this.error(conn, ErrorCode.NOT_SUBSCRIBED, "Cannot read presence: not in this room", {
        room,
      }, id);
      return;
    }
    const presence = this.#o.presence!;
    const policy = presence.policyOf(room);
    if (policy === undefined || (!stats && policy.countsOnly)) {
      this.error(
        conn,
        ErrorCode.NOT_TRACKED,
        policy === undefined
          ? "Cannot read presence: this room does not track presence"
          : "Cannot list members: this room keeps presence counts only (ask presence.stats)",
        policy === undefined ? { room } : { room, countsOnly: true },
        id,
      );
      return;
    }
    const hooks = this.#o.hooks;
    const failed = (error: unknown) => {
      hooks.report(error, "presence");
      this.error(conn, ErrorCode.UNAVAILABLE, "Cannot read presence now", { room }, id);
    };
    if (stats) {
      return hooks.call(() => presence.counts(room), (c: PresenceCounts) => {
        if (conn.state !== "open") return;
        this.reply(conn, ServerEvent.PRESENCE_STATS, {
          room,
          clients: c.clients,
          users: c.users,
        }, id);
      }, failed);
    }
    return hooks.call(() => presence.members(room), (clients: readonly PresenceEntry[]) => {
      if (conn.state !== "open") return;
      this.reply(conn, ServerEvent.PRESENCE, { room, clients }, id);
    }, failed);
  }

  #authenticate(
    conn: Connection,
    message: InboundMessage,
    id?: RequestId,
  ): Promise<void> | undefined {
    const { options, limits, hooks, registry } = this.#o;
    const hook = options.authenticate;
    const done = (userId: string | null | false | undefined) => {
      if (conn.state !== "open") return;
      if (typeof userId === "string" && userId !== "") {
        if (userId !== conn.userId) {
          if (this.#o.userHeld(userId) >= limits.maxConnectionsPerUser) {
            // The same cap as at upgrade: authenticating must not open a way around it.
            this.error(
              conn,
              ErrorCode.LIMIT_EXCEEDED,
              "Cannot authenticate: too many connections for this user",
              { limit: limits.maxConnectionsPerUser },
              id,
            );
            return;
          }
          registry.setUser(conn, userId);
          this.#o.authenticated(conn);
        }
      } else if (hook !== undefined || conn.userId === undefined) {
        this.error(
          conn,
          ErrorCode.UNAUTHENTICATED,
          "Cannot authenticate: not identified",
          undefined,
          id,
        );
        return;
      }
      this.reply(conn, ServerEvent.AUTHENTICATED, { userId: conn.userId, status: "success" }, id);
    };
    if (hook === undefined) {
      done(conn.userId);
      return;
    }
    return hooks.call(() => hook(conn, message), done, (error) => {
      hooks.report(error, "authenticate");
      done(null);
    });
  }

  #roomOf(
    conn: Connection,
    message: InboundMessage,
    id?: RequestId,
    allowed: ReadonlySet<string> = ALLOWED_KEYS_ROOM,
  ): string | undefined {
    if (!this.#onlyKeys(conn, message, allowed, id)) return;
    const room = message.room;
    const max = this.#o.limits.maxRoomNameLength;
    let problem: string | undefined;
    if (typeof room !== "string" || room.length === 0) problem = "room must be a non-empty string";
    else if (room.length > max) problem = `room must be at most ${max} characters`;
    // deno-lint-ignore no-control-regex
    else if (/[\u0000-\u001f\u007f]/.test(room)) {
      problem = "room must not contain control characters";
    }
    if (problem !== undefined) {
      this.error(conn, ErrorCode.INVALID_INPUT, problem, undefined, id);
      return;
    }
    return room as string;
  }

  #onlyKeys(
    conn: Connection,
    message: InboundMessage,
    allowed: ReadonlySet<string>,
    id?: RequestId,
  ): boolean {
    for (const key of Object.keys(message)) {
      if (!allowed.has(key)) {
        this.error(
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
}

/** Shorten client-chosen text for an error message. */
export function clip(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + "…" : s;
}
