/**
 * A {@linkcode HistoryStore} in Redis, shared by every replica: one Lua script per append
 * assigns the room's next offset, appends to its capped stream and publishes the message with
 * its offset, atomically, so every replica agrees on offsets and sees them in order.
 *
 * Exported from `@hubbub/hubbub/redis`. Like the backplane, it never imports a Redis client:
 * {@linkcode redisHistoryStore} takes node-redis's `createClient`, and
 * {@linkcode RedisHistoryStore} takes any client with node-redis's `sendCommand`.
 *
 * @module
 */

import type {
  HistoryAppend,
  HistoryAppended,
  HistoryEntry,
  HistoryPolicy,
  HistoryPosition,
  HistoryRead,
  HistoryReadOptions,
  HistoryStore,
} from "../core/history_store.ts";
import type {
  RedisClientOptionsLike,
  RedisConnectionLike,
  RedisConnectionTiming,
} from "./_redis_types.ts";
import { evalCached, ownedClient, release, sendWithin } from "./_redis_connect.ts";

// The seam's types, also from "@hubbub/hubbub": the store's signatures name them.
export type {
  HistoryAppend,
  HistoryAppended,
  HistoryEntry,
  HistoryPolicy,
  HistoryPosition,
  HistoryRead,
  HistoryReadOptions,
  HistoryStore,
};

/**
 * A client that sends raw commands, shaped like node-redis v5+ `sendCommand(args, options)`:
 * the reply as decoded (RESP2 or RESP3: strings, integers, arrays), an error reply as a rejection.
 */
