// The one way the hub calls app code. A hook may be sync or async, may throw or reject; its
// result decides something (accept a connection, a room, a user id) or nothing (onJoin).
// `call` handles all of those in one place; `track` keeps every in-flight promise so that
// `hub.close()` can wait for them (boundedly); `report` sends errors to `onError`.
import type { HubErrorSource } from "./hub_options.ts";
import type { SlotClock } from "./_upgrade_slots.ts";

/** Whether `v` is a promise-like. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
}

/** Calls app hooks and reports their errors. One per hub. */
export class Hooks {
  readonly #onError: ((error: unknown, source: HubErrorSource) => void) | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(onError: ((error: unknown, source: HubErrorSource) => void) | undefined) {
    this.#onError = onError;
  }

  /** Hooks still running (tracked promises). */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Call `fn`; hand its value (awaited if it is a promise) to `done`, or what it throws or
   * rejects with to `fail`. Returns a promise only when `fn` went async.
   */
  call<T>(
    fn: () => T | PromiseLike<T>,
    done: (value: T) => void,
    fail: (error: unknown) => void,
  ): Promise<void> | undefined {
    let result: T | PromiseLike<T>;
    try {
      result = fn();
    } catch (error) {
      fail(error);
      return;
    }
    if (isThenable(result)) return Promise.resolve(result).then(done, fail);
    done(result as T);
  }

  /** Call a hook whose result means nothing (onJoin, observers): only report its failure. */
  notify(fn: () => unknown, source: HubErrorSource): void {
    this.call(fn, noop, (error) => this.report(error, source));
  }

  /** Report an error from app code to `onError` (default: console.error). Never throws. */
  report(error: unknown, source: HubErrorSource): void {
    const onError = this.#onError;
    if (onError === undefined) {
      console.error(`hubbub: error in ${source} hook:`, error);
      return;
    }
    try {
      const r = onError(error, source);
      if (isThenable(r)) r.then(undefined, () => {});
    } catch { /* the error reporter itself failed: nothing more to do */ }
  }

  /** Keep `promise` until it settles (`hub.close()` waits for it); a rejection is reported. */
  track(promise: Promise<unknown>, source: HubErrorSource = "message"): void {
    const p = promise.catch((error) => this.report(error, source));
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  /**
   * Wait for `first`, then for every tracked hook, for at most `timeoutMs` in all; what is
   * still pending then is left behind and reported (a handler that never settles must not
   * hang a shutdown).
   */
  async settledWithin(first: Promise<void>, clock: SlotClock, timeoutMs: number): Promise<void> {
    let timer: unknown;
    const late = new Promise<boolean>((resolve) => {
      timer = clock.setTimeout(() => resolve(true), timeoutMs);
    });
    const done = first.then(() => this.settled()).then(() => false);
    const timedOut = await Promise.race([done, late]);
    clock.clearTimeout(timer);
    if (timedOut) {
      this.report(
        new Error(
          `Cannot finish closing: ${this.pending} hook(s) still pending after ` +
            `${timeoutMs} ms (timeoutMs); left behind`,
        ),
        "disconnect",
      );
    }
  }

  /** Resolves once every tracked promise has settled, including ones added meanwhile. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}

function noop(): void {}
