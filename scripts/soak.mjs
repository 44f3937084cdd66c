#!/usr/bin/env node
// Soak test: one hubbub server (bench/soak/server.ts on Deno or Bun) under a steady mix of
// well-behaved and misbehaving clients for N minutes. Not part of `npm test`.
//
//   npm run soak -- --minutes 10 --runtime=deno     (or --runtime=bun)
//
// Load, at a steady rate (× --scale, default 1):
// - 40 stable clients in 4 rooms (10 also read the 8 KiB/50 ms "firehose"), each sending a
//   numbered chat message every 500 ms. Every stable client checks it gets every stable
//   sender's messages in its room, in order, with no gap, and the firehose with no gap.
// - churn: 10 clients/s that connect, join a room, chat 3 times and leave (cleanly or not)
//   after 0.5–3 s;
// - misbehaving clients: garbage frames (1/s), floods (1/2 s, must be closed 4002), oversize
//   frames (1/3 s, must be closed 1009), invalid UTF-8 text frames (1/3 s), and stalled
//   readers of the firehose (1/5 s, must be closed by the server as slow clients).
// Every minute (--every S to change) it prints connections, messages/s, the server's RSS and
// heap, errors by code and closes by code. It exits non-zero if the server crashes or stops
// answering, a well-behaved client misses a message or is closed, a misbehaving one is not
// dealt with, or memory grows without bound (RSS at the end > 1.5 × RSS after the first
// interval + 50 MiB).
import { spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";
import WebSocket from "ws";

// ---------------------------------------------------------------- flags

function flag(name, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return fallback;
}

const MINUTES = Number(flag("minutes", "10"));
const RUNTIME = flag("runtime", "deno");
const EVERY_S = Number(flag("every", "60"));
const SCALE = Number(flag("scale", "1"));
if (!(MINUTES > 0) || !["deno", "bun"].includes(RUNTIME) || !(EVERY_S > 0) || !(SCALE > 0)) {
  console.error(
    "usage: node scripts/soak.mjs --minutes N [--runtime=deno|bun] [--every S] [--scale F]",
  );
  process.exit(2);
}

const ROOT = new URL("..", import.meta.url).pathname;
const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
const MiB = 1024 * 1024;
const mib = (b) => (b / MiB).toFixed(1);
const started = Date.now();
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1) + "s";
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- bookkeeping

const violations = [];
function violate(what) {
  if (violations.length < 200) violations.push(`[${elapsed()}] ${what}`);
  if (violations.length <= 20) console.log(`VIOLATION [${elapsed()}] ${what}`);
}

/** Counters for the current interval; folded into totals at each summary. */
function freshCounts() {
  return { received: 0, chatsSent: 0, errors: {}, clientCloses: {}, connects: 0, misbehaved: {} };
}
let counts = freshCounts();
const totals = freshCounts();
const bump = (obj, key, n = 1) => void (obj[key] = (obj[key] ?? 0) + n);
let stopping = false;

// ---------------------------------------------------------------- server

const serverArgs = RUNTIME === "deno"
  ? [bin("deno"), ["run", "-A", "bench/soak/server.ts"]]
  : [bin("bun"), ["bench/soak/server.ts"]];
const server = spawn(serverArgs[0], serverArgs[1], {
  cwd: ROOT,
  env: { ...process.env, NO_COLOR: "1" },
  stdio: ["ignore", "pipe", "pipe"],
});
let serverOut = "";
let serverExited = false;
server.stdout.on("data", (d) => void (serverOut += d));
server.stderr.on("data", (d) => void (serverOut += d));
server.on("exit", (code, signal) => {
  serverExited = true;
  if (!stopping) {
    violate(`the server exited (code ${code}, signal ${signal}):\n${serverOut.slice(-3000)}`);
  }
});
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`server not ready:\n${serverOut}`)), 30_000);
  const check = () => {
    const m = /listening (\d+)/.exec(serverOut);
    if (m) {
      clearTimeout(timer);
      resolve(Number(m[1]));
    }
  };
  server.stdout.on("data", check);
  server.on("exit", () => reject(new Error(`server exited:\n${serverOut}`)));
});
const URL_WS = `ws://127.0.0.1:${port}/ws`;

