/**
 * An in-memory transport pair for testing hubs without sockets.
 *
 * @module
 */

import type { Hub } from "../core/hub.ts";
import type { Frame } from "../core/send_queue.ts";
import type { SocketEvents, Transport } from "../core/transport.ts";

/** A decoded server → client message. */
export interface ReceivedMessage {
  /** Event type. */
  type: string;
  /** Payload. */
  data: unknown;
  /** Server timestamp. */
  timestamp: number;
}

/** Options for {@linkcode connectMemory}. */
export interface ConnectMemoryOptions {
  /**
   * Request URL.
   * @default {"http://localhost/ws"}
   */
  url?: string;
  /** Extra request headers (e.g. `origin`, `cookie`). */
  headers?: Record<string, string>;
  /** Route params to pass to `hub.upgrade`. */
  params?: Record<string, string>;
  /**
   * Coalesce writes like Bun's `ws.cork` (the hub then flushes once per tick).
   * @default {false}
   */
  cork?: boolean;
  /**
   * Offer protocol-level ping (the hub then times out silent clients).
   * @default {true}
   */
  ping?: boolean;
  /**
   * Answer pings automatically.
   * @default {true}
   */
  autoPong?: boolean;
  /**
   * Report a server-initiated close to the hub synchronously, inside
   * `transport.close()`, as Bun does.
   * @default {false}
   */
  syncClose?: boolean;
}

/** Thrown by {@linkcode connectMemory} when the hub refuses the upgrade. */
export class UpgradeRefusedError extends Error {
  /** The HTTP status the hub answered with. */
  readonly status: number;
  /**
   * Create the error.
   *
   * @param status The HTTP status.
   */
  constructor(status: number) {
    super(`Cannot connect: upgrade refused with ${status}`);
    this.name = "UpgradeRefusedError";
    this.status = status;
  }
}

/**
 * The client end of an in-memory connection, with controllable backpressure.
 *
 * - While `pause()`d, frames stay in the socket buffer and count towards
 *   `bufferedAmount`; `resume()` delivers them and wakes a waiting writer.
 * - `next()` waits for the next message (optionally of one type).
 */
