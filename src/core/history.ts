// History and recovery in the hub: which rooms keep a stream (the app's `history` option), how a
// message to such a room is appended and delivered with its `room` and `offset`, what a
// (recovering) subscriber is sent, and `history` requests. Delivery per room is in offset order:
// a subscriber that recovers gets `subscribed`, then every message after its position, then the
// live ones, with frames that arrive meanwhile held back and de-duplicated by offset.
import type { Connection } from "./connection.ts";
import type {
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
  HistoryMessage,
  HubHistory,
  HubHistoryOptions,
  PublishOptions,
  PublishResult,
} from "./hub_options.ts";
import type { Target } from "../protocol/target.ts";
import { utf8Length } from "../protocol/envelope.ts";
import { isThenable } from "./hooks.ts";
import { kDeliver, kState, settleState, stateOf } from "./_internal.ts";

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

/** What the history part is made with. */
export interface HistoryOptions {
  option: HistoryOption;
  store: HistoryStore;
  registry: Registry;
  hooks: Hooks;
  counters: Counters;
  bridge: BackplaneBridge;
  /** Charge the sender of the frame being handled for deliveries (the fan-out budget). */
  charge(deliveries: number): void;
}

/** One hub's history part. */
export class History {
  readonly #option: HistoryOption;
  readonly #store: HistoryStore;
  readonly #registry: Registry;
  readonly #hooks: Hooks;
  readonly #counters: Counters;
  readonly #bridge: BackplaneBridge;
  readonly #charge: (deliveries: number) => void;
  /** Per room, the tail of appends in flight (an async store): delivery stays in order. */
  readonly #tails = new Map<string, Promise<unknown>>();

  constructor(o: HistoryOptions) {
    this.#option = o.option;
    this.#store = o.store;
    this.#registry = o.registry;
    this.#hooks = o.hooks;
    this.#counters = o.counters;
    this.#bridge = o.bridge;
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
        p.then((r) => this.#sent(type, room, r, except), (e) => this.#hooks.report(e, "emit"));
      } else {
        this.#sent(type, room, p, except);
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

  /** See `Hub.publish()`: stored, then delivered (here and, through the bridge, elsewhere). */
  async publish(
    room: string,
    policy: Required<HistoryPolicy>,
    frame: string,
    type: string,
    except: PublishOptions["except"],
  ): Promise<PublishResult> {
    const ids = except === undefined ? undefined : exceptIds(except);
    const p = await this.#append(room, policy, frame, ids);
    this.#bridge.publish(p.frame, { rooms: room, except: ids });
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

  /** An emit's frame for one history room went out: to other replicas, counted, charged. */
  #sent(type: string, room: string, p: Published, except: readonly string[] | undefined): void {
    this.#bridge.publish(p.frame, { rooms: room, except });
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
   * Append a message to `room`'s stream and deliver it to the room's members (but `except`).
   * Synchronous with a synchronous store; otherwise a promise, delivered in offset order.
   * @param frame The envelope as encoded (without room and offset).
   */
  #append(
    room: string,
    policy: Required<HistoryPolicy>,
    frame: string,
    except: readonly string[] | undefined,
  ): Published | Promise<Published> {
    const head = frame.slice(0, -1) + ',"room":' + JSON.stringify(room) + ',"offset":';
    const appended = () =>
      this.#store.append(room, except === undefined ? { head } : { head, except }, policy);
    const tail = this.#tails.get(room);
    if (tail === undefined) {
      const entry = appended();
      if (!isThenable(entry)) return this.#deliver(room, entry, except);
      return this.#chain(room, entry.then((e) => this.#deliver(room, e, except)));
    }
    // An append is in flight for this room: go after it, so offsets are delivered in order.
    return this.#chain(
      room,
      tail.then(() => appended()).then((e) => this.#deliver(room, e, except)),
    );
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
    (state.recovering ??= new Map()).set(room, held);
    const done = (read: HistoryRead) => {
      state.recovering?.delete(room);
      settleState(conn);
      if (conn.state !== "open") return;
      const recovered = recover !== undefined && recover.epoch === read.epoch && read.complete;
      reply({
        room,
        epoch: read.epoch,
        offset: read.offset,
        ...(recover === undefined ? {} : { recovered }),
      });
      let last = recover !== undefined && recovered ? recover.offset : read.offset;
      if (recovered) {
        for (const e of read.entries) {
          if (!e.except?.includes(conn.id)) conn[kDeliver](e.frame);
          last = e.offset;
        }
      }
      for (const e of held) {
        if (e.offset > last) {
          conn[kDeliver](e.frame);
          last = e.offset;
        }
      }
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
    if (!isThenable(read)) {
      done(read);
      return;
    }
    return read.then(done, failed);
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

  #chain(room: string, p: Promise<Published>): Promise<Published> {
    const settled = p.then(() => {}, () => {});
    this.#tails.set(room, settled);
    settled.then(() => {
      if (this.#tails.get(room) === settled) this.#tails.delete(room);
    });
    return p;
  }

  /** Deliver an appended entry to the room's members, holding it for those recovering. */
  #deliver(
    room: string,
    entry: HistoryEntry & { readonly epoch: string },
    except: readonly string[] | undefined,
  ): Published {
    let delivered = 0;
    const members = this.#registry.rooms.get(room);
    if (members !== undefined) {
      for (const conn of members) {
        if (except !== undefined && except.includes(conn.id)) continue;
        const held = conn[kState]?.recovering?.get(room);
        if (held !== undefined) {
          held.push(entry);
          delivered++;
        } else if (conn[kDeliver](entry.frame)) delivered++;
      }
    }
    return { epoch: entry.epoch, offset: entry.offset, delivered, frame: entry.frame };
  }
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
