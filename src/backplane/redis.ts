/**
 * A Redis pub/sub backplane: hubs in many processes and on many machines act
 * as one hub.
 *
 * Bring your own Redis client: this module never imports one, so
 * `@hubbub/hubbub` has no Redis dependency. {@linkcode redisBackplane} takes
 * the `createClient` of the [`redis`](https://www.npmjs.com/package/redis)
 * package (node-redis v5 or later; tested with 6.3) and makes the two connections it needs;
 * {@linkcode RedisBackplane} takes two clients the app already has.
 *
 * Outages heal by themselves: both connections reconnect with backoff, and
 * every channel the hub holds is subscribed again on the new connection
 * (the backplane does not rely on the client library to restore them).
 * During an outage, publishes fail at once (the hub counts them in
 * `backplaneStats().publishFailed`) and local delivery goes on.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { redisBackplane } from "@hubbub/hubbub/redis";
 *
 * const hub = new Hub({
 *   backplane: redisBackplane({ url: "redis://127.0.0.1:6379", createClient }),
 * });
 * await hub.ready; // connected and subscribed to broadcasts (or red: see hub.backplaneHealth)
 * ```
 *
 * @module
 */

import type { Backplane, BackplaneHealth } from "../core/backplane.ts";
import { checkFactory, connectionDefaults, release } from "./_redis_connect.ts";
import type {
  RedisClientOptionsLike,
  RedisConnectionLike,
  RedisConnectionTiming,
} from "./_redis_types.ts";
export type { RedisClientOptionsLike, RedisConnectionLike, RedisConnectionTiming };

/** A pub/sub message listener, as node-redis calls it: the message, then the channel. */
export type RedisMessageListener = (message: string, channel: string) => void;

/** A client that publishes (node-redis `publish(channel, message)`). */
export interface RedisPublisherLike extends RedisConnectionLike {
  /** Publish a message to a channel. */
  publish(channel: string, message: string): Promise<unknown>;
}

/**
 * A client dedicated to subscriptions (in Redis, a subscribed connection can
 * run nothing else). Shaped like node-redis `subscribe` / `unsubscribe` with
 * a listener.
 */
export interface RedisSubscriberLike extends RedisConnectionLike {
  /** Subscribe to channels, registering `listener` for them. */
  subscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown>;
  /** Remove `listener` from channels; a channel with no listener left is unsubscribed. */
  unsubscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown>;
}

/** Options for {@linkcode RedisBackplane}. */
export interface RedisBackplaneOptions {
  /**
   * Close both clients in `close()`. Leave false for clients the app owns
   * (the backplane then only unsubscribes and removes its listeners).
   * @default {false}
   */
  ownClients?: boolean;
  /**
   * How long `start()` (and so `hub.ready`) waits for both connections before
   * it resolves anyway with red health; the backplane keeps connecting.
   * It also resolves early on the first connection error.
   * @default {5000}
   */
  startTimeoutMs?: number;
  /**
   * Liveness probe: every `probeIntervalMs` the backplane publishes a probe to
   * its own probe channel (`<channelPrefix>probe:<random id>`, never delivered
   * to the hub) and expects it back on its subscriber. `0` turns probes off
   * (health then reflects connection errors only).
   * @default {2000}
   */
  probeIntervalMs?: number;
  /**
   * How long a probe may take to come back (ms). Past it, health turns red
   * (`subscriber: no probe back within … ms`, or `publisher: …` when the
   * probe's PUBLISH got no reply) and that connection is dropped and made
   * again (`destroy()` then `connect()`; every channel is subscribed again);
   * health is green once a probe comes back. A subscription that stops
   * delivering is caught within `probeIntervalMs + probeTimeoutMs` (7 s by
   * default).
   * @default {5000}
   */
  probeTimeoutMs?: number;
  /**
   * The hub's `channelPrefix`; only used to name the probe channel.
   * @default {"hubbub:"}
   */
  channelPrefix?: string;
  /**
   * Coalesce what is published on one channel within one event-loop turn
   * into one Redis message (see {@linkcode RedisBackplane}, "Batches").
   * Set `false` while replicas older than batching (which cannot read
   * batches) still share the bus; every replica reads both forms.
   * @default {true}
   */
  coalesce?: boolean;
  /**
   * Longest batch (total string length of its payloads); a channel whose
   * batch would grow past it is published at once and a new batch begun.
   * @default {524288}
   */
  maxBatchLength?: number;
  /**
   * Whether a store on the same Redis may publish on this backplane's channels itself (see
   * `Backplane.acceptsStorePublishes`). `redisClusterBackplane` sets `false`: its channels are
   * sharded and renamed, so the hub publishes history messages through it instead.
   * @default {true}
   */
  acceptsStorePublishes?: boolean;
}

/** What {@linkcode redisBackplane} needs from a created client: both roles in one. */
export type RedisClientLike = RedisPublisherLike & RedisSubscriberLike;

/** Options for {@linkcode redisBackplane}. */
export interface RedisConnectOptions {
  /** The Redis URL, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host:6380/0`. */
  url: string;
  /**
   * The `createClient` of the `redis` package (node-redis v5 or later). Called
   * twice: one publisher, one dedicated subscriber. Wrap it to add options:
   * `createClient: (o) => createClient({ ...o, name: "hub" })`.
   */
  createClient: (options: RedisClientOptionsLike) => RedisClientLike;
  /**
   * Longest wait between reconnect attempts (ms). Attempts start 50 ms after
   * a failure and double up to this, plus up to 100 ms of jitter.
   * @default {1000}
   */
  maxReconnectDelayMs?: number;
  /**
   * How long one connect attempt may take (ms).
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /**
   * How long `start()` waits for both connections before resolving with red health.
   * @default {5000}
   */
  startTimeoutMs?: number;
  /** See {@linkcode RedisBackplaneOptions.probeIntervalMs}. @default {2000} */
  probeIntervalMs?: number;
  /** See {@linkcode RedisBackplaneOptions.probeTimeoutMs}. @default {5000} */
  probeTimeoutMs?: number;
  /** See {@linkcode RedisBackplaneOptions.channelPrefix}. @default {"hubbub:"} */
  channelPrefix?: string;
  /** See {@linkcode RedisBackplaneOptions.coalesce}. @default {true} */
  coalesce?: boolean;
  /** See {@linkcode RedisBackplaneOptions.maxBatchLength}. @default {524288} */
  maxBatchLength?: number;
}

