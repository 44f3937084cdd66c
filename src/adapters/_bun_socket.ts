// Transport over a Bun ServerWebSocket. Writes are corked per tick by the hub;
// backpressure comes from send()'s status and the `drain` event.
import type { HubLimits } from "../core/hub.ts";
import type { SocketEvents, Transport } from "../core/transport.ts";
import { SocketBinding } from "./_binding.ts";

/** The parts of Bun's ServerWebSocket this adapter uses. */
export interface BunSocketLike {
  /** Bun's send: bytes written, -1 when backpressured, 0 when dropped. */
  send(data: string | Uint8Array, compress?: boolean): number;
  /** Bytes buffered in Bun, not yet written. */
  getBufferedAmount(): number;
  /** Coalesce the sends made inside `fn`. */
  cork(fn: () => void): unknown;
  /** Send a protocol ping. */
  ping(data?: string): number;
  /** Start the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Close at once, without a closing handshake. */
  terminate(): void;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
}

/** Per-socket state the Bun handlers need. */
export interface BunSocketState {
  /** The hub's event sink once the socket opened. */
  events: SocketEvents | undefined;
  /** Called from Bun's `drain` handler while a writer waits. */
  drained: (() => void) | undefined;
}

/**
 * The transport over one Bun socket, and at the same time that socket's adapter state
 * (`events`, `drained`): one object per connection, which the adapters keep as `ws.data`
 * (idle memory matters at 10k+). Created before the socket exists; `attach` it once open.
 */
export class BunTransport extends SocketBinding implements Transport, BunSocketState {
  /** Called from Bun's `drain` handler while a writer waits. */
  drained: (() => void) | undefined = undefined;
  #ws: BunSocketLike | undefined;

  /** Bind the socket (Bun's `open`). */
  attach(ws: BunSocketLike): this {
    this.#ws = ws;
    return this;
  }

  send(frame: string | Uint8Array): number {
    try {
      return this.#ws!.send(frame);
    } catch {
      return 1;
    }
  }

  bufferedAmount(): number {
    return this.#ws!.getBufferedAmount();
  }

  cork(fn: () => void): void {
    try {
      this.#ws!.cork(fn);
    } catch {
      // Socket already closed: nothing to write.
    }
  }

  ping(): void {
    this.#ws!.ping();
  }

  writable(lowWater: number, signal: AbortSignal): Promise<void> {
    const ws = this.#ws!;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (ws.getBufferedAmount() <= lowWater || ws.readyState >= 2) return resolve();
      const onAbort = () => {
        this.drained = undefined;
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      // Bun fires drain repeatedly while the buffer empties: resume under the low watermark.
      this.drained = () => {
        if (ws.getBufferedAmount() <= lowWater || ws.readyState >= 2) {
          this.drained = undefined;
          signal.removeEventListener("abort", onAbort);
          resolve();
        }
      };
    });
  }

  close(code: number, reason: string): void {
    try {
      this.#ws!.close(code, reason);
    } catch { /* already closed */ }
  }

  terminate(): void {
    try {
      this.#ws!.terminate();
    } catch { /* already closed */ }
  }
}

/**
 * Bun's `idleTimeout` (seconds) for hub sockets. The hub pings and times out
 * open connections itself; Bun's timer is the backstop for sockets the hub has
 * already closed: after `ws.close()` Bun waits for the peer, and without an
 * idle timeout a peer that never reads keeps the socket forever. A little
 * longer than the hub's own timeout (Bun's timer ticks every 4 s); 0 (off) if
 * that is over Bun's maximum of 960 s.
 */
export function bunIdleTimeout(limits: HubLimits): number {
  const seconds = Math.ceil(limits.idleTimeoutMs / 1000) + 4;
  return seconds <= 960 ? seconds : 0;
}

/** The `websocket` settings hubbub gives Bun (shared by the Bun and Hono adapters). */
export interface BunServerOptions {
  /** Largest frame Bun accepts before closing with 1009 itself. */
  maxPayloadLength: number;
  /** Bun's idle timeout: a backstop for closed sockets (the hub times out open ones). */
  idleTimeout: number;
  /** Bun's own pings: off (the hub pings). */
  sendPings: boolean;
  /** Bun's buffer cap; the hub stops writing far below it. */
  backpressureLimit: number;
  /** Keep sockets over the cap open: the hub applies its own slow-client policy. */
  closeOnBackpressureLimit: boolean;
  /** No per-message deflate (it costs CPU on every fan-out). */
  perMessageDeflate: boolean;
}

/** The `websocket` settings hubbub needs from Bun, for the hub's limits. */
export function bunServerOptions(limits: HubLimits): BunServerOptions {
  return {
    // Frames a little over the limit reach the hub (which closes with 1009 after
    // `connection.closed`); Bun itself closes on anything larger.
    maxPayloadLength: limits.maxMessageBytes + 1024,
    idleTimeout: bunIdleTimeout(limits),
    sendPings: false, // the hub pings
    backpressureLimit: Math.max(16 * 1024 * 1024, limits.highWaterMark * 4),
    closeOnBackpressureLimit: false, // the hub applies its own slow-client policy
    perMessageDeflate: false, // it costs CPU on every fan-out
  };
}

/** Normalise a Bun message (string or Buffer) to a string or bytes. */
export function bunMessageData(message: string | Uint8Array | ArrayBuffer): string | Uint8Array {
  if (typeof message === "string") return message;
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
}
