// The one timeout-plus-abort guard of the client: request(), unsubscribe() and subscribe()
// all give up through it, with the same TimeoutError and the same cleanup.

import { TimeoutError } from "./errors.ts";
import type { ClientTimers } from "./hub_client_options.ts";

/**
 * Arm a timeout and an abort signal for one pending operation. `giveUp` gets a
 * {@linkcode TimeoutError} after `ms` (no timer when `ms` is 0 or not finite),
 * or the signal's reason when it aborts; it may be called after the operation
 * settled, so it must ignore a second call. The caller checks `signal.aborted`
 * before arming.
 *
 * @param timers The client's timers.
 * @param ms The timeout.
 * @param signal An abort signal.
 * @param what What gives up, for the message (`request "chat.send"`).
 * @param giveUp Called once the deadline passes or the signal aborts.
 * @returns A function that disarms both (call it when the operation settles).
 */
export function armDeadline(
  timers: ClientTimers,
  ms: number,
  signal: AbortSignal | undefined,
  what: string,
  giveUp: (error: unknown) => void,
): () => void {
  const onAbort = () => giveUp(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let timer: unknown;
  if (ms > 0 && Number.isFinite(ms)) {
    timer = timers.setTimeout(
      () => giveUp(new TimeoutError(`Cannot complete ${what}: timed out after ${ms} ms`)),
      ms,
    );
  }
  return () => {
    if (timer !== undefined) timers.clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
}
