// Test doubles for the client: a scripted WebSocket and manual timers, so reconnect,
// backoff and keepalive logic is tested without sockets or waiting.
import type {
  ClientTimers,
  ClientWebSocket,
  ClientWebSocketConstructor,
} from "../../src/client/mod.ts";

type Listener = (event: unknown) => void;

/** A WebSocket whose server side the test plays by hand. */
export class FakeSocket implements ClientWebSocket {
  readyState = 0;
  protocol = "";
  binaryType = "blob";
  readonly sent: string[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  readonly #listeners = new Map<string, Listener[]>();

  constructor(readonly url: string, readonly protocols?: string | string[]) {}

  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener);
    this.#listeners.set(type, list);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }

  /** Messages the client sent, parsed. */
  get messages(): Record<string, unknown>[] {
    return this.sent.map((s) => JSON.parse(s));
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedWith = { code, reason };
    this.readyState = 2;
    // Like a real socket, the close event comes later.
    queueMicrotask(() => this.#closed(code ?? 1005, reason ?? ""));
  }

  #fire(type: string, event: unknown): void {
    for (const l of this.#listeners.get(type) ?? []) l(event);
  }

  #closed(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.#fire("close", { code, reason });
  }

  // ---- the server's side

  /** The handshake completes (optionally selecting a subprotocol). */
  accept(protocol = ""): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.#fire("open", {});
  }

  /** A raw text frame arrives. */
  frame(text: string): void {
    this.#fire("message", { data: text });
  }

  /** An event arrives in the envelope. */
  event(type: string, data: unknown): void {
    this.frame(JSON.stringify({ type, data, timestamp: 1 }));
  }

  /** accept() + connection.established. */
  establish(clientId = "c1", userId?: string): void {
    this.accept();
    this.event("connection.established", userId ? { clientId, userId } : { clientId });
  }

  /**
   * The server refuses the upgrade with an HTTP status, as Deno reports it: an
   * error event naming the status, then a close with code 0 and no open.
   */
  refuse(status: number): void {
    if (this.readyState === 3) return;
    this.#fire("error", {
      message: `NetworkError: failed to connect to WebSocket: Invalid status code: ${status}`,
    });
    this.#closed(0, "");
  }

  /** The server closes the connection. */
  drop(code = 1006, reason = ""): void {
    if (this.readyState === 3) return;
    this.#fire("error", {});
    this.#closed(code, reason);
  }
}

/** A WebSocket constructor that records every socket it makes. */
export function fakeWebSocket(): {
  WebSocket: ClientWebSocketConstructor;
  sockets: FakeSocket[];
  last(): FakeSocket;
} {
  const sockets: FakeSocket[] = [];
  class WS extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: WS, sockets, last: () => sockets[sockets.length - 1] };
}

/** Timers that run only when the test advances time. */
export class ManualTimers implements ClientTimers {
  now = 0;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Delays (from now) of the pending timers, soonest first. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** Move time forward, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    while (true) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (best === undefined || entry[1].at < best[1].at)) best = entry;
      }
      if (best === undefined) break;
      this.#timers.delete(best[0]);
      this.now = Math.max(this.now, best[1].at);
      best[1].fn();
    }
    this.now = end;
  }
}

/** Let queued microtasks (fake close events, promise callbacks) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
