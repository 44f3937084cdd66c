// History and recovery in the hub: which rooms keep a stream (the app's `history` option), how a
// message to such a room is appended and delivered with its `room` and `offset`, what a
// (recovering) subscriber is sent, and `history` requests. Delivery per room is in offset order:
// a subscriber that recovers gets `subscribed`, then every message after its position, then the
// live ones, with frames that arrive meanwhile held back and de-duplicated by offset.
import type { Connection } from "./connection.ts";
import type {
  HistoryAppend,
  HistoryAppended,
  HistoryEntry,
  HistoryPolicy,
  HistoryPosition,
  HistoryRead,
  HistoryStore,
} from "./history_store.ts";
import type { Hooks } from "./hooks.ts";
import type { Registry } from "./registry.ts";
import type { BackplaneBridge } from "./backplane_bridge.ts";
import type { Counters } from "./counters.ts";
import { exceptIds, fanout, names } from "./fanout.ts";
import type {
  Clock,
  HistoryMessage,
  HubHistory,
  HubHistoryOptions,
  PublishOptions,
  PublishResult,
} from "./hub_options.ts";
import type { Target } from "../protocol/target.ts";
import { utf8Length } from "../protocol/envelope.ts";
import { isThenable } from "./hooks.ts";
import { kDeliver, kSettled, kState, settleState, stateOf } from "./_internal.ts";
import type { HubLimits } from "./limits.ts";
import { CloseCode } from "./close_codes.ts";

/** The app's choice of which rooms keep a history, and how much. */
export type HistoryOption = (room: string) => HistoryPolicy | undefined | null | false;

/** Where a recovering client says it is. */
export interface RecoverPosition {
  /** The epoch it last saw. */
  epoch: string;
  /** The last offset it saw in that epoch. */
  offset: number;
}

/** What a subscribe to a history room answers (the `subscribed` data). */
export interface SubscribedData extends HistoryPosition {
  room: string;
  recovered?: boolean;
}

/** What an emit into a history room did. */
export interface Published extends HistoryPosition {
  /** Local connections it was delivered to. */
  delivered: number;
  /** The frame as sent (with `room` and `offset`). */
  frame: string;
}

const DEFAULT_POLICY: Required<HistoryPolicy> = { maxMessages: 100, maxAgeMs: 600_000 };

/** How long a replica waits for a missing offset to arrive before it reads it from the store. */
const GAP_GRACE_MS = 50;

/** After the bus comes back, every room is read again once more this much later. */
const RESTORE_RECHECK_MS = 1000;

/** Repair reads tried (250 ms, 500 ms, 1 s apart) before a room's members are closed with 4004. */
const REPAIR_ATTEMPTS = 4;

/** What the history part is made with. */
export interface HistoryOptions {
  option: HistoryOption;
  store: HistoryStore;
  registry: Registry;
  hooks: Hooks;
  counters: Counters;
  bridge: BackplaneBridge;
  clock: Clock;
  limits: HubLimits;
  /** Charge the sender of the frame being handled for deliveries (the fan-out budget). */
  charge(deliveries: number): void;
}

/**
 * Where this replica is in one room's stream: every offset up to `last` has been handed to the
 * room's local members (or is behind their subscribe position). Later offsets that arrived
 * early wait in `pending` until the ones before them arrive or are read from the store.
 */
interface Cursor {
  /** `undefined` while the room's first subscriber reads its position (arrivals wait). */
  epoch: string | undefined;
  last: number;
  pending: Map<number, HistoryAppended>;
  /** The grace timer before a repair read, or the repair in flight. */
  timer: unknown;
  repairing: boolean;
  /** Repair reads that failed in a row. */
  failures: number;
}

