// Bench load client (Bun only). Started by bench/run.mjs, one process per scenario, pinned to
// its own core. Speaks WebSocket over raw TCP sockets (Bun.connect) with a hand-written frame
// parser: it never decodes or JSON-parses a delivery on the hot path, it only checks the
// envelope prefix and counts, so one process can hold 10,000 sockets and count millions of
// deliveries per second. The server's frames are unmasked; the frames we send are masked.
//
// Usage: bun bench/load_client.ts '<json options>'   (see Options below)
// Prints progress to stderr and exactly one `RESULT {json}` line on stdout.

import { readFileSync } from "node:fs";
import type { Socket } from "bun";

type Proto = "ws" | "socketio";
type Scenario = "throughput" | "latency" | "idle" | "slow";

interface Options {
  scenario: Scenario;
  port: number;
  serverPid: number;
  proto: Proto;
  /** Listening clients (throughput, latency). */
  clients: number;
  /** Idle scenario: connection counts at which server RSS is sampled. */
  steps: number[];
  /** Envelope size in bytes the padding aims at (throughput, latency). */
  size: number;
  /** Throughput: messages kept in flight / refill granularity. */
  window: number;
  group: number;
  /** Latency: publish rate (msg/s). */
  rate: number;
  /** Seconds of warm-up and of measurement. */
  warmup: number;
  duration: number;
  /** Slow scenario. */
  slowOthers: number;
  slowSize: number;
  slowRate: number;
  slowBefore: number;
  slowDuring: number;
  /** Seconds to wait for idle RSS to settle at each step. */
  settle: number;
  connectConcurrency: number;
}

const defaults: Options = {
  scenario: "throughput",
  port: 0,
  serverPid: 0,
  proto: "ws",
  clients: 1000,
  steps: [1000, 5000, 10000],
  size: 100,
  window: 16,
  group: 8,
  rate: 20,
  warmup: 1,
  duration: 3,
  slowOthers: 100,
  slowSize: 30_000,
  slowRate: 100,
  slowBefore: 2,
  slowDuring: 8,
  settle: 1,
  connectConcurrency: 200,
};

const opts: Options = { ...defaults, ...(JSON.parse(process.argv[2] ?? "{}") as Partial<Options>) };
const SIO = opts.proto === "socketio";
const HOST = "127.0.0.1";

function log(...args: unknown[]): void {
  console.error(`[load ${opts.scenario}]`, ...args);
}

// ---------------------------------------------------------------------------------------------
// /proc readings

function procCpuSeconds(pid: number | "self"): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime field 15 (clock ticks, 100/s).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function procRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

const TCP_STATES: Record<string, string> = {
  "01": "ESTABLISHED",
  "02": "SYN_SENT",
  "03": "SYN_RECV",
  "04": "FIN_WAIT1",
  "05": "FIN_WAIT2",
  "06": "TIME_WAIT",
  "07": "CLOSE",
  "08": "CLOSE_WAIT",
  "09": "LAST_ACK",
  "0A": "LISTEN",
  "0B": "CLOSING",
};

/** Kernel view of one loopback connection, from the side whose local port is `local`. */
function tcpState(local: number, remote: number): { state: string; txQueue: number } | null {
  const needle = ` 0100007F:${hexPort(local)} 0100007F:${hexPort(remote)} `;
  const text = readFileSync("/proc/net/tcp", "latin1");
  const at = text.indexOf(needle);
  if (at < 0) return null;
  const rest = text.slice(at + needle.length, at + needle.length + 40).split(/\s+/);
  return { state: TCP_STATES[rest[0]] ?? rest[0], txQueue: parseInt(rest[1].split(":")[0], 16) };
}

// ---------------------------------------------------------------------------------------------
// WebSocket over raw TCP

const PREFIX = 128; // bytes of each payload we keep when a frame spans chunks (pings are <= 125)
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

// `{"type":"bench"` and Socket.IO's `42["bench"`
const MARK_WS = enc.encode('{"type":"bench"');
const MARK_SIO = enc.encode('42["bench"');

