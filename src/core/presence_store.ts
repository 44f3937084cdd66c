/**
 * The presence store seam: who is in which room, and which users are connected, across every
 * replica. Each replica (one hub process, named by a random replica id) owns the entries it
 * adds; its heartbeat keeps them alive. A replica that dies without a goodbye stops
 * heartbeating, its entries expire after the TTL, and a sweep (run by every surviving
 * replica) removes them and hands them to exactly one sweeper, which sends `presence.leave`
 * for each: once, cluster-wide.
 *
 * The in-memory store here serves one process (and several hubs in one process, for tests); a
 * store shared by replicas (Redis, in `./redis`) implements the same interface.
 *
 * ## The contract, for implementers
 *
 * - **Replicas.** A replica's record holds its expiry time. Only
 *   {@linkcode PresenceStore.heartbeat} refreshes it (`now + ttlMs`) or creates a full one. The
 *   hub heartbeats before its first add and then every `ttlMs / 3`.
 * - **Provisional records.** An `add` (or a `setUserConnections` with a count above 0) for a
 *   replica the store has no record of (its first heartbeat failed, or the store lost its data
 *   since the last one) creates a *provisional* record expiring at `now + ttlMs`, with the
 *   `ttlMs` of the replica's last `heartbeat` call on this store object (made even when that
 *   call failed; 15 s, the hub's default TTL, if it never made one). Nothing else extends it:
 *   a replica that dies before its next heartbeat is swept like any other, its entries within
 *   the TTL. A heartbeat that finds a provisional record answers as if there were none
 *   (`"lost"`, or `"expired"` after a sweep) and makes it a full record.
 * - **Entries.** `(room, clientId) → {clientId, userId?, info?}`, owned by one replica. An entry
 *   lives while its replica's record does. `add` is an upsert (an entry added again replaces
 *   its `userId` and `info`).
 * - **Exactly once.** `remove` returns the entry only to the call that removed it;
 *   `sweep` returns an expired replica's entries only to the one sweep that claimed that
 *   replica (atomically: two replicas sweeping at once never both get an entry, and an entry
 *   that `remove` returned is never returned by a sweep, nor the other way round).
 * - **Users.** Each replica reports its own count of a user's open connections
 *   (`setUserConnections`); `user()` sums the live replicas' counts. A swept replica's counts
 *   go with it.
 * - **Store lost (a restart without its data).** A heartbeat from a replica the store has no
 *   record of (or only a provisional one) answers `"lost"`; the hub then adds its members and
 *   user counts again (no events: members saw nothing leave). A heartbeat from a replica that a
 *   sweep declared dead (it was paused past its TTL) answers `"expired"`; the hub adds them
 *   again and sends `presence.join` for each (the sweeper sent `presence.leave` for them). So a
 *   store keeps a tombstone for a swept replica, for at least a few TTLs.
 * - **Freshness.** Reads (`members`, `counts`, `user`) may include an expired replica's
 *   entries until they are swept (at most one sweep interval after the TTL).
 * - **Sync or async.** Every method may answer synchronously (a memory store) or with a
 *   promise (over the network). A failure is a thrown error or a rejection: the hub reports it
 *   to `onError` (source `"presence"`) and answers requests with `UNAVAILABLE`.
 * - **Order.** The hub issues one client's operations in order (it waits for the previous
 *   one of the same client before the next), and operations of different clients concurrently.
 *
 * @module
 */

/** One member of a room, as `presence` lists it and `presence.join` announces it. */
export interface PresenceEntry {
  /** The connection's client id. */
  readonly clientId: string;
  /** Its user id, when it has one. */
  readonly userId?: string;
  /** App-chosen data (a JSON value, e.g. a display name), bounded in size by the hub. */
  readonly info?: unknown;
}

/** A room's counts across replicas (`presence.stats`). */
export interface PresenceCounts {
  /** Connections in the room. */
  readonly clients: number;
  /** Distinct user ids among them (connections without one are not counted here). */
  readonly users: number;
}

/** A user's presence across replicas. */
export interface UserPresence {
  /** Whether the user has at least one open connection on a live replica. */
  readonly online: boolean;
  /** Their open connections (all tabs, all replicas). */
  readonly connections: number;
}

/** An entry that a sweep removed because its replica stopped heartbeating. */
export interface PresenceExpired {
  /** The room it was in. */
  readonly room: string;
  /** The replica that owned it. */
  readonly replica: string;
  /** The entry. */
  readonly entry: PresenceEntry;
}

/**
 * What a heartbeat found:
 * - `"ok"`: the replica's record was there and is refreshed;
 * - `"lost"`: the store had no record of it, or only the provisional one its adds created (its
 *   first heartbeat, or the store lost its data): the hub adds its entries again, silently;
 * - `"expired"`: a sweep had declared it dead and removed its entries (leaves were sent): the
 *   hub adds them again and announces them with `presence.join`.
 *
 * In the last two cases the record is created again, as for `"ok"`.
 */