async function serverStats() {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/stats`, {
      signal: AbortSignal.timeout(5000),
    });
    return await res.json();
  } catch (error) {
    violate(`the server did not answer /stats: ${error}`);
    return undefined;
  }
}

// ---------------------------------------------------------------- clients

/** Open a ws client; resolves on `connection.established`, rejects on failure. */
function connect(onMessage, onClose) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(URL_WS, { perMessageDeflate: false });
    let established = false;
    ws.on("message", (data, isBinary) => {
      counts.received++;
      if (isBinary) return;
      let m;
      try {
        m = JSON.parse(data.toString());
      } catch {
        violate("the server sent a frame that is not JSON");
        return;
      }
      if (m.type === "error") bump(counts.errors, m.data?.code ?? "?");
      if (!established && m.type === "connection.established") {
        established = true;
        counts.connects++;
        resolve(ws);
        return;
      }
      onMessage?.(m);
    });
    ws.on("close", (code) => {
      bump(counts.clientCloses, code);
      if (!established) reject(new Error(`closed ${code} before established`));
      onClose?.(code);
    });
    ws.on("error", (e) => {
      if (!established) reject(e);
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      ws.terminate();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
  });
}

const send = (ws, m) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(typeof m === "string" ? m : JSON.stringify(m));
};

/** A stable, well-behaved client: chats in its room, checks every message it should get. */
class Stable {
  constructor(k) {
    this.name = `stable-${k}`;
    this.room = `room-${k % 4}`;
    this.firehose = k < 10;
    this.sent = 0;
    this.last = new Map(); // stable sender -> last seq seen
    this.lastFire = undefined;
    this.fireSeen = 0;
  }
  async start() {
    this.ws = await connect((m) => this.#onMessage(m), (code) => {
      if (!stopping || this.expectOpen) violate(`${this.name} was closed with ${code}`);
    });
    this.expectOpen = true;
    for (const room of this.firehose ? [this.room, "firehose"] : [this.room]) {
      send(this.ws, { type: "subscribe", room });
    }
  }
  #onMessage(m) {
    if (m.type === "error") violate(`${this.name} got error ${JSON.stringify(m.data)}`);
    if (m.type === "chat" && m.data.from.startsWith("stable-")) {
      const last = this.last.get(m.data.from) ?? -1;
      if (m.data.seq !== last + 1) {
        violate(`${this.name} got ${m.data.from} #${m.data.seq} after #${last}`);
      }
      this.last.set(m.data.from, m.data.seq);
    } else if (m.type === "fire") {
      if (this.lastFire !== undefined && m.data.i !== this.lastFire + 1) {
        violate(`${this.name} got fire #${m.data.i} after #${this.lastFire}`);
      }
      this.lastFire = m.data.i;
      this.fireSeen++;
    }
  }
  chat() {
    send(this.ws, {
      type: "chat",
      room: this.room,
      text: "hello",
      seq: this.sent++,
      from: this.name,
    });
    counts.chatsSent++;
  }
}

const inFlight = new Set();
function track(p) {
  inFlight.add(p);
  p.finally(() => inFlight.delete(p));
}

let churnSeq = 0;
async function churner() {
  const name = `churn-${churnSeq++}`;
  const room = `room-${Math.floor(Math.random() * 4)}`;
  let leaving = false;
  let subscribed;
  const joined = new Promise((resolve) => subscribed = resolve);
  const ws = await connect((m) => {
    if (m.type === "subscribed") subscribed();
    if (m.type === "error") violate(`${name} got error ${JSON.stringify(m.data)}`);
  }, (code) => {
    if (!leaving) violate(`${name} was closed with ${code}`);
  }).catch((e) => void violate(`${name} could not connect: ${e.message}`));
  if (!ws) return;
  send(ws, { type: "subscribe", room });
  await Promise.race([joined, delay(5000)]);
  for (let seq = 0; seq < 3; seq++) {
    send(ws, { type: "chat", room, text: "drive-by", seq, from: name });
  }
  await delay(500 + Math.random() * 2500);
  leaving = true;
  if (Math.random() < 0.7) ws.close(1000);
  else ws.terminate();
}