class Conn {
  id: number;
  sock: Socket<Conn> | undefined;
  upgraded = false;
  ready = false;
  closed = false;
  failed: string | undefined;
  hs: Uint8Array = new Uint8Array(0);
  onReady: (() => void) | undefined;
  // frame parser state
  hdr = new Uint8Array(14);
  hdrLen = 0;
  hdrNeed = 2;
  inPayload = false;
  payloadLeft = 0;
  b0 = 0;
  plen = 0;
  pre = new Uint8Array(PREFIX);
  preLen = 0;
  frag: Uint8Array | undefined;
  // counters
  count = 0;
  rec = false;
  closeCode = -1;
  closeAt = 0;
  endAt = 0;
  out: Uint8Array[] = [];
  publisher: boolean;

  constructor(id: number, publisher: boolean) {
    this.id = id;
    this.publisher = publisher;
  }

  write(bytes: Uint8Array): void {
    const s = this.sock;
    if (!s || this.closed) return;
    if (this.out.length > 0) {
      this.out.push(bytes);
      return;
    }
    const n = s.write(bytes);
    if (n < bytes.length) this.out.push(bytes.subarray(Math.max(n, 0)));
  }

  drain(): void {
    const s = this.sock;
    while (s && this.out.length > 0) {
      const b = this.out[0];
      const n = s.write(b);
      if (n < b.length) {
        this.out[0] = b.subarray(Math.max(n, 0));
        return;
      }
      this.out.shift();
    }
  }
}

/** A masked client frame. */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + len);
  out[0] = 0x80 | opcode;
  let o = 2;
  if (ext === 0) out[1] = 0x80 | len;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
    o = 4;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setUint32(6, len);
    o = 10;
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  out.set(key, o);
  o += 4;
  for (let i = 0; i < len; i++) out[o + i] = payload[i] ^ key[i & 3];
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sendText(c: Conn, text: string): void {
  c.write(clientFrame(1, enc.encode(text)));
}

// ---- counters shared by all connections

let total = 0; // deliveries to listeners since the last reset
let nowUs = 0; // receive time of the chunk being parsed (only kept fresh while recording)
let recording = false;
let lat = new Float64Array(0);
let latN = 0;
let seqChecks = 0;
let seqErrors = 0;
let otherFrames = 0;
// throughput window bookkeeping
let tracking = false;
let ringMask = 0;
let ring = new Int32Array(0);
let listeners = 0;
let completed = 0;
let onComplete: () => void = () => {};

function indexOf4(buf: Uint8Array, off: number, end: number, a: number, b: number, c: number, d: number): number {
  for (let i = off; i + 3 < end; i++) {
    if (buf[i] === a && buf[i + 1] === b && buf[i + 2] === c && buf[i + 3] === d) return i;
  }
  return -1;
}

/** Integer after `"t":` (our send time in µs), or -1. */
function parseT(buf: Uint8Array, off: number, avail: number): number {
  const end = off + (avail < PREFIX ? avail : PREFIX);
  const at = indexOf4(buf, off, end, 0x22, 0x74, 0x22, 0x3a);
  if (at < 0) return -1;
  let v = 0;
  for (let i = at + 4; i < end; i++) {
    const ch = buf[i];
    if (ch < 0x30 || ch > 0x39) break;
    v = v * 10 + (ch - 0x30);
  }
  return v;
}

/** Integer after `"seq":` (may be negative), or NaN. */
function parseSeq(buf: Uint8Array, off: number, avail: number): number {
  const end = off + (avail < PREFIX ? avail : PREFIX);
  const at = indexOf4(buf, off, end, 0x65, 0x71, 0x22, 0x3a); // eq":
  if (at < 0) return NaN;
  let i = at + 4;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let v = 0;
  for (; i < end; i++) {
    const ch = buf[i];
    if (ch < 0x30 || ch > 0x39) break;
    v = v * 10 + (ch - 0x30);
  }
  return neg ? -v : v;
}

function startsWith(buf: Uint8Array, off: number, avail: number, mark: Uint8Array): boolean {
  if (avail < mark.length) return false;
  for (let i = 0; i < mark.length; i++) if (buf[off + i] !== mark[i]) return false;
  return true;
}

