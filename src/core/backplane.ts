/**
 * Backplanes make many hubs (processes, machines, isolates) act as one.
 *
 * A backplane is a pub/sub bus with named channels. The hub publishes each
 * emit to the channels of its target and subscribes only to channels it has
 * local interest in:
 *
 * | channel | subscribed while |
 * | ------- | ---------------- |
 * | `<prefix>all` | always (broadcasts) |
 * | `<prefix>room:<room>` | the room has a local member |
 * | `<prefix>user:<userId>` | the user has a local connection |
 * | `<prefix>client:<clientId>` | the connection is local |
 *
 * @module
 */

/** Health of a backplane, as the hub reports it. */
export interface BackplaneHealth {
  /** `true` while the backplane can publish and receive. */
  readonly ok: boolean;
  /** The last error, while not ok. */
  readonly error?: string;
}

/**
 * The seam a backplane implements. Methods may be called before `start()`
 * resolves and while the bus is down: an implementation queues or drops, and
 * reports what it dropped through a rejected `publish()`.
 */
export interface Backplane {
  /**
   * Start delivering messages of subscribed channels to `onMessage`, and health
   * changes to `onHealth`. Called once by the hub.
   */
  start(
    onMessage: (channel: string, payload: string) => void,
    onHealth: (health: BackplaneHealth) => void,
  ): Promise<void>;
  /** Publish one payload to a channel. Rejects when it could not be sent. */
  publish(channel: string, payload: string): Promise<void>;
  /** Start receiving a channel. Idempotent; restored by the backplane after an outage. */
  subscribe(channel: string): Promise<void>;
  /** Stop receiving a channel. Idempotent. */
  unsubscribe(channel: string): Promise<void>;
  /** Current health. */
  health(): BackplaneHealth;
  /** Release connections. Idempotent. */
  close(): Promise<void>;
  /**
   * Whether a shared store on the same bus may publish on its channels itself, atomically
   * with an append (see `HistoryStore.publishes`). Absent means yes. A backplane that renames
   * or shards channels (Redis Cluster) says `false`: the hub then publishes a history room's
   * messages through it after each append, and replicas put them in offset order themselves.
   */
  readonly acceptsStorePublishes?: boolean;
}

/** Counters the hub keeps about its backplane. Monotonic. */
export interface BackplaneStats {
  /** This hub's id on the bus (the `o` field of what it publishes). */
  readonly nodeId: string;
  /** Current health. */
  readonly health: BackplaneHealth;
  /** Messages published. */
  readonly published: number;
  /** Messages that could not be published (lost for other replicas). */
  readonly publishFailed: number;
  /** Messages received from other replicas and delivered locally. */
  readonly received: number;
  /** Duplicate copies skipped (one emit published to several channels). */
  readonly duplicates: number;
  /** Malformed payloads skipped. */
  readonly malformed: number;
  /** Channels this hub is subscribed to now. */
  readonly channels: number;
}

/**
 * The wire format of one message on the bus, format 1: one JSON object. Hubs read it always and
 * publish it for history entries and control commands (and for everything with
 * `backplaneFormat: 1`); a plain emit goes out in format 2 (see {@linkcode BackplaneHeader}).
 */
export interface BackplaneEnvelope {
  /** Format version: 1. */
  v: 1;
  /** Origin hub's node id. */
  o: string;
  /** Message id, unique per emit (for de-duplication across channels). */
  i: string;
  /** Target: rooms, users, clients, except (client ids), all. */
  t: { r?: string[]; u?: string[]; c?: string[]; x?: string[]; a?: 1 };
  /** The frame, as text; base64 when `b` is 1. Absent in a control command (`k`). */
  f?: string;
  /** 1 when `f` is base64 of a binary frame. */
  b?: 1;
  /**
   * A history room's entry: its offset. Then `f` is the frame up to the offset's digits (the
   * frame is `f + n + "}"`), `t.r` names exactly that room, and `e` is the stream's epoch.
   */
  n?: number;
  /** A history room's entry: its stream's epoch. */
  e?: string;
  /**
   * A control command instead of a frame, for the connections `t` names on every replica:
   * `{op: "join" | "leave", room}` or `{op: "disconnect", code, reason}`.
   */
  k?: { op: "join" | "leave"; room: string } | { op: "disconnect"; code: number; reason: string };
}

/**
 * The wire format of one emit on the bus, format 2: this header as one line of JSON, a newline
 * (`"\n"`), then the frame exactly as the hub encoded it (base64 when `b` is 1), so the frame is
 * neither escaped nor parsed on the way. With a `backplaneSecret` the whole text (header,
 * newline and frame) is signed like a format-1 envelope: `<43-char base64url MAC>.<text>`.
 *
 * @example The payload of `hub.emit("chat", { text: "hi" }, { rooms: "lobby" })`
 * ```text
 * {"v":2,"o":"<node id>","t":{"r":["lobby"]}}
 * {"type":"chat","data":{"text":"hi"},"timestamp":1764633600000}
 * ```
 */