/** One hub's history part. */
export class History {
  readonly #option: HistoryOption;
  readonly #store: HistoryStore;
  readonly #registry: Registry;
  readonly #hooks: Hooks;
  readonly #counters: Counters;
  readonly #bridge: BackplaneBridge;
  readonly #clock: Clock;
  readonly #limits: HubLimits;
  readonly #charge: (deliveries: number) => void;
  /** Per history room with local members, this replica's position in its stream. */
  readonly #cursors = new Map<string, Cursor>();
  /** The second look after the bus came back (see `restored()`). */
  #recheck: unknown = undefined;
  /** Repairs started (gap reads) and rooms closed with 4004: for tests and stats. */
  readonly repairs = { reads: 0, lost: 0 };

  constructor(o: HistoryOptions) {
    this.#option = o.option;
    this.#store = o.store;
    this.#registry = o.registry;
    this.#hooks = o.hooks;
    this.#counters = o.counters;
    this.#bridge = o.bridge;
    this.#clock = o.clock;
    this.#limits = o.limits;
    this.#charge = o.charge;
  }

  /**
   * An emit whose target names history rooms: one frame per history room (with its offset)
   * to that room's members, and the plain frame to the rest of the target. `undefined` when
   * no room of the target keeps a history (the caller takes the plain path).
   */
  emit(type: string, frame: string, target: Target): number | undefined {
    const rooms = names(target.rooms)!;
    let kept: Map<string, Required<HistoryPolicy>> | undefined;
    for (const room of rooms) {
      const policy = this.policyOf(room);
      if (policy !== undefined) (kept ??= new Map()).set(room, policy);
    }
    if (kept === undefined) return undefined;
    const except = target.except === undefined ? undefined : exceptIds(target.except);
    const counters = this.#counters;
    counters.n.emits++;
    let delivered = 0;
    for (const [room, policy] of kept) {
      let p: Published | Promise<Published>;
      try {
        p = this.#append(room, policy, frame, except);
      } catch (error) {
        this.#hooks.report(error, "emit"); // the store failed: nobody got it
        continue;
      }
      if (isThenable(p)) {
        p.then((r) => this.#sent(type, r), (e) => this.#hooks.report(e, "emit"));
      } else {
        this.#sent(type, p);
        delivered += p.delivered;
      }
    }
    // The rest of the target gets the plain frame, but not the history rooms' members.
    const rest: Target = { ...target, rooms: rooms.filter((r) => !kept.has(r)) };
    if (
      (rest.rooms as string[]).length > 0 || rest.users !== undefined || rest.clients !== undefined
    ) {
      const skip = new Set(except);
      for (const room of kept.keys()) {
        for (const conn of this.#registry.rooms.get(room) ?? []) skip.add(conn.id);
      }
      this.#bridge.publish(frame, rest);
      const n = fanout(this.#registry, frame, { ...rest, except: skip });
      counters.countOut(type, n, utf8Length(frame));
      this.#charge(n);
      delivered += n;
    }
    return delivered;
  }

  /** See `Hub.publish()`: stored, then delivered (here and, through the bus, elsewhere). */
  async publish(
    room: string,
    policy: Required<HistoryPolicy>,
    frame: string,
    type: string,
    except: PublishOptions["except"],
  ): Promise<PublishResult> {
    const ids = except === undefined ? undefined : exceptIds(except);
    const p = await this.#append(room, policy, frame, ids);
    this.#counters.countEmit(type, p.delivered, utf8Length(p.frame));
    return { epoch: p.epoch, offset: p.offset, delivered: p.delivered };
  }

  /** See `Hub.history()`. */
  async history(
    room: string,
    policy: Required<HistoryPolicy>,
    options: HubHistoryOptions,
  ): Promise<HubHistory> {
    const read = await this.read(room, policy, options);
    return {
      epoch: read.epoch,
      offset: read.offset,
      messages: read.entries.map((e) => JSON.parse(e.frame) as HistoryMessage),
    };
  }

  /** An emit's frame for one history room went out: counted, charged. */
  #sent(type: string, p: Published): void {
    this.#counters.countOut(type, p.delivered, utf8Length(p.frame));
    this.#charge(p.delivered);
  }

  /** `room`'s bounds, or `undefined` when it keeps no history. */
  policyOf(room: string): Required<HistoryPolicy> | undefined {
    let p: HistoryPolicy | undefined | null | false;
    try {
      p = this.#option(room);
    } catch (error) {
      this.#hooks.report(error, "history");
      return undefined;
    }
    if (!p) return undefined;
    const maxMessages = p.maxMessages ?? DEFAULT_POLICY.maxMessages;
    const maxAgeMs = p.maxAgeMs ?? DEFAULT_POLICY.maxAgeMs;
    if (!(Number.isInteger(maxMessages) && maxMessages > 0 && maxAgeMs > 0)) {
      this.#hooks.report(
        new RangeError(`Cannot keep history for "${room}": maxMessages and maxAgeMs must be > 0`),
        "history",
      );
      return undefined;
    }
    return { maxMessages, maxAgeMs };
  }

  /**
   * Append a message to `room`'s stream, publish it to the other replicas (the store does, in
   * offset order, when it can) and deliver it to the room's local members (but `except`).
   * Synchronous with a synchronous store; otherwise a promise.
   * @param frame The envelope as encoded (without room and offset).
   */
  #append(
    room: string,
    policy: Required<HistoryPolicy>,
    frame: string,
    except: readonly string[] | undefined,
  ): Published | Promise<Published> {
    const head = frame.slice(0, -1) + ',"room":' + JSON.stringify(room) + ',"offset":';
    const store = this.#store;
    const bus = this.#bridge.historyMessage(room, head, except);
    // The store publishes with the append when it can and the bus takes it; else the hub does.
    const storePublishes = store.publishes === true && this.#bridge.acceptsStorePublishes;
    const message: HistoryAppend = {
      head,
      ...(except === undefined ? {} : { except }),
      ...(bus === undefined || !storePublishes ? {} : { publish: bus }),
    };
    const appended = store.append(room, message, policy);
    const sent = (e: HistoryAppended): Published => {
      // A store that does not publish: the hub does, after the append (replicas reorder).
      if (bus !== undefined && !storePublishes) this.#bridge.publishAppended(bus, e);
      return {
        epoch: e.epoch,
        offset: e.offset,
        delivered: this.arrived(room, e),
        frame: e.frame,
      };
    };
    return isThenable(appended) ? appended.then(sent) : sent(appended);
  }

