// A bounded async iterator fed by push(). When the consumer falls behind by
// more than `limit` items, the oldest are dropped. No Promise.race: pending
// next() calls wait in a FIFO of resolvers.

export class EventStream<T> implements AsyncIterableIterator<T> {
  readonly #limit: number;
  readonly #onDone: () => void;
  #items: T[] = [];
  #head = 0;
  #waiters: ((r: IteratorResult<T, undefined>) => void)[] = [];
  #done = false;
  /** Items dropped because the buffer was full. */
  dropped = 0;

  constructor(limit: number, onDone: () => void) {
    this.#limit = limit;
    this.#onDone = onDone;
  }

  push(item: T): void {
    if (this.#done) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    if (this.#items.length - this.#head > this.#limit) {
      this.#head++;
      this.dropped++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** No more items: the consumer drains what is buffered, then sees done. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onDone();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head];
      this.#items[this.#head++] = undefined as T;
      return Promise.resolve({ value, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.#items = [];
    this.#head = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
