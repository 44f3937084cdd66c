/**
 * The history store seam: per-room streams of messages with offsets and an
 * epoch, so that a client that reconnects can recover what it missed. The
 * in-memory store here is the default (one process); a store shared by many
 * replicas (Redis) implements the same interface.
 *
 * @module
 */

import type { MemoryBus } from "./backplane.ts";

/** How much of a room's stream to keep. */
export interface HistoryPolicy {
  /**
   * Most messages kept.
   * @default {100}
   */
  maxMessages?: number;
  /**
   * Oldest message kept, in ms.
   * @default {600000 (10 minutes)}
   */
  maxAgeMs?: number;
}

/** One message of a room's stream, as it was sent. */
export interface HistoryEntry {
  /** Its offset in the room's stream (1, 2, 3, ... within an epoch). */
  readonly offset: number;
  /** The frame as sent: the envelope with `room` and `offset`. */
  readonly frame: string;
  /** When it was appended (Unix ms). */
  readonly at: number;
  /** Client ids it was not sent to (the emit's `except`): not replayed to them either. */
  readonly except?: readonly string[];
}

/** A stream's position: its epoch and latest offset (0 when empty). */
export interface HistoryPosition {
  /**
   * Changes whenever the stream is lost (a restart without the data): offsets restart. 1 to
   * 128 characters of printable ASCII without a quote or a backslash (a UUID, say): on a
   * signed bus a history entry with any other epoch is refused as malformed.
   */
  readonly epoch: string;
  /** The latest offset; every later message has a greater one. */
  readonly offset: number;
}

/** What a read returns. */
export interface HistoryRead extends HistoryPosition {
  /** The entries asked for, oldest first. */
  readonly entries: readonly HistoryEntry[];
  /**
   * For a read `after` an offset: whether every entry after it is still held (so a
   * client at that position can recover without a gap).
   */
  readonly complete: boolean;
}

/** Options for {@linkcode HistoryStore.read}. */
export interface HistoryReadOptions {
  /** Entries after this offset (exclusive). */
  after?: number;
  /** At most this many, the latest ones. */
  limit?: number;
}

/** One message to append to a room's stream (see {@linkcode HistoryStore.append}). */
export interface HistoryAppend {
  /** The frame as sent is `head + offset + "}"`: the envelope up to its offset's digits. */
  readonly head: string;
  /** Client ids it is not for (the emit's `except`): not sent nor replayed to them. */
  readonly except?: readonly string[];
  /**
   * For a store that publishes (see {@linkcode HistoryStore.publishes}): the bus message
   * to publish atomically with the append, to `channel`, as
   * `payload + offset + ',"e":' + JSON.stringify(epoch) + "}"`. Published in offset order, so
   * every replica sees the room's offsets in the order they were assigned.
   */
  readonly publish?: { readonly channel: string; readonly payload: string };
}

/** An appended entry, with its stream's epoch. */
export type HistoryAppended = HistoryEntry & { readonly epoch: string };

/**
 * Where rooms' streams live. Every method may answer synchronously (a memory
 * store) or with a promise (a store over the network); a failure is a thrown
 * error or a rejection, which the hub reports as `UNAVAILABLE`.
 */
export interface HistoryStore {
  /**
   * Whether `append` publishes `message.publish` itself, atomically with the append (a store
   * shared by replicas, such as Redis). Otherwise the hub publishes after the append, and
   * replicas put a room's offsets back in order themselves.
   */
  readonly publishes?: boolean;
  /**
   * Append one message to `room`'s stream, atomically assigning the next offset (one more
   * than the stream's latest; 1 in a new stream, which gets a new epoch). Trims by `policy`.
   */
  append(
    room: string,
    message: HistoryAppend,
    policy: Required<HistoryPolicy>,
  ): HistoryAppended | Promise<HistoryAppended>;
  /** Read `room`'s stream (trimmed by `policy` first). */
  read(
    room: string,
    options: HistoryReadOptions,
    policy: Required<HistoryPolicy>,
  ): HistoryRead | Promise<HistoryRead>;
}

/** Options for {@linkcode MemoryHistoryStore}. */
export interface MemoryHistoryStoreOptions {
  /**
   * Unix ms now (inject a manual clock in tests).
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Replicas in one process (tests, or several hubs on one {@linkcode MemoryBus}): the store
   * publishes each append to this bus itself, in offset order, like a Redis store does.
   */
  bus?: MemoryBus;
}

interface Stream {
  epoch: string;
  last: number;
  entries: HistoryEntry[];
  /** When it was created (an empty stream lives at most maxAgeMs). */
  created: number;
}