export class MemoryClient {
  /** Every message received, decoded, in order. */
  readonly messages: ReceivedMessage[] = [];
  /** Every binary frame received, in order. */
  readonly binary: Uint8Array[] = [];
  /** Pings received from the hub. */
  pings = 0;
  /** Physical writes: one per frame, or one per cork when corked. */
  writes = 0;
  /** Resolves with the close code and reason once closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #resolveClosed!: (v: { code: number; reason: string }) => void;
  #buffer: Frame[] = [];
  #bufferedBytes = 0;
  #paused = false;
  #isClosed = false;
  #cursor = 0;
  #waiters: (() => void)[] = [];
  #drainWaiters: { lowWater: number; resolve: () => void }[] = [];
  #events: SocketEvents | undefined;
  #corking = false;
  #autoPong: boolean;

  /**
   * Made by {@linkcode connectMemory}.
   * @param autoPong Answer pings.
   */
  constructor(autoPong = true) {
    this.#autoPong = autoPong;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  /** Bytes sent by the hub but not yet read (while paused). */
  get bufferedAmount(): number {
    return this.#bufferedBytes;
  }

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Stop reading: frames pile up in the socket buffer. */
  pause(): void {
    this.#paused = true;
  }

  /** Read everything buffered and keep reading. */
  resume(): void {
    this.#paused = false;
    const frames = this.#buffer;
    this.#buffer = [];
    this.#bufferedBytes = 0;
    for (const f of frames) this.#read(f);
    this.#wakeDrain();
  }

  /**
   * Wait for the next unread message, optionally of one type (skipping others).
   * @param type Only return a message of this type.
   * @returns The message.
   */
  async next(type?: string): Promise<ReceivedMessage> {
    while (true) {
      while (this.#cursor < this.messages.length) {
        const m = this.messages[this.#cursor++];
        if (type === undefined || m.type === type) return m;
      }
      if (this.#isClosed) throw new Error(`Cannot read: closed before a ${type ?? "message"}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /**
   * Send a frame to the hub: objects are JSON-encoded.
   * @param message An object, a string, or bytes.
   */
  send(message: unknown): void {
    if (this.#isClosed) throw new Error("Cannot send: closed");
    const frame = typeof message === "string" || message instanceof Uint8Array
      ? message
      : JSON.stringify(message);
    this.#events?.message(frame);
  }

  /** Answer a ping now (for `autoPong: false`). */
  pong(): void {
    this.#events?.pong();
  }

  /**
   * Close from the client side.
   * @param code Close code.
   * @param reason Close reason.
   */
  close(code = 1000, reason = ""): void {
    if (this.#isClosed) return;
    this.#markClosed(code, reason);
    this.#events?.close(code, reason);
  }

  /** Drop the connection without a close frame (the hub sees 1006). */
  drop(): void {
    this.close(1006, "");
  }

  /** @internal */
  attach(events: SocketEvents): void {
    this.#events = events;
  }

  /** @internal The transport the hub writes to. */
  transport(options: { cork: boolean; ping: boolean; syncClose: boolean }): Transport {
    const t: Transport = {
      send: (frame) => {
        if (this.#isClosed) return 1;
        if (!this.#corking) this.writes++;
        if (this.#paused) {
          this.#buffer.push(frame);
          this.#bufferedBytes += typeof frame === "string" ? frame.length : frame.byteLength;
          return -1;
        }
        this.#read(frame);
        return 1;
      },
      bufferedAmount: () => this.#bufferedBytes,
      writable: (lowWater, signal) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          if (this.#bufferedBytes <= lowWater) return resolve();
          const waiter = {
            lowWater,
            resolve: () => {
              signal.removeEventListener("abort", onAbort);
              resolve();
            },
          };
          const onAbort = () => {
            this.#drainWaiters = this.#drainWaiters.filter((w) => w !== waiter);
            reject(signal.reason);
          };
          signal.addEventListener("abort", onAbort, { once: true });
          this.#drainWaiters.push(waiter);
        }),
      close: (code, reason) => {
        if (this.#isClosed) return;
        this.#markClosed(code, reason);
        if (options.syncClose) this.#events?.close(code, reason);
        else queueMicrotask(() => this.#events?.close(code, reason));
      },
    };
    if (options.cork) {
      t.cork = (fn) => {
        this.writes++;
        this.#corking = true;
        try {
          fn();
        } finally {
          this.#corking = false;
        }
      };
    }
    if (options.ping) {
      t.ping = () => {
        this.pings++;
        if (this.#autoPong) queueMicrotask(() => this.#events?.pong());
      };
    }
    return t;
  }

  /** The negotiated subprotocol (`"hubbub.batch.v1"` means several messages per frame). */
  protocol = "";
  /** Text frames received (a batched frame counts once). */
  textFrames = 0;

  #read(frame: Frame): void {
    if (typeof frame === "string") {
      this.textFrames++;
      const parts = this.protocol === "hubbub.batch.v1" ? frame.split("\n") : [frame];
      for (const part of parts) this.messages.push(JSON.parse(part));
    } else this.binary.push(frame);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #wakeDrain(): void {
    const ready = this.#drainWaiters.filter((w) => this.#bufferedBytes <= w.lowWater);
    this.#drainWaiters = this.#drainWaiters.filter((w) => this.#bufferedBytes > w.lowWater);
    for (const w of ready) w.resolve();
  }

  #markClosed(code: number, reason: string): void {
    this.#isClosed = true;
    this.#resolveClosed({ code, reason });
    this.#wake();
  }
}

/**
 * Connect an in-memory client to a hub, through the hub's real upgrade checks.
 *
 * @param hub The hub.
 * @param options Request and transport behaviour.
 * @returns The client end, already open.
 * @throws {UpgradeRefusedError} If the hub refuses the upgrade (401, 403, 503...).
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { connectMemory } from "@hubbub/hubbub/testing";
 * const hub = new Hub();
 * const client = await connectMemory(hub);
 * const hello = await client.next("connection.established");
 * await hub.close();
 * ```
 */
export async function connectMemory(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  options: ConnectMemoryOptions = {},
): Promise<MemoryClient> {
  const request = new Request(options.url ?? "http://localhost/ws", {
    headers: { upgrade: "websocket", connection: "upgrade", ...options.headers },
  });
  const decision = await hub.upgrade(request, { params: options.params });
  if (!decision.ok) {
    await decision.response.body?.cancel();
    throw new UpgradeRefusedError(decision.response.status);
  }
  const client = new MemoryClient(options.autoPong ?? true);
  client.protocol = decision.protocol;
  const transport = client.transport({
    cork: options.cork ?? false,
    ping: options.ping ?? true,
    syncClose: options.syncClose ?? false,
  });
  client.attach(decision.open(transport));
  return client;
}