/**
 * Create a Redis backplane with two new node-redis connections (a publisher
 * and a dedicated subscriber), opened by the hub and closed by `hub.close()`.
 *
 * Reconnect timing: the first attempt is made 50 ms after a connection is
 * lost, then 100, 200, 400 ms... up to `maxReconnectDelayMs` (1 s by
 * default), each plus 0–100 ms of jitter, forever. Health turns red at the
 * first error and ok once both connections are ready and every held channel
 * is subscribed again: within about `maxReconnectDelayMs` + 100 ms of Redis
 * coming back (measured: 0.15–0.4 s after a short outage, 0.9 s after a 5 s one).
 *
 * @param options URL, `createClient`, timing.
 * @returns A backplane for one hub.
 * @throws {TypeError} If `url` is not a string or `createClient` is not a function.
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { redisBackplane } from "@hubbub/hubbub/redis";
 *
 * const hub = new Hub({
 *   backplane: redisBackplane({ url: "redis://127.0.0.1:6379", createClient }),
 * });
 * ```
 */
export function redisBackplane(options: RedisConnectOptions): RedisBackplane {
  const { url, createClient } = options;
  checkFactory("backplane", url, createClient, "createClient");
  const clientOptions: RedisClientOptionsLike = { url, ...connectionDefaults(options) };
  return new RedisBackplane(createClient(clientOptions), createClient(clientOptions), {
    ownClients: true,
    startTimeoutMs: options.startTimeoutMs,
    probeIntervalMs: options.probeIntervalMs,
    probeTimeoutMs: options.probeTimeoutMs,
    channelPrefix: options.channelPrefix,
    coalesce: options.coalesce,
    maxBatchLength: options.maxBatchLength,
  });
}

interface Side {
  readonly name: "publisher" | "subscriber";
  readonly client: RedisConnectionLike;
  connected: boolean;
  readonly listeners: [string, (arg?: unknown) => void][];
}

