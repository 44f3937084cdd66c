// A WebSocket client over a raw TCP socket that can send any frame, well-formed or not
// (unmasked, reserved bits, bad opcodes, lying lengths, invalid UTF-8 in text frames), and
// parses what the server sends back, including its close frame. For the fuzzer and for
// clients that misbehave at the protocol level. Runs on Deno and Bun (node:net).
import type { Socket } from "node:net";

/** Options for {@linkcode encodeFrame}. */
export interface FrameOptions {
  /** FIN bit (default true). */
  fin?: boolean;
  /** RSV1-3 bits, 0–7 (default 0). */
  rsv?: number;
  /** Mask the payload, as clients must (default true). */
  mask?: boolean;
  /** Declare this payload length instead of the real one (a lying header). */
  declaredLength?: number | bigint;
}

/** WebSocket opcodes. */
export const Op = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/**
 * Encode one frame as a client would (masked unless told otherwise).
 * @param opcode 0–15.
 * @param payload The payload bytes.
 * @param options Header bits and a possibly lying length.
 * @returns The frame bytes.
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: FrameOptions = {},
): Uint8Array {
  const { fin = true, rsv = 0, mask = true } = options;
  const length = BigInt(options.declaredLength ?? payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)];
  const m = mask ? 0x80 : 0;
  if (length < 126n) head.push(m | Number(length));
  else if (length < 65536n) head.push(m | 126, Number(length >> 8n), Number(length & 0xffn));
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((length >> BigInt(i * 8)) & 0xffn));
  }
  const key = mask ? crypto.getRandomValues(new Uint8Array(4)) : new Uint8Array(0);
  const out = new Uint8Array(head.length + key.length + payload.length);
  out.set(head, 0);
  out.set(key, head.length);
  const body = out.subarray(head.length + key.length);
  for (let i = 0; i < payload.length; i++) body[i] = mask ? payload[i] ^ key[i & 3] : payload[i];
  return out;
}

/** A close frame's payload: a code and a reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const r = new TextEncoder().encode(reason);
  const out = new Uint8Array(2 + r.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

/** One frame from the server. */
export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** A raw client connection. */
export interface RawSocket {
  /** Frames received so far. */
  readonly frames: ServerFrame[];
  /** Text frames received so far, decoded. */
  texts(): string[];
  /** The close code from the server's close frame, if one arrived (1005 when it had none). */
  readonly closeCode: number | undefined;
  /** Resolves when the TCP connection is closed. */
  readonly closed: Promise<void>;
  /** Whether the TCP connection is closed. */
  readonly isClosed: boolean;
  /** Write raw bytes. Ignored once closed. */
  write(bytes: Uint8Array): void;
  /** Send one frame (see {@linkcode encodeFrame}). */
  send(opcode: number, payload: Uint8Array | string, options?: FrameOptions): void;
  /** Stop reading (the server's writes back up for real). */
  pause(): void;
  /** Close the TCP socket and wait until it is closed. */
  destroy(): Promise<void>;
  /** Wait until `predicate()` holds, the socket closes, or `ms` passes; returns the predicate. */
  wait(predicate: () => boolean, ms: number): Promise<boolean>;
}

/**
 * Open a WebSocket over a raw TCP socket: handshake, then hand back the socket.
 * @param url A ws:// URL.
 * @returns The connection, once upgraded.
 * @throws {Error} If the server refuses the upgrade.
 */
export async function rawConnect(url: string): Promise<RawSocket> {
  const net = await import("node:net");
  const u = new URL(url);
  const socket: Socket = net.connect({ host: u.hostname, port: Number(u.port) });
  let isClosed = false;
  let wake: (() => void) | undefined;
  const closed = new Promise<void>((resolve) =>
    socket.once("close", () => {
      isClosed = true;
      wake?.();
      resolve();
    })
  );
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  socket.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const frames: ServerFrame[] = [];
  let closeCode: number | undefined;
  let buf = new Uint8Array(0);
  let upgraded = false;
  const append = (chunk: Uint8Array) => {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf, 0);
    next.set(chunk, buf.length);
    buf = next;
  };
  const parse = () => {
    while (buf.length >= 2) {
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = (buf[2] << 8) | buf[3];
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
        off = 10;
      }
      if (buf.length < off + len) return;
      const payload = buf.slice(off, off + len);
      buf = buf.slice(off + len);
      frames.push({ opcode, payload });
      if (opcode === Op.CLOSE && closeCode === undefined) {
        closeCode = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      }
    }
  };
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Uint8Array) => {
      append(chunk);
      if (!upgraded) {
        const text = new TextDecoder("latin1").decode(buf);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!text.startsWith("HTTP/1.1 101")) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${text.split("\r\n")[0]}`));
          return;
        }
        upgraded = true;
        buf = buf.slice(end + 4);
        resolve();
      }
      parse();
      wake?.();
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error("closed during the handshake")));
  });
  const write = (bytes: Uint8Array) => {
    if (!isClosed && !socket.destroyed) socket.write(bytes);
  };
  return {
    frames,
    texts: () =>
      frames.filter((f) => f.opcode === Op.TEXT).map((f) => new TextDecoder().decode(f.payload)),
    get closeCode() {
      return closeCode;
    },
    closed,
    get isClosed() {
      return isClosed;
    },
    write,
    send: (opcode, payload, options) =>
      write(
        encodeFrame(
          opcode,
          typeof payload === "string" ? new TextEncoder().encode(payload) : payload,
          options,
        ),
      ),
    pause: () => void socket.pause(),
    destroy: async () => {
      socket.destroy();
      await closed;
    },
    wait: async (predicate, ms) => {
      const end = Date.now() + ms;
      while (!predicate() && !isClosed && Date.now() < end) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(50, Math.max(1, end - Date.now())));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      return predicate();
    },
  };
}
