// The connection shape and client options the Redis modules share (the backplane, the history
// and presence stores), apart so that none of them imports another for its types. Re-exported
// by ./redis.ts.

/**
 * The connection events and state of a Redis client, shaped like node-redis.
 * The backplane listens to `ready`, `error`, `end` and `reconnecting`.
 */
export interface RedisConnectionLike {
  /**
   * Add an event listener (node-redis: `ready` once connected and usable,
   * `error` on every failure, `reconnecting` and `end` when the connection is lost).
   */
  on(event: string, listener: (arg?: unknown) => void): unknown;
  /** Remove an event listener added with `on`. */
  off(event: string, listener: (arg?: unknown) => void): unknown;
  /** Whether the connection can run commands now (node-redis `isReady`). */
  readonly isReady?: boolean;
  /** Whether the client was opened (node-redis `isOpen`); a closed client is connected by `start()`. */
  readonly isOpen?: boolean;
  /** Open the connection (node-redis `connect()`). */
  connect?(): Promise<unknown>;
  /** Close gracefully, after pending replies (node-redis v5+ `close()`). */
  close?(): Promise<unknown>;
  /** Close at once, failing pending commands (node-redis v5+ `destroy()`). */
  destroy?(): unknown;
}

/**
 * The options node-redis `createClient` accepts that `redisBackplane` (`./redis`)
 * sets. A custom `createClient` may add its own (TLS, credentials...).
 */
export interface RedisClientOptionsLike {
  /** `redis[s]://[[user][:password]@]host[:port][/db]`. */
  url: string;
  /** Reject commands while disconnected instead of queueing them without bound. */
  disableOfflineQueue: boolean;
  /** Socket options. */
  socket: {
    /** Connect timeout (ms). */
    connectTimeout: number;
    /** Milliseconds before the next reconnect attempt; never gives up. */
    reconnectStrategy: (retries: number) => number;
  };
}

/** How a connection hubbub opens itself reconnects (every Redis factory of `./redis` takes these). */
export interface RedisConnectionTiming {
  /**
   * Longest wait between reconnect attempts (ms): 50 ms after a failure, doubling up to this,
   * plus up to 100 ms of jitter, forever.
   * @default {1000}
   */
  maxReconnectDelayMs?: number;
  /**
   * How long one connect attempt may take (ms).
   * @default {5000}
   */
  connectTimeoutMs?: number;
}
