/**
 * A `BroadcastChannel` backplane: hubs in several isolates of one process act
 * as one hub. Use it with `deno serve --parallel` (one isolate per core) or
 * with Deno and Bun workers; use `./redis` across processes and machines.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { BroadcastChannelBackplane } from "@hubbub/hubbub/broadcast-channel";
 *
 * const hub = new Hub({ backplane: new BroadcastChannelBackplane() });
 * await hub.ready;
 * hub.emit("hello", 1); // also reaches the connections of every other isolate
 * await hub.close();
 * ```
 *
 * @module
 */

import type { Backplane, BackplaneHealth } from "../core/backplane.ts";

/** Options for {@linkcode BroadcastChannelBackplane}. */
export interface BroadcastChannelBackplaneOptions {
  /**
   * The `BroadcastChannel` name every isolate of the app shares. Apps that
   * must not see each other's traffic in one process use different names.
   * @default {"hubbub"}
   */
  name?: string;
}

/** One message on the channel: the bus channels it was published to, and the payload. */
type Entry = [channels: string[], payload: string];

/**
 * A {@linkcode Backplane} over one `BroadcastChannel`.
 *
 * - **One channel, not one per room**: every hub channel travels on one
 *   `BroadcastChannel` and receivers keep only the channels they hold (a Set
 *   lookup, before any JSON parsing). Deno hands every `BroadcastChannel`
 *   message to every isolate whatever its name and then scans that isolate's
 *   channel objects by name, so one object per room would save no traffic
 *   and add a scan over all rooms to every message.
 * - **Batching**: publishes made in one turn of the event loop go out as one
 *   `postMessage`, and one payload published to several channels (an emit
 *   to several rooms) is sent once, with the list of its channels.
 * - **Order**: messages from one hub arrive in the order they were published.
 * - **Health**: always ok until `close()`.
 * - **close()**: closes the `BroadcastChannel`. Idempotent.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { BroadcastChannelBackplane } from "@hubbub/hubbub/broadcast-channel";
 *
 * // Two hubs in one isolate share the channel just as isolates do.
 * const a = new Hub({ backplane: new BroadcastChannelBackplane({ name: "my-app" }) });
 * const b = new Hub({ backplane: new BroadcastChannelBackplane({ name: "my-app" }) });
 * await Promise.all([a.ready, b.ready]);
 * a.emit("hello", 1, { rooms: "lobby" }); // b's members of "lobby" get it too
 * await Promise.all([a.close(), b.close()]);
 * ```
 */
export class BroadcastChannelBackplane implements Backplane {
  readonly #name: string;
  #channel: BroadcastChannel | undefined;
  readonly #held = new Set<string>();
  #onMessage: ((channel: string, payload: string) => void) | undefined;
  #onHealth: ((health: BackplaneHealth) => void) | undefined;
  #pending: Entry[] = [];
  #flushScheduled = false;
  #closed = false;

  /**
   * Create a backplane; the channel is opened by `start()`.
   * @param options The channel name.
   * @throws {TypeError} If `BroadcastChannel` is not available in this runtime.
   */
  constructor(options: BroadcastChannelBackplaneOptions = {}) {
    if (typeof globalThis.BroadcastChannel !== "function") {
      throw new TypeError("Cannot create backplane: BroadcastChannel is not available");
    }
    this.#name = options.name ?? "hubbub";
  }

  /**
   * Open the channel and start delivering.
   *
   * @param onMessage Called with each message of a held channel.
   * @param onHealth Called when health changes (only on close).
   * @returns A resolved promise (the channel is usable at once).
   */
  start(
    onMessage: (channel: string, payload: string) => void,
    onHealth: (health: BackplaneHealth) => void,
  ): Promise<void> {
    if (this.#channel !== undefined || this.#closed) {
      return Promise.reject(new Error("Cannot start backplane: already started or closed"));
    }
    this.#onMessage = onMessage;
    this.#onHealth = onHealth;
    const channel = new BroadcastChannel(this.#name);
    channel.onmessage = (event) => this.#receive(event.data);
    this.#channel = channel;
    return Promise.resolve();
  }

  /**
   * Publish one payload; sent with the other publishes of this turn.
   *
   * @param channel The channel.
   * @param payload The message.
   * @returns A resolved promise, or a rejected one once closed or before `start()`.
   */
  publish(channel: string, payload: string): Promise<void> {
    if (this.#channel === undefined) {
      return Promise.reject(
        new Error(`Cannot publish: backplane is ${this.#closed ? "closed" : "not started"}`),
      );
    }
    const last = this.#pending[this.#pending.length - 1];
    if (last !== undefined && last[1] === payload) last[0].push(channel);
    else this.#pending.push([[channel], payload]);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return Promise.resolve();
  }

  /**
   * Receive a channel's messages. Idempotent.
   * @param channel The channel.
   * @returns A resolved promise.
   */
  subscribe(channel: string): Promise<void> {
    if (!this.#closed) this.#held.add(channel);
    return Promise.resolve();
  }

  /**
   * Stop receiving a channel. Idempotent.
   * @param channel The channel.
   * @returns A resolved promise.
   */
  unsubscribe(channel: string): Promise<void> {
    this.#held.delete(channel);
    return Promise.resolve();
  }

  /**
   * Current health.
   * @returns `{ ok: true }` until closed.
   */
  health(): BackplaneHealth {
    return this.#closed ? { ok: false, error: "closed" } : { ok: true };
  }

  /** Channels held now. */
  get channels(): number {
    return this.#held.size;
  }

  /**
   * Send what is pending and close the `BroadcastChannel`. Idempotent.
   * @returns A resolved promise.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#flush();
    this.#closed = true;
    this.#held.clear();
    this.#channel?.close();
    this.#channel = undefined;
    this.#onHealth?.(this.health());
    return Promise.resolve();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    if (batch.length === 0 || this.#channel === undefined) return;
    this.#pending = [];
    this.#channel.postMessage(batch);
  }

  #receive(data: unknown): void {
    // Anything else sharing the name is ignored.
    if (!Array.isArray(data) || this.#closed) return;
    for (const entry of data as unknown[]) {
      if (!Array.isArray(entry) || typeof entry[1] !== "string" || !Array.isArray(entry[0])) {
        continue;
      }
      for (const channel of entry[0] as unknown[]) {
        if (typeof channel === "string" && this.#held.has(channel)) {
          this.#onMessage?.(channel, entry[1]);
          break; // once per payload: the hub would skip the other copies anyway
        }
      }
    }
  }
}