export interface BackplaneHeader {
  /** Format version: 2. */
  v: 2;
  /** Origin hub's node id. */
  o: string;
  /**
   * Message id, present when one emit is published to several channels (a replica that
   * subscribes to more than one of them de-duplicates by it). A message on one channel
   * reaches each replica once and carries none.
   */
  i?: string;
  /** Target: rooms, users, clients, except (client ids), all. */
  t: { r?: string[]; u?: string[]; c?: string[]; x?: string[]; a?: 1 };
  /** 1 when the frame after the newline is base64 of a binary frame. */
  b?: 1;
}

/** The in-process bus behind {@linkcode MemoryBackplane}: hubs sharing one bus act as one. */
export class MemoryBus {
  readonly #subs = new Map<string, Set<MemoryBackplane>>();
  #down = false;

  /**
   * Create a backplane attached to this bus, for one hub.
   * @returns A new backplane.
   */
  connect(): MemoryBackplane {
    return new MemoryBackplane(this);
  }

  /**
   * Simulate an outage (for tests): publishes fail and nothing is delivered
   * until `down` is set back to false.
   */
  set down(value: boolean) {
    this.#down = value;
    for (const set of this.#subs.values()) for (const b of set) b._health(!value);
  }

  /** Whether the bus is simulating an outage. */
  get down(): boolean {
    return this.#down;
  }

  /** @internal */
  _publish(channel: string, payload: string): void {
    if (this.#down) throw new Error("Cannot publish: bus is down");
    const set = this.#subs.get(channel);
    if (set === undefined) return;
    for (const b of [...set]) queueMicrotask(() => b._deliver(channel, payload));
  }

  /** @internal */
  _subscribe(channel: string, b: MemoryBackplane, on: boolean): void {
    let set = this.#subs.get(channel);
    if (on) {
      if (set === undefined) this.#subs.set(channel, set = new Set());
      set.add(b);
    } else if (set !== undefined) {
      set.delete(b);
      if (set.size === 0) this.#subs.delete(channel);
    }
  }

  /** Channels with at least one subscriber (for tests of interest routing). */
  get channelCount(): number {
    return this.#subs.size;
  }
}

/**
 * A backplane over an in-process {@linkcode MemoryBus}: several hubs in one
 * process act as one. Useful in tests, and as the reference implementation.
 *
 * @example
 * ```ts
 * import { Hub, MemoryBus } from "@hubbub/hubbub";
 * const bus = new MemoryBus();
 * const a = new Hub({ backplane: bus.connect() });
 * const b = new Hub({ backplane: bus.connect() });
 * a.emit("hello", 1); // also reaches b's connections
 * await a.close();
 * await b.close();
 * ```
 */
export class MemoryBackplane implements Backplane {
  readonly #bus: MemoryBus;
  #onMessage: ((channel: string, payload: string) => void) | undefined;
  #onHealth: ((health: BackplaneHealth) => void) | undefined;
  #channels = new Set<string>();
  #closed = false;

  /**
   * Attach to a bus (prefer `bus.connect()`).
   * @param bus The bus.
   */
  constructor(bus: MemoryBus) {
    this.#bus = bus;
  }

  /** Start delivering. */
  start(
    onMessage: (channel: string, payload: string) => void,
    onHealth: (health: BackplaneHealth) => void,
  ): Promise<void> {
    this.#onMessage = onMessage;
    this.#onHealth = onHealth;
    return Promise.resolve();
  }

  /** Publish to a channel. */
  publish(channel: string, payload: string): Promise<void> {
    try {
      this.#bus._publish(channel, payload);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Subscribe to a channel. */
  subscribe(channel: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#channels.add(channel);
    this.#bus._subscribe(channel, this, true);
    return Promise.resolve();
  }

  /** Unsubscribe from a channel. */
  unsubscribe(channel: string): Promise<void> {
    this.#channels.delete(channel);
    this.#bus._subscribe(channel, this, false);
    return Promise.resolve();
  }

  /** Current health. */
  health(): BackplaneHealth {
    return this.#bus.down ? { ok: false, error: "bus is down" } : { ok: true };
  }

  /** Detach from the bus. */
  close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#channels) this.#bus._subscribe(c, this, false);
    this.#channels.clear();
    return Promise.resolve();
  }

  /** @internal */
  _deliver(channel: string, payload: string): void {
    if (!this.#closed && !this.#bus.down) this.#onMessage?.(channel, payload);
  }

  /** @internal */
  _health(ok: boolean): void {
    this.#onHealth?.(ok ? { ok: true } : { ok: false, error: "bus is down" });
  }
}