  /**
   * A message of `room`'s stream reached this replica (appended here, or from the bus): hand
   * it to the local members in offset order, once. An offset that jumps waits briefly for the
   * ones before it, then they are read from the store. Returns the connections it reached now.
   */
  arrived(room: string, e: HistoryAppended): number {
    let c = this.#cursors.get(room);
    if (c === undefined) {
      const members = this.#registry.rooms.get(room);
      if (members === undefined || members.size === 0) return 0;
      // Its first subscriber is reading its position: wait for it. Otherwise (members joined
      // by the server) the stream starts here for them.
      let reading = false;
      for (const conn of members) if (conn[kState]?.recovering?.has(room)) reading = true;
      c = newCursor(reading ? undefined : e.epoch, reading ? 0 : e.offset - 1);
      this.#cursors.set(room, c);
    }
    if (c.epoch === undefined) {
      c.pending.set(e.offset, e);
      return 0;
    }
    if (e.epoch !== c.epoch) {
      // The stream was lost (a store restarted without its data): positions here are void.
      this.#lost(room, c, undefined);
      c.epoch = e.epoch;
      c.last = 0;
    }
    if (e.offset <= c.last) return 0; // already handed out
    if (e.offset > c.last + 1) {
      c.pending.set(e.offset, e);
      this.#repairSoon(room, c, GAP_GRACE_MS);
      return 0;
    }
    const n = this.#handOut(room, e);
    c.last = e.offset;
    this.#drain(room, c);
    return n;
  }

