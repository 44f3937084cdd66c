// The rooms a client is in or joining (re-joined on every connection) and the
// subscribe() promises waiting for their ack.

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
    if (state === undefined) this.#rooms.set(room, state = { acked: false, waiters: new Set() });
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

  /** The server acked a `subscribe` of `room`. */
  acked(room: string): void {
    const state = this.#rooms.get(room);
    if (state === undefined) return;
    state.acked = true;
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
    this.#rooms.delete(room);
    const unheard = state.waiters.size === 0;
    for (const w of state.waiters) w.reject(error);
    state.waiters.clear();
    return unheard;
  }

  /** `unsubscribe()`: drop the room; its pending waits reject with an `AbortError`. */
  leave(room: string): void {
    const state = this.#rooms.get(room);
    if (state === undefined) return;
    this.#rooms.delete(room);
    for (const w of state.waiters) {
      w.reject(new DOMException(`Cannot subscribe "${room}": unsubscribed`, "AbortError"));
    }
    state.waiters.clear();
  }

  /** Closed for good: every pending wait rejects (the names stay, for `rooms`). */
  rejectAll(error: () => unknown): void {
    for (const state of this.#rooms.values()) {
      for (const w of state.waiters) w.reject(error());
      state.waiters.clear();
    }
  }
}
