/**
 * The hub's resolved limits, and how they are resolved from its options.
 *
 * @module
 */

/** Resolved limits, read by adapters to configure the runtime. */
export interface HubLimits {
  /** See {@linkcode HubOptions.maxConnections}. */
  readonly maxConnections: number;
  /** See {@linkcode HubOptions.maxMessageBytes}. */
  readonly maxMessageBytes: number;
  /** See {@linkcode HubOptions.maxQueueBytes}. */
  readonly maxQueueBytes: number;
  /** See {@linkcode HubOptions.maxQueueMessages}. */
  readonly maxQueueMessages: number;
  /** See {@linkcode HubOptions.highWaterMark}. */
  readonly highWaterMark: number;
  /** See {@linkcode HubOptions.lowWaterMark}. */
  readonly lowWaterMark: number;
  /** See {@linkcode HubOptions.pingIntervalMs}. */
  readonly pingIntervalMs: number;
  /** See {@linkcode HubOptions.idleTimeoutMs}. */
  readonly idleTimeoutMs: number;
  /** See {@linkcode HubOptions.maxRoomNameLength}. */
  readonly maxRoomNameLength: number;
  /** See {@linkcode HubOptions.maxRoomsPerConnection}. */
  readonly maxRoomsPerConnection: number;
  /** See {@linkcode HubOptions.maxConnectionsPerUser}. */
  readonly maxConnectionsPerUser: number;
  /** See {@linkcode HubOptions.maxMetadataBytes}. */
  readonly maxMetadataBytes: number;
  /** See {@linkcode HubOptions.maxPendingUpgrades}. */
  readonly maxPendingUpgrades: number;
  /** See {@linkcode HubOptions.maxPendingMessages}. */
  readonly maxPendingMessages: number;
  /** See {@linkcode HubOptions.maxPendingBytes}. */
  readonly maxPendingBytes: number;
  /** See {@linkcode HubOptions.openTimeoutMs}. */
  readonly openTimeoutMs: number;
  /** See {@linkcode HubOptions.closeTimeoutMs}. */
  readonly closeTimeoutMs: number;
}

/** The limit options a hub takes (the numeric fields of `HubOptions`). */
export type LimitOptions = { readonly [K in keyof HubLimits]?: number };

/**
 * Fill in the defaults and check every limit.
 *
 * @param options The hub's options.
 * @returns The frozen limits.
 * @throws {RangeError} If a limit is not a positive number, or lowWaterMark > highWaterMark.
 */
export function resolveLimits(options: LimitOptions): HubLimits {
  const maxMessageBytes = options.maxMessageBytes ?? 512 * 1024;
  const limits: HubLimits = {
    maxConnections: options.maxConnections ?? 10_000,
    maxMessageBytes,
    maxQueueBytes: options.maxQueueBytes ?? 1024 * 1024,
    maxQueueMessages: options.maxQueueMessages ?? 1024,
    highWaterMark: options.highWaterMark ?? 256 * 1024,
    lowWaterMark: options.lowWaterMark ?? 64 * 1024,
    pingIntervalMs: options.pingIntervalMs ?? 30_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    maxRoomNameLength: options.maxRoomNameLength ?? 128,
    maxRoomsPerConnection: options.maxRoomsPerConnection ?? 100,
    maxConnectionsPerUser: options.maxConnectionsPerUser ?? 100,
    maxMetadataBytes: options.maxMetadataBytes ?? 16 * 1024,
    maxPendingUpgrades: options.maxPendingUpgrades ?? 1000,
    maxPendingMessages: options.maxPendingMessages ?? 256,
    maxPendingBytes: options.maxPendingBytes ?? Math.max(1024 * 1024, 2 * maxMessageBytes),
    openTimeoutMs: options.openTimeoutMs ?? 10_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 5000,
  };
  for (const [key, value] of Object.entries(limits)) {
    if (!(typeof value === "number" && value > 0)) {
      throw new RangeError(`Cannot create hub: ${key} must be a positive number`);
    }
  }
  if (limits.lowWaterMark > limits.highWaterMark) {
    throw new RangeError("Cannot create hub: lowWaterMark must not exceed highWaterMark");
  }
  return Object.freeze(limits);
}
