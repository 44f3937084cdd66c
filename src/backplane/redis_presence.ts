/**
 * A {@linkcode PresenceStore} in Redis, shared by every replica: who is in which room and
 * which users are connected, with each replica's entries kept alive by its heartbeat and
 * removed, exactly once cluster-wide, by whichever replica sweeps first after it dies.
 *
 * Exported from `@hubbub/hubbub/redis`. Like the backplane, it never imports a Redis client:
 * {@linkcode redisPresenceStore} takes node-redis's `createClient`, and
 * {@linkcode RedisPresenceStore} takes any client with node-redis's `sendCommand`.
 *
 * ## Keys (`P` is the prefix, `hubbub:` by default)
 *
 * Per room, under the room's hash tag (one cluster slot per room, beside its history keys):
 * - `P{room}:pe` hash: client id → the entry as JSON (what `members` returns);
 * - `P{room}:po` hash: client id → the replica that owns it;
 * - `P{room}:pc` hash: client id → its user id (entries with one);
 * - `P{room}:pu` hash: user id → its connections in the room (`HLEN` = distinct users).
 *
 * Per replica `R`, under its own tag:
 * - `Ppresence:r:{R}:o` set: its entries, as references (client id and room);
 * - `Ppresence:r:{R}:u` set: the users it has reported connections for;
 * - `Ppresence:r:{R}:d` and `:v` sets: the entries and users of a dead incarnation of `R`
 *   still to be swept;
 * - `Ppresence:r:{R}:t` string: its tombstone once swept (expires after `tombstoneMs`);
 * - `Ppresence:r:{R}:p` string: present while its record is provisional (created by an add or
 *   a user count when it had none, see below), until its next heartbeat, sweep or goodbye.
 *
 * Per user `U`: `Ppresence:u:{U}` hash: replica → that replica's open connections of `U`.
 *
 * Shared: `Ppresence:replicas` sorted set (replica → expiry, Unix ms of Redis's own clock,
 * `TIME`, so the replicas' clocks do not matter) and `Ppresence:dead` set (replicas being swept).
 *
 * ## Cost per operation (one Lua script or command, one round trip)
 *
 * - `heartbeat`: O(log replicas). A replica's expiry is one score, not one per entry, so a
 *   heartbeat does not grow with the replica's members.
 * - `add` (a join) and `remove` (a leave): O(1): four hash fields and one set member (an add
 *   also reads the replica's record, one `ZSCORE`, and creates a provisional one if missing).
 * - `counts`: O(1) (two `HLEN`), whatever the room's size; `members`: O(members).
 * - `setUserConnections`: O(1); `user`: O(replicas holding the user).
 * - `sweep`: claims expired replicas in O(1) each (their index sets are renamed to the dying
 *   ones), then removes at most `sweepBatch` entries and user counts per script run, and runs
 *   at most `sweepRuns` scripts per call; work left over (a dead replica with many entries) is
 *   taken by the next sweeps, on any replica. So no script blocks Redis for long.
 * - `goodbye`: O(entries and users still left), `sweepBatch` per script run.
 *
 * Measured (Redis 7.0 on a 2-core machine, one client pipelining 500 commands): Redis spends
 * about 22 µs per `add` and per `remove` (the Lua run; an add about 3 µs more since it reads the
 * replica's record: 27.5 against 24 µs, median of 4 runs of 20,000 adds each, same machine and
 * run), 6 µs per `counts` (the same in a room of 100,000 members as in an empty one), 11 µs per heartbeat and about 30 µs per swept entry;
 * one client reaches about 26,000 joins per second. An entry takes about 300 bytes of memory.
 *
 * ## Exactly once
 *
 * Every removal (by `remove`, `sweep` or `goodbye`) is a script that deletes the entry from the
 * room's hashes and returns it only if it was there (and, for a sweep, still owned by the dead
 * replica): two callers racing for one entry are serialized by Redis, and only the first gets
 * it. A replica that heartbeats again after being declared dead (`"expired"`) and adds an entry
 * the sweepers have not reached yet takes it back from the dying set: it stays, `add` says it
 * is not new (so no `presence.join`) and no sweep returns it (so no `presence.leave`).
 *
 * ## Redis restarted without its data
 *
 * The replica's record is gone and there is no tombstone: its next heartbeat answers `"lost"`
 * and the hub adds its members and user counts again. A join (an add) or a user count that
 * reaches Redis before that heartbeat (or after a first heartbeat that failed, the store still
 * connecting) finds no record: it creates a provisional one (`ZADD NX`, expiring at Redis's
 * `TIME` plus the TTL of the replica's last heartbeat call through this store object) and
 * marks it `:p`. So a replica that dies before its next heartbeat is swept like any other, its
 * entries within the TTL; and the heartbeat that finds `:p` answers `"lost"` (or `"expired"`
 * after a sweep) as if there were no record, so the loss is not hidden. Scripts are re-sent
 * with `EVAL` when `EVALSHA` answers `NOSCRIPT`. Commands fail while Redis is down (the hub
 * answers `UNAVAILABLE` and repairs at its next heartbeat).
 *
 * ## Redis Cluster
 *
 * The scripts compute the keys they touch from their arguments, so this store needs one Redis
 * primary (with replicas or Sentinel as you like), not a cluster. The layout is ready for one:
 * everything a room's reads need is on the room's slot. In a cluster, `add` and `remove`
 * would be a room-slot script plus a set update on the replica's slot, and a sweep would claim
 * on the shared slot, then remove each entry with a room-slot script that checks its owner
 * (which keeps every entry's removal exactly once); the owner would then have to carry the
 * replica's incarnation, so that an entry taken back after `"expired"` is not removed by a
 * sweeper that had already popped its old reference.
 *
 * @module
 */

