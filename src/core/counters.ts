// What the hub counts and who watches: traffic counters by type, closes and refusals by cause,
// observers (`hub.observe()`), bounded event streams (`hub.events()`), and the `stats()`
// snapshot built from them and the registry.
import type { BackplaneStats } from "./backplane.ts";
import type { Connection } from "./connection.ts";
import type { Hooks } from "./hooks.ts";
import type { HubEvent, HubEventsOptions, HubStats, Traffic } from "./hub_stats.ts";
import type { Registry } from "./registry.ts";
import { EventStream } from "../protocol/_event_stream.ts";

/** Most distinct message types counted; more are counted as "other". */
const MAX_TYPES = 256;

/** One hub's counters and observers. */
export class Counters {
  /** Totals. */
  readonly n = {
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    emits: 0,
    opened: 0,
    closed: 0,
    rateLimited: 0,
    observerDrops: 0,
  };
  readonly #inByType = new Map<string, { messages: number; bytes: number }>();
  readonly #outByType = new Map<string, { messages: number; bytes: number }>();
  readonly #closes = new Map<string, number>();
  readonly #refused = new Map<string, number>();
  /** The observers; `size === 0` keeps the hot path free of event objects. */
  readonly observers = new Set<(event: HubEvent) => void>();
  readonly #streams = new Set<() => void>();
  readonly #hooks: Hooks;

  constructor(hooks: Hooks) {
    this.#hooks = hooks;
  }

  /** An inbound frame of `type` was accepted. */
  countIn(conn: Connection, type: string, bytes: number, at: number): void {
    bump(this.#inByType, type, 1, bytes);
    if (this.observers.size > 0) {
      this.notify({ kind: "frame", clientId: conn.id, type, bytes, at });
    }
  }

  /** An emit of `type` reached `n` connections with a frame of `size` bytes. */
  countEmit(type: string, n: number, size: number): void {
    this.n.emits++;
    this.countOut(type, n, size);
  }

  /** `n` frames of `type` (`size` bytes each) went out (an emit's, or a reply). */
  countOut(type: string, n: number, size: number): void {
    if (n === 0) return;
    this.n.messagesOut += n;
    this.n.bytesOut += n * size;
    bump(this.#outByType, type, n, n * size);
  }

  /** A connection closed, for `cause`. */
  countClose(cause: string): void {
    this.n.closed++;
    this.#closes.set(cause, (this.#closes.get(cause) ?? 0) + 1);
  }

  /** An upgrade was refused, for `cause`. */
  countRefused(cause: string): void {
    this.#refused.set(cause, (this.#refused.get(cause) ?? 0) + 1);
  }

  /** Hand `event` to every observer; a throwing or rejecting one is reported. */
  notify(event: HubEvent): void {
    for (const fn of this.observers) this.#hooks.notify(() => fn(event), "observer");
  }

  /** See `Hub.observe()`. */
  observe(fn: (event: HubEvent) => void): () => void {
    this.observers.add(fn);
    return () => void this.observers.delete(fn);
  }

  /** See `Hub.events()`: the client's bounded stream, fed by an observer. */
  events(options: HubEventsOptions): AsyncIterableIterator<HubEvent> {
    const signal = options.signal;
    const stop = () => stream.end();
    const stream: EventStream<HubEvent> = new EventStream(options.bufferSize ?? 1024, () => {
      unobserve();
      this.#streams.delete(stop);
      signal?.removeEventListener("abort", stop);
    });
    const unobserve = this.observe((event) => {
      const dropped = stream.dropped;
      stream.push(event);
      this.n.observerDrops += stream.dropped - dropped;
    });
    this.#streams.add(stop);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
    return stream;
  }

  /** End every `events()` stream (the hub is closing). */
  endStreams(): void {
    for (const stop of [...this.#streams]) stop();
  }

  /** See `Hub.stats()`. */
  snapshot(
    registry: Registry,
    topRooms: number,
    backplane: BackplaneStats,
    history: HubStats["history"] = { repairs: 0, lost: 0 },
  ): HubStats {
    const queued: number[] = [];
    let total = 0;
    for (const conn of registry.clients.values()) {
      const q = conn.queuedBytes;
      if (q > 0) {
        queued.push(q);
        total += q;
      }
    }
    queued.sort((a, b) => a - b);
    // p99 over every connection (most have nothing queued).
    const all = registry.clients.size;
    const zeros = all - queued.length;
    const index = Math.max(0, Math.ceil(0.99 * all) - 1);
    const p99 = index < zeros ? 0 : queued[index - zeros] ?? 0;
    const top: { room: string; members: number }[] = [];
    for (const [room, set] of registry.rooms) {
      if (topRooms <= 0) break;
      if (top.length < topRooms || set.size > top[top.length - 1].members) {
        top.push({ room, members: set.size });
        top.sort((a, b) => b.members - a.members);
        if (top.length > topRooms) top.pop();
      }
    }
    const n = this.n;
    return {
      connections: registry.clients.size,
      users: registry.users.size,
      rooms: registry.rooms.size,
      topRooms: top,
      connectionsOpened: n.opened,
      connectionsClosed: n.closed,
      in: { messages: n.messagesIn, bytes: n.bytesIn },
      out: { messages: n.messagesOut, bytes: n.bytesOut },
      inByType: record(this.#inByType),
      outByType: record(this.#outByType),
      emits: n.emits,
      queuedBytes: { total, max: queued.at(-1) ?? 0, p99 },
      closes: Object.fromEntries(this.#closes),
      refused: Object.fromEntries(this.#refused),
      rateLimited: n.rateLimited,
      observerDrops: n.observerDrops,
      backplane,
      history,
    };
  }
}

function bump(
  map: Map<string, { messages: number; bytes: number }>,
  type: string,
  messages: number,
  bytes: number,
): void {
  let t = map.get(type);
  if (t === undefined) {
    if (map.size >= MAX_TYPES) type = "other";
    t = map.get(type);
    if (t === undefined) map.set(type, t = { messages: 0, bytes: 0 });
  }
  t.messages += messages;
  t.bytes += bytes;
}

function record(map: Map<string, { messages: number; bytes: number }>): Record<string, Traffic> {
  const out: Record<string, Traffic> = {};
  for (const [k, v] of map) {
    // A client picks the key (its message type): "__proto__" must stay an own key.
    Object.defineProperty(out, k, {
      value: { messages: v.messages, bytes: v.bytes },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
