// How every Redis connection hubbub opens itself is set up (the backplane's two, the cluster
// backplane's, the history and presence stores'): the factory's arguments checked, commands
// rejected at once while disconnected, and reconnects forever with capped, jittered backoff.
import type { RedisClientOptionsLike } from "./_redis_types.ts";

/** Timing options every Redis factory takes. */
export interface RedisTiming {
  /** Longest wait between reconnect attempts (ms); default 1000. */
  maxReconnectDelayMs?: number;
  /** How long one connect attempt may take (ms); default 5000. */
  connectTimeoutMs?: number;
}

/**
 * Check a factory's `url` and its client constructor (`createClient`, `createCluster`).
 * @throws {TypeError} Naming what `what` cannot be created without.
 */
export function checkFactory(what: string, url: unknown, make: unknown, makeName: string): void {
  if (typeof url !== "string") throw new TypeError(`Cannot create ${what}: url must be a string`);
  if (typeof make !== "function") {
    throw new TypeError(`Cannot create ${what}: ${makeName} must be a function`);
  }
}

/** Socket and queue options: 50 ms after a failure, doubling to the cap, plus 0-100 ms jitter. */
export function connectionDefaults(
  timing: RedisTiming,
): Omit<RedisClientOptionsLike, "url"> {
  const maxDelay = timing.maxReconnectDelayMs ?? 1000;
  return {
    disableOfflineQueue: true,
    socket: {
      connectTimeout: timing.connectTimeoutMs ?? 5000,
      reconnectStrategy: (retries) =>
        Math.min(50 * 2 ** Math.min(retries, 16), maxDelay) + Math.floor(Math.random() * 100),
    },
  };
}