import type {
  PresenceCounts,
  PresenceEntry,
  PresenceExpired,
  PresenceHeartbeat,
  PresenceStore,
  UserPresence,
} from "../core/presence_store.ts";
import type {
  RedisClientOptionsLike,
  RedisConnectionLike,
  RedisConnectionTiming,
} from "./_redis_types.ts";
import { evalCached, ownedClient, release, sendWithin } from "./_redis_connect.ts";
import type { RedisCommandClientLike } from "./redis_history.ts";

/** A client {@linkcode redisPresenceStore} creates: commands, plus connection events and state. */
export type RedisPresenceClientLike = RedisCommandClientLike & RedisConnectionLike;

/** Options for {@linkcode RedisPresenceStore}. */
export interface RedisPresenceStoreOptions {
  /**
   * Prefix of every key (see the module doc). Must not contain `{`, so that the braces around
   * a room, replica or user are its key's cluster hash tag.
   * @default {"hubbub:"}
   */
  prefix?: string;
  /**
   * How long a command may take (ms) before it rejects (the hub then answers `UNAVAILABLE`).
   * Passed to node-redis as the command's `timeout` too, so one still queued is dropped rather
   * than run later. A command already sent when it expires may still have run.
   * @default {2000}
   */
  commandTimeoutMs?: number;
  /**
   * How long a swept replica's tombstone is kept (its late heartbeat then answers `"expired"`).
   * @default {600000 (10 minutes)}
   */
  tombstoneMs?: number;
  /**
   * Most entries and user counts one sweep or goodbye script removes: the longest Redis is
   * busy with one script (about 30 µs per entry, so about 8 ms at the default).
   * @default {250}
   */
  sweepBatch?: number;
  /**
   * Most scripts one `sweep()` runs (so at most `sweepBatch * sweepRuns` removals per call;
   * a dead replica with more entries is finished by the next sweeps, on any replica).
   * @default {40}
   */
  sweepRuns?: number;
  /**
   * Close the client in `close()`. Leave false for a client the app owns.
   * @default {false}
   */
  ownClient?: boolean;
}

/** Options for {@linkcode redisPresenceStore}. */
export interface RedisPresenceConnectOptions extends RedisConnectionTiming {
  /** The Redis URL, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host:6380/0`. */
  url: string;
  /**
   * The `createClient` of the `redis` package (node-redis v5 or later), called once. Wrap it
   * to add options: `createClient: (o) => createClient({ ...o, name: "presence" })`.
   */
  createClient: (options: RedisClientOptionsLike) => RedisPresenceClientLike;
  /**
   * Prefix of every key (see {@linkcode RedisPresenceStoreOptions.prefix}).
   * @default {"hubbub:"}
   */
  prefix?: string;
  /**
   * How long a command may take (ms) before it rejects.
   * @default {2000}
   */
  commandTimeoutMs?: number;
  /**
   * How long a swept replica's tombstone is kept.
   * @default {600000 (10 minutes)}
   */
  tombstoneMs?: number;
  /**
   * Most entries one sweep or goodbye script removes.
   * @default {250}
   */
  sweepBatch?: number;
  /**
   * Most scripts one `sweep()` runs.
   * @default {40}
   */
  sweepRuns?: number;
}

