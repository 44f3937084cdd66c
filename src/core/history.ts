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
import { isThenable } from "./hooks.ts";
import { kDeliver, kState, stateOf } from "./_internal.ts";

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

/** One hub's history part. */
export class History {
  readonly #option: HistoryOption;
  readonly #store: HistoryStore;
  readonly #registry: Registry;
  readonly #hooks: Hooks;
  /** Per room, the tail of appends in flight (an async store): delivery stays in order. */
  readonly #tails = new Map<string, Promise<unknown>>();

  constructor(option: HistoryOption, store: HistoryStore, registry: Registry, hooks: Hooks) {
    this.#option = option;
    this.#store = store;
    this.#registry = registry;
    this.#hooks = hooks;
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
   * Append an emit to `room`'s stream and deliver it to the room's members (but `except`).
   * Synchronous with a synchronous store; otherwise a promise, delivered in offset order.
   * @param frame The envelope as encoded (without room and offset).
   */
  publish(
    room: string,
    policy: Required<HistoryPolicy>,
    frame: string,
    except: readonly string[] | undefined,
  ): Published | Promise<Published> {
    const head = frame.slice(0, -1) + ',"room":' + JSON.stringify(room) + ',"offset":';
    const appended = () => this.#store.append(room, (n) => head + n + "}", policy, except);
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
