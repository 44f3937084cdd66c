// Presence in the hub: which rooms track it (the app's `presence` option), what this replica
// tells the presence store when its connections join and leave those rooms or connect and
// disconnect, the `presence.join` / `presence.leave` events to the room's members (through the
// hub's plain emit path, so every replica's members get each once), and the heartbeat and sweep
// timer that keeps this replica's entries alive, removes dead replicas' entries and puts this
// replica's members back after the store lost them. The store seam is presence_store.ts.
import type { Connection } from "./connection.ts";
import type { Clock, PresencePolicy } from "./hub_options.ts";
import type { Hooks } from "./hooks.ts";
import { isThenable } from "./hooks.ts";
import type { Registry } from "./registry.ts";
import type {
  PresenceCounts,
  PresenceEntry,
  PresenceExpired,
  PresenceHeartbeat,
  PresenceStore,
  UserPresence,
} from "./presence_store.ts";
import type { Target } from "../protocol/target.ts";
import { ServerEvent, utf8Length } from "../protocol/envelope.ts";

/** The app's choice of which rooms track presence (see the hub's `presence` option). */
export type PresenceOption = (room: string) => PresencePolicy | boolean | undefined | null;

/** A room's resolved presence policy. */
export interface ResolvedPresence {
  /** Members get `presence.join` / `presence.leave`. */
  readonly events: boolean;
  /** No member list (`presence` refused), no events: counts only. */
  readonly countsOnly: boolean;
}

/** Most UTF-8 bytes of an entry's `info`, as JSON. */
export const MAX_PRESENCE_INFO_BYTES = 1024;
/** The presence TTL when the hub's `presenceTtlMs` is unset. */
export const DEFAULT_PRESENCE_TTL_MS = 15_000;

const WITH_EVENTS: ResolvedPresence = { events: true, countsOnly: false };
const NO_EVENTS: ResolvedPresence = { events: false, countsOnly: false };
const COUNTS_ONLY: ResolvedPresence = { events: false, countsOnly: true };

/** What the presence part is made with. */
export interface PresenceOptions {
  option: PresenceOption;
  store: PresenceStore;
  registry: Registry;
  hooks: Hooks;
  clock: Clock;
  ttlMs: number;
  /** The app's `presenceInfo` hook. */
  info: ((connection: Connection, room: string) => unknown) | undefined;
  /** Send an event to a target through the hub's plain path (local fan-out + backplane). */
  emit(type: string, data: unknown, target: Target): void;
}

/** One local member as this replica registered it. */
interface Local {
  entry: PresenceEntry;
  /** Whether its `presence.join` went out (so a re-registration does not repeat it). */
  announced: boolean;
  policy: ResolvedPresence;
}

/** One hub's presence part. */
export class Presence {
  /** This replica's id in the store (random per hub). */
  readonly replica: string = crypto.randomUUID();
  readonly ttlMs: number;
  readonly #option: PresenceOption;
  readonly #store: PresenceStore;
  readonly #registry: Registry;
  readonly #hooks: Hooks;
  readonly #clock: Clock;
  readonly #info: PresenceOptions["info"];
  readonly #emit: PresenceOptions["emit"];
  /** This replica's entries: room → clientId → entry. */
  readonly #local = new Map<string, Map<string, Local>>();
  /** Per key (a client id, or a user id prefixed with NUL), the tail of its operations. */
  readonly #tails = new Map<string, Promise<unknown>>();
  /** Users whose connection count is to be written (coalesced). */
  readonly #dirtyUsers = new Set<string>();
  /** Removals that failed: retried at the next tick. */
  readonly #failedRemovals: { room: string; clientId: string; events: boolean }[] = [];
  /** A write failed: the next tick adds every local entry again. */
  #repair = false;
  #timer: unknown;
  #ticking: Promise<void> | undefined;
  #closed = false;

