/**
 * Reconnect delays: exponential backoff with full jitter.
 *
 * @module
 */

/** Options for {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /**
   * The ceiling of the first retry's delay (ms). Each later retry doubles the ceiling.
   * @default {500}
   */
  minDelayMs?: number;
  /**
   * The largest ceiling (ms): no delay is ever longer.
   * @default {30000}
   */
  maxDelayMs?: number;
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first retry):
 * uniformly random in `[0, min(maxDelayMs, minDelayMs × 2^(attempt−1)))` ("full
 * jitter"), so clients dropped together by a server restart spread their
 * reconnects over the whole window instead of arriving in waves.
 *
 * @param attempt The attempt number, from 1.
 * @param options Ceilings; see {@linkcode BackoffOptions}.
 * @param random A source of numbers in `[0, 1)`; `Math.random` by default.
 * @returns The delay in ms (an integer).
 * @throws {RangeError} If `attempt` is not a positive integer.
 * @example
 * ```ts
 * import { backoffDelay } from "@hubbub/hubbub/client";
 * backoffDelay(1, { minDelayMs: 500 }, () => 0.5); // 250
 * backoffDelay(10, { maxDelayMs: 30_000 }, () => 0.999); // 29970: capped
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`Cannot compute backoff: attempt must be an integer ≥ 1, got ${attempt}`);
  }
  const { minDelayMs = 500, maxDelayMs = 30_000 } = options;
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt - 1, 52));
  const r = random();
  const unit = r >= 0 && r < 1 ? r : 0;
  return Math.floor(unit * ceiling);
}
