/**
 * The one seam a runtime implements: a WebSocket as the hub core sees it.
 *
 * @module
 */

import type { Frame } from "./send_queue.ts";

/**
 * What the core needs from an open server-side WebSocket. Adapters build one
 * over the native socket (an object per socket: Bun's doubles as `ws.data`); the
 * core never sees the socket itself.
 *
 * Send status (the return of {@linkcode Transport.send}):
 * - `> 0`: written or buffered, and the socket has room for more;
 * - `< 0`: accepted, but the runtime signalled backpressure (the core then
 *   reads {@linkcode Transport.bufferedAmount} to decide whether to wait);
 * - `0`: dropped by the runtime. The core closes the connection as a slow client.
 */
export interface Transport {
  /**
   * Send one frame.
   * @param frame Text or binary frame.
   * @returns The send status described on {@linkcode Transport}.
   */
  send(frame: Frame): number;
  /** Bytes accepted by the socket but not yet written to the network. */
  bufferedAmount(): number;
  /**
   * Resolve once {@linkcode Transport.bufferedAmount} is at most `lowWater`,
   * or reject when `signal` aborts. Bun resolves on `drain`; Deno polls.
   */
  writable(lowWater: number, signal: AbortSignal): Promise<void>;
  /** Start the closing handshake. Must be safe to call more than once. */
  close(code: number, reason: string): void;
  /**
   * Optional: drop the connection now, without a closing handshake. The hub
   * uses it for a peer that stopped reading (a slow client, or one still
   * backed up at the `close({ drainMs })` deadline): a close frame would wait
   * behind data that peer never reads, and some runtimes (Bun) then keep the
   * socket open indefinitely. Must be safe in any state.
   */
  terminate?(): void;
  /**
   * Optional: run `fn` with all its sends coalesced into as few writes as the
   * runtime can (Bun's `ws.cork`). When present, the hub queues frames and
   * flushes every socket once per tick inside it.
   */
  cork?(fn: () => void): void;
  /**
   * Optional: send a protocol-level ping. When present, the hub pings idle
   * connections and closes those that answer nothing within the idle timeout;
   * the adapter reports pongs through {@linkcode SocketEvents.pong}. Without it,
   * the adapter is responsible for keepalive (Deno's `idleTimeout`).
   */
  ping?(): void;
}

/**
 * Events an adapter feeds into the core for one socket, returned by
 * `AcceptedUpgrade.open()`. Every method is safe to call in any state.
 */
export interface SocketEvents {
  /** A frame arrived: text as a string, binary as bytes. */
  message(data: string | Uint8Array): void;
  /** The socket closed (by either side). Idempotent. */
  close(code: number, reason: string): void;
  /** A protocol-level pong (or any sign of life) arrived. */
  pong(): void;
}