  constructor(o: PresenceOptions) {
    this.#option = o.option;
    this.#store = o.store;
    this.#registry = o.registry;
    this.#hooks = o.hooks;
    this.#clock = o.clock;
    this.#info = o.info;
    this.#emit = o.emit;
    this.ttlMs = o.ttlMs;
    // Register this replica before its first add, then heartbeat and sweep every ttl/3.
    this.#ticking = this.#settle(this.tick());
    this.#timer = o.clock.setInterval(() => {
      if (this.#ticking === undefined) this.#ticking = this.#settle(this.tick());
    }, Math.max(1, Math.floor(o.ttlMs / 3)));
  }

  /** `room`'s policy, or `undefined` when it tracks no presence. */
  policyOf(room: string): ResolvedPresence | undefined {
    let p: PresencePolicy | boolean | undefined | null;
    try {
      p = this.#option(room);
    } catch (error) {
      this.#hooks.report(error, "presence");
      return undefined;
    }
    if (!p) return undefined;
    if (p === true) return WITH_EVENTS;
    if (p.countsOnly === true) return COUNTS_ONLY;
    return p.events === false ? NO_EVENTS : WITH_EVENTS;
  }

  // ------------------------------------------------------------ membership (registry hooks)

  /** `conn` joined `room` on this replica. */
  joined(conn: Connection, room: string): void {
    if (this.#closed) return;
    const policy = this.policyOf(room);
    if (policy === undefined) return;
    const local: Local = { entry: this.#entryOf(conn, room, policy), announced: false, policy };
    let members = this.#local.get(room);
    if (members === undefined) this.#local.set(room, members = new Map());
    members.set(conn.id, local);
    this.#add(room, local, true);
  }

  /** `conn` left `room` on this replica (unsubscribe, server leave, or disconnect). */
  left(conn: Connection, room: string): void {
    const members = this.#local.get(room);
    const local = members?.get(conn.id);
    if (local === undefined) return;
    members!.delete(conn.id);
    if (members!.size === 0) this.#local.delete(room);
    this.#remove(room, conn.id, local.policy.events);
  }

  /** `conn`'s user id changed (authenticate): its entries carry the new one (no events). */
  identified(conn: Connection): void {
    for (const [room, members] of this.#local) {
      const local = members.get(conn.id);
      if (local === undefined || local.entry.userId === conn.userId) continue;
      local.entry = this.#entryOf(conn, room, local.policy);
      this.#add(room, local, false);
    }
  }

  /** `userId`'s local connection count changed: write it (coalesced, the latest count). */
  userChanged(userId: string): void {
    if (this.#closed || this.#dirtyUsers.has(userId)) return;
    this.#dirtyUsers.add(userId);
    this.#op("\0" + userId, () => {
      this.#dirtyUsers.delete(userId);
      return this.#store.setUserConnections(
        this.replica,
        userId,
        this.#registry.users.get(userId)?.size ?? 0,
      );
    }, () => {});
  }

  // ------------------------------------------------------------ reads

  /** Every replica's members of `room`. */
  members(room: string): readonly PresenceEntry[] | Promise<readonly PresenceEntry[]> {
    return this.#store.members(room);
  }

  /** `room`'s counts across replicas. */
  counts(room: string): PresenceCounts | Promise<PresenceCounts> {
    return this.#store.counts(room);
  }

  /** A user's presence across replicas. */
  user(userId: string): UserPresence | Promise<UserPresence> {
    return this.#store.user(userId);
  }

  // ------------------------------------------------------------ heartbeat and sweep

  /**
   * One round: heartbeat (and re-register when the store lost this replica, or declared it
   * dead), retry failed writes, then sweep dead replicas and announce their members' leaves.
   */
  async tick(): Promise<void> {
    const store = this.#store;
    const beat: PresenceHeartbeat = await store.heartbeat(this.replica, this.ttlMs);
    if (this.#closed) return;
    if (beat !== "ok" || this.#repair) this.#reRegister(beat === "expired");
    const retry = this.#failedRemovals.splice(0);
    for (const r of retry) this.#remove(r.room, r.clientId, r.events);
    const expired = await store.sweep();
    this.#announceExpired(expired);
  }

  /**
   * Stop the timer, wait for writes in flight, and say goodbye to the store (what is left of
   * this replica's entries and user counts goes). Gives up after `timeoutMs` (a store that does
   * not answer): the entries left expire after the TTL like a dead replica's.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const clock = this.#clock;
    clock.clearInterval(this.#timer);
    let timer: unknown;
    const late = new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.#finish(), late]);
    clock.clearTimeout(timer);
  }

  async #finish(): Promise<void> {
    await this.#ticking;
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
    // A sync store's last events are in microtasks: let them out before the backplane goes.
    await Promise.resolve();
    try {
      await this.#store.goodbye(this.replica);
    } catch (error) {
      this.#hooks.report(error, "presence");
    }
  }

  // ------------------------------------------------------------ internals

  #entryOf(conn: Connection, room: string, policy: ResolvedPresence): PresenceEntry {
    const userId = conn.userId;
    let info: unknown;
    if (this.#info !== undefined && !policy.countsOnly) {
      try {
        info = this.#info(conn, room);
        if (info !== undefined) {
          const json = JSON.stringify(info);
          if (json === undefined) info = undefined;
          else if (utf8Length(json) > MAX_PRESENCE_INFO_BYTES) {
            throw new RangeError(
              `Cannot attach presence info in "${room}": over ${MAX_PRESENCE_INFO_BYTES} bytes ` +
                "as JSON (the entry is kept without it)",
            );
          }
        }
      } catch (error) {
        this.#hooks.report(error, "presence");
        info = undefined;
      }
    }
    const entry: { clientId: string; userId?: string; info?: unknown } = { clientId: conn.id };
    if (userId !== undefined) entry.userId = userId;
    if (info !== undefined) entry.info = info;
    return entry;
  }

  /** Add `local` to the store; announce it when new (and `announce`, and the room has events). */
  #add(room: string, local: Local, announce: boolean): void {
    const entry = local.entry;
    this.#op(entry.clientId, () => this.#store.add(this.replica, room, entry), (isNew) => {
      if (!announce || !isNew || local.announced || !local.policy.events) return;
      // Still a member (a leave right after the join goes after it, and says so itself).
      local.announced = true;
      this.#emit(ServerEvent.PRESENCE_JOIN, { room, ...entry }, { rooms: room });
    });
  }

  #remove(room: string, clientId: string, events: boolean): void {
    this.#op(clientId, () => this.#store.remove(this.replica, room, clientId), (entry) => {
      if (entry === undefined || !events) return;
      this.#emit(ServerEvent.PRESENCE_LEAVE, leaveOf(room, entry), { rooms: room });
    }, () => this.#failedRemovals.push({ room, clientId, events }));
  }

  /** Add every local entry again; with `expired`, their joins are announced again too. */
  #reRegister(expired: boolean): void {
    this.#repair = false;
    for (const [room, members] of this.#local) {
      for (const local of members.values()) {
        if (expired) local.announced = false;
        this.#add(room, local, true);
      }
    }
    for (const userId of this.#registry.users.keys()) this.userChanged(userId);
  }

  #announceExpired(expired: readonly PresenceExpired[]): void {
    for (const { room, entry } of expired) {
      if (this.policyOf(room)?.events !== true) continue;
      this.#emit(ServerEvent.PRESENCE_LEAVE, leaveOf(room, entry), { rooms: room });
    }
  }

  /**
   * Run one store operation for `key` after that key's earlier ones, then `done` with its
   * result. A synchronous store answers at once; `done` then runs in a microtask, so that a
   * `presence.join` follows the joiner's `subscribed` reply. A failure is reported and marks
   * the replica for repair at the next tick.
   */
  #op<T>(
    key: string,
    run: () => T | Promise<T>,
    done: (result: T) => void,
    failed?: () => void,
  ): void {
    const fail = (error: unknown) => {
      this.#hooks.report(error, "presence");
      this.#repair = true;
      failed?.();
    };
    const finish = (result: T) => {
      try {
        done(result);
      } catch (error) {
        this.#hooks.report(error, "presence");
      }
    };
    const tail = this.#tails.get(key);
    let p: Promise<unknown>;
    if (tail === undefined) {
      let result: T | Promise<T>;
      try {
        result = run();
      } catch (error) {
        fail(error);
        return;
      }
      if (!isThenable(result)) {
        queueMicrotask(() => finish(result as T));
        return;
      }
      p = (result as Promise<T>).then(finish, fail);
    } else {
      p = tail.then(run).then(finish, fail);
    }
    this.#tails.set(key, p);
    p.then(() => {
      if (this.#tails.get(key) === p) this.#tails.delete(key);
    });
  }

  /** A tick's promise, cleared when it settles; a failure is reported. */
  #settle(p: Promise<void>): Promise<void> {
    const done = p.then(() => {}, (error) => {
      this.#repair = true;
      this.#hooks.report(error, "presence");
    }).then(() => {
      this.#ticking = undefined;
    });
    return done;
  }
}

function leaveOf(room: string, entry: PresenceEntry): Record<string, unknown> {
  return entry.userId === undefined
    ? { room, clientId: entry.clientId }
    : { room, clientId: entry.clientId, userId: entry.userId };
}