/** The payloads published on one channel in this event-loop turn, sent as one message. */
interface Batch {
  readonly payloads: string[];
  length: number;
  readonly promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A probe sent and not yet seen back. */
interface Probe {
  readonly seq: number;
  /** The probe channel it was sent on (one per shard on a cluster). */
  readonly channel: string;
  readonly sentAt: number;
  /** The PUBLISH reply arrived (with this many receivers). */
  receivers: number | undefined;
}

/** A subscriber that names one probe channel per shard (the cluster client). */
interface ProbeChannels {
  probeChannels?(base: string): string[];
}

/**
 * The first characters of a batch of format version 1. No single hub payload
 * starts with `!` (they are JSON objects, `{…`, or a base64url MAC, then `.`).
 */
export const REDIS_BATCH_PREFIX = "!b1\n";

/**
 * Encode payloads as one batch message (format version 1): `!b1\n`, then for
 * each payload in order its length (JavaScript `string.length`, UTF-16 code
 * units, in decimal), `:`, and the payload itself. `["{\"a\":1}", "x"]` is
 * `"!b1\n7:{\"a\":1}1:x"`.
 *
 * @param payloads The payloads, in order (any strings).
 * @returns The batch message.
 */
export function encodeRedisBatch(payloads: readonly string[]): string {
  let s = REDIS_BATCH_PREFIX;
  for (let i = 0; i < payloads.length; i++) s += payloads[i].length + ":" + payloads[i];
  return s;
}

/**
 * Decode one Redis message into its payloads, in order: a batch (see
 * {@linkcode encodeRedisBatch}) into each payload, anything not starting with
 * `!` as one payload (a replica that does not batch). What cannot be decoded
 * (another batch version, a bad length) is handed on as one payload, as is,
 * so that the receiver counts it as malformed instead of it vanishing.
 *
 * @param message A message as read from Redis.
 * @param each Called with every payload, in order.
 */
export function decodeRedisBatch(message: string, each: (payload: string) => void): void {
  if (message.charCodeAt(0) !== 33 /* ! */ || !message.startsWith(REDIS_BATCH_PREFIX)) {
    each(message);
    return;
  }
  const end = message.length;
  let i = REDIS_BATCH_PREFIX.length;
  while (i < end) {
    let n = 0;
    let j = i;
    for (; j < end; j++) {
      const c = message.charCodeAt(j);
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
    }
    const start = j + 1;
    if (
      j === i || j - i > 15 || j >= end || message.charCodeAt(j) !== 58 /* : */ ||
      start + n > end
    ) {
      each(message.slice(i));
      return;
    }
    each(message.slice(start, start + n));
    i = start + n;
  }
}

// setImmediate runs after the I/O callbacks of this turn (every message of one socket read);
// a microtask would run after each of them on Bun and batch nothing. Looked up untyped: the
// module type-checks without Node's types (setImmediate is not in the DOM lib).
const timers = globalThis as unknown as {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
};
const later: (fn: () => void) => unknown = typeof timers.setImmediate === "function"
  ? timers.setImmediate.bind(globalThis)
  : (fn) => setTimeout(fn, 0);
const cancelLater: (handle: unknown) => void = typeof timers.clearImmediate === "function"
  ? timers.clearImmediate.bind(globalThis)
  : (h) => clearTimeout(h as ReturnType<typeof setTimeout>);

/**
 * A {@linkcode Backplane} over Redis pub/sub, on two clients: one publishes,
 * one is dedicated to subscriptions.
 *
 * - **Channels**: the hub's channel names are Redis channel names as is
 *   (`hubbub:all`, `hubbub:room:<room>`...). Use the hub's `channelPrefix`
 *   to share one Redis between apps.
 * - **Batches**: what is published on one channel within one event-loop
 *   turn (until `setImmediate` runs) goes out as one Redis message, and the
 *   channels of one turn are pipelined (one write); order per channel is
 *   kept. A turn's single payload goes out as is. Several become a batch,
 *   format version 1, `!b1\n` then `<length>:<payload>` per payload (see
 *   {@linkcode encodeRedisBatch}); the receiving replica decodes it once and
 *   hands the hub each payload in order. Every replica reads both forms, so
 *   replicas from before batching can publish to this one; they cannot read
 *   batches: until they are gone, set `coalesce: false`. A failed batch
 *   rejects the `publish()` promise of every payload in it.
 * - **Liveness**: every `probeIntervalMs` (2 s) a probe is published to the
 *   backplane's own channel (`<channelPrefix>probe:<random id>`, never handed
 *   to the hub) and must come back within `probeTimeoutMs` (5 s). If not,
 *   health turns red (`subscriber: no probe back within 5000 ms`; or
 *   `publisher: …` when the PUBLISH itself got no reply), and that connection
 *   is dropped and made again (`destroy()`, `connect()`; every held channel
 *   is subscribed again); health is ok again once a probe comes back. So a
 *   subscription that stops delivering while its TCP connection stays open
 *   (a proxy, a load balancer, a failover) is red within 7 s and healed.
 *   Clients without `destroy()` and `connect()` stay red until a probe
 *   returns.
 * - **Health**: red with the error text at the first error or disconnect of
 *   either client, or a probe not back in time; ok again once both are
 *   ready, every held channel is subscribed again, and (after a stall) a
 *   probe came back.
 * - **Outages**: on every (re)connect of the subscriber, each channel held is
 *   unsubscribed and subscribed again on the new connection, with one shared
 *   listener (never two deliveries of a message); channels dropped during the
 *   outage are not restored. Messages on channels not held are ignored.
 * - **Publishing**: while the publisher is not ready, `publish()` rejects at
 *   once (nothing is queued); a publish in flight when the connection drops
 *   rejects when the client notices.
 * - **close()**: publishes what is batched, unsubscribes and removes its
 *   listeners; closes both clients when it owns them (`ownClients`).
 *   Idempotent.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { RedisBackplane } from "@hubbub/hubbub/redis";
 *
 * const publisher = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
 * const subscriber = publisher.duplicate();
 * publisher.on("error", (e) => console.error("redis", e));
 * await Promise.all([publisher.connect(), subscriber.connect()]);
 * const hub = new Hub({ backplane: new RedisBackplane(publisher, subscriber) });
 * ```
 */
export class RedisBackplane implements Backplane {
  /** See {@linkcode RedisBackplaneOptions.acceptsStorePublishes}. */
  readonly acceptsStorePublishes: boolean;
  readonly #pub: RedisPublisherLike;
  readonly #sub: RedisSubscriberLike;
  readonly #own: boolean;
  readonly #startTimeoutMs: number;
  readonly #sides: Side[];
  /** Channels the hub wants. */
  readonly #held = new Set<string>();
  /** Channels that may have our listener registered in the client library. */
  readonly #registered = new Set<string>();
  #onMessage: ((channel: string, payload: string) => void) | undefined;
  #onHealth: ((health: BackplaneHealth) => void) | undefined;
  #health: BackplaneHealth = { ok: false, error: "not started" };
  #lastError: string | undefined;
  #downError: Error | undefined;
  /** The subscriber is connected and every held channel has been subscribed on this connection. */
  #synced = false;
  #syncEpoch = 0;
  #started = false;
  #closed = false;
  #settleStart: (() => void) | undefined;
  // Batches
  readonly #coalesce: boolean;
  readonly #maxBatch: number;
  #pending = new Map<string, Batch>();
  #flushHandle: unknown;
  #flushScheduled = false;
  // Liveness
  readonly #probeChannel: string;
  /** The probe channels of the current subscriber connection (one, or one per shard). */
  #probeChannels: string[] = [];
  readonly #probeEvery: number;
  readonly #probeTimeout: number;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #probeDeadline: ReturnType<typeof setTimeout> | undefined;
  #probes: Probe[] = [];
  #probeSeq = 0;
  /** Why the last probe failed, until one comes back. */
  #stalled: string | undefined;
  readonly #listener: RedisMessageListener = (message, channel) => {
    if (this.#probeChannels.includes(channel)) {
      this.#probeBack(channel, message);
      return;
    }
    const on = this.#onMessage;
    if (on === undefined || !this.#held.has(channel)) return;
    if (message.charCodeAt(0) !== 33 /* ! */) on(channel, message);
    else decodeRedisBatch(message, (payload) => on(channel, payload));
  };
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    this.#flushHandle = undefined;
    const pending = this.#pending;
    if (pending.size === 0) return;
    this.#pending = new Map();
    for (const [channel, batch] of pending) this.#send(channel, batch);
  };