export interface RedisCommandClientLike {
  /**
   * Send one command. node-redis honours `options.timeout` (ms): a command not yet written
   * when it expires is dropped from its queue, so it never runs later.
   */
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

/** A client {@linkcode redisHistoryStore} creates: commands, plus connection events and state. */
export type RedisHistoryClientLike = RedisCommandClientLike & RedisConnectionLike;

/** Options for {@linkcode RedisHistoryStore}. */
export interface RedisHistoryStoreOptions {
  /**
   * Prefix of every key. A room's keys are `<prefix>{<room>}:m` (its epoch, latest offset and
   * creation time, a hash) and `<prefix>{<room>}:s` (its entries, a stream), with `%` and `}`
   * in the room percent-encoded (`%25`, `%7D`), so that `{<room>}` is both keys' cluster hash
   * tag. Must not contain `{`.
   * @default {"hubbub:"}
   */
  prefix?: string;
  /**
   * How long a command may take (ms) before it rejects (the hub then answers `UNAVAILABLE`).
   * Passed to node-redis as the command's `timeout` too, so one still queued is dropped rather
   * than run later; an append Redis gets to later than that (less a margin) is refused by its
   * script, so a rejected append is not stored nor published afterwards.
   * @default {2000}
   */
  commandTimeoutMs?: number;
  /**
   * Close the client in `close()`. Leave false for a client the app owns.
   * @default {false}
   */
  ownClient?: boolean;
}

/** Options for {@linkcode redisHistoryStore}. */
export interface RedisHistoryConnectOptions extends RedisConnectionTiming {
  /** The Redis URL, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host:6380/0`. */
  url: string;
  /**
   * The `createClient` of the `redis` package (node-redis v5 or later), called once. Wrap it
   * to add options: `createClient: (o) => createClient({ ...o, name: "history" })`.
   */
  createClient: (options: RedisClientOptionsLike) => RedisHistoryClientLike;
  /**
   * Prefix of every key (see {@linkcode RedisHistoryStoreOptions.prefix}).
   * @default {"hubbub:"}
   */
  prefix?: string;
  /**
   * How long a command may take (ms) before it rejects.
   * @default {2000}
   */
  commandTimeoutMs?: number;
}

/**
 * Create a {@linkcode RedisHistoryStore} on a new node-redis connection, opened now (with
 * `disableOfflineQueue: true`, so commands reject at once while it is down) and closed by the
 * store's `close()`. It reconnects by itself like {@linkcode redisBackplane}'s connections.
 *
 * @param options URL, `createClient`, key prefix, timing.
 * @returns A store that owns its client (`await store.ready` waits for its first connection).
 * @throws {TypeError} If `url` is not a string or `createClient` is not a function.
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { redisBackplane, redisHistoryStore } from "@hubbub/hubbub/redis";
 *
 * const url = "redis://127.0.0.1:6379";
 * const historyStore = redisHistoryStore({ url, createClient });
 * await historyStore.ready;
 * const hub = new Hub({
 *   backplane: redisBackplane({ url, createClient }),
 *   history: (room) => room.startsWith("chat:") ? { maxMessages: 100 } : undefined,
 *   historyStore,
 * });
 * // On shutdown: await hub.close(); await historyStore.close();
 * ```
 */
export function redisHistoryStore(options: RedisHistoryConnectOptions): RedisHistoryStore {
  const client = ownedClient("history store", options);
  return new RedisHistoryStore(client, {
    prefix: options.prefix,
    commandTimeoutMs: options.commandTimeoutMs,
    ownClient: true,
  });
}

// Shared by both scripts: the room's stream trimmed by count and age, or nil when it is gone
// (never created, expired, emptied by age, or half lost), in which case both keys are deleted.
// Entries are stream entries with id `<offset>-0` and fields t (ms), f (frame), x (except, JSON).
const TRIM_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function trimmed(meta, stream, maxlen, maxage, now)
  local m = redis.call('HMGET', meta, 'e', 'l', 'c')
  if not m[1] then
    redis.call('DEL', stream)
    return nil
  end
  local last = tonumber(m[2]) or 0
  local len = redis.call('XLEN', stream)
  if maxlen > 0 and len > maxlen then
    redis.call('XTRIM', stream, 'MAXLEN', maxlen)
    len = maxlen
  end
  local drop = 0
  if maxage > 0 and len > 0 then
    local oldest = now - maxage
    local next = last - len + 1
    while drop < len do
      local id = string.format('%d', next)
      local e = redis.call('XRANGE', stream, id, id)[1]
      if not e or tonumber(e[2][2]) >= oldest then break end
      drop = drop + 1
      next = next + 1
    end
    if drop > 0 then
      len = len - drop
      redis.call('XTRIM', stream, 'MAXLEN', len)
    end
  end
  if len == 0 and (last > 0 or (maxage > 0 and (tonumber(m[3]) or 0) < now - maxage)) then
    redis.call('DEL', meta, stream)
    return nil
  end
  return m[1], last, len
end
`;

// KEYS: meta, stream. ARGV: head, except (JSON, or ""), maxMessages (0: none), maxAgeMs
// (0: none), new epoch, deadline (Redis ms; 0: none), [channel, payload]. Returns
// { offset, at, epoch }, or { 0, now } past the deadline (the store gave up: nothing written).
const APPEND_LUA = TRIM_LUA + `
local meta, stream = KEYS[1], KEYS[2]
local maxlen, maxage = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local deadline = tonumber(ARGV[6])
if deadline > 0 and now > deadline then return { 0, now } end
local epoch, last, len = trimmed(meta, stream, maxlen, maxage, now)
if not epoch then
  epoch, last, len = ARGV[5], 0, 0
  redis.call('HSET', meta, 'e', epoch, 'c', now)
end
local offset = last + 1
local digits = string.format('%d', offset)
redis.call('HSET', meta, 'l', offset)
if ARGV[2] == '' then
  redis.call('XADD', stream, digits .. '-0', 't', now, 'f', ARGV[1] .. digits .. '}')
else
  redis.call('XADD', stream, digits .. '-0', 't', now, 'f', ARGV[1] .. digits .. '}', 'x', ARGV[2])
end
if maxlen > 0 and len + 1 > maxlen then redis.call('XTRIM', stream, 'MAXLEN', maxlen) end
if maxage > 0 then
  redis.call('PEXPIRE', meta, maxage)
  redis.call('PEXPIRE', stream, maxage)
end
if ARGV[7] then
  -- Epochs are UUIDs (hex and dashes): quoting is their JSON encoding.
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. digits .. ',"e":"' .. epoch .. '"}')
end
return { offset, now, epoch }
`;

// KEYS: meta, stream. ARGV: maxMessages, maxAgeMs, new epoch, after ("" for none), limit ("" for
// none). Returns { epoch, last offset, complete (0/1), entries (XRANGE reply), now }.
const READ_LUA = TRIM_LUA + `
local meta, stream = KEYS[1], KEYS[2]
local maxage = tonumber(ARGV[2])
local now = now_ms()
local epoch, last, len = trimmed(meta, stream, tonumber(ARGV[1]), maxage, now)
local after, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', meta, 'e', epoch, 'l', 0, 'c', now)
  if maxage > 0 then redis.call('PEXPIRE', meta, maxage) end
  return { epoch, 0, (after == 0) and 1 or 0, {}, now }
end
local first = last - len + 1
local complete = 1
local lo = first
if after then
  complete = (after >= first - 1 and after <= last) and 1 or 0
  if after >= first then lo = math.floor(after) + 1 end
end
if limit and last - lo + 1 > limit then lo = last - limit + 1 end
local entries = {}
if lo <= last then
  entries = redis.call('XRANGE', stream, string.format('%d', lo), string.format('%d', last))