/**
 * Create a {@linkcode RedisPresenceStore} on a new node-redis connection, opened now (with
 * `disableOfflineQueue: true`, so commands reject at once while it is down) and closed by the
 * store's `close()`. It reconnects by itself like the backplane's connections.
 *
 * @param options URL, `createClient`, key prefix, timing.
 * @returns A store that owns its client (`await store.ready` waits for its first connection).
 * @throws {TypeError} If `url` is not a string or `createClient` is not a function.
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { redisBackplane, redisPresenceStore } from "@hubbub/hubbub/redis";
 *
 * const url = "redis://127.0.0.1:6379";
 * const presenceStore = redisPresenceStore({ url, createClient });
 * await presenceStore.ready;
 * const hub = new Hub({
 *   backplane: redisBackplane({ url, createClient }),
 *   presence: (room) => room.startsWith("chat:"),
 *   presenceStore,
 * });
 * // On shutdown: await hub.close(); await presenceStore.close();
 * ```
 */
export function redisPresenceStore(options: RedisPresenceConnectOptions): RedisPresenceStore {
  const client = ownedClient("presence store", options);
  return new RedisPresenceStore(client, {
    prefix: options.prefix,
    commandTimeoutMs: options.commandTimeoutMs,
    tombstoneMs: options.tombstoneMs,
    sweepBatch: options.sweepBatch,
    sweepRuns: options.sweepRuns,
    ownClient: true,
  });
}

// Shared by every script. ARGV[1] is always the key prefix. An entry's reference in its
// replica's sets is `<byte length of the client id>:<client id><room>`.
const COMMON_LUA = `
local P = ARGV[1]
local function rk(room, s) return P .. '{' .. room .. '}:' .. s end
local function pk(r, s) return P .. 'presence:r:{' .. r .. '}:' .. s end
local function uk(u) return P .. 'presence:u:{' .. u .. '}' end
local function ref(cid, room) return string.len(cid) .. ':' .. cid .. room end
local function unref(x)
  local i = string.find(x, ':', 1, true)
  local n = tonumber(string.sub(x, 1, i - 1))
  return string.sub(x, i + 1, i + n), string.sub(x, i + n + 1)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Take cid out of room's hashes; returns its JSON and owner, or false.
local function drop(room, cid)
  local e = redis.call('HGET', rk(room, 'pe'), cid)
  if not e then return false end
  local owner = redis.call('HGET', rk(room, 'po'), cid)
  redis.call('HDEL', rk(room, 'pe'), cid)
  redis.call('HDEL', rk(room, 'po'), cid)
  local u = redis.call('HGET', rk(room, 'pc'), cid)
  if u then
    redis.call('HDEL', rk(room, 'pc'), cid)
    if redis.call('HINCRBY', rk(room, 'pu'), u, -1) <= 0 then
      redis.call('HDEL', rk(room, 'pu'), u)
    end
  end
  return e, owner
end
-- Give replica r a provisional record, expiring in ttl ms, when it has no record (one ZSCORE
-- when it has one: the common case costs no TIME and no write).
local function provisional(r, ttl)
  local replicas = P .. 'presence:replicas'
  if redis.call('ZSCORE', replicas, r) then return end
  redis.call('ZADD', replicas, 'NX', now_ms() + ttl, r)
  redis.call('SET', pk(r, 'p'), '1')
end
local function unown(owner, x)
  if owner then
    redis.call('SREM', pk(owner, 'o'), x)
    redis.call('SREM', pk(owner, 'd'), x)
  end
end
`;

// ARGV: prefix, replica, ttlMs. Returns 'ok', 'expired' or 'lost' (a provisional record
// counts as none).
const HEARTBEAT_LUA = COMMON_LUA + `
local r = ARGV[2]
local replicas = P .. 'presence:replicas'
local known = redis.call('ZSCORE', replicas, r)
redis.call('ZADD', replicas, now_ms() + tonumber(ARGV[3]), r)
local was_provisional = redis.call('DEL', pk(r, 'p')) == 1
if known and not was_provisional then return 'ok' end
if redis.call('DEL', pk(r, 't')) == 1 then return 'expired' end
return 'lost'
`;

