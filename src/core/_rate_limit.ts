// Per-connection inbound rate limiting: token buckets for frames and bytes, and a
// penalty bucket that decides when a client that keeps flooding is closed.

/** Resolved rate-limit settings. */
export interface RateLimitSettings {
  messagesPerSecond: number;
  messageBurst: number;
  bytesPerSecond: number;
  byteBurst: number;
  /** Frames a client may have dropped (refilled over 10 s) before it is closed. */
  closeAfterDropped: number;
  /** Deliveries per second that one client's frames may trigger (fan-out budget). */
  deliveriesPerSecond: number;
  /** Deliveries allowed in a burst. */
  deliveryBurst: number;
}

/** The fields of the hub's `rateLimit` option (`RateLimitOptions`). */
type RateLimitOption =
  | "messagesPerSecond"
  | "burst"
  | "bytesPerSecond"
  | "byteBurst"
  | "closeAfterDropped"
  | "deliveriesPerSecond"
  | "deliveryBurst";

/** What to do with one inbound frame. */
export const Verdict = {
  Accept: 0,
  /** Drop it; tell the client (at most once a second). */
  DropAndWarn: 1,
  /** Drop it silently (already warned this second). */
  Drop: 2,
  /** Drop it and close the connection. */
  Close: 3,
} as const;

/** One of {@linkcode Verdict}'s values. */
export type Verdict = typeof Verdict[keyof typeof Verdict];

/** Token buckets for one connection. */
export class RateLimiter {
  #msgTokens: number;
  #byteTokens: number;
  /** May go below zero: a frame's fan-out is charged after it happened. */
  #deliveryTokens: number;
  #penalty: number;
  #last: number;
  #lastWarn = -Infinity;
  readonly #s: RateLimitSettings;

  constructor(s: RateLimitSettings, now: number) {
    this.#s = s;
    this.#msgTokens = s.messageBurst;
    this.#byteTokens = s.byteBurst;
    this.#deliveryTokens = s.deliveryBurst;
    this.#penalty = s.closeAfterDropped;
    this.#last = now;
  }

  /** Decide on a frame of `bytes` bytes arriving at `now`. */
  check(bytes: number, now: number): Verdict {
    const s = this.#s;
    const dt = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#msgTokens = Math.min(s.messageBurst, this.#msgTokens + dt * s.messagesPerSecond);
    this.#byteTokens = Math.min(s.byteBurst, this.#byteTokens + dt * s.bytesPerSecond);
    this.#deliveryTokens = Math.min(
      s.deliveryBurst,
      this.#deliveryTokens + dt * s.deliveriesPerSecond,
    );
    this.#penalty = Math.min(
      s.closeAfterDropped,
      this.#penalty + dt * s.closeAfterDropped / 10,
    );
    if (this.#msgTokens >= 1 && this.#byteTokens >= bytes && this.#deliveryTokens > 0) {
      this.#msgTokens -= 1;
      this.#byteTokens -= bytes;
      return Verdict.Accept;
    }
    return this.strike(now);
  }

  /**
   * Charge deliveries that handling this client's frame triggered (its emits). The
   * budget may go negative; the client's next frames are refused until it refills.
   */
  charge(deliveries: number): void {
    this.#deliveryTokens -= deliveries;
  }

  /** Count one dropped frame against the client. */
  strike(now: number): Verdict {
    this.#penalty -= 1;
    if (this.#penalty < 0) return Verdict.Close;
    if (now - this.#lastWarn >= 1000) {
      this.#lastWarn = now;
      return Verdict.DropAndWarn;
    }
    return Verdict.Drop;
  }
}

/** The rate-limit settings, resolved and checked; `undefined` when off. */
export function resolveRateLimit(
  rl: { readonly [K in RateLimitOption]?: number } | false | undefined,
  maxMessageBytes: number,
): RateLimitSettings | undefined {
  if (rl === false) return undefined;
  const perSecond = rl?.deliveriesPerSecond ?? 5000;
  const settings: RateLimitSettings = {
    messagesPerSecond: rl?.messagesPerSecond ?? 100,
    messageBurst: rl?.burst ?? 200,
    bytesPerSecond: rl?.bytesPerSecond ?? 1024 * 1024,
    byteBurst: rl?.byteBurst ?? Math.max(2 * 1024 * 1024, 2 * maxMessageBytes),
    closeAfterDropped: rl?.closeAfterDropped ?? 200,
    deliveriesPerSecond: perSecond,
    deliveryBurst: rl?.deliveryBurst ?? 2 * perSecond,
  };
  for (const [key, value] of Object.entries(settings)) {
    if (!(typeof value === "number" && value > 0)) {
      throw new RangeError(`Cannot create hub: rateLimit.${key} must be a positive number`);
    }
  }
  return settings;
}
