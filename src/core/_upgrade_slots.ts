// Accepted upgrades whose socket has not opened yet. Each holds a connection slot (and a slot
// of its user's), so that parallel upgrades cannot exceed maxConnections or
// maxConnectionsPerUser while they open; each is released exactly once: when the socket
// opens, when the adapter cancels it, when its deadline passes, or when the hub closes.

/** The timer functions of the hub's clock. */
export interface SlotClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Every opening slot of one hub, with a count per user. */
export class UpgradeSlots {
  readonly #all = new Set<UpgradeSlot>();
  readonly #byUser = new Map<string, number>();
  readonly #clock: SlotClock;
  readonly #timeoutMs: number;

  constructor(clock: SlotClock, timeoutMs: number) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
  }

  /** Slots held. */
  get size(): number {
    return this.#all.size;
  }

  /** Slots held for one user. */
  forUser(userId: string): number {
    return this.#byUser.get(userId) ?? 0;
  }

  /** Take a slot; it releases itself after the open deadline. */
  take(userId: string | undefined): UpgradeSlot {
    const slot = new UpgradeSlot(this, userId);
    this.#all.add(slot);
    if (userId !== undefined) this.#byUser.set(userId, this.forUser(userId) + 1);
    slot.timer = this.#clock.setTimeout(() => slot.release(), this.#timeoutMs);
    return slot;
  }

  /** @returns Whether `slot` was still held (and is now released). */
  release(slot: UpgradeSlot): boolean {
    if (!this.#all.delete(slot)) return false;
    this.#clock.clearTimeout(slot.timer);
    const userId = slot.userId;
    if (userId !== undefined) {
      const n = this.forUser(userId) - 1;
      if (n > 0) this.#byUser.set(userId, n);
      else this.#byUser.delete(userId);
    }
    return true;
  }

  /** Release every slot (the hub is closing): their sockets, if they open, are refused. */
  releaseAll(): void {
    for (const slot of [...this.#all]) this.release(slot);
  }
}

/** One accepted upgrade's slot. */
export class UpgradeSlot {
  timer: unknown = undefined;
  readonly #slots: UpgradeSlots;
  readonly userId: string | undefined;

  constructor(slots: UpgradeSlots, userId: string | undefined) {
    this.#slots = slots;
    this.userId = userId;
  }

  /** Release the slot. Idempotent: `true` only the first time. */
  release(): boolean {
    return this.#slots.release(this);
  }
}