// ARGV: prefix, replica, ttlMs (of a provisional record), room, client id, entry JSON, '1' with
// a user id (then ARGV[8]) or '0'. Returns 1 when the entry is new in the room, else 0.
const ADD_LUA = COMMON_LUA + `
local r, room, cid = ARGV[2], ARGV[4], ARGV[5]
local x = ref(cid, room)
provisional(r, tonumber(ARGV[3]))
local old, owner = drop(room, cid)
if old then unown(owner, x) end
redis.call('HSET', rk(room, 'pe'), cid, ARGV[6])
redis.call('HSET', rk(room, 'po'), cid, r)
if ARGV[7] == '1' then
  redis.call('HSET', rk(room, 'pc'), cid, ARGV[8])
  redis.call('HINCRBY', rk(room, 'pu'), ARGV[8], 1)
end
redis.call('SADD', pk(r, 'o'), x)
if old then return 0 end
return 1
`;

// ARGV: prefix, room, client id. Returns the removed entry's JSON, or nil.
const REMOVE_LUA = COMMON_LUA + `
local room, cid = ARGV[2], ARGV[3]
local e, owner = drop(room, cid)
if not e then return false end
unown(owner, ref(cid, room))
return e
`;

// ARGV: prefix, room. Returns { clients, users }.
const COUNTS_LUA = COMMON_LUA + `
return { redis.call('HLEN', rk(ARGV[2], 'pe')), redis.call('HLEN', rk(ARGV[2], 'pu')) }
`;

// ARGV: prefix, replica, user id, count, ttlMs (of a provisional record).
const SET_USER_LUA = COMMON_LUA + `
local r, u, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('SREM', pk(r, 'v'), u)
if n > 0 then
  provisional(r, tonumber(ARGV[5]))
  redis.call('HSET', uk(u), r, n)
  redis.call('SADD', pk(r, 'u'), u)
else
  redis.call('HDEL', uk(u), r)
  redis.call('SREM', pk(r, 'u'), u)
end
return 1
`;

// Remove up to budget of replica r's entries listed in set s (those it still owns: appended to
// out as room, replica, JSON) then users listed in set w. Returns the budget left.
const TAKE_LUA = `
local function take(r, s, w, budget, out)
  if budget > 0 then
    for _, x in ipairs(redis.call('SPOP', s, budget)) do
      budget = budget - 1
      local cid, room = unref(x)
      if redis.call('HGET', rk(room, 'po'), cid) == r then
        local e = drop(room, cid)
        out[#out + 1] = room
        out[#out + 1] = r
        out[#out + 1] = e
      end
    end
  end
  if budget > 0 then
    for _, u in ipairs(redis.call('SPOP', w, budget)) do
      budget = budget - 1
      redis.call('HDEL', uk(u), r)
    end
  end
  return budget
end
`;

// ARGV: prefix, batch, tombstoneMs. Claims expired replicas (tombstone, their sets to the
// dying ones), then removes up to batch dying entries and users. Returns { more (0/1), out }.
const SWEEP_LUA = COMMON_LUA + TAKE_LUA + `
-- Move set src into dst (renamed when dst is empty, else merged).
local function move(src, dst)
  if redis.call('EXISTS', src) == 0 then return end
  if redis.call('EXISTS', dst) == 0 then
    redis.call('RENAME', src, dst)
  else
    redis.call('SUNIONSTORE', dst, dst, src)
    redis.call('DEL', src)
  end
end
local batch, tomb = tonumber(ARGV[2]), tonumber(ARGV[3])
local replicas, dead = P .. 'presence:replicas', P .. 'presence:dead'
local claims = redis.call('ZRANGEBYSCORE', replicas, '-inf', now_ms(), 'LIMIT', 0, 100)
for _, r in ipairs(claims) do
  redis.call('ZREM', replicas, r)
  redis.call('DEL', pk(r, 'p'))
  redis.call('SET', pk(r, 't'), '1', 'PX', tomb)
  move(pk(r, 'o'), pk(r, 'd'))
  move(pk(r, 'u'), pk(r, 'v'))
  redis.call('SADD', dead, r)
end
local out = {}
local budget = batch
for _, r in ipairs(redis.call('SMEMBERS', dead)) do
  if budget <= 0 then break end
  budget = take(r, pk(r, 'd'), pk(r, 'v'), budget, out)
  if redis.call('EXISTS', pk(r, 'd')) == 0 and redis.call('EXISTS', pk(r, 'v')) == 0 then
    redis.call('SREM', dead, r)
  end
end
local more = 0
if #claims == 100 or redis.call('SCARD', dead) > 0 then more = 1 end
return { more, out }
`;

