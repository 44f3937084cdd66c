// Load client of the presence churn bench (Bun only; started by bench/presence.mjs, pinned to
// its own core). Against one hub process (bench/servers/hubbub_presence.ts) it opens
// `connections` WebSockets (user u<i/2>: two tabs per user), then for each mode ("q": rooms
// without events, "p": rooms with presence.join/leave events) runs join, churn and leave over
// `rooms` rooms, and finally closes every connection. Each phase is timed from its first
// frame sent until the server's counted store writes reach exactly what the phase causes
// (N adds for a join, N removes for a leave, rounds x N of each for a churn; every ack
// received; nothing in flight), and Redis's CPU (INFO cpu, used_cpu_sys + used_cpu_user) and
// the hub's (/proc/<pid>/stat) are read before and after.
//
// Usage: bun bench/presence_client.ts '<json Options>'
// Progress goes to stderr; each phase prints `PHASE <name> <json>` on stdout; the last line is
// `DONE`.
import { readFileSync } from "node:fs";
import net from "node:net";

interface Options {
  port: number;
  serverPid: number;
  redisPort: number;
  connections: number;
  rooms: number;
  /** Handshakes in flight while connecting. */
  connectConcurrency: number;
  /** Churn rounds per mode: each connection leaves its room and joins the next, once a round. */
  rounds: { q: number; p: number };
  modes: ("q" | "p")[];
}

const opts: Options = JSON.parse(process.argv[2]);
const base = `http://127.0.0.1:${opts.port}`;
const log = (s: string) => console.error(`[presence] ${s}`);

interface Ops {
  add: number;
  remove: number;
  users: number;
  failed: number;
  pending: number;
  connections: number;
}

const getJson = async <T>(path: string): Promise<T> => await (await fetch(base + path)).json();

/** Redis's CPU seconds so far (INFO cpu: used_cpu_sys + used_cpu_user). */
function redisCpuS(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: opts.redisPort });
    let out = "";
    socket.on("data", (chunk) => {
      out += chunk.toString();
      const sys = /used_cpu_sys:([\d.]+)/.exec(out);
      const user = /used_cpu_user:([\d.]+)/.exec(out);
      if (sys && user && out.endsWith("\r\n") && out.includes("used_cpu_user_children")) {
        socket.end();
        resolve(Number(sys[1]) + Number(user[1]));
      }
    });
    socket.once("error", reject);
    socket.write("*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n");
  });
}

