// Transport over a WHATWG WebSocket on the server side (Deno's, and Hono-on-Deno's raw socket).
// Deno has no drain event: while the socket is over the low watermark, poll bufferedAmount.
import type { HubLimits } from "../core/hub.ts";
import type { Transport } from "../core/transport.ts";

/** The parts of a server-side WHATWG WebSocket this adapter uses. */
export interface WebSocketLike {
  readonly bufferedAmount: number;
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

const POLL_MS = 5;
const CHECK_BYTES = 16 * 1024;

/** Build a transport over a server-side WHATWG WebSocket. */
export function webSocketTransport(socket: WebSocketLike, limits: HubLimits): Transport {
  const hwm = limits.highWaterMark;
  // Reading bufferedAmount costs an op on Deno: read it once per CHECK_BYTES sent,
  // so the socket can overshoot the high-water mark by at most that much.
  const checkEvery = Math.min(CHECK_BYTES, hwm / 4);
  let unchecked = 0;
  return {
    send(frame) {
      try {
        socket.send(frame);
      } catch {
        return 1; // closing: the close event tears the connection down
      }
      unchecked += typeof frame === "string" ? frame.length : frame.byteLength;
      if (unchecked < checkEvery) return 1;
      unchecked = 0;
      return socket.bufferedAmount >= hwm ? -1 : 1;
    },
    bufferedAmount: () => socket.bufferedAmount,
    writable(lowWater, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        const check = () => {
          if (socket.bufferedAmount <= lowWater || socket.readyState >= 2) {
            signal.removeEventListener("abort", onAbort);
            resolve();
          } else timer = setTimeout(check, POLL_MS);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        check();
      });
    },
    close(code, reason) {
      try {
        socket.close(code, reason);
      } catch { /* already closed */ }
    },
  };
}

/** Normalise a WebSocket message event's data to a string or bytes. */
export function messageData(data: unknown): string | Uint8Array | Promise<Uint8Array> {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (data instanceof Blob) return data.arrayBuffer().then((b) => new Uint8Array(b));
  return String(data);
}

/** Deno's `idleTimeout` (whole seconds, at least 1) for the hub's `idleTimeoutMs`. */
export function denoIdleTimeout(limits: HubLimits): number {
  return Math.max(1, Math.ceil(limits.idleTimeoutMs / 1000));
}

/**
 * Put the subprotocol the hub decided in a 101 response (Deno's upgrade response has
 * mutable headers). With `""`, the response names none.
 */
export function setProtocol(response: Response, protocol: string): void {
  if (protocol === "") return;
  response.headers.set("sec-websocket-protocol", protocol);
}

/** The answer to a request the runtime would not upgrade. */
export function badUpgrade(): Response {
  return new Response("Bad WebSocket upgrade request", {
    status: 400,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