// Garbage a client may send: each must get an error back, and the connection stays open.
const GARBAGE = [
  "{",
  "[]",
  '"str"',
  "null",
  '{"type":7}',
  '{"type":"ping","junk":1}',
  '{"type":"subscribe","room":{"__proto__":{"polluted":true}}}',
  '{"type":"subscribe","room":"x\\u0000y"}',
  '{"__proto__":{"type":"ping"}}',
  '{"type":"chat","room":"room-1","text":"not joined","seq":1,"from":"g"}',
  '{"type":"chat","room":"room-1","text":5,"seq":"x"}',
  '{"type":"nope"}',
  "[".repeat(5000) + "]".repeat(5000),
  '{"a":'.repeat(3000) + "1" + "}".repeat(3000),
  '{"type":"ping","id":' + "1".repeat(400) + "}",
];

async function garbage() {
  let done = false;
  const ws = await connect(undefined, (code) => {
    if (!done) violate(`a garbage client was closed with ${code}`);
  }).catch((e) => void violate(`garbage client could not connect: ${e.message}`));
  if (!ws) return;
  let errors = 0;
  ws.on("message", (d, isBinary) => {
    if (!isBinary && d.toString().startsWith('{"type":"error"')) errors++;
  });
  const frames = [...GARBAGE].sort(() => Math.random() - 0.5).slice(0, 10);
  for (const f of frames) send(ws, f);
  ws.send(crypto.getRandomValues(new Uint8Array(64))); // binary: not accepted here
  const end = Date.now() + 5000;
  while (errors < frames.length + 1 && Date.now() < end) await delay(20);
  if (errors < frames.length + 1) {
    violate(`a garbage client got ${errors} errors for ${frames.length + 1} bad frames`);
  }
  done = true;
  ws.close(1000);
  bump(counts.misbehaved, "garbage");
}

/** Wait for a misbehaving client to be closed by the server; return the code. */
function closedWithin(ws, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      ws.terminate();
      resolve(undefined);
    }, ms);
    ws.on("close", (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

async function flooder() {
  const ws = await connect().catch((e) => void violate(`flooder could not connect: ${e.message}`));
  if (!ws) return;
  const closed = closedWithin(ws, 10_000);
  for (let burst = 0; burst < 20 && ws.readyState === WebSocket.OPEN; burst++) {
    for (let i = 0; i < 100; i++) send(ws, '{"type":"ping"}');
    await delay(0);
  }
  const code = await closed;
  // Deno can lose the close frame when frames arrive after it (the client then sees 1006).
  if (code !== 4002 && code !== 1006) violate(`a flooder was closed with ${code}, not 4002`);
  bump(counts.misbehaved, "flood");
}

async function oversize() {
  const ws = await connect().catch((e) => void violate(`oversize could not connect: ${e.message}`));
  if (!ws) return;
  const closed = closedWithin(ws, 5000);
  send(ws, JSON.stringify({ type: "ping", pad: "x".repeat(64 * 1024) }));
  const code = await closed;
  if (code !== 1009) violate(`an oversize frame got close ${code}, not 1009`);
  bump(counts.misbehaved, "oversize");
}

/** A raw socket after the WebSocket handshake (for frames the ws package will not send). */
function rawSocket() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("error", () => {});
    socket.once("connect", () => {
      const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = "";
    const onData = (d) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      if (head.startsWith("HTTP/1.1 101")) resolve(socket);
      else {
        socket.destroy();
        reject(new Error(head.split("\r\n")[0]));
      }
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error("closed during the handshake")));
  });
}

function maskedFrame(opcode, payload) {
  const key = crypto.getRandomValues(new Uint8Array(4));
  const n = payload.length;
  const head = n < 126 ? [0x80 | opcode, 0x80 | n] : [0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff];
  const out = Buffer.alloc(head.length + 4 + n);
  out.set(head, 0);
  out.set(key, head.length);
  for (let i = 0; i < n; i++) out[head.length + 4 + i] = payload[i] ^ key[i & 3];
  return out;
}

async function badUtf8() {
  const socket = await rawSocket().catch((e) => void violate(`raw client: ${e.message}`));
  if (!socket) return;
  const closed = new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), 5000);
    socket.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  socket.write(maskedFrame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
  if (!(await closed)) violate("a text frame with invalid UTF-8 did not close the connection");
  socket.destroy();
  bump(counts.misbehaved, "badUtf8");
}

