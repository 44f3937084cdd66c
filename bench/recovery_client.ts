// How long 1,000 clients take to recover 100 missed messages each (bench/README.md, "History").
// Run by bench/run.mjs (Bun) against a history server (servers/hubbub_cross_bun.ts with
// BENCH_HISTORY=1): every client subscribes to room "bench" itself (`?join=no`) and notes its
// position (epoch and the offset of the last message it got); all disconnect; the publisher
// sends `missed` messages (an observer client sees them all); then every client reconnects and
// subscribes with `recover`, and each must get exactly the missed messages, in offset order,
// once. Prints `RESULT {json}`: the time from the first reconnect until every client had all
// of them, per-client times (subscribe sent -> last missed message), the server's CPU time.
import { readFileSync } from "node:fs";
import process from "node:process";

const opts = {
  port: 0,
  serverPid: 0,
  clients: 1000,
  missed: 100,
  connectConcurrency: 200,
  ...JSON.parse(process.argv[2] ?? "{}"),
};
const ROOM = "bench";
const base = `ws://127.0.0.1:${opts.port}/ws`;

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

type Msg = { type?: string; data?: Record<string, unknown>; room?: string; offset?: number };

interface Client {
  ws?: WebSocket;
  epoch?: string;
  offset: number;
  got: number[];
  recovered?: boolean;
  sentAt: number;
  doneAt: number;
}

function open(url: string, onMessage: (m: Msg) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    ws.onmessage = (e) => onMessage(JSON.parse(String(e.data)));
  });
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let seq = 0;
const publisher = await open(`${base}?role=publisher`, () => {});
const publish = (n: number) => {
  for (let i = 0; i < n; i++) {
    publisher.send(
      JSON.stringify({ type: "publish", data: { seq: seq++, t: 0, p: "x".repeat(40) } }),
    );
  }
};

// 1. Subscribe everyone and learn each position from one live message.
const clients: Client[] = Array.from(
  { length: opts.clients },
  () => ({ offset: -1, got: [], sentAt: 0, doneAt: 0 }),
);
const handler = (c: Client) => (m: Msg) => {
  if (m.type === "subscribed") {
    const d = (m.data ?? m) as { epoch?: string; offset?: number; recovered?: boolean };
    c.epoch = d.epoch;
    if (d.recovered !== undefined) c.recovered = d.recovered;
    else if (typeof d.offset === "number") c.offset = d.offset;
  } else if (m.type === "bench" && typeof m.offset === "number") {
    c.got.push(m.offset);
    if (c.got.length === opts.missed && c.doneAt === 0) c.doneAt = performance.now();
  }
};
const observer: Client = { offset: -1, got: [], sentAt: 0, doneAt: 0 };
observer.ws = await open(`${base}?join=no`, handler(observer));
observer.ws.send(JSON.stringify({ type: "subscribe", room: ROOM }));
await pool(clients, opts.connectConcurrency, async (c) => {
  c.ws = await open(`${base}?join=no`, handler(c));
  c.ws.send(JSON.stringify({ type: "subscribe", room: ROOM }));
});
await until("every client subscribed", 20_000, () => clients.every((c) => c.epoch !== undefined));
publish(1);
await until("the first message", 20_000, () => clients.every((c) => c.got.length === 1));
for (const c of clients) {
  c.offset = c.got[0];
  c.got = [];
}

// 2. Everyone leaves; the publisher sends what they will miss.
await Promise.all(clients.map((c) =>
  new Promise<void>((resolve) => {
    c.ws!.onclose = () => resolve();
    c.ws!.close();
  })
));
observer.got = [];
publish(opts.missed);
await until(
  "the observer to see every missed message",
  20_000,
  () => observer.got.length >= opts.missed,
);

// 3. Everyone comes back and recovers.
const cpu0 = opts.serverPid ? cpuSeconds(opts.serverPid) : 0;
const t0 = performance.now();
await pool(clients, opts.connectConcurrency, async (c) => {
  c.ws = await open(`${base}?join=no`, handler(c));
  c.sentAt = performance.now();
  c.ws.send(
    JSON.stringify({
      type: "subscribe",
      room: ROOM,
      recover: { epoch: c.epoch, offset: c.offset },
    }),
  );
});
const connectedMs = performance.now() - t0;
await until("every client to recover", 60_000, () => clients.every((c) => c.doneAt > 0));
const totalMs = Math.max(...clients.map((c) => c.doneAt)) - t0;
const serverCpuMs = opts.serverPid ? (cpuSeconds(opts.serverPid) - cpu0) * 1000 : null;
await new Promise((r) => setTimeout(r, 100)); // a duplicate would be here by now
let wrong = 0;
for (const c of clients) {
  const want = Array.from({ length: opts.missed + 1 }, (_, i) => c.offset + 1 + i).slice(
    0,
    opts.missed,
  );
  if (c.got.length !== opts.missed || c.got.some((o, i) => o !== want[i])) wrong++;
}
const per = clients.map((c) => c.doneAt - c.sentAt).sort((a, b) => a - b);
const q = (p: number) => per[Math.min(per.length - 1, Math.floor(p * per.length))];
console.log(`RESULT ${
  JSON.stringify({
    clients: opts.clients,
    missed: opts.missed,
    totalMs,
    connectedMs,
    perClientP50Ms: q(0.5),
    perClientP99Ms: q(0.99),
    recovered: clients.filter((c) => c.recovered === true).length,
    wrong,
    serverCpuMs,
  })
}`);
for (const c of clients) c.ws?.close();
observer.ws.close();
publisher.close();
process.exit(0);