function delivery(c: Conn, buf: Uint8Array, off: number, avail: number): void {
  if (c.publisher) return;
  const k = c.count++;
  total++;
  if (tracking) {
    const slot = k & ringMask;
    if (++ring[slot] === listeners) {
      ring[slot] = 0;
      completed++;
      onComplete();
    }
  }
  if (recording && c.rec) {
    const t = parseT(buf, off, avail);
    if (t >= 0 && latN < lat.length) lat[latN++] = (nowUs - t) / 1000;
  }
  if ((k & 255) === 0 && tracking) {
    seqChecks++;
    if (parseSeq(buf, off, avail) !== k) seqErrors++;
  }
}

/** A complete text/binary message; buf[off, off+avail) is its first min(len, PREFIX+) bytes. */
function message(c: Conn, buf: Uint8Array, off: number, avail: number): void {
  if (SIO) {
    if (startsWith(buf, off, avail, MARK_SIO)) return delivery(c, buf, off, avail);
    const s = latin1.decode(buf.subarray(off, off + Math.min(avail, PREFIX)));
    if (s === "2") sendText(c, "3"); // Engine.IO ping -> pong
    else if (s.startsWith("0{")) sendText(c, "40"); // Engine.IO open -> connect namespace "/"
    else if (s.startsWith("40")) markReady(c);
    else if (s.startsWith("42")) {
      if (s.includes('"seq":')) delivery(c, buf, off, avail);
      else otherFrames++;
    } else otherFrames++;
    return;
  }
  if (startsWith(buf, off, avail, MARK_WS)) return delivery(c, buf, off, avail);
  // Envelope that does not start with {"type":"bench": slower check for our payload.
  const s = utf8.decode(buf.subarray(off, off + Math.min(avail, PREFIX)));
  if (s.includes('"seq":')) delivery(c, buf, off, avail);
  else otherFrames++;
}

function frame(c: Conn, b0: number, buf: Uint8Array, off: number, avail: number, plen: number): void {
  const op = b0 & 0x0f;
  const fin = (b0 & 0x80) !== 0;
  if (op === 1 || op === 2) {
    if (fin) message(c, buf, off, avail);
    else c.frag = buf.slice(off, off + Math.min(avail, PREFIX));
  } else if (op === 0) {
    if (fin && c.frag) {
      const f = c.frag;
      c.frag = undefined;
      message(c, f, 0, f.length);
    }
  } else if (op === 9) {
    c.write(clientFrame(10, buf.slice(off, off + avail)));
  } else if (op === 8) {
    c.closeCode = plen >= 2 ? (buf[off] << 8) | buf[off + 1] : 1005;
    c.closeAt = performance.now();
    c.write(clientFrame(8, buf.slice(off, off + Math.min(avail, 2))));
    c.sock?.end();
  }
}