// ARGV: prefix, replica, batch. Drops the replica's record; removes up to batch of its entries
// and users. Returns { more (0/1), out }.
const GOODBYE_LUA = COMMON_LUA + TAKE_LUA + `
local r = ARGV[2]
redis.call('ZREM', P .. 'presence:replicas', r)
redis.call('DEL', pk(r, 'p'))
local out = {}
take(r, pk(r, 'o'), pk(r, 'u'), tonumber(ARGV[3]), out)
local more = 0
if redis.call('EXISTS', pk(r, 'o')) == 1 or redis.call('EXISTS', pk(r, 'u')) == 1 then more = 1 end
return { more, out }
`;

// The TTL of a provisional record for a replica that never heartbeated through this store
// object (the hub always does first): the hub's default presenceTtlMs.
const DEFAULT_PROVISIONAL_TTL_MS = "15000";

/**
 * Presence in Redis, shared by every replica: give the same store (one per process, on the
 * same Redis) to every hub with a Redis backplane. Keys, costs and the exactly-once argument
 * are in the module doc.
 *
 * - **Liveness**: each replica's expiry is one score in a sorted set, set by its heartbeat
 *   from Redis's clock (`TIME`); its entries live as long as it does. A sweep claims replicas
 *   past their expiry, leaves a tombstone (`"expired"` for a late heartbeat) and hands their
 *   entries to the one sweep that removed each.
 * - **Exactly once**: `remove`, `sweep` and `goodbye` return an entry only to the script run
 *   that deleted it.
 * - **Counts** in O(1): `counts()` is two `HLEN`, so a counts-only room of 100,000 members
 *   costs the same as a small one.
 * - **Data lost** (Redis restarted without persistence): the next heartbeat answers `"lost"`
 *   and the hub registers its members again (an add that comes first, or after a first
 *   heartbeat that failed, makes a provisional record: its entries still expire with it); a
 *   restarted Redis has no script cache, so EVALSHA falls back to EVAL on `NOSCRIPT`.
 * - **Outages**: a command rejects (the hub answers `UNAVAILABLE`) when Redis refuses it, when
 *   the client is offline (with `disableOfflineQueue`), or after `commandTimeoutMs`.
 * - **close()**: closes the client if the store owns it (`ownClient`). Idempotent.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { RedisPresenceStore } from "@hubbub/hubbub/redis";
 *
 * const client = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
 * client.on("error", (e) => console.error("redis", e));
 * await client.connect();
 * const presenceStore = new RedisPresenceStore(client, { prefix: "app:" });
 * console.log(await presenceStore.counts("lobby")); // { clients: 0, users: 0 }
 * ```
 */
export class RedisPresenceStore implements PresenceStore {
  readonly #client: RedisCommandClientLike;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #tombstoneMs: number;
  readonly #batch: number;
  readonly #runs: number;
  readonly #own: boolean;
  /** Replica → the TTL (ms, as sent) of its last heartbeat call: a provisional record's. */
  readonly #ttls = new Map<string, string>();
  #ready: Promise<void> = Promise.resolve();
  #closed = false;

