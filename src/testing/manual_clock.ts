/**
 * A clock that only moves when told to.
 *
 * @module
 */

import type { Clock } from "../core/hub.ts";

/**
 * A {@linkcode Clock} for tests: `advance(ms)` moves time and runs due intervals.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { ManualClock } from "@hubbub/hubbub/testing";
 * const clock = new ManualClock();
 * const hub = new Hub({ clock, idleTimeoutMs: 1000 });
 * clock.advance(1500); // runs the hub's keepalive ticks
 * await hub.close();
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #timers = new Map<number, { fn: () => void; every: number; due: number; once: boolean }>();
  #nextId = 1;

  /**
   * Create a clock stopped at `start`.
   *
   * @param start The starting time in Unix ms.
   */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  /** Current time. */
  now(): number {
    return this.#now;
  }

  /** Register an interval. */
  setInterval(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { fn, every: ms, due: this.#now + ms, once: false });
    return id;
  }

  /** Register a one-shot timer. */
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { fn, every: ms, due: this.#now + ms, once: true });
    return id;
  }

  /** Cancel a one-shot timer. */
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Cancel an interval. */
  clearInterval(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Active timers (intervals and pending one-shots). */
  get timerCount(): number {
    return this.#timers.size;
  }

  /**
   * Move time forward, running every timer that falls due, in order.
   * @param ms How far.
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    while (true) {
      let next: { id: number; due: number } | undefined;
      for (const [id, t] of this.#timers) {
        if (t.due <= end && (next === undefined || t.due < next.due)) next = { id, due: t.due };
      }
      if (next === undefined) break;
      const timer = this.#timers.get(next.id)!;
      this.#now = timer.due;
      if (timer.once) this.#timers.delete(next.id);
      else timer.due += timer.every;
      timer.fn();
    }
    this.#now = end;
  }
}
