// Keepalive of an open connection: a ping after an interval without frames, and
// "dead" when no frame follows it. Its own timer: the connect timeout has another.

import type { ClientTimers } from "./hub_client_options.ts";

/** Watches one open connection at a time. */
export class Keepalive {
  readonly #timers: ClientTimers;
  readonly #intervalMs: number;
  readonly #pongTimeoutMs: number;
  #timer: unknown;
  #frames = 0;
  #framesSeen = 0;

  constructor(timers: ClientTimers, intervalMs: number, pongTimeoutMs: number) {
    this.#timers = timers;
    this.#intervalMs = intervalMs;
    this.#pongTimeoutMs = pongTimeoutMs;
  }

  /** A frame arrived (any frame, even one the client ignores): the link is alive. */
  frame(): void {
    this.#frames++;
  }

  /** Whether a keepalive timer is armed. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Start watching: `ping()` after an interval without frames, `dead()` when no
   * frame arrives within `pongTimeoutMs` after it. No-op when keepalive is off.
   */
  start(ping: () => void, dead: () => void): void {
    this.stop();
    if (!(this.#intervalMs > 0) || !Number.isFinite(this.#intervalMs)) return;
    this.#arm(ping, dead);
  }

  /** Stop watching (the connection is gone or the client closed). */
  stop(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ping: () => void, dead: () => void): void {
    this.#framesSeen = this.#frames;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#frames !== this.#framesSeen) {
        this.#arm(ping, dead);
        return;
      }
      ping();
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        if (this.#frames !== this.#framesSeen) this.#arm(ping, dead);
        else dead();
      }, this.#pongTimeoutMs);
    }, this.#intervalMs);
  }
}