function parse(c: Conn, buf: Uint8Array): void {
  const len = buf.length;
  let i = 0;
  while (i < len) {
    if (c.inPayload) {
      const n = Math.min(c.payloadLeft, len - i);
      if (c.preLen < PREFIX) {
        const m = Math.min(n, PREFIX - c.preLen);
        c.pre.set(buf.subarray(i, i + m), c.preLen);
        c.preLen += m;
      }
      i += n;
      c.payloadLeft -= n;
      if (c.payloadLeft === 0) {
        c.inPayload = false;
        frame(c, c.b0, c.pre, 0, c.preLen, c.plen);
      }
      continue;
    }
    if (c.hdrLen === 0 && len - i >= 2) {
      // Fast path: header (and usually the whole frame) inside this chunk.
      const b0 = buf[i];
      const b1 = buf[i + 1];
      let l = b1 & 0x7f;
      let h = 2;
      if (l === 126) {
        if (len - i >= 4) {
          l = (buf[i + 2] << 8) | buf[i + 3];
          h = 4;
        } else h = -1;
      } else if (l === 127) {
        if (len - i >= 10) {
          l = buf[i + 6] * 16777216 + ((buf[i + 7] << 16) | (buf[i + 8] << 8) | buf[i + 9]);
          h = 10;
        } else h = -1;
      }
      if (h > 0 && (b1 & 0x80) === 0) {
        if (len - i - h >= l) {
          frame(c, b0, buf, i + h, l, l);
          i += h + l;
          continue;
        }
        c.b0 = b0;
        c.plen = l;
        c.payloadLeft = l;
        c.preLen = 0;
        c.inPayload = true;
        i += h;
        continue;
      }
      if (h > 0) throw new Error("masked frame from server");
    }
    // Slow path: header split across chunks.
    c.hdr[c.hdrLen++] = buf[i++];
    if (c.hdrLen === 2) {
      const l7 = c.hdr[1] & 0x7f;
      c.hdrNeed = 2 + (l7 === 126 ? 2 : l7 === 127 ? 8 : 0);
    }
    if (c.hdrLen >= 2 && c.hdrLen === c.hdrNeed) {
      const hd = c.hdr;
      const l7 = hd[1] & 0x7f;
      const l = l7 === 126
        ? (hd[2] << 8) | hd[3]
        : l7 === 127
        ? hd[6] * 16777216 + ((hd[7] << 16) | (hd[8] << 8) | hd[9])
        : l7;
      c.hdrLen = 0;
      c.hdrNeed = 2;
      c.b0 = hd[0];
      c.plen = l;
      c.preLen = 0;
      if (l === 0) frame(c, hd[0], c.pre, 0, 0, 0);
      else {
        c.payloadLeft = l;
        c.inPayload = true;
      }
    }
  }
}

function markReady(c: Conn): void {
  if (c.ready) return;
  c.ready = true;
  const cb = c.onReady;
  c.onReady = undefined;
  cb?.();
}

function onData(c: Conn, chunk: Uint8Array): void {
  if (recording) nowUs = performance.now() * 1000;
  if (c.upgraded) return parse(c, chunk);
  // HTTP upgrade response
  const buf = c.hs.length ? concat([c.hs, chunk]) : chunk;
  let end = -1;
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
      end = i + 4;
      break;
    }
  }
  if (end < 0) {
    c.hs = buf.slice();
    return;
  }
  c.hs = new Uint8Array(0);
  const head = latin1.decode(buf.subarray(0, end));
  if (!head.startsWith("HTTP/1.1 101")) {
    c.failed = head.split("\r\n")[0];
    c.sock?.end();
    markReady(c);
    return;
  }
  c.upgraded = true;
  if (!SIO) markReady(c);
  if (end < buf.length) parse(c, buf.subarray(end));
}