end
return { epoch, last, complete, entries, now }
`;

/**
 * Rooms' streams in Redis, shared by every replica: give the same store (one per process, on
 * the same Redis) to every hub with a Redis backplane.
 *
 * - **Atomic appends**: one Lua script reads or creates the room's epoch, assigns offset =
 *   latest + 1, appends, trims by count and by age (by Redis's clock, `TIME`) and publishes
 *   `publish.payload` with the offset and epoch, so the room's offsets are published in the
 *   order they were assigned ({@linkcode RedisHistoryStore.publishes} is true).
 * - **Consistent reads**: one script returns the epoch, latest offset, entries and `complete`.
 * - **Epochs**: a room's keys expire `maxAgeMs` after its last append; a stream that is gone
 *   (expired, emptied by age, or lost with a Redis that restarted without persistence) starts
 *   again at offset 1 with a new epoch, so clients learn `recovered: false`, never a silent jump.
 * - **Outages**: a command rejects (the hub answers `UNAVAILABLE`) when Redis refuses it, when
 *   the client is offline (with `disableOfflineQueue`), or after `commandTimeoutMs`. An append
 *   carries a deadline in Redis's clock (estimated from earlier quick replies), and its script
 *   writes nothing past it: an append that timed out is not stored later by a Redis that was
 *   only slow. One whose reply was lost (the connection dropped after Redis ran it) may be
 *   stored although it rejected. A restarted Redis has no script cache: EVALSHA falls back to
 *   EVAL on `NOSCRIPT`.
 * - **close()**: closes the client if the store owns it (`ownClient`). Idempotent.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { RedisHistoryStore } from "@hubbub/hubbub/redis";
 *
 * const client = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
 * client.on("error", (e) => console.error("redis", e));
 * await client.connect();
 * const historyStore = new RedisHistoryStore(client, { prefix: "app:" });
 * ```
 */
export class RedisHistoryStore implements HistoryStore {
  /** Appends publish their `publish` message themselves, atomically (see the class doc). */
  readonly publishes = true;
  readonly #client: RedisCommandClientLike;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  /** Redis's clock minus ours (ms), from the last quick reply; undefined before one. */
  #skew: number | undefined;
  readonly #own: boolean;
  #ready: Promise<void> = Promise.resolve();
  #closed = false;