  /**
   * Use two clients the app already has. Clients not open yet
   * (`isOpen === false`) are connected by `start()`.
   *
   * @param publisher Publishes; may be shared with the app.
   * @param subscriber Dedicated to this backplane's subscriptions (dropped and
   *   made again with `destroy()` and `connect()` when its subscription stalls).
   * @param options Ownership, start timeout, probes, batches.
   * @throws {TypeError} If both are the same client (a subscribed Redis connection cannot publish).
   */
  constructor(
    publisher: RedisPublisherLike,
    subscriber: RedisSubscriberLike,
    options: RedisBackplaneOptions = {},
  ) {
    if ((publisher as unknown) === subscriber) {
      throw new TypeError("Cannot create backplane: the subscriber must be a dedicated client");
    }
    this.#pub = publisher;
    this.#sub = subscriber;
    this.#own = options.ownClients ?? false;
    this.acceptsStorePublishes = options.acceptsStorePublishes ?? true;
    this.#startTimeoutMs = options.startTimeoutMs ?? 5000;
    this.#coalesce = options.coalesce ?? true;
    this.#maxBatch = options.maxBatchLength ?? 512 * 1024;
    this.#probeEvery = options.probeIntervalMs ?? 2000;
    this.#probeTimeout = options.probeTimeoutMs ?? 5000;
    if (!(this.#probeEvery >= 0) || !(this.#probeTimeout > 0)) {
      throw new TypeError(
        "Cannot create backplane: probeIntervalMs must be >= 0 and probeTimeoutMs > 0",
      );
    }
    this.#probeChannel = (options.channelPrefix ?? "hubbub:") + "probe:" + crypto.randomUUID();
    this.#sides = [
      { name: "publisher", client: publisher, connected: false, listeners: [] },
      { name: "subscriber", client: subscriber, connected: false, listeners: [] },
    ];
  }