  /**
   * Use a client the app already has (create it with `disableOfflineQueue: true`, so that
   * commands fail at once while Redis is down instead of waiting for the timeout). A client
   * not open yet (node-redis `isOpen === false`) is connected now (see `ready`).
   *
   * @param client Sends the commands; may be shared with the app (not a subscribed one).
   * @param options Key prefix, command timeout, tombstones, sweep batches, ownership.
   * @throws {TypeError} If `client` has no `sendCommand`, or `prefix` contains `{`.
   * @throws {RangeError} If a timing or batch option is not a positive number.
   */
  constructor(client: RedisCommandClientLike, options: RedisPresenceStoreOptions = {}) {
    if (typeof client?.sendCommand !== "function") {
      throw new TypeError("Cannot create presence store: client has no sendCommand()");
    }
    const prefix = options.prefix ?? "hubbub:";
    if (typeof prefix !== "string" || prefix.includes("{")) {
      throw new TypeError('Cannot create presence store: prefix must be a string without "{"');
    }
    this.#timeoutMs = positive("commandTimeoutMs", options.commandTimeoutMs ?? 2000);
    this.#tombstoneMs = Math.ceil(positive("tombstoneMs", options.tombstoneMs ?? 600_000));
    this.#batch = Math.ceil(positive("sweepBatch", options.sweepBatch ?? 250));
    this.#runs = Math.ceil(positive("sweepRuns", options.sweepRuns ?? 40));
    this.#client = client;
    this.#prefix = prefix;
    this.#own = options.ownClient ?? false;
    const conn = client as Partial<RedisPresenceClientLike>;
    if (conn.isOpen === false && typeof conn.connect === "function") {
      this.#ready = conn.connect().then(noop, noop);
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
   * See {@linkcode PresenceStore.heartbeat}: one script run, O(log replicas).
   * @param replica The replica id.
   * @param ttlMs Its time to live (from now, by Redis's clock).
   * @returns `"ok"`, `"lost"` or `"expired"`.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async heartbeat(replica: string, ttlMs: number): Promise<PresenceHeartbeat> {
    const ms = String(Math.max(1, Math.ceil(ttlMs)));
    this.#ttls.set(replica, ms); // before sending: an add after a failed heartbeat needs it
    const reply = await this.#run("heartbeat", HEARTBEAT_LUA, [replica, ms]);
    return String(reply) as PresenceHeartbeat;
  }

  /**
   * See {@linkcode PresenceStore.add}: one script run, O(1).
   * @param replica The owner.
   * @param room The room.
   * @param entry The entry.
   * @returns Whether it is new in the room.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async add(replica: string, room: string, entry: PresenceEntry): Promise<boolean> {
    const args = [replica, this.#ttlOf(replica), room, entry.clientId, JSON.stringify(entry)];
    if (entry.userId === undefined) args.push("0");
    else args.push("1", entry.userId);
    return Number(await this.#run("add to presence", ADD_LUA, args)) === 1;
  }

  /**
   * See {@linkcode PresenceStore.remove}: one script run, O(1).
   * @param _replica The owner (unused: client ids are unique, as in the memory store).
   * @param room The room.
   * @param clientId The client id.
   * @returns The removed entry, to this call only, or `undefined`.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async remove(
    _replica: string,
    room: string,
    clientId: string,
  ): Promise<PresenceEntry | undefined> {
    const reply = await this.#run("remove from presence", REMOVE_LUA, [room, clientId]);
    return reply === null || reply === undefined
      ? undefined
      : JSON.parse(String(reply)) as PresenceEntry;
  }

  /**
   * See {@linkcode PresenceStore.members}: one `HVALS`, O(members).
   * @param room The room.
   * @returns Its entries, in no particular order.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async members(room: string): Promise<readonly PresenceEntry[]> {
    const reply = await this.#command(
      `read the presence of ${JSON.stringify(room)}`,
      ["HVALS", `${this.#prefix}{${room}}:pe`],
    ) as unknown[];
    return reply.map((json) => JSON.parse(String(json)) as PresenceEntry);
  }

  /**
   * See {@linkcode PresenceStore.counts}: one script run, O(1).
   * @param room The room.
   * @returns Clients and distinct users.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async counts(room: string): Promise<PresenceCounts> {
    const reply = await this.#run("count presence", COUNTS_LUA, [room]) as unknown[];
    return { clients: Number(reply[0]), users: Number(reply[1]) };
  }

  /**
   * See {@linkcode PresenceStore.setUserConnections}: one script run, O(1).
   * @param replica The reporting replica.
   * @param userId The user.
   * @param count Its connections on that replica (0 removes it).
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async setUserConnections(replica: string, userId: string, count: number): Promise<void> {
    const n = String(Math.max(0, Math.floor(count)));
    const args = [replica, userId, n, this.#ttlOf(replica)];
    await this.#run("set user connections", SET_USER_LUA, args);
  }

  /**
   * See {@linkcode PresenceStore.user}: one `HVALS`, O(replicas holding the user).
   * @param userId The user.
   * @returns Online state and connection count.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async user(userId: string): Promise<UserPresence> {
    const reply = await this.#command(
      `read the presence of user ${JSON.stringify(userId)}`,
      ["HVALS", `${this.#prefix}presence:u:{${userId}}`],
    ) as unknown[];
    let connections = 0;
    for (const n of reply) connections += Number(n);
    return { online: connections > 0, connections };
  }

  /**
   * See {@linkcode PresenceStore.sweep}: claims every expired replica and removes at most
   * `sweepBatch` entries or user counts per script run, at most `sweepRuns` runs.
   * @returns The entries this call removed (each returned to one sweep only, cluster-wide).
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time
   *   (entries removed by earlier runs of this call are then returned by no one: a failure
   *   after the script ran but before its reply arrived).
   */
  async sweep(): Promise<readonly PresenceExpired[]> {
    const out: PresenceExpired[] = [];
    const args = [String(this.#batch), String(this.#tombstoneMs)];
    for (let run = 0; run < this.#runs; run++) {
      const reply = await this.#run("sweep presence", SWEEP_LUA, args) as unknown[];
      collect(reply[1] as unknown[], out);
      if (Number(reply[0]) !== 1) break;
    }
    return out;
  }

  /**
   * See {@linkcode PresenceStore.goodbye}: removes the replica's record, entries and user
   * counts, `sweepBatch` per script run until none is left.
   * @param replica The replica leaving.
   * @returns The entries it still had.
   * @throws {Error} As a rejection, when Redis is down, refuses or does not answer in time.
   */
  async goodbye(replica: string): Promise<readonly PresenceExpired[]> {
    const out: PresenceExpired[] = [];
    const args = [replica, String(this.#batch)];
    this.#ttls.delete(replica);
    for (;;) {
      const reply = await this.#run("say goodbye", GOODBYE_LUA, args) as unknown[];
      collect(reply[1] as unknown[], out);
      if (Number(reply[0]) !== 1) return out;
    }
  }

  /**
   * Close the client if the store owns it (else nothing). Idempotent; later calls reject.
   * @returns A promise that resolves once the client is released.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#own) await release(this.#client as RedisPresenceClientLike);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A provisional record's TTL for `replica`: its last heartbeat's, else the hub's default. */
  #ttlOf(replica: string): string {
    return this.#ttls.get(replica) ?? DEFAULT_PROVISIONAL_TTL_MS;
  }

  /** Run a script (keys computed inside it): EVALSHA, then EVAL if Redis lost its cache. */
  async #run(action: string, script: string, args: string[]): Promise<unknown> {
    const what = `Cannot ${action}`;
    if (this.#closed) throw new Error(`${what}: store is closed`);
    try {
      return await evalCached((a) => this.#send(a), script, ["0", this.#prefix, ...args]);
    } catch (error) {
      throw new Error(`${what}: redis: ${messageOf(error)}`, { cause: error });
    }
  }

  /** One plain command. */
  async #command(action: string, args: string[]): Promise<unknown> {
    const what = `Cannot ${action}`;
    if (this.#closed) throw new Error(`${what}: store is closed`);
    try {
      return await this.#send(args);
    } catch (error) {
      throw new Error(`${what}: redis: ${messageOf(error)}`, { cause: error });
    }
  }

  /** One command, rejected after the timeout even if the client never answers. */
  #send(args: string[]): Promise<unknown> {
    return sendWithin(this.#client, args, this.#timeoutMs);
  }
}

/** Flat `room, replica, JSON` triples into `out`. */
function collect(flat: unknown[], out: PresenceExpired[]): void {
  for (let i = 0; i + 2 < flat.length; i += 3) {
    out.push({
      room: String(flat[i]),
      replica: String(flat[i + 1]),
      entry: JSON.parse(String(flat[i + 2])) as PresenceEntry,
    });
  }
}

function positive(name: string, n: number): number {
  if (!(typeof n === "number" && n > 0 && Number.isFinite(n))) {
    throw new RangeError(`Cannot create presence store: ${name} must be > 0`);
  }
  return n;
}

function messageOf(error: unknown): string {
  return (error as Error)?.message || (error as Error)?.name || String(error);
}

function noop(): void {}