  /** Hand out what waited behind `c.last`; repair later if a gap remains. */
  #drain(room: string, c: Cursor): void {
    let next = c.pending.get(c.last + 1);
    while (next !== undefined) {
      c.pending.delete(next.offset);
      this.#handOut(room, next);
      c.last = next.offset;
      next = c.pending.get(c.last + 1);
    }
    if (c.pending.size === 0) return;
    for (const offset of c.pending.keys()) if (offset <= c.last) c.pending.delete(offset);
    if (c.pending.size > 0) this.#repairSoon(room, c, GAP_GRACE_MS);
  }

  #repairSoon(room: string, c: Cursor, ms: number): void {
    if (c.timer !== undefined || c.repairing) return;
    c.timer = this.#clock.setTimeout(() => {
      c.timer = undefined;
      this.#repair(room, c);
    }, ms);
  }

  /** Read what this replica missed of `room` from the store, and hand it out in order. */
  #repair(room: string, c: Cursor): void {
    const policy = this.policyOf(room);
    if (policy === undefined || this.#cursors.get(room) !== c || c.epoch === undefined) return;
    c.repairing = true;
    this.repairs.reads++;
    const done = (r: HistoryRead) => {
      c.repairing = false;
      c.failures = 0;
      if (this.#cursors.get(room) !== c) return;
      if (r.epoch !== c.epoch || !r.complete) {
        // Lost (another epoch) or trimmed before this replica could read it: cannot repair.
        this.#lost(room, c, undefined);
        c.epoch = r.epoch;
        c.last = r.offset;
        for (const offset of c.pending.keys()) if (offset <= c.last) c.pending.delete(offset);
      } else {
        for (const e of r.entries) {
          if (e.offset <= c.last) continue;
          this.#handOut(room, e);
          c.last = e.offset;
        }
      }
      this.#drain(room, c);
    };
    const failed = (error: unknown) => {
      c.repairing = false;
      this.#hooks.report(error, "history");
      if (this.#cursors.get(room) !== c) return;
      if (c.failures < REPAIR_ATTEMPTS - 1) {
        // The store may be reconnecting too (it just came back with the bus): try again.
        this.#repairSoon(room, c, 250 * 2 ** c.failures++);
        return;
      }
      // The store cannot say what was missed: the members here reconnect and recover.
      this.#lost(room, c, undefined);
      this.#forget(room, c);
    };
    let r: HistoryRead | Promise<HistoryRead>;
    try {
      r = this.#store.read(room, { after: c.last }, policy);
    } catch (error) {
      failed(error);
      return;
    }
    if (isThenable(r)) r.then(done, failed);
    else done(r);
  }

  /**
   * The bus came back after an outage: what was published meanwhile may be lost to this
   * replica, and no later message may come to show the gap. Read every room's stream now.
   */
  restored(): void {
    this.#repairAll();
    // Health can turn green before every channel is subscribed again: look once more later.
    if (this.#recheck !== undefined) this.#clock.clearTimeout(this.#recheck);
    this.#recheck = this.#clock.setTimeout(() => {
      this.#recheck = undefined;
      this.#repairAll();
    }, RESTORE_RECHECK_MS);
  }

  #repairAll(): void {
    for (const [room, c] of this.#cursors) {
      if (c.timer !== undefined) this.#clock.clearTimeout(c.timer);
      c.timer = undefined;
      if (!c.repairing) this.#repair(room, c);
    }
  }

  /** `room` has no local member left (or the hub closes): drop this replica's position. */
  left(room: string): void {
    const c = this.#cursors.get(room);
    if (c !== undefined) this.#forget(room, c);
  }

  /** Stop every timer (the hub closes). */
  close(): void {
    if (this.#recheck !== undefined) this.#clock.clearTimeout(this.#recheck);
    this.#recheck = undefined;
    for (const [room, c] of this.#cursors) this.#forget(room, c);
  }

  #forget(room: string, c: Cursor): void {
    if (c.timer !== undefined) this.#clock.clearTimeout(c.timer);
    c.timer = undefined;
    this.#cursors.delete(room);
  }

  /**
   * This replica cannot keep `room`'s stream whole for its members: close them with 4004
   * (reconnect and recover: they learn `recovered: false` or get what the store still has).
   * Members still reading their position (and `keep`) stay: their read answers for them.
   */
  #lost(room: string, c: Cursor, keep: Connection | undefined): void {
    this.repairs.lost++;
    c.pending.clear();
    for (const conn of [...(this.#registry.rooms.get(room) ?? [])]) {
      if (conn === keep || conn[kState]?.recovering?.has(room)) continue;
      conn.close(CloseCode.INSUFFICIENT_STATE, "history of " + clipRoom(room) + " was lost");
    }
  }

  /** Deliver one entry to the room's local members, holding it for those recovering. */
  #handOut(room: string, e: HistoryEntry): number {
    let delivered = 0;
    const members = this.#registry.rooms.get(room);
    if (members === undefined) return 0;
    const except = e.except;
    for (const conn of members) {
      if (except !== undefined && except.includes(conn.id)) continue;
      const state = conn[kState];
      if (state !== undefined) {
        const held = state.recovering?.get(room);
        if (held !== undefined) {
          // Live messages wait behind a replay; one the client reads too slowly to finish
          // while they pile up is a slow client.
          if (held.length >= this.#limits.maxQueueMessages) {
            conn.close(CloseCode.SLOW_CLIENT, "slow client");
            continue;
          }
          held.push(e);
          delivered++;
          continue;
        }
        const floor = state.floors?.get(room);
        if (floor !== undefined) {
          if (e.offset <= floor) continue; // its subscribe position was past this one
          state.floors!.delete(room);
          settleState(conn);
        }
      }
      if (conn[kDeliver](e.frame)) delivered++;
    }
    return delivered;
  }

  /**
   * `conn` joined history room `room`: answer with its position (and whether it recovered),
   * then replay what it missed. Returns a promise with an async store.
   */
  subscribed(
    conn: Connection,
    room: string,
    policy: Required<HistoryPolicy>,
    recover: RecoverPosition | undefined,
    reply: (data: SubscribedData) => void,
    fail: (error: unknown) => void,
  ): Promise<void> | undefined {
    // Live frames for this room wait until the replay is out (an async read), in order.
    const held: HistoryEntry[] = [];
    const state = stateOf(conn);
    state.floors?.delete(room); // from an earlier membership
    (state.recovering ??= new Map()).set(room, held);
    const done = (read: HistoryRead): Promise<void> | undefined => {
      if (conn.state !== "open") {
        state.recovering?.delete(room);
        settleState(conn);
        return;
      }
      const c = this.#position(room, conn, read);
      const recovered = recover !== undefined && recover.epoch === read.epoch && read.complete;
      reply({
        room,
        epoch: read.epoch,
        offset: read.offset,
        ...(recover === undefined ? {} : { recovered }),
      });
      let last = read.offset;
      const replay: string[] = [];
      if (recovered) {
        last = recover.offset;
        for (const e of read.entries) {
          if (!e.except?.includes(conn.id)) replay.push(e.frame);
          last = e.offset;
        }
      }
      const finish = () => {
        state.recovering?.delete(room);
        settleState(conn);
        if (conn.state !== "open") return;
        for (const e of held) {
          if (e.offset > last) {
            conn[kDeliver](e.frame);
            last = e.offset;
          }
        }
        // This replica may not have handed out up to here yet: skip those offsets for it.
        if (last > c.last) {
          const s = stateOf(conn);
          (s.floors ??= new Map()).set(room, last);
        }
        this.#drain(room, c);
      };
      const paced = this.#replay(conn, replay);
      if (paced === undefined) {
        finish();
        return;
      }
      return paced.then(finish);
    };
    const failed = (error: unknown) => {
      state.recovering?.delete(room);
      settleState(conn);
      fail(error);
    };
    let read: HistoryRead | Promise<HistoryRead>;
    try {
      read = this.#store.read(
        room,
        recover === undefined ? { limit: 0 } : {
          after: recover.offset,
        },
        policy,
      );
    } catch (error) {
      failed(error);
      return;
    }
    if (!isThenable(read)) return done(read);
    return read.then(done, failed);
  }

  /**
   * Send a replay's frames. One that fits in a quarter of the connection's queue bounds goes
   * out at once; a larger one goes in batches of that size, each after the socket took the
   * last (a replay is paced by the client's reading, never a slow-client close by itself).
   */
  #replay(conn: Connection, frames: string[]): Promise<void> | undefined {
    const maxBytes = this.#limits.maxQueueBytes / 4;
    const maxCount = Math.max(1, Math.floor(this.#limits.maxQueueMessages / 4));
    let i = 0;
    const batch = (): boolean => {
      let bytes = 0;
      const end = Math.min(frames.length, i + maxCount);
      while (i < end && conn.state === "open") {
        bytes += frames[i].length;
        conn[kDeliver](frames[i++]);
        if (bytes >= maxBytes) break;
      }
      return i >= frames.length || conn.state !== "open";
    };
    if (batch()) return undefined;
    return (async () => {
      while (true) {
        await conn[kSettled]();
        if (batch()) return;
      }
    })();
  }

  /**
   * This replica's cursor for `room`, set by a subscriber's read: the first one starts it at
   * the read's position; a read in another epoch means the stream was lost since the cursor
   * started (the other members here are closed with 4004); a read ahead of it means this
   * replica has not been handed everything yet (repair soon, unless it arrives).
   */
  #position(room: string, conn: Connection, read: HistoryRead): Cursor {
    let c = this.#cursors.get(room);
    if (c === undefined) {
      c = newCursor(read.epoch, read.offset);
      this.#cursors.set(room, c);
    } else if (c.epoch === undefined) {
      c.epoch = read.epoch;
      c.last = read.offset;
    } else if (c.epoch !== read.epoch) {
      this.#lost(room, c, conn);
      c.epoch = read.epoch;
      c.last = read.offset;
    } else if (read.offset > c.last) {
      this.#repairSoon(room, c, GAP_GRACE_MS);
    }
    return c;
  }

  /** The last `limit` messages of `room` (the `history` request and `hub.history()`). */
  read(
    room: string,
    policy: Required<HistoryPolicy>,
    options: { limit?: number; since?: number },
  ): HistoryRead | Promise<HistoryRead> {
    return this.#store.read(room, {
      ...(options.since === undefined ? {} : { after: options.since }),
      limit: Math.min(options.limit ?? policy.maxMessages, policy.maxMessages),
    }, policy);
  }
}

function newCursor(epoch: string | undefined, last: number): Cursor {
  return { epoch, last, pending: new Map(), timer: undefined, repairing: false, failures: 0 };
}

function clipRoom(room: string): string {
  return room.length > 64 ? room.slice(0, 64) + "…" : room;
}

/**
 * Parse a `subscribe` message's `recover` field.
 * @returns The position, `undefined` when absent, or `null` when malformed.
 */
export function parseRecover(v: unknown): RecoverPosition | undefined | null {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k !== "epoch" && k !== "offset") return null;
  if (typeof r.epoch !== "string" || r.epoch.length === 0 || r.epoch.length > 128) return null;
  if (typeof r.offset !== "number" || !Number.isSafeInteger(r.offset) || r.offset < 0) {
    return null;
  }
  return { epoch: r.epoch, offset: r.offset };
}
