// The client's options with their defaults applied and checked, read once at construction.

import type { BackoffOptions } from "./backoff.ts";
import type {
  AuthenticateFields,
  ClientTimers,
  ClientWebSocketConstructor,
  HubClientOptions,
} from "./hub_client_options.ts";

/** Every option, resolved. */
export interface ResolvedOptions {
  readonly WebSocket: ClientWebSocketConstructor;
  readonly timers: ClientTimers;
  readonly random: () => number;
  readonly backoff: BackoffOptions;
  readonly maxRetries: number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxQueued: number;
  readonly closeTimeoutMs: number;
  readonly batch: boolean;
  readonly authenticate: (() => AuthenticateFields | Promise<AuthenticateFields>) | undefined;
}

const systemTimers: ClientTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(`Cannot create client: ${name} must be a number ≥ 0`);
  }
  return value;
}

/**
 * Apply the defaults documented on {@linkcode HubClientOptions}.
 * @throws {TypeError} If there is no `WebSocket` constructor.
 * @throws {RangeError} If a numeric option is negative.
 */
export function resolveOptions(options: HubClientOptions): ResolvedOptions {
  const WS = options.WebSocket ??
    (globalThis as { WebSocket?: ClientWebSocketConstructor }).WebSocket;
  if (typeof WS !== "function") {
    throw new TypeError(
      "Cannot create client: no global WebSocket; pass one as options.WebSocket",
    );
  }
  return {
    WebSocket: WS,
    timers: options.timers ?? systemTimers,
    random: options.random ?? Math.random,
    backoff: {
      minDelayMs: nonNegative(options.minDelayMs, 500, "minDelayMs"),
      maxDelayMs: nonNegative(options.maxDelayMs, 30_000, "maxDelayMs"),
    },
    maxRetries: nonNegative(options.maxRetries, Infinity, "maxRetries"),
    pingIntervalMs: nonNegative(options.pingIntervalMs, 25_000, "pingIntervalMs"),
    pongTimeoutMs: nonNegative(options.pongTimeoutMs, 10_000, "pongTimeoutMs"),
    connectTimeoutMs: nonNegative(options.connectTimeoutMs, 15_000, "connectTimeoutMs"),
    requestTimeoutMs: nonNegative(options.requestTimeoutMs, 10_000, "requestTimeoutMs"),
    maxQueued: nonNegative(options.maxQueuedMessages, 1000, "maxQueuedMessages"),
    closeTimeoutMs: nonNegative(options.closeTimeoutMs, 2000, "closeTimeoutMs"),
    batch: options.batch !== false,
    authenticate: options.authenticate,
  };
}