  /**
   * Use a client the app already has (create it with `disableOfflineQueue: true`, so that
   * commands fail at once while Redis is down instead of waiting for the timeout). A client
   * not open yet (node-redis `isOpen === false`) is connected now (see `ready`).
   *
   * @param client Sends the commands; may be shared with the app (not a subscribed one).
   * @param options Key prefix, command timeout, ownership.
   * @throws {TypeError} If `client` has no `sendCommand`, or `prefix` contains `{`.
   * @throws {RangeError} If `commandTimeoutMs` is not a positive number.
   */
  constructor(client: RedisCommandClientLike, options: RedisHistoryStoreOptions = {}) {
    if (typeof client?.sendCommand !== "function") {
      throw new TypeError("Cannot create history store: client has no sendCommand()");
    }
    const prefix = options.prefix ?? "hubbub:";
    if (typeof prefix !== "string" || prefix.includes("{")) {
      throw new TypeError('Cannot create history store: prefix must be a string without "{"');
    }
    const timeout = options.commandTimeoutMs ?? 2000;
    if (!(timeout > 0 && Number.isFinite(timeout))) {
      throw new RangeError("Cannot create history store: commandTimeoutMs must be > 0");
    }
    this.#client = client;
    this.#prefix = prefix;
    this.#timeoutMs = timeout;
    this.#own = options.ownClient ?? false;
    const conn = client as Partial<RedisHistoryClientLike>;
    if (conn.isOpen === false && typeof conn.connect === "function") {
      const connect = conn.connect.bind(conn);
      // node-redis's connect() does not settle while it keeps reconnecting: the first error
      // settles `ready` too.
      this.#ready = new Promise<void>((resolve) => {
        const settle = () => {
          conn.off?.("error", settle);
          resolve();
        };
        conn.on?.("error", settle);
        connect().then(settle, settle);
      });
    }
  }

  /**
   * Resolves once a client that was not open (`isOpen === false`) has connected or failed its
   * first attempt (it goes on reconnecting); at once for an open client. Never rejects.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * See {@linkcode HistoryStore.append}: one script run.
   * @param room The room.
   * @param message The frame's head, its `except`, what to publish.
   * @param policy Bounds.
   * @returns The entry, with the stream's epoch.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async append(
    room: string,
    message: HistoryAppend,
    policy: Required<HistoryPolicy>,
  ): Promise<HistoryAppended> {
    const except = message.except !== undefined && message.except.length > 0
      ? message.except
      : undefined;
    const args = [
      message.head,
      except === undefined ? "" : JSON.stringify(except),
      bound(policy.maxMessages),
      bound(policy.maxAgeMs),
      crypto.randomUUID(),
      "0",
    ];
    if (message.publish !== undefined) args.push(message.publish.channel, message.publish.payload);
    const sent = Date.now();
    if (this.#skew !== undefined) {
      // Redis refuses the append once the store would have given up on it (with a margin for
      // the clock estimate and the reply's way back): a rejected append is never stored later.
      const margin = Math.min(250, this.#timeoutMs / 4);
      args[5] = String(Math.floor(sent + this.#skew + this.#timeoutMs - margin));
    }
    const reply = await this.#run("append to", APPEND_LUA, room, args) as unknown[];
    const offset = Number(reply[0]);
    const at = Number(reply[1]);
    this.#clock(sent, at);
    if (offset === 0) {
      throw new Error(
        `Cannot append to the history of ${JSON.stringify(room)}: redis ran it too late ` +
          `(after ${this.#timeoutMs} ms, less a margin): not stored`,
      );
    }
    const epoch = String(reply[2]);
    const frame = message.head + offset + "}";
    return except === undefined
      ? { offset, frame, at, epoch }
      : { offset, frame, at, except, epoch };
  }

  /**
   * See {@linkcode HistoryStore.read}: one script run, so the position and entries agree.
   * @param room The room.
   * @param options After an offset, at most a limit.
   * @param policy Bounds.
   * @returns The position and entries.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async read(
    room: string,
    options: HistoryReadOptions,
    policy: Required<HistoryPolicy>,
  ): Promise<HistoryRead> {
    const args = [
      bound(policy.maxMessages),
      bound(policy.maxAgeMs),
      crypto.randomUUID(),
      options.after === undefined ? "" : String(options.after),
      options.limit === undefined ? "" : String(Math.max(0, Math.floor(options.limit))),
    ];
    const sent = Date.now();
    const reply = await this.#run("read", READ_LUA, room, args) as unknown[];
    this.#clock(sent, Number(reply[4]));
    const entries: HistoryEntry[] = [];
    for (const raw of reply[3] as unknown[]) entries.push(entryOf(raw));
    return {
      epoch: String(reply[0]),
      offset: Number(reply[1]),
      entries,
      complete: Number(reply[2]) === 1,
    };
  }

  /**
   * Close the client if the store owns it (else nothing). Idempotent; later calls reject.
   * @returns A promise that resolves once the client is released.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#own) await release(this.#client as RedisHistoryClientLike);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Estimate Redis's clock from a reply that came back quickly (within a tenth of the timeout,
   * at most 100 ms): the script ran within that of the midpoint, which bounds the estimate's error.
   */
  #clock(sent: number, redisNow: number): void {
    const received = Date.now();
    if (received - sent <= Math.min(100, this.#timeoutMs / 10) && Number.isFinite(redisNow)) {
      this.#skew = redisNow - (sent + received) / 2;
    }
  }

  /** Run a script on `room`'s keys: EVALSHA, then EVAL if Redis does not have it cached. */
  async #run(action: string, script: string, room: string, args: string[]): Promise<unknown> {
    const what = `Cannot ${action} the history of ${JSON.stringify(room)}`;
    if (this.#closed) throw new Error(`${what}: store is closed`);
    const tag = `${this.#prefix}{${tagOf(room)}}`;
    const keys = [`${tag}:m`, `${tag}:s`];
    try {
      return await evalCached((a) => this.#send(a), script, ["2", ...keys, ...args]);
    } catch (error) {
      const text = (error as Error)?.message || (error as Error)?.name || String(error);
      throw new Error(`${what}: redis: ${text}`, { cause: error });
    }
  }

  /** One command, rejected after the timeout even if the client never answers. */
  #send(args: string[]): Promise<unknown> {
    return sendWithin(this.#client, args, this.#timeoutMs);
  }
}

/**
 * The room as its keys' hash tag: `%` and `}` percent-encoded, so that the tag (up to the first
 * `}`) is the whole room, and two rooms never share keys.
 */
function tagOf(room: string): string {
  return room.includes("%") || room.includes("}")
    ? room.replaceAll("%", "%25").replaceAll("}", "%7D")
    : room;
}

/** A policy bound as a script argument: whole milliseconds or messages, "0" for none. */
function bound(n: number): string {
  return Number.isFinite(n) ? String(Math.max(1, Math.ceil(n))) : "0";
}

/** One XRANGE entry, `[id, [field, value, ...]]`, as a {@linkcode HistoryEntry}. */
function entryOf(raw: unknown): HistoryEntry {
  const [id, fields] = raw as [string, string[]];
  let frame = "";
  let at = 0;
  let except: string[] | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = String(fields[i + 1]);
    switch (String(fields[i])) {
      case "f":
        frame = value;
        break;
      case "t":
        at = Number(value);
        break;
      case "x":
        except = JSON.parse(value) as string[];
    }
  }
  const offset = Number.parseInt(String(id), 10);
  return except === undefined ? { offset, frame, at } : { offset, frame, at, except };
}