export type PresenceHeartbeat = "ok" | "lost" | "expired";

/**
 * Where presence lives. See the module doc for the contract every implementation keeps. Every
 * method may return its result or a promise of it.
 */
export interface PresenceStore {
  /**
   * Create or refresh `replica`'s record: it and its entries now expire at `now + ttlMs`. A
   * provisional record (see `add`) becomes a full one, and the answer is as if it were not
   * there. The store remembers `ttlMs` (even when this call fails) for this replica's adds.
   * @param replica The replica id.
   * @param ttlMs How long the replica lives without another heartbeat.
   * @returns What the store knew of the replica (see {@linkcode PresenceHeartbeat}).
   */
  heartbeat(replica: string, ttlMs: number): PresenceHeartbeat | Promise<PresenceHeartbeat>;
  /**
   * Add (or replace) `entry` in `room`, owned by `replica`. Never refreshes the replica's
   * record. When there is none (a store that lost its data, or a first heartbeat that failed),
   * it creates a provisional one, expiring at `now +` the `ttlMs` of the replica's last
   * heartbeat call: the entry then leaves with the replica if it dies before its next
   * heartbeat, and that heartbeat still answers `"lost"` (or `"expired"`).
   * @returns Whether the entry is new (it was not in the room before).
   */
  add(replica: string, room: string, entry: PresenceEntry): boolean | Promise<boolean>;
  /**
   * Remove `clientId` from `room`.
   * @returns The removed entry, to this call only; `undefined` if it was not there (already
   *   removed, or swept).
   */
  remove(
    replica: string,
    room: string,
    clientId: string,
  ): PresenceEntry | undefined | Promise<PresenceEntry | undefined>;
  /**
   * Every replica's members of `room` (in no particular order).
   * @returns The entries; empty for an unknown room.
   */
  members(room: string): readonly PresenceEntry[] | Promise<readonly PresenceEntry[]>;
  /**
   * `room`'s counts across replicas, in O(1).
   * @returns Clients and distinct users.
   */
  counts(room: string): PresenceCounts | Promise<PresenceCounts>;
  /**
   * Set `replica`'s count of `userId`'s open connections (0 removes it). Idempotent. Like
   * `add`, never refreshes the replica's record, and a count above 0 creates a provisional one
   * when there is none.
   */
  setUserConnections(replica: string, userId: string, count: number): void | Promise<void>;
  /**
   * A user's presence: the sum of the live replicas' counts.
   */
  user(userId: string): UserPresence | Promise<UserPresence>;
  /**
   * Remove every replica whose record has expired, with its entries and user counts, and leave
   * a tombstone for it (see `"expired"`). Each expired replica is claimed by one sweep only.
   * @returns The entries this call removed (empty when another sweep got there first).
   */
  sweep(): readonly PresenceExpired[] | Promise<readonly PresenceExpired[]>;
  /**
   * A clean shutdown: remove `replica`'s record, and its user counts and any entries still
   * left (the hub removes its members one by one first, sending their leaves).
   * @returns The entries it removed.
   */
  goodbye(replica: string): readonly PresenceExpired[] | Promise<readonly PresenceExpired[]>;
}

// The TTL of a provisional record for a replica that never called `heartbeat` on this store
// object: the hub's default `presenceTtlMs`. The hub always calls `heartbeat` before its first
// add, so this only bounds the entries of other callers.
const DEFAULT_PROVISIONAL_TTL_MS = 15_000;

/** Options for {@linkcode MemoryPresenceStore}. */
export interface MemoryPresenceStoreOptions {
  /**
   * Unix ms now (inject a manual clock in tests).
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * How long a swept replica's tombstone is kept (its late heartbeat then answers `"expired"`).
   * @default {600000 (10 minutes)}
   */
  tombstoneMs?: number;
}

interface Owned {
  replica: string;
  entry: PresenceEntry;
}

interface Replica {
  expires: number;
  /** Created by an add or a user count, not by a heartbeat (see the module doc). */
  provisional: boolean;
  /** This replica's entries: room → client ids. */
  rooms: Map<string, Set<string>>;
  /** This replica's user connection counts. */
  users: Map<string, number>;
}