/**
 * Rooms' streams in this process's memory: the default store. Offsets are
 * assigned synchronously, so delivery stays synchronous too. Each hub process
 * has its own, so it cannot serve replicas behind a backplane (the hub refuses
 * that combination): use a shared store there.
 *
 * - A stream gets a random epoch when it is created; its offsets then increase
 *   by one per message. It is trimmed by count and age on every append and read.
 * - A stream with nothing left in it after trimming is dropped; the next message
 *   starts a new one with a new epoch, so a client never sees offsets restart
 *   silently (it gets `recovered: false`).
 *
 * @example
 * ```ts
 * import { Hub, MemoryHistoryStore } from "@hubbub/hubbub";
 * const hub = new Hub({
 *   history: (room) => room.startsWith("chat:") ? { maxMessages: 100, maxAgeMs: 600_000 } : undefined,
 *   historyStore: new MemoryHistoryStore(),
 * });
 * await hub.close();
 * ```
 */
export class MemoryHistoryStore implements HistoryStore {
  readonly #streams = new Map<string, Stream>();
  readonly #now: () => number;
  readonly #bus: MemoryBus | undefined;
  /** Whether appends are published to the store's bus (see the `bus` option). */
  readonly publishes: boolean;

  /**
   * Create an empty store.
   * @param options See {@linkcode MemoryHistoryStoreOptions}.
   */
  constructor(options: MemoryHistoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#bus = options.bus;
    this.publishes = options.bus !== undefined;
  }

  /** Rooms with a stream. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * See {@linkcode HistoryStore.append}.
   * @param room The room.
   * @param message The frame's head, its `except`, what to publish.
   * @param policy Bounds.
   * @returns The entry, with the stream's epoch.
   */
  append(room: string, message: HistoryAppend, policy: Required<HistoryPolicy>): HistoryAppended {
    const now = this.#now();
    let stream = this.#trimmed(room, policy, now);
    if (stream === undefined) {
      stream = { epoch: crypto.randomUUID(), last: 0, entries: [], created: now };
      this.#streams.set(room, stream);
    }
    const offset = stream.last + 1;
    const except = message.except;
    const frame = message.head + offset + "}";
    const entry: HistoryEntry = except === undefined || except.length === 0
      ? { offset, frame, at: now }
      : { offset, frame, at: now, except };
    stream.last = offset;
    stream.entries.push(entry);
    if (stream.entries.length > policy.maxMessages) stream.entries.shift();
    const publish = message.publish;
    if (this.#bus !== undefined && publish !== undefined) {
      const payload = publish.payload + offset + ',"e":' + JSON.stringify(stream.epoch) + "}";
      try {
        this.#bus._publish(publish.channel, payload);
      } catch {
        // The bus is down: stored, and other replicas repair from the store (a gap).
      }
    }
    return { ...entry, epoch: stream.epoch };
  }

  /**
   * See {@linkcode HistoryStore.read}.
   * @param room The room.
   * @param options After an offset, at most a limit.
   * @param policy Bounds.
   * @returns The position and entries.
   */
  read(room: string, options: HistoryReadOptions, policy: Required<HistoryPolicy>): HistoryRead {
    const now = this.#now();
    const stream = this.#trimmed(room, policy, now);
    if (stream === undefined) {
      // No stream: start one (its epoch is the position a subscriber is given), empty.
      const fresh: Stream = { epoch: crypto.randomUUID(), last: 0, entries: [], created: now };
      this.#streams.set(room, fresh);
      return { epoch: fresh.epoch, offset: 0, entries: [], complete: options.after === 0 };
    }
    let entries = stream.entries;
    let complete = true;
    if (options.after !== undefined) {
      const after = options.after;
      const first = entries.length > 0 ? entries[0].offset : stream.last + 1;
      complete = after >= first - 1 && after <= stream.last;
      entries = entries.filter((e) => e.offset > after);
    }
    if (options.limit !== undefined && entries.length > options.limit) {
      entries = entries.slice(entries.length - options.limit);
    }
    return { epoch: stream.epoch, offset: stream.last, entries: [...entries], complete };
  }

  /**
   * The stream, trimmed by age. One with nothing left that is older than maxAgeMs is
   * dropped (undefined): memory stays bounded by the streams that hold something, and its
   * next message starts a new epoch, which clients learn as `recovered: false`.
   */
  #trimmed(room: string, policy: Required<HistoryPolicy>, now: number): Stream | undefined {
    const stream = this.#streams.get(room);
    if (stream === undefined) return undefined;
    const oldest = now - policy.maxAgeMs;
    let drop = 0;
    while (drop < stream.entries.length && stream.entries[drop].at < oldest) drop++;
    if (drop > 0) stream.entries.splice(0, drop);
    if (stream.entries.length === 0 && (drop > 0 || stream.created < oldest)) {
      this.#streams.delete(room);
      return undefined;
    }
    return stream;
  }
}