let stalledOpened = 0;
let stalledOld = 0; // stalled for over STALL_MS: by then the server must have closed them
const STALL_MS = 60_000;
async function stalled() {
  const socket = await rawSocket().catch((e) => void violate(`stalled client: ${e.message}`));
  if (!socket) return;
  stalledOpened++;
  socket.write(
    maskedFrame(0x1, Buffer.from(JSON.stringify({ type: "subscribe", room: "firehose" }))),
  );
  socket.pause(); // and never read again
  bump(counts.misbehaved, "stalled");
  const opened = Date.now();
  while (!stopping && Date.now() - opened < STALL_MS) await delay(500);
  if (Date.now() - opened >= STALL_MS) stalledOld++;
  socket.destroy();
}

// ---------------------------------------------------------------- run

console.log(
  `[soak] ${RUNTIME} server on port ${port}; ${MINUTES} min, summary every ${EVERY_S} s, ` +
    `scale ${SCALE}`,
);
const stable = Array.from({ length: 40 }, (_, k) => new Stable(k));
await Promise.all(stable.map((s) => s.start()));
await delay(500); // every stable client has joined before anyone chats
const timers = [];
const every = (ms, fn) => timers.push(setInterval(fn, ms / SCALE));
for (const [k, s] of stable.entries()) {
  await delay(500 / stable.length);
  timers.push(setInterval(() => s.chat(), 500));
  void k;
}
every(100, () => track(churner()));
every(1000, () => track(garbage()));
every(2000, () => track(flooder()));
every(3000, () => track(oversize()));
every(3000, () => track(badUtf8()));
every(5000, () => track(stalled()));

const rows = [];
let rssBase;
let lastServer;
let lastAt = Date.now();
async function summary(label) {
  const s = await serverStats();
  const now = Date.now();
  const secs = (now - lastAt) / 1000;
  lastAt = now;
  const c = counts;
  counts = freshCounts();
  for (const k of ["received", "chatsSent", "connects"]) totals[k] += c[k];
  for (const k of ["errors", "clientCloses", "misbehaved"]) {
    for (const [key, n] of Object.entries(c[k])) bump(totals[k], key, n);
  }
  if (!s) return;
  const closes = {};
  for (const [code, n] of Object.entries(s.closesByCode)) {
    const d = n - (lastServer?.closesByCode[code] ?? 0);
    if (d > 0) closes[code] = d;
  }
  const row = {
    at: label,
    connections: s.connections,
    rooms: s.rooms,
    opened: s.connectionsOpened - (lastServer?.connectionsOpened ?? 0),
    deliveriesPerS: Math.round((s.deliveries - (lastServer?.deliveries ?? 0)) / secs),
    clientRecvPerS: Math.round(c.received / secs),
    chatsPerS: Math.round((s.chats - (lastServer?.chats ?? 0)) / secs),
    rssMiB: Number(mib(s.rss)),
    heapMiB: Number(mib(s.heapUsed)),
    errors: c.errors,
    closes,
    misbehaved: c.misbehaved,
    violations: violations.length,
  };
  lastServer = s;
  rows.push(row);
  if (rssBase === undefined) rssBase = s.rss;
  console.log(
    `[soak] ${label} conns ${row.connections} rooms ${row.rooms} opened ${row.opened} | ` +
      `deliveries/s ${row.deliveriesPerS} (client-seen ${row.clientRecvPerS}), chats/s ` +
      `${row.chatsPerS} | RSS ${row.rssMiB} MiB heap ${row.heapMiB} MiB | errors ` +
      `${JSON.stringify(row.errors)} | closes ${JSON.stringify(row.closes)} | misbehaved ` +
      `${JSON.stringify(row.misbehaved)} | violations ${row.violations}`,
  );
  if (s.hookErrors.length > 0) violate(`hook errors on the server: ${s.hookErrors.slice(0, 3)}`);
  if (s.violations.length > 0) violate(`hooks saw unvalidated input: ${s.violations.slice(0, 3)}`);
}

