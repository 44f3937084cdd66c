// The rooms a client is in or joining (re-joined on every connection), the
// subscribe() promises waiting for their ack, and re-joins retried later.

import { armDeadline } from "./_deadline.ts";
import { deferred } from "./_deferred.ts";
import type { ClientTimers } from "./hub_client_options.ts";

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

interface Room {
  acked: boolean;
  waiters: Set<Waiter>;
  /** Re-joins in a row that failed but may work later (see `retry()`). */
  retries: number;
  /** The timer of the next re-join attempt, if one is scheduled. */
  retryTimer: unknown;
}

/** One client's rooms. */
export class Rooms {
  readonly #timers: ClientTimers;
  readonly #rooms = new Map<string, Room>();

  constructor(timers: ClientTimers) {
    this.#timers = timers;
  }

  /** The room names, in the order they were joined. */
  names(): string[] {
    return [...this.#rooms.keys()];
  }

  /**
   * Wait for `room`'s ack, adding the room if it is new. A timeout or abort
   * rejects this wait; when it was the last wait and no ack came, the room is
   * dropped and `dropped()` runs (to tell the server).
   */
  wait(
    room: string,
    ms: number,
    signal: AbortSignal | undefined,
    dropped: () => void,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let state = this.#rooms.get(room);
    if (state === undefined) {
      this.#rooms.set(
        room,
        state = { acked: false, waiters: new Set(), retries: 0, retryTimer: undefined },
      );
    }
    const joined = state;
    const { promise, resolve, reject } = deferred<void>();
    const waiter: Waiter = {
      resolve: () => {
        disarm();
        resolve();
      },
      reject: (error) => {
        disarm();
        reject(error);
      },
    };
    joined.waiters.add(waiter);
    const disarm = armDeadline(this.#timers, ms, signal, `subscribe "${room}"`, (error) => {
      if (!joined.waiters.delete(waiter)) return;
      waiter.reject(error);
      if (!joined.acked && joined.waiters.size === 0 && this.#rooms.get(room) === joined) {
        this.#rooms.delete(room);
        dropped();
      }
    });
    return promise;
  }

  /** Whether `room` is one of the client's rooms (joined or joining). */
  has(room: string): boolean {
    return this.#rooms.has(room);
  }

  /** Whether the server acked `room` on some connection (so joining it again is a re-join). */
  joinedBefore(room: string): boolean {
    return this.#rooms.get(room)?.acked === true;
  }

  /** The server acked a `subscribe` of `room`. */
  acked(room: string): void {
    const state = this.#rooms.get(room);
    if (state === undefined) return;
    state.acked = true;
    state.retries = 0;
    for (const w of state.waiters) w.resolve();
    state.waiters.clear();
  }

  /**
   * The server refused `room`: it is dropped and its waits reject with `error`.
   * @returns `true` when no `subscribe()` waited (a re-join after a reconnect), so the caller reports it.
   */
  refused(room: string, error: unknown): boolean {
    const state = this.#rooms.get(room);
    if (state === undefined) return false;
    this.#stopRetry(state);
    this.#rooms.delete(room);
    const unheard = state.waiters.size === 0;
    for (const w of state.waiters) w.reject(error);
    state.waiters.clear();
    return unheard;
  }

  /**
   * A re-join of `room` failed but may work later (`UNAVAILABLE`, or a server that
   * takes no `recover`): the room stays, and `resend` runs after `delay(attempt)` ms (attempt 1, 2, ... until an ack),
   * unless the room is left or the connection drops first (the next one re-joins it).
   */
  retry(room: string, delay: (attempt: number) => number, resend: () => void): void {
    const state = this.#rooms.get(room);
    if (state === undefined) return;
    this.#stopRetry(state);
    state.retries++;
    state.retryTimer = this.#timers.setTimeout(() => {
      state.retryTimer = undefined;
      if (this.#rooms.get(room) === state) resend();
    }, delay(state.retries));
  }

  /** The connection dropped: scheduled re-join retries stop (the next connection re-joins). */
  connectionLost(): void {
    for (const state of this.#rooms.values()) this.#stopRetry(state);
  }

  #stopRetry(state: Room): void {
    if (state.retryTimer === undefined) return;
    this.#timers.clearTimeout(state.retryTimer);
    state.retryTimer = undefined;
  }

  /** `unsubscribe()`: drop the room; its pending waits reject with an `AbortError`. */
  leave(room: string): void {
    const state = this.#rooms.get(room);
    if (state === undefined) return;
    this.#stopRetry(state);
    this.#rooms.delete(room);
    for (const w of state.waiters) {
      w.reject(new DOMException(`Cannot subscribe "${room}": unsubscribed`, "AbortError"));
    }
    state.waiters.clear();
  }

  /** Closed for good: every pending wait rejects (the names stay, for `rooms`). */
  rejectAll(error: () => unknown): void {
    for (const state of this.#rooms.values()) {
      this.#stopRetry(state);
      for (const w of state.waiters) w.reject(error());
      state.waiters.clear();
    }
  }
}