  /**
   * Connect (when needed) and start delivering. Resolves once both clients
   * are ready and subscribed, or at the first connection error, or after
   * `startTimeoutMs`: it never rejects for an outage (health tells), and the
   * backplane keeps reconnecting.
   *
   * @param onMessage Called with each message of a held channel.
   * @param onHealth Called when health changes.
   * @returns A promise that resolves when started (see above).
   * @throws {Error} If called twice or after `close()` (as a rejected promise).
   */
  start(
    onMessage: (channel: string, payload: string) => void,
    onHealth: (health: BackplaneHealth) => void,
  ): Promise<void> {
    if (this.#started || this.#closed) {
      return Promise.reject(new Error("Cannot start backplane: already started or closed"));
    }
    this.#started = true;
    this.#onMessage = onMessage;
    this.#onHealth = onHealth;
    // Not Promise.withResolvers: Node 20 has none.
    let resolve!: () => void;
    const promise = new Promise<void>((r) => resolve = r);
    const timer = setTimeout(() => this.#settleStart?.(), this.#startTimeoutMs);
    this.#settleStart = () => {
      clearTimeout(timer);
      this.#settleStart = undefined;
      resolve();
    };
    if (this.#probeEvery > 0) {
      this.#probeTimer = setInterval(() => this.#probe(), this.#probeEvery);
    }
    for (const side of this.#sides) this.#attach(side);
    this.#lastError = "connecting";
    this.#update();
    return promise;
  }

  /**
   * Publish one payload. Rejects at once while the publisher is not ready.
   * With `coalesce` (the default), payloads of one channel published in the
   * same event-loop turn go out together as one Redis message, and share
   * one promise.
   *
   * @param channel The channel.
   * @param payload The message.
   * @returns A promise that resolves once Redis accepted it.
   */
  publish(channel: string, payload: string): Promise<void> {
    if (!this.#sides[0].connected) return Promise.reject(this.#publisherDown());
    if (!this.#coalesce) return this.#publishNow(channel, payload);
    let batch = this.#pending.get(channel);
    if (batch !== undefined && batch.length + payload.length > this.#maxBatch) {
      this.#pending.delete(channel);
      this.#send(channel, batch);
      batch = undefined;
    }
    if (batch === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { payloads: [], length: 0, promise, resolve, reject };
      this.#pending.set(channel, batch);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        this.#flushHandle = later(this.#flush);
      }
    }
    batch.payloads.push(payload);
    batch.length += payload.length;
    return batch.promise;
  }

  /**
   * Hold a channel: subscribed now if connected, and again after every reconnect.
   *
   * @param channel The channel.
   * @returns A promise that resolves once subscribed, or held until the connection returns.
   */
  subscribe(channel: string): Promise<void> {
    if (this.#closed || this.#held.has(channel)) return Promise.resolve();
    this.#held.add(channel);
    if (!this.#sides[1].connected) return Promise.resolve();
    this.#registered.add(channel);
    return this.#command(() => this.#sub.subscribe(channel, this.#listener));
  }

  /**
   * Drop a channel (also from what is restored after an outage).
   *
   * @param channel The channel.
   * @returns A promise that resolves once unsubscribed (or at once while disconnected).
   */
  unsubscribe(channel: string): Promise<void> {
    if (!this.#held.delete(channel) || !this.#sides[1].connected) return Promise.resolve();
    this.#registered.delete(channel);
    return this.#command(() => this.#sub.unsubscribe(channel, this.#listener));
  }

  /**
   * Current health.
   * @returns `{ ok: true }`, or `{ ok: false, error }` while down.
   */
  health(): BackplaneHealth {
    return this.#health;
  }

  /** Channels held now (restored after each reconnect; the probe channel not counted). */
  get channels(): number {
    return this.#held.size;
  }

  /**
   * The channel this backplane's liveness probes travel on (on a cluster, the base of one
   * channel per shard: `<this>:{<tag>}`).
   */
  get probeChannel(): string {
    return this.#probeChannel;
  }

  /**
   * Stop: publish what is batched, unsubscribe, remove listeners, and close
   * both clients if owned. Idempotent.
   * @returns A promise that resolves once the clients are released.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#flushScheduled) {
      cancelLater(this.#flushHandle);
      this.#flush();
    }
    this.#closed = true;
    this.#syncEpoch++;
    this.#settleStart?.();
    clearInterval(this.#probeTimer);
    this.#resetProbes();
    const held = [...this.#registered];
    this.#held.clear();
    this.#registered.clear();
    const subConnected = this.#sides[1].connected;
    for (const side of this.#sides) {
      for (const [event, fn] of side.listeners) side.client.off(event, fn);
      side.listeners.length = 0;
      side.connected = false;
    }
    this.#lastError = "closed";
    this.#downError = undefined;
    this.#update();
    if (!this.#own) {
      if (subConnected && held.length > 0) {
        await this.#sub.unsubscribe(held, this.#listener).catch(() => {});
      }
      return;
    }
    await Promise.all(this.#sides.map((side) => release(side.client)));
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #publisherDown(): Error {
    return this.#downError ??= new Error(
      `Cannot publish: redis publisher is ${this.#closed ? "closed" : "down"}` +
        (this.#lastError !== undefined ? ` (${this.#lastError})` : ""),
    );
  }

  #publishNow(channel: string, message: string): Promise<void> {
    try {
      return this.#pub.publish(channel, message) as Promise<void>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Publish one channel's batch: alone as is, several (or one starting with `!`) encoded. */
  #send(channel: string, batch: Batch): void {
    if (!this.#sides[0].connected) {
      batch.reject(this.#publisherDown());
      return;
    }
    const p = batch.payloads;
    const message = p.length === 1 && p[0].charCodeAt(0) !== 33 ? p[0] : encodeRedisBatch(p);
    this.#publishNow(channel, message).then(batch.resolve, batch.reject);
  }

  #attach(side: Side): void {
    const on = (event: string, fn: (arg?: unknown) => void) => {
      side.client.on(event, fn);
      side.listeners.push([event, fn]);
    };
    // Owned clients keep a no-op error listener for good: an EventEmitter
    // without one throws, and a client may still report an error while closing.
    if (this.#own) side.client.on("error", noop);
    on("ready", () => this.#up(side));
    on("error", (error) => this.#down(side, error));
    on("reconnecting", () => this.#down(side, undefined));
    on("end", () => this.#down(side, "connection closed"));
    if (side.client.isReady === true) this.#up(side);
    else if (side.client.isOpen === false && typeof side.client.connect === "function") {
      side.client.connect().catch((error) => this.#down(side, error));
    }
  }

  #up(side: Side): void {
    if (this.#closed) return;
    side.connected = true;
    if (side.name === "subscriber") this.#resync();
    this.#update();
    // After a stall, prove the new connection at once rather than at the next tick.
    if (side.name === "publisher" && this.#stalled !== undefined) this.#probe();
  }

  #down(side: Side, error: unknown): void {
    if (this.#closed) return;
    if (error !== undefined) {
      const text = error instanceof Error ? error.message : String(error);
      this.#lastError = `${side.name}: ${text || (error as Error)?.name || "error"}`;
    }
    // An error on a connection that is still ready (node-redis reports some,
    // e.g. a failed ping) changes nothing.
    if (error !== undefined && side.client.isReady === true) return;
    side.connected = false;
    this.#downError = undefined;
    this.#resetProbes();
    if (side.name === "subscriber") {
      this.#synced = false;
      this.#syncEpoch++;
    }
    this.#update();
    // A first failure settles start(): the hub goes on with red health.
    if (error !== undefined) this.#settleStart?.();
  }

  /**
   * Subscribe every held channel (and the probe channel) on the (new)
   * subscriber connection. Not trusting the client library to have restored
   * them, each channel our listener may be registered for is unsubscribed
   * and every held one subscribed again, pipelined on the same connection;
   * the one listener is registered once per channel, so a message is never
   * delivered twice.
   */
  #resync(): void {
    const epoch = ++this.#syncEpoch;
    this.#synced = false;
    const drop = [...this.#registered];
    const keep = [...this.#held];
    if (this.#probeEvery > 0) {
      const sub = this.#sub as RedisSubscriberLike & ProbeChannels;
      this.#probeChannels = sub.probeChannels?.(this.#probeChannel) ?? [this.#probeChannel];
      keep.push(...this.#probeChannels);
    }
    this.#registered.clear();
    for (const c of keep) this.#registered.add(c);
    const steps: Promise<unknown>[] = [];
    if (drop.length > 0) steps.push(this.#sub.unsubscribe(drop, this.#listener));
    if (keep.length > 0) steps.push(this.#sub.subscribe(keep, this.#listener));
    Promise.all(steps).then(
      () => {
        if (epoch !== this.#syncEpoch || this.#closed) return;
        this.#synced = true;
        this.#update();
        // After a stall, prove the new subscription at once rather than at the next tick.
        if (this.#stalled !== undefined) this.#probe();
      },
      (error) => {
        if (epoch !== this.#syncEpoch || this.#closed) return;
        // Still connected: a real refusal (e.g. ACL). Report it; the next reconnect retries.
        this.#lastError = `subscriber: ${(error as Error)?.message ?? error}`;
        this.#update();
      },
    );
  }

  /** Send one probe, when both connections are up and subscribed. */
  #probe(): void {
    if (this.#closed || !this.#sides[0].connected || !this.#sides[1].connected || !this.#synced) {
      return;
    }
    const seq = ++this.#probeSeq;
    const sentAt = performance.now();
    for (const channel of this.#probeChannels) {
      const probe: Probe = { seq, channel, sentAt, receivers: undefined };
      this.#probes.push(probe);
      this.#publishNow(channel, String(seq)).then(
        (n) => probe.receivers = typeof n === "number" ? n : 1,
        noop, // a failed PUBLISH is the publisher's error, reported on its own
      );
    }
    if (this.#probeDeadline === undefined) this.#arm();
  }

  /** Wait for the oldest probe out. */
  #arm(): void {
    const first = this.#probes[0];
    if (first === undefined) return;
    const left = Math.max(0, first.sentAt + this.#probeTimeout - performance.now());
    this.#probeDeadline = setTimeout(() => this.#stall(), left);
  }

  #probeBack(channel: string, message: string): void {
    const seq = Number(message);
    if (!Number.isSafeInteger(seq)) return;
    const before = this.#probes.length;
    // Probes travel in order on a channel: this one proves every one before it there.
    this.#probes = this.#probes.filter((p) => p.channel !== channel || p.seq > seq);
    if (this.#probes.length === before) return; // stale (an older connection's)
    clearTimeout(this.#probeDeadline);
    this.#probeDeadline = undefined;
    this.#arm();
    if (this.#stalled !== undefined) {
      this.#stalled = undefined;
      this.#update();
    }
  }

  #resetProbes(): void {
    this.#probes = [];
    clearTimeout(this.#probeDeadline);
    this.#probeDeadline = undefined;
  }

  /** The oldest probe is late: turn red, and drop and remake the connection at fault. */
  #stall(): void {
    this.#probeDeadline = undefined;
    const first = this.#probes[0];
    if (this.#closed || first === undefined) return;
    const ms = this.#probeTimeout;
    const side = first.receivers === undefined ? this.#sides[0] : this.#sides[1];
    const reason = first.receivers === undefined
      ? `publisher: no reply to a probe within ${ms} ms (connection stalled); reconnecting`
      : first.receivers === 0
      ? `subscriber: probe channel not subscribed at the server; reconnecting`
      : `subscriber: no probe back within ${ms} ms (subscription stalled); reconnecting`;
    this.#resetProbes();
    this.#stalled = reason;
    this.#lastError = reason;
    this.#update();
    const client = side.client;
    if (typeof client.destroy !== "function" || typeof client.connect !== "function") {
      // Cannot remake it: stay red until a probe comes back.
      this.#resync();
      return;
    }
    try {
      client.destroy();
    } catch {
      // Already gone.
    }
    if (this.#closed) return;
    this.#lastError = reason;
    side.connected = false;
    if (side.name === "subscriber") {
      this.#synced = false;
      this.#syncEpoch++;
    }
    this.#update();
    client.connect().catch((error) => this.#down(side, error));
  }

  #command(run: () => Promise<unknown>): Promise<void> {
    let p: Promise<unknown>;
    try {
      p = run();
    } catch (error) {
      p = Promise.reject(error);
    }
    return p.then(noop, (error) => {
      // Lost with the connection: restored by the resync after reconnect.
      if (!this.#sides[1].connected || this.#closed) return;
      throw error;
    });
  }

  #update(): void {
    const ok = !this.#closed && this.#sides[0].connected && this.#sides[1].connected &&
      this.#synced && this.#stalled === undefined;
    const next: BackplaneHealth = ok
      ? { ok: true }
      : { ok: false, error: this.#lastError ?? "connecting" };
    if (ok) this.#settleStart?.();
    if (next.ok === this.#health.ok && next.error === this.#health.error) return;
    this.#health = next;
    if (ok) this.#lastError = undefined;
    this.#onHealth?.(next);
  }
}

function noop(): void {}

// ---------------------------------------------------------------------------------------------
// Redis Cluster: sharded pub/sub (SPUBLISH / SSUBSCRIBE)

/**
 * A node-redis cluster client (`createCluster` of the `redis` package), as far as
 * {@linkcode redisClusterBackplane} uses it: sharded pub/sub and the events of its nodes.
 */
export interface RedisClusterLike {
  /** Add an event listener (`connect`, `disconnect`, `error`, `node-ready`, `node-reconnecting`, `node-error`, `node-disconnect`). */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Remove an event listener added with `on`. */
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Whether the cluster's slots are known and its nodes connected. */
  readonly isReady?: boolean;
  /** Whether `connect()` was called (and not closed since). */
  readonly isOpen?: boolean;
  /** Discover the cluster and connect to its masters. */
  connect(): Promise<unknown>;
  /** Close gracefully. */
  close?(): Promise<unknown>;
  /** Close at once. */
  destroy?(): unknown;
  /** `SPUBLISH`: publish on the shard that owns the channel's slot. */
  sPublish(channel: string, message: string): Promise<unknown>;
  /** `SSUBSCRIBE` (channels of one slot), on that shard's pub/sub connection. */
  sSubscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown>;
  /** `SUNSUBSCRIBE`. */
  sUnsubscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown>;
  /** node-redis: the 16384 slots, each with its master (used to place one probe per shard). */
  readonly slots?: readonly ({ master?: { host?: string; port?: number } } | undefined)[];
}

/** CRC16 (XMODEM), as Redis Cluster hashes keys. */
function crc16(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The cluster slot of a key (hash tags included). */
function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(key) % 16384;
}

/** The options node-redis `createCluster` accepts that {@linkcode redisClusterBackplane} sets. */
export interface RedisClusterOptionsLike {
  /** Where to discover the cluster from. */
  rootNodes: { url: string }[];
  /** Options of every node connection. */
  defaults: Omit<RedisClientOptionsLike, "url">;
}

/** Options for {@linkcode redisClusterBackplane}. */
export interface RedisClusterConnectOptions
  extends Omit<RedisConnectOptions, "url" | "createClient"> {
  /**
   * Some nodes of the cluster (`redis://host:port`); the rest is discovered. A string may
   * list several, separated by commas (as `REDIS_CLUSTER=redis://a:7000,redis://b:7001`).
   */
  urls: string | string[];
  /** The `createCluster` of the `redis` package (node-redis v5 or later). Called twice. */
  createCluster: (options: RedisClusterOptionsLike) => RedisClusterLike;
}

/**
 * The Redis Cluster channel of a hub channel: a room's, user's or client's name becomes the
 * channel's hash tag (`hubbub:room:lobby` → `hubbub:room:{lobby}`), so the channel lives on the
 * shard of that room's other keys (`<prefix>{<room>}:…`); other channels are as is.
 *
 * @param channel The hub's channel name.
 * @param prefix The hub's `channelPrefix`.
 * @returns The channel used in the cluster.
 */
export function clusterChannel(channel: string, prefix = "hubbub:"): string {
  if (!channel.startsWith(prefix)) return channel;
  const rest = channel.slice(prefix.length);
  const colon = rest.indexOf(":");
  const kind = rest.slice(0, colon);
  if (colon < 0 || (kind !== "room" && kind !== "user" && kind !== "client")) return channel;
  return `${prefix}${kind}:{${rest.slice(colon + 1)}}`;
}

/** The hub channel of a cluster channel (the inverse of {@linkcode clusterChannel}). */
function hubChannel(channel: string, prefix: string): string {
  if (!channel.startsWith(prefix) || !channel.endsWith("}")) return channel;
  const rest = channel.slice(prefix.length);
  const m = /^(room|user|client):\{/.exec(rest);
  if (m === null) return channel;
  return prefix + m[1] + ":" + rest.slice(m[0].length, -1);
}

/**
 * One node-redis cluster client shaped as the client {@linkcode RedisBackplane} drives:
 * sharded commands, hub channels mapped to cluster channels, and one connection state made
 * from its nodes'. As the subscriber: down while any node it knows is reconnecting, ready once
 * all are again (and then every channel is subscribed again). As the publisher: down only with
 * the whole cluster; a node's outage is reported as an error, and publishes to the other
 * shards go on (those to the lost shard reject).
 */
class ShardedClient implements RedisClientLike {
  readonly #cluster: RedisClusterLike;
  readonly #prefix: string;
  readonly #partialIsDown: boolean;
  readonly #listeners = new Map<string, Set<(arg?: unknown) => void>>();
  readonly #wrapped = new WeakMap<RedisMessageListener, RedisMessageListener>();
  readonly #down = new Set<string>();
  #connected = false;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retries = 0;

  constructor(cluster: RedisClusterLike, prefix: string, role: "publisher" | "subscriber") {
    this.#cluster = cluster;
    this.#prefix = prefix;
    this.#partialIsDown = role === "subscriber";
    const node = (n: unknown): string => {
      const o = n as { host?: string; port?: number } | undefined;
      return `${o?.host ?? "?"}:${o?.port ?? "?"}`;
    };
    cluster.on("connect", () => {
      if (!this.#complete()) {
        // Discovered while the cluster was still forming (or re-forming): some slots have no
        // master, and node-redis rediscovers only on MOVED. Discover again, with backoff.
        this.#emit("error", new Error("cluster slot map incomplete; discovering again"));
        this.#rediscover();
        return;
      }
      this.#retries = 0;
      this.#connected = true;
      if (this.#down.size === 0) this.#emit("ready");
    });
    cluster.on("disconnect", () => {
      this.#connected = false;
      this.#emit("end");
    });
    cluster.on("error", (error) => this.#emit("error", error));
    cluster.on("node-reconnecting", (n) => this.#nodeDown(node(n), undefined));
    cluster.on("node-disconnect", (n) => this.#nodeDown(node(n), undefined));
    cluster.on("node-error", (error, n) => {
      if (n !== undefined && this.#down.has(node(n))) return; // one report per outage
      const text = error instanceof Error ? error.message : String(error);
      if (/ECONNREFUSED|closed|ECONNRESET|timeout|EPIPE/i.test(text)) {
        this.#nodeDown(node(n), new Error(`node ${node(n)}: ${text}`));
      }
    });
    cluster.on("node-ready", (n) => {
      if (!this.#down.delete(node(n)) || this.#down.size > 0 || !this.#connected) return;
      if (this.#partialIsDown) this.#emit("ready");
    });
  }

  /** Every slot has a master (always true for a client that does not show its slots). */
  #complete(): boolean {
    const slots = this.#cluster.slots;
    if (slots === undefined) return true;
    if (slots.length !== 16384) return false;
    for (let i = 0; i < 16384; i++) if (slots[i]?.master === undefined) return false;
    return true;
  }

  #rediscover(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    const delay = Math.min(50 * 2 ** this.#retries++, 1000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed) return;
      this.#connected = false;
      try {
        this.#cluster.destroy?.();
      } catch {
        // Already closed.
      }
      this.#emit("end");
      this.#cluster.connect().catch((error) => {
        this.#emit("error", error);
        this.#rediscover();
      });
    }, delay);
  }

  /** A command failed for want of a slot's master: the map is stale, discover again. */
  #checkSlots<T>(p: Promise<T>): Promise<T> {
    return p.catch((error) => {
      if (error instanceof TypeError && !this.#complete()) this.#rediscover();
      throw error;
    });
  }

  #nodeDown(key: string, error: Error | undefined): void {
    const first = this.#down.size === 0;
    this.#down.add(key);
    if (error !== undefined) this.#emit("error", error);
    if (first && this.#partialIsDown) this.#emit("reconnecting");
  }

  #emit(event: string, arg?: unknown): void {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) fn(arg);
  }

  on(event: string, listener: (arg?: unknown) => void): this {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, set = new Set());
    set.add(listener);
    return this;
  }

  off(event: string, listener: (arg?: unknown) => void): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  get isReady(): boolean {
    return this.#connected && (this.#down.size === 0 || !this.#partialIsDown) &&
      this.#cluster.isReady !== false;
  }

  get isOpen(): boolean {
    return this.#cluster.isOpen ?? this.#connected;
  }

  connect(): Promise<unknown> {
    return this.#cluster.connect();
  }

  close(): Promise<unknown> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    return this.#cluster.close?.() ?? Promise.resolve();
  }

  destroy(): unknown {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#connected = false;
    this.#down.clear();
    const r = this.#cluster.destroy?.();
    this.#emit("end");
    return r;
  }

  publish(channel: string, message: string): Promise<unknown> {
    return this.#checkSlots(this.#cluster.sPublish(clusterChannel(channel, this.#prefix), message));
  }

  /**
   * One probe channel per master, `<base>:{<k>}` with the smallest k whose slot that master
   * serves, so that every shard's subscription is proven. The base alone when the slot map
   * is not known.
   */
  probeChannels(base: string): string[] {
    const slots = this.#cluster.slots;
    if (slots === undefined || slots.length !== 16384) return [base];
    const want = new Set<string>();
    for (const s of slots) if (s?.master) want.add(`${s.master.host}:${s.master.port}`);
    const out: string[] = [];
    for (let k = 0; want.size > 0 && k < 100_000; k++) {
      const m = slots[keySlot(String(k))]?.master;
      if (m !== undefined && want.delete(`${m.host}:${m.port}`)) out.push(`${base}:{${k}}`);
    }
    return out.length > 0 ? out : [base];
  }

  #wrap(listener: RedisMessageListener): RedisMessageListener {
    let w = this.#wrapped.get(listener);
    if (w === undefined) {
      const prefix = this.#prefix;
      w = (message, channel) => listener(message, hubChannel(channel, prefix));
      this.#wrapped.set(listener, w);
    }
    return w;
  }

  // One command per channel: channels of one SSUBSCRIBE must share a slot.
  subscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown> {
    const w = this.#wrap(listener);
    const list = typeof channels === "string" ? [channels] : channels;
    return Promise.all(
      list.map((c) =>
        this.#checkSlots(this.#cluster.sSubscribe(clusterChannel(c, this.#prefix), w))
      ),
    );
  }

  unsubscribe(channels: string | string[], listener: RedisMessageListener): Promise<unknown> {
    const w = this.#wrap(listener);
    const list = typeof channels === "string" ? [channels] : channels;
    return Promise.all(
      list.map((c) => this.#cluster.sUnsubscribe(clusterChannel(c, this.#prefix), w)),
    );
  }
}

/**
 * Create a backplane on a Redis Cluster with sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`,
 * Redis 7+): each channel lives on the shard that owns its slot, so adding shards adds pub/sub
 * capacity (plain `PUBLISH` in a cluster is copied to every node). Two node-redis cluster
 * clients (one publishes, one subscribes; each keeps a connection per shard).
 *
 * - **Channels**: a room's, user's or client's name is the hash tag of its channel
 *   (`hubbub:room:{lobby}`, see {@linkcode clusterChannel}), so it lives on the shard of the
 *   room's other keys (`<prefix>{<room>}:…`, as the Redis history store names them).
 * - **Health**: red while any node the subscribing cluster client knows is reconnecting
 *   (publishes to the channels of the other shards still go through; those to the lost shard
 *   reject and are counted), ok once every node is ready again and every held channel is
 *   subscribed again. node-redis rediscovers the slots by itself.
 * - **Liveness**: one probe channel per shard (`<channelPrefix>probe:<id>:{<tag>}`, a tag that
 *   hashes to a slot of that shard), so a stalled subscription on any shard turns health red
 *   and the subscribing client is remade.
 * - Batches and the rest: as {@linkcode RedisBackplane}.
 *
 * @param options The cluster's nodes, `createCluster`, timing.
 * @returns A backplane for one hub.
 * @throws {TypeError} If `urls` is empty or `createCluster` is not a function.
 * @example
 * ```ts ignore
 * import { createCluster } from "redis";
 * import { Hub } from "@hubbub/hubbub";
 * import { redisClusterBackplane } from "@hubbub/hubbub/redis";
 *
 * const hub = new Hub({
 *   backplane: redisClusterBackplane({
 *     urls: "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
 *     createCluster,
 *   }),
 * });
 * ```
 */
export function redisClusterBackplane(options: RedisClusterConnectOptions): RedisBackplane {
  const urls = typeof options.urls === "string"
    ? options.urls.split(",").map((u) => u.trim()).filter((u) => u !== "")
    : options.urls;
  if (!Array.isArray(urls) || urls.length === 0 || urls.some((u) => typeof u !== "string")) {
    throw new TypeError("Cannot create backplane: urls must name at least one cluster node");
  }
  if (typeof options.createCluster !== "function") {
    throw new TypeError("Cannot create backplane: createCluster must be a function");
  }
  const clusterOptions: RedisClusterOptionsLike = {
    rootNodes: urls.map((url) => ({ url })),
    defaults: connectionDefaults(options),
  };
  const prefix = options.channelPrefix ?? "hubbub:";
  const make = (role: "publisher" | "subscriber") =>
    new ShardedClient(options.createCluster(clusterOptions), prefix, role);
  return new RedisBackplane(make("publisher"), make("subscriber"), {
    ownClients: true,
    startTimeoutMs: options.startTimeoutMs,
    probeIntervalMs: options.probeIntervalMs,
    probeTimeoutMs: options.probeTimeoutMs,
    channelPrefix: prefix,
    coalesce: options.coalesce,
    maxBatchLength: options.maxBatchLength,
    acceptsStorePublishes: false,
  });
}

export * from "./redis_history.ts";
export * from "./redis_presence.ts";