/**
 * Presence in this process's memory: the default store. Every operation is synchronous and
 * O(1), except `members` (O(members)) and `sweep` (O(expired entries)).
 *
 * - One store can serve several hubs in one process (each is a replica with its own id), as a
 *   stand-in for a shared store in tests: `sweep` hands an expired replica's entries to one
 *   caller only.
 * - {@linkcode MemoryPresenceStore.clear} forgets everything, as a store restarted without its
 *   data would: the replicas' next heartbeats answer `"lost"` and they add their members again.
 * - It cannot serve replicas in different processes (the hub refuses it with a backplane unless
 *   given explicitly, as one shared instance).
 *
 * @example
 * ```ts
 * import { MemoryPresenceStore } from "@hubbub/hubbub";
 * const store = new MemoryPresenceStore();
 * store.heartbeat("replica-a", 15_000); // "lost": a new replica
 * store.add("replica-a", "lobby", { clientId: "c1", userId: "ada" });
 * console.log(store.counts("lobby")); // { clients: 1, users: 1 }
 * console.log(store.remove("replica-a", "lobby", "c1")); // { clientId: "c1", userId: "ada" }
 * ```
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly #now: () => number;
  readonly #tombstoneMs: number;
  /** room → clientId → owner and entry. */
  readonly #rooms = new Map<string, Map<string, Owned>>();
  /** room → userId → connections of that user in the room. */
  readonly #roomUsers = new Map<string, Map<string, number>>();
  /** userId → replica → count. */
  readonly #users = new Map<string, Map<string, number>>();
  readonly #replicas = new Map<string, Replica>();
  /** Swept replicas → when their tombstone goes. */
  readonly #tombstones = new Map<string, number>();
  /** Replica → the `ttlMs` of its last heartbeat call (kept by `clear()`: the caller's). */
  readonly #ttls = new Map<string, number>();

  /**
   * Create an empty store.
   * @param options See {@linkcode MemoryPresenceStoreOptions}.
   */
  constructor(options: MemoryPresenceStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#tombstoneMs = options.tombstoneMs ?? 600_000;
  }

  /** Rooms with at least one entry. */
  get size(): number {
    return this.#rooms.size;
  }

  /**
   * Forget everything (replicas, entries, users, tombstones), as a store restarted without its
   * data would. The TTL each replica last heartbeated with is kept, as a shared store's client
   * keeps it: it is what the replica asked for, not the store's data.
   */
  clear(): void {
    this.#rooms.clear();
    this.#roomUsers.clear();
    this.#users.clear();
    this.#replicas.clear();
    this.#tombstones.clear();
  }

  /**
   * See {@linkcode PresenceStore.heartbeat}.
   * @param replica The replica id.
   * @param ttlMs Its time to live.
   * @returns `"ok"`, `"lost"` or `"expired"`.
   */
  heartbeat(replica: string, ttlMs: number): PresenceHeartbeat {
    this.#ttls.set(replica, ttlMs);
    const expires = this.#now() + ttlMs;
    const known = this.#replicas.get(replica);
    if (known !== undefined) {
      known.expires = expires;
      if (!known.provisional) return "ok";
      known.provisional = false;
    } else {
      this.#replicas.set(replica, {
        expires,
        provisional: false,
        rooms: new Map(),
        users: new Map(),
      });
    }
    if (this.#tombstones.delete(replica)) return "expired";
    return "lost";
  }

  /**
   * See {@linkcode PresenceStore.add}.
   * @param replica The owner.
   * @param room The room.
   * @param entry The entry.
   * @returns Whether it is new.
   */
  add(replica: string, room: string, entry: PresenceEntry): boolean {
    const old = this.#rooms.get(room)?.get(entry.clientId);
    if (old !== undefined) this.#drop(room, old, false);
    let members = this.#rooms.get(room); // after the drop, which may have removed the room
    if (members === undefined) this.#rooms.set(room, members = new Map());
    members.set(entry.clientId, { replica, entry });
    if (entry.userId !== undefined) {
      let users = this.#roomUsers.get(room);
      if (users === undefined) this.#roomUsers.set(room, users = new Map());
      users.set(entry.userId, (users.get(entry.userId) ?? 0) + 1);
    }
    const owner = this.#record(replica);
    let ids = owner.rooms.get(room);
    if (ids === undefined) owner.rooms.set(room, ids = new Set());
    ids.add(entry.clientId);
    return old === undefined;
  }

  /**
   * See {@linkcode PresenceStore.remove}.
   * @param _replica The owner (unused: client ids are unique).
   * @param room The room.
   * @param clientId The client id.
   * @returns The removed entry, or `undefined`.
   */
  remove(_replica: string, room: string, clientId: string): PresenceEntry | undefined {
    const owned = this.#rooms.get(room)?.get(clientId);
    if (owned === undefined) return undefined;
    this.#drop(room, owned, true);
    return owned.entry;
  }

  /**
   * See {@linkcode PresenceStore.members}.
   * @param room The room.
   * @returns A snapshot of its entries.
   */
  members(room: string): readonly PresenceEntry[] {
    const members = this.#rooms.get(room);
    if (members === undefined) return [];
    const out: PresenceEntry[] = [];
    for (const owned of members.values()) out.push(owned.entry);
    return out;
  }

  /**
   * See {@linkcode PresenceStore.counts}.
   * @param room The room.
   * @returns Clients and distinct users.
   */
  counts(room: string): PresenceCounts {
    return {
      clients: this.#rooms.get(room)?.size ?? 0,
      users: this.#roomUsers.get(room)?.size ?? 0,
    };
  }

  /**
   * See {@linkcode PresenceStore.setUserConnections}.
   * @param replica The reporting replica.
   * @param userId The user.
   * @param count Its connections on that replica.
   */
  setUserConnections(replica: string, userId: string, count: number): void {
    let byReplica = this.#users.get(userId);
    if (count > 0) {
      if (byReplica === undefined) this.#users.set(userId, byReplica = new Map());
      byReplica.set(replica, count);
      this.#record(replica).users.set(userId, count);
      return;
    }
    this.#replicas.get(replica)?.users.delete(userId);
    if (byReplica === undefined) return;
    byReplica.delete(replica);
    if (byReplica.size === 0) this.#users.delete(userId);
  }

  /**
   * See {@linkcode PresenceStore.user}.
   * @param userId The user.
   * @returns Online state and connection count.
   */
  user(userId: string): UserPresence {
    let connections = 0;
    for (const n of this.#users.get(userId)?.values() ?? []) connections += n;
    return { online: connections > 0, connections };
  }

  /**
   * See {@linkcode PresenceStore.sweep}.
   * @returns The entries of every replica that expired since the last sweep.
   */
  sweep(): readonly PresenceExpired[] {
    const now = this.#now();
    for (const [replica, until] of this.#tombstones) {
      if (until <= now) this.#tombstones.delete(replica);
    }
    const out: PresenceExpired[] = [];
    for (const [replica, record] of this.#replicas) {
      if (record.expires > now) continue;
      this.#forget(replica, record, out);
      this.#tombstones.set(replica, now + this.#tombstoneMs);
    }
    return out;
  }

  /**
   * See {@linkcode PresenceStore.goodbye}.
   * @param replica The replica leaving.
   * @returns The entries it still had.
   */
  goodbye(replica: string): readonly PresenceExpired[] {
    const out: PresenceExpired[] = [];
    const record = this.#replicas.get(replica);
    if (record !== undefined) this.#forget(replica, record, out);
    this.#ttls.delete(replica);
    return out;
  }

  /** `replica`'s record; a provisional one (expiring like a heartbeat would) when it has none. */
  #record(replica: string): Replica {
    let record = this.#replicas.get(replica);
    if (record === undefined) {
      const ttlMs = this.#ttls.get(replica) ?? DEFAULT_PROVISIONAL_TTL_MS;
      record = {
        expires: this.#now() + ttlMs,
        provisional: true,
        rooms: new Map(),
        users: new Map(),
      };
      this.#replicas.set(replica, record);
    }
    return record;
  }

  /** Remove a replica with its entries (into `out`) and user counts. */
  #forget(replica: string, record: Replica, out: PresenceExpired[]): void {
    this.#replicas.delete(replica);
    for (const [room, ids] of record.rooms) {
      const members = this.#rooms.get(room);
      for (const id of ids) {
        const owned = members?.get(id);
        if (owned === undefined || owned.replica !== replica) continue;
        this.#drop(room, owned, false);
        out.push({ room, replica, entry: owned.entry });
      }
    }
    for (const userId of record.users.keys()) {
      const byReplica = this.#users.get(userId);
      byReplica?.delete(replica);
      if (byReplica?.size === 0) this.#users.delete(userId);
    }
  }

  /** Take an entry out of its room's indexes (and, with `unown`, its replica's). */
  #drop(room: string, owned: Owned, unown: boolean): void {
    const { clientId, userId } = owned.entry;
    const members = this.#rooms.get(room);
    if (members !== undefined && members.get(clientId) === owned) {
      members.delete(clientId);
      if (members.size === 0) this.#rooms.delete(room);
    }
    if (userId !== undefined) {
      const users = this.#roomUsers.get(room);
      const n = users?.get(userId);
      if (users !== undefined && n !== undefined) {
        if (n > 1) users.set(userId, n - 1);
        else {
          users.delete(userId);
          if (users.size === 0) this.#roomUsers.delete(room);
        }
      }
    }
    if (unown) {
      const ids = this.#replicas.get(owned.replica)?.rooms.get(room);
      ids?.delete(clientId);
      if (ids?.size === 0) this.#replicas.get(owned.replica)!.rooms.delete(room);
    }
  }
}
