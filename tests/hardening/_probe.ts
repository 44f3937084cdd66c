// Measuring helpers for the hardening suite: memory, garbage collection, server-side socket
// states, timing percentiles, and a light reader that checks order without keeping messages.
import { existsSync, readFileSync } from "node:fs";
import WebSocket from "ws";
import { CloseCode } from "../../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** Process memory in bytes. */
export interface Memory {
  rss: number;
  heapUsed: number;
}

/** Current RSS and heap. */
export function memory(): Memory {
  const m = g.Deno?.memoryUsage() ?? g.process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

let denoGc: (() => void) | undefined | null;

/**
 * Run a full garbage collection if the runtime lets us: `Bun.gc(true)` on Bun; on Deno,
 * `--expose-gc` set at run time through `node:v8` (tests run without V8 flags).
 * @returns Whether a collection ran.
 */
export async function collectGarbage(): Promise<boolean> {
  if (g.Bun !== undefined) {
    g.Bun.gc(true);
    return true;
  }
  if (denoGc === undefined) {
    try {
      const v8 = await import("node:v8");
      const vm = await import("node:vm");
      v8.setFlagsFromString("--expose-gc");
      denoGc = vm.runInNewContext("gc") as () => void;
    } catch {
      denoGc = null;
    }
  }
  if (denoGc === null) return false;
  denoGc();
  return true;
}

/** Memory after letting pending work settle and collecting garbage twice. */
export async function settledMemory(): Promise<Memory> {
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    await collectGarbage();
  }
  return memory();
}

/** Whether server-side TCP states can be read (Linux). */
export const canReadTcp: boolean = existsSync("/proc/net/tcp");

/**
 * Server-side ends of TCP connections on `port` (IPv4) that a process still holds open:
 * ESTABLISHED or CLOSE_WAIT (FIN_WAIT/TIME_WAIT sockets are already released by it).
 * @param port The server's port.
 * @returns How many there are.
 */
export function heldServerSockets(port: number): number {
  const hex = ":" + port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !f[1].endsWith(hex)) continue;
    if (f[3] === "01" || f[3] === "08") n++;
  }
  return n;
}

/**
 * What the kernel can hold for one loopback connection whose reader stopped: the sender's
 * largest send buffer plus the receiver's default receive buffer (from /proc, else 8 MiB).
 * @returns Bytes.
 */
export function kernelBuffering(): number {
  try {
    const field = (file: string, i: number) =>
      Number(readFileSync(`/proc/sys/net/ipv4/${file}`, "utf8").trim().split(/\s+/)[i]);
    const total = field("tcp_wmem", 2) + field("tcp_rmem", 1);
    return Number.isFinite(total) ? total : 8 * 1024 * 1024;
  } catch {
    return 8 * 1024 * 1024;
  }
}

/** Percentile of a sample (nearest rank). */
export function percentile(sample: number[], p: number): number {
  if (sample.length === 0) return NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Close codes a client can see from a hubbub server: the library's table, plus what the
 * runtime itself sends for protocol errors (1002, 1007) and what a client reports when the
 * TCP connection ends without a close frame (1005, 1006).
 */
export const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set<number>([
  ...Object.values(CloseCode),
  1002,
  1005,
  1006,
  1007,
]);

/**
 * A client that reads as fast as it can and checks one sequence without keeping messages:
 * frames of `type` must carry `data.i` = 0, 1, 2, ...
 */
export class SequenceReader {
  /** Messages of the checked type received. */
  count = 0;
  /** The first out-of-order index seen, if any. */
  disorder: string | undefined;
  /** Set once closed. */
  closeCode: number | undefined;
  readonly closed: Promise<void>;
  readonly ws: WebSocket;
  #next = 0;

  private constructor(ws: WebSocket, type: string) {
    this.ws = ws;
    const prefix = `{"type":${JSON.stringify(type)},"data":{"i":`;
    ws.on("message", (data: Uint8Array) => {
      const s = new TextDecoder().decode(data);
      if (!s.startsWith(prefix)) return;
      const i = parseInt(s.slice(prefix.length, prefix.length + 12), 10);
      if (i !== this.#next && this.disorder === undefined) {
        this.disorder = `expected ${this.#next}, got ${i}`;
      }
      this.#next = i + 1;
      this.count++;
    });
    ws.on("error", () => {});
    this.closed = new Promise((resolve) =>
      ws.on("close", (code: number) => {
        this.closeCode = code;
        resolve();
      })
    );
  }

  /** Connect and wait until open. */
  static async connect(url: string, type = "n"): Promise<SequenceReader> {
    const ws = new WebSocket(url);
    const reader = new SequenceReader(ws, type);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return reader;
  }

  /** Close and wait. */
  async shut(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    const t = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}