/** The hub process's CPU seconds so far (utime + stime). */
function serverCpuS(): number {
  const f = readFileSync(`/proc/${opts.serverPid}/stat`, "latin1");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/** One connection. */
class Conn {
  ws!: WebSocket;
  room: string | undefined;
  subscribed = 0;
  unsubscribed = 0;
  deliveries = 0;
  #waiting: { count: () => number; want: number; resolve: () => void } | undefined;
  constructor(readonly index: number) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${opts.port}/ws?user=u${this.index >> 1}`);
      this.ws = ws;
      ws.onerror = () => reject(new Error(`connection ${this.index} failed`));
      ws.onmessage = (event) => {
        const text = event.data as string;
        if (text.startsWith('{"type":"presence.')) {
          this.deliveries++;
          return;
        }
        const type = (JSON.parse(text) as { type: string }).type;
        if (type === "connection.established") resolve();
        else if (type === "subscribed") this.subscribed++;
        else if (type === "unsubscribed") this.unsubscribed++;
        else if (type === "error") log(`connection ${this.index}: ${text}`);
        const w = this.#waiting;
        if (w !== undefined && w.count() >= w.want) {
          this.#waiting = undefined;
          w.resolve();
        }
      };
    });
  }

  /** Resolves once `count()` reaches `want`. */
  until(count: () => number, want: number): Promise<void> {
    if (count() >= want) return Promise.resolve();
    return new Promise((resolve) => (this.#waiting = { count, want, resolve }));
  }

  join(room: string): void {
    this.room = room;
    this.ws.send(JSON.stringify({ type: "subscribe", room }));
  }

  leave(): void {
    this.ws.send(JSON.stringify({ type: "unsubscribe", room: this.room }));
    this.room = undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the server's counted writes satisfy `done` with nothing in flight. */
async function settled(done: (ops: Ops) => boolean, what: string): Promise<Ops> {
  const end = Date.now() + 60_000;
  for (;;) {
    const ops = await getJson<Ops>("/ops");
    if (ops.failed > 0) throw new Error(`${what}: ${ops.failed} store writes failed`);
    if (ops.pending === 0 && done(ops)) return ops;
    if (Date.now() > end) throw new Error(`${what}: not settled: ${JSON.stringify(ops)}`);
    await sleep(2);
  }
}

/** Time one phase: `act` sends its frames and waits for its acks; then the server settles. */
async function phase(
  name: string,
  conns: Conn[],
  act: () => Promise<void>,
  done: (before: Ops, after: Ops) => boolean,
  expectedOps?: number,
): Promise<void> {
  const before = await settled(() => true, `${name} (before)`);
  await getJson("/latency"); // from here on
  const deliveriesBefore = conns.reduce((n, c) => n + c.deliveries, 0);
  const [redis0, server0] = [await redisCpuS(), serverCpuS()];
  const t0 = performance.now();
  await act();
  const after = await settled((ops) => done(before, ops), name);
  const seconds = (performance.now() - t0) / 1000;
  const [redis1, server1] = [await redisCpuS(), serverCpuS()];
  const latency = await getJson<{ p50: number; p99: number; max: number }>("/latency");
  const ops = {
    add: after.add - before.add,
    remove: after.remove - before.remove,
    users: after.users - before.users,
  };
  const total = ops.add + ops.remove + ops.users;
  if (expectedOps !== undefined && total !== expectedOps) {
    throw new Error(`${name}: ${total} store writes counted, ${expectedOps} expected`);
  }
  // Let the phase's events arrive before counting them (not timed).
  let deliveries = conns.reduce((n, c) => n + c.deliveries, 0);
  for (let quiet = 0; quiet < 5;) {
    await sleep(20);
    const now = conns.reduce((n, c) => n + c.deliveries, 0);
    quiet = now === deliveries ? quiet + 1 : 0;
    deliveries = now;
  }
  const result = {
    connections: conns.length,
    ops,
    total,
    seconds,
    opsPerSec: total / seconds,
    redisCpuUsPerOp: ((redis1 - redis0) * 1e6) / total,
    redisCpuPct: ((redis1 - redis0) / seconds) * 100,
    serverCpuUsPerOp: ((server1 - server0) * 1e6) / total,
    deliveries: deliveries - deliveriesBefore,
    /** Each write's time in the store (ms), from the hub's call to its reply. */
    writeP50Ms: latency.p50,
    writeP99Ms: latency.p99,
    writeMaxMs: latency.max,
  };
  log(
    `${name}: ${total} writes in ${seconds.toFixed(2)} s = ${Math.round(result.opsPerSec)}/s, ` +
      `Redis ${result.redisCpuUsPerOp.toFixed(1)} µs/op, hub ${
        result.serverCpuUsPerOp.toFixed(1)
      } µs/op, write p99 ${latency.p99.toFixed(1)} ms, ${result.deliveries} events delivered`,
  );
  console.log(`PHASE ${name} ${JSON.stringify({ ok: true, result })}`);
}

/** Clients (and distinct users) summed over the mode's rooms, from the store. */
async function roomTotals(mode: string): Promise<{ clients: number; users: number }> {
  return await getJson(`/stats?prefix=${mode}&rooms=${opts.rooms}`);
}

async function main(): Promise<void> {
  const n = opts.connections;
  const conns = Array.from({ length: n }, (_, i) => new Conn(i));

  await phase("connect", conns, async () => {
    let next = 0;
    const worker = async () => {
      while (next < n) await conns[next++].open();
    };
    await Promise.all(Array.from({ length: Math.min(opts.connectConcurrency, n) }, worker));
  }, (_b, ops) => ops.connections === n);
  const open = await getJson<Ops>("/ops");
  if (open.connections !== n) throw new Error(`connect: ${open.connections} connections`);

  for (const mode of opts.modes) {
    const roomOf = (i: number, round: number) => `${mode}:${(i + round) % opts.rooms}`;
    await phase(
      `${mode}-join`,
      conns,
      async () => {
        for (const c of conns) c.join(roomOf(c.index, 0));
        await Promise.all(conns.map((c) => c.until(() => c.subscribed, c.subscribed + 1)));
      },
      (b, a) => a.add - b.add >= n,
      n,
    );
    let totals = await roomTotals(mode);
    if (totals.clients !== n) throw new Error(`${mode}-join: ${totals.clients} members in all`);

    const rounds = opts.rounds[mode];
    if (rounds > 0) {
      await phase(
        `${mode}-churn`,
        conns,
        async () => {
          await Promise.all(conns.map(async (c) => {
            for (let r = 1; r <= rounds; r++) {
              const want = c.subscribed + 1;
              c.leave();
              c.join(roomOf(c.index, r));
              await c.until(() => c.subscribed, want);
            }
          }));
        },
        (b, a) => a.add - b.add >= rounds * n && a.remove - b.remove >= rounds * n,
        2 * rounds * n,
      );
      totals = await roomTotals(mode);
      if (totals.clients !== n) throw new Error(`${mode}-churn: ${totals.clients} members in all`);
    }

    await phase(
      `${mode}-leave`,
      conns,
      async () => {
        for (const c of conns) c.leave();
        await Promise.all(conns.map((c) => c.until(() => c.unsubscribed, c.unsubscribed + 1)));
      },
      (b, a) => a.remove - b.remove >= n,
      n,
    );
    totals = await roomTotals(mode);
    if (totals.clients !== 0) throw new Error(`${mode}-leave: ${totals.clients} members left`);
  }

  await phase("disconnect", conns, () => {
    for (const c of conns) c.ws.close();
    return Promise.resolve();
  }, (_b, ops) => ops.connections === 0);
  console.log("DONE");
}

main().then(() => process.exit(0), (error) => {
  console.error(error);
  process.exit(1);
});