const end = started + MINUTES * 60_000;
let n = 0;
while (Date.now() < end && !serverExited) {
  await delay(Math.min(EVERY_S * 1000, end - Date.now()));
  n++;
  await summary(`${(n * EVERY_S / 60).toFixed(EVERY_S % 60 === 0 ? 0 : 1)} min`);
}
const rssEnd = lastServer?.rss;

// ---------------------------------------------------------------- wind down and verify

stopping = true;
for (const t of timers) clearInterval(t);
await Promise.race([Promise.allSettled([...inFlight]), delay(15_000)]);
await delay(3000); // the last chats arrive
for (const r of stable) {
  for (const sender of stable) {
    if (sender.room !== r.room) continue;
    const last = r.last.get(sender.name) ?? -1;
    if (last !== sender.sent - 1) {
      violate(`${r.name} saw ${sender.name} up to #${last}, but it sent ${sender.sent}`);
    }
  }
  if (r.firehose && r.fireSeen === 0) violate(`${r.name} got no firehose frames`);
}
for (const r of stable) r.expectOpen = false;
await Promise.all(stable.map((r) =>
  new Promise((resolve) => {
    if (r.ws.readyState === WebSocket.CLOSED) return resolve();
    r.ws.once("close", resolve);
    r.ws.close(1000);
  })
));
await delay(1000);
const final = await serverStats();
if (final) {
  if (final.connections !== 0 || final.rooms !== 0 || final.users !== 0) {
    violate(
      `after every client left: ${final.connections} connections, ${final.rooms} rooms, ` +
        `${final.users} users`,
    );
  }
  const slow = final.closesByCode["4000"] ?? 0;
  if (slow < stalledOld) {
    violate(
      `${stalledOld} readers stalled for ${
        STALL_MS / 1000
      } s, but only ${slow} were closed as slow`,
    );
  }
}
if (rssBase !== undefined && rssEnd !== undefined && rssEnd > 1.5 * rssBase + 50 * MiB) {
  violate(
    `RSS grew without bound: ${mib(rssBase)} MiB after the first interval, ${
      mib(rssEnd)
    } at the end`,
  );
}
stopping = true;
server.kill("SIGTERM");
const exited = await Promise.race([
  new Promise((r) => server.once("exit", (code) => r(code ?? "signal"))),
  delay(10_000).then(() => "timeout"),
]);
if (exited !== 0 && !serverExited) {
  violate(`the server did not stop cleanly on SIGTERM (${exited})`);
}
if (exited === "timeout") server.kill("SIGKILL");

console.log("\n[soak] per-interval figures (server side: connections, deliveries/s, RSS, heap):");
console.log(
  "| at | conns | rooms | opened | deliveries/s | client-seen/s | chats/s | RSS MiB | heap MiB | errors by code | closes by code |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const fmt = (o) => Object.entries(o).map(([k, v]) => `${k}: ${v}`).join(", ");
  console.log(
    `| ${r.at} | ${r.connections} | ${r.rooms} | ${r.opened} | ${r.deliveriesPerS} | ` +
      `${r.clientRecvPerS} | ${r.chatsPerS} | ${r.rssMiB} | ${r.heapMiB} | ${fmt(r.errors)} | ` +
      `${fmt(r.closes)} |`,
  );
}
console.log(
  `\n[soak] totals: ${totals.connects} client connections, ${totals.chatsSent} stable chats, ` +
    `misbehaving ${JSON.stringify(totals.misbehaved)}, stalled readers ${stalledOpened}, ` +
    `server closes by code ${JSON.stringify(final?.closesByCode)}, closes by cause ` +
    `${JSON.stringify(final?.closesByCause)}, refused ${JSON.stringify(final?.refused)}`,
);
console.log(
  `[soak] RSS ${rssBase === undefined ? "?" : mib(rssBase)} MiB after the first interval, ` +
    `${rssEnd === undefined ? "?" : mib(rssEnd)} MiB at the end (limit 1.5× + 50 MiB)`,
);
if (violations.length > 0) {
  console.log(`\n[soak] FAILED: ${violations.length} violation(s):`);
  for (const v of violations.slice(0, 50)) console.log("  " + v);
  process.exit(1);
}
console.log("[soak] OK: no invariant broken");
process.exit(0);