const handlers = {
  open(s: Socket<Conn>) {
    const c = s.data;
    c.sock = s;
    s.setNoDelay(true);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const path = SIO
      ? `/socket.io/?EIO=4&transport=websocket${c.publisher ? "&role=publisher" : ""}`
      : `/ws${c.publisher ? "?role=publisher" : ""}`;
    s.write(
      `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${opts.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  },
  data(s: Socket<Conn>, chunk: Uint8Array) {
    onData(s.data, chunk);
  },
  drain(s: Socket<Conn>) {
    s.data.drain();
  },
  close(s: Socket<Conn>) {
    const c = s.data;
    c.closed = true;
    if (!c.endAt) c.endAt = performance.now();
    if (!c.ready) {
      c.failed ??= "closed before ready";
      markReady(c);
    }
  },
  end(s: Socket<Conn>) {
    const c = s.data;
    if (!c.endAt) c.endAt = performance.now();
  },
  error(s: Socket<Conn>, err: Error) {
    const c = s.data;
    c.failed ??= String(err);
  },
  connectError(s: Socket<Conn>, err: Error) {
    const c = s.data;
    c.failed ??= `connect: ${err}`;
    c.closed = true;
    markReady(c);
  },
};

function connectOne(c: Conn): Promise<Conn> {
  return new Promise((resolve) => {
    c.onReady = () => resolve(c);
    Bun.connect<Conn>({ hostname: HOST, port: opts.port, data: c, socket: handlers }).catch(
      (err) => {
        c.failed ??= `connect: ${err}`;
        markReady(c);
      },
    );
  });
}

let nextId = 0;

/** Opens `count` connections, at most connectConcurrency handshakes at a time. */
async function connectMany(count: number, publisher = false): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < count; i++) conns.push(new Conn(nextId++, publisher));
  let next = 0;
  const worker = async () => {
    while (next < conns.length) {
      const c = conns[next++];
      await connectOne(c);
      if (c.failed) throw new Error(`connection ${c.id} failed: ${c.failed}`);
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(opts.connectConcurrency, count); w++) workers.push(worker());
  await Promise.all(workers);
  return conns;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Publishing

let seq = 0;
const PAD_CHAR = "x";

/** The data object we publish: send time in µs first so it is cheap to find. */
function dataJson(s: number, pad: number): string {
  const t = Math.round(performance.now() * 1000);
  return `{"seq":${s},"t":${t},"p":"${PAD_CHAR.repeat(pad)}"}`;
}

function publishFrame(s: number, pad: number): Uint8Array {
  const data = dataJson(s, pad);
  const text = SIO ? `42["publish",${data}]` : `{"type":"publish","data":${data}}`;
  return clientFrame(1, enc.encode(text));
}

/** Padding so the envelope the server sends is about `size` bytes (Socket.IO adds ~12). */
function padFor(size: number): number {
  // {"type":"bench","data":{"seq":NNNNN,"t":NNNNNNNNNN,"p":"…"},"timestamp":NNNNNNNNNNNNN}
  const fixed = 23 + `{"seq":12345,"t":1234567890,"p":""}`.length + 27;
  return Math.max(0, size - fixed);
}

function publish(pub: Conn, count: number, pad: number): void {
  if (count === 1) return pub.write(publishFrame(seq++, pad));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) frames.push(publishFrame(seq++, pad));
  pub.write(concat(frames));
}

/** Publishes probes until every listener got one, waits for quiet, then zeroes all counters. */
async function sync(pub: Conn, conns: Conn[]): Promise<void> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    pub.write(publishFrame(-1, 0));
    await sleep(100);
    if (conns.every((c) => c.count > 0)) break;
    if (performance.now() > deadline) {
      const missing = conns.filter((c) => c.count === 0).length;
      throw new Error(`sync: ${missing} of ${conns.length} clients never received a message`);
    }
  }
  let last = -1;
  while (total !== last) {
    last = total;
    await sleep(150);
  }
  for (const c of conns) c.count = 0;
  total = 0;
  seq = 0;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function latStats(from: number, to: number) {
  const s = lat.slice(from, to).sort();
  return {
    samples: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.length ? s[s.length - 1] : NaN,
  };
}

async function throughput() {
  const n = opts.clients;
  log(`connecting ${n} clients`);
  const t0 = performance.now();
  const conns = await connectMany(n);
  const [pub] = await connectMany(1, true);
  log(`connected in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  await sync(pub, conns);

  const K = opts.window;
  const G = Math.min(opts.group, K);
  let size = 1;
  while (size < 2 * K) size <<= 1;
  ring = new Int32Array(size);
  ringMask = size - 1;
  listeners = n;
  const pad = padFor(opts.size);
  onComplete = () => {
    if (seq - completed <= K - G) publish(pub, K - (seq - completed), pad);
  };
  tracking = true;
  publish(pub, K, pad);

  // watchdog: no completed message for 3 s means the run is stuck (drops or lost clients)
  let stalled = "";
  let lastCompleted = -1;
  let lastChange = performance.now();
  const watchdog = setInterval(() => {
    if (completed !== lastCompleted) {
      lastCompleted = completed;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 3000 && !stalled) {
      const slot = completed & ringMask;
      stalled = `stalled at message ${completed}: ${ring[slot]} of ${n} copies arrived; ` +
        `${conns.filter((c) => c.closed).length} clients closed`;
    }
  }, 250);

  const until = (t: number) =>
    new Promise<void>((resolve) => {
      const tick = () => (stalled || performance.now() >= t ? resolve() : setTimeout(tick, 20));
      tick();
    });

  await until(performance.now() + opts.warmup * 1000);
  const a = {
    t: performance.now(),
    total,
    completed,
    srv: procCpuSeconds(opts.serverPid),
    self: procCpuSeconds("self"),
  };
  await until(a.t + opts.duration * 1000);
  const b = {
    t: performance.now(),
    total,
    completed,
    srv: procCpuSeconds(opts.serverPid),
    self: procCpuSeconds("self"),
  };
  clearInterval(watchdog);
  tracking = false;
  const secs = (b.t - a.t) / 1000;
  const deliveries = b.total - a.total;
  if (stalled) throw new Error(stalled);
  return {
    clients: n,
    window: K,
    group: G,
    seconds: secs,
    deliveries,
    deliveriesPerSec: deliveries / secs,
    messagesPerSec: (b.completed - a.completed) / secs,
    serverCpuUsPerDelivery: ((b.srv - a.srv) * 1e6) / deliveries,
    serverCpuPct: ((b.srv - a.srv) / secs) * 100,
    clientCpuPct: ((b.self - a.self) / secs) * 100,
    seqChecks,
    seqErrors,
    otherFrames,
    serverRssBytes: procRssBytes(opts.serverPid),
  };
}

/** Publishes `rate` msg/s until `stop()` (catch-up scheduling, 5 ms tick). */
function ratePublisher(pub: Conn, rate: number, pad: number) {
  const start = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    if (due > sent) {
      publish(pub, due - sent, pad);
      sent = due;
    }
  }, 5);
  return {
    sent: () => sent,
    stop: () => clearInterval(timer),
  };
}

async function latency() {
  const n = opts.clients;
  log(`connecting ${n} clients`);
  const conns = await connectMany(n);
  const [pub] = await connectMany(1, true);
  await sync(pub, conns);
  for (const c of conns) c.rec = true;
  lat = new Float64Array(Math.ceil(n * opts.rate * (opts.duration + 1) * 1.5) + 1000);
  const pad = padFor(opts.size);
  const rp = ratePublisher(pub, opts.rate, pad);
  await sleep(opts.warmup * 1000);
  const fromTotal = total;
  const sentBefore = rp.sent();
  recording = true;
  await sleep(opts.duration * 1000);
  const sentInWindow = rp.sent() - sentBefore;
  rp.stop();
  await sleep(500);
  recording = false;
  const st = latStats(0, latN);
  return {
    clients: n,
    rate: opts.rate,
    seconds: opts.duration,
    ...st,
    expected: sentInWindow * n,
    received: total - fromTotal,
    unit: "ms",
  };
}

async function idle() {
  const rss0 = await settledRss();
  const points: { clients: number; rssBytes: number }[] = [{ clients: 0, rssBytes: rss0 }];
  let open = 0;
  const all: Conn[] = [];
  for (const step of opts.steps) {
    const t0 = performance.now();
    all.push(...(await connectMany(step - open)));
    open = step;
    log(`${open} idle clients (+${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    points.push({ clients: open, rssBytes: await settledRss() });
  }
  const closed = all.filter((c) => c.closed).length;
  const perConn: Record<string, number> = {};
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    perConn[`${a.clients}-${b.clients}`] = (b.rssBytes - a.rssBytes) / (b.clients - a.clients);
  }
  return { points, bytesPerConn: perConn, closedDuringTest: closed };
}

async function settledRss(): Promise<number> {
  await sleep(opts.settle * 1000);
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    samples.push(procRssBytes(opts.serverPid));
    await sleep(150);
  }
  return samples.sort((a, b) => a - b)[1];
}

async function slow() {
  const others = opts.slowOthers;
  const conns = await connectMany(others + 1);
  const [pub] = await connectMany(1, true);
  const slowC = conns[0];
  const rest = conns.slice(1);
  await sync(pub, conns);
  for (const c of rest) c.rec = true;
  const totalMsgs = opts.slowRate * (opts.slowBefore + opts.slowDuring + 2);
  lat = new Float64Array(Math.ceil(totalMsgs * others * 1.5) + 1000);
  const pad = Math.max(0, opts.slowSize - padFor(0));
  const rp = ratePublisher(pub, opts.slowRate, pad);

  // phase A: everyone reads
  await sleep(1000);
  recording = true;
  await sleep(opts.slowBefore * 1000);
  recording = false;
  const before = latStats(0, latN);
  const sentBefore = rp.sent();
  const rssBefore = procRssBytes(opts.serverPid);

  // phase B: the slow client stops reading
  slowC.sock!.pause();
  const pausedAt = performance.now();
  const slowPort = slowC.sock!.localPort;
  const latFrom = latN;
  recording = true;
  let rssMax = rssBefore;
  let serverSideChange: { afterS: number; state: string } | null = null;
  let maxServerTxQueue = 0;
  const watch = setInterval(() => {
    rssMax = Math.max(rssMax, procRssBytes(opts.serverPid));
    const st = tcpState(opts.port, slowPort);
    if (st) maxServerTxQueue = Math.max(maxServerTxQueue, st.txQueue);
    if (!serverSideChange && (!st || st.state !== "ESTABLISHED")) {
      serverSideChange = {
        afterS: (performance.now() - pausedAt) / 1000,
        state: st ? st.state : "gone (reset)",
      };
    }
  }, 200);
  await sleep(opts.slowDuring * 1000);
  clearInterval(watch);
  recording = false;
  const during = latStats(latFrom, latN);
  const rssEnd = procRssBytes(opts.serverPid);
  const published = rp.sent();
  rp.stop();

  // phase C: stop publishing, let the slow client read what is left
  const receivedWhilePaused = slowC.count;
  slowC.sock!.resume();
  const drainDeadline = performance.now() + 4000;
  let last = -1;
  while (performance.now() < drainDeadline && !slowC.closed) {
    if (slowC.count === published) break;
    if (slowC.count === last) {
      await sleep(400);
      if (slowC.count === last) break;
    }
    last = slowC.count;
    await sleep(100);
  }
  const sc = serverSideChange as { afterS: number; state: string } | null;
  let fate: string;
  const slowGot = slowC.count;
  if (slowC.closeCode >= 0) {
    fate = `closed, code ${slowC.closeCode}` + (sc ? ` after ${sc.afterS.toFixed(1)}s` : "");
  } else if (slowC.closed || sc) {
    fate = `connection closed without close frame` + (sc ? ` after ${sc.afterS.toFixed(1)}s` : "");
  } else if (slowGot < published) {
    fate = `kept open, ${published - slowGot} of ${published} messages lost`;
  } else {
    fate = `kept open, all ${published} messages buffered and delivered`;
  }
  return {
    others,
    messageBytes: opts.slowSize,
    rate: opts.slowRate,
    perClientBytesPerSec: opts.slowSize * opts.slowRate,
    pausedSeconds: opts.slowDuring,
    rssBeforeBytes: rssBefore,
    rssMaxBytes: rssMax,
    rssEndBytes: rssEnd,
    rssGrowthBytes: rssMax - rssBefore,
    othersBefore: before,
    othersDuring: during,
    othersP99BeforeMs: before.p99,
    othersP99DuringMs: during.p99,
    published,
    publishedBeforePause: sentBefore,
    slowReceived: slowGot,
    slowReceivedWhilePaused: receivedWhilePaused,
    slowCloseCode: slowC.closeCode,
    serverSideChange: sc,
    maxServerKernelTxQueue: maxServerTxQueue,
    othersReceivedAll: rest.every((c) => c.count >= published),
    fate,
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const scenarios: Record<Scenario, () => Promise<unknown>> = {
    throughput,
    latency,
    idle,
    slow,
  };
  const run = scenarios[opts.scenario];
  if (!run) throw new Error(`unknown scenario ${opts.scenario}`);
  const result = await run();
  console.log(`RESULT ${JSON.stringify({ ok: true, scenario: opts.scenario, result })}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.log(
      `RESULT ${JSON.stringify({ ok: false, scenario: opts.scenario, error: String(err?.message ?? err) })}`,
    );
    process.exit(1);
  },
);
