// History and recovery across real replicas: a Deno and a Bun hub process sharing one private
// redis-server (backplane + RedisHistoryStore), real WebSocket clients that recover by
// themselves (raw protocol, no client-side de-duplication, so whatever the servers send is
// what is counted). The invariants are counted for every client and room: within an epoch,
// the offsets a client receives are exactly the published stream from its first subscribe
// on, in order, with no gap and no duplicate; a lost stream is always announced (4004 or
// `recovered: false`), never a silent jump. Registered on Deno only (the replicas run on both
// runtimes; one registration keeps CI time down).
import assert from "node:assert/strict";
import WebSocket from "ws";
import { delay, isDeno, test } from "../_harness.ts";
import { BUN, type ChildServer, DENO, startChild } from "../_process.ts";
import { hasRedis, redisCommand, type RedisServer, startRedis, warnNoRedis } from "../_redis.ts";

warnNoRedis("history across Redis replicas (tests/backplane/history_redis_test.ts)");

const FIXTURE = new URL("../fixtures/hub_server.ts", import.meta.url).pathname;

interface Replica {
  readonly port: number;
  publish(
    room: string,
    n: number,
    pad?: string,
  ): Promise<{ epoch: string; offset: number } | undefined>;
  /** The replica's `hub.backplaneStats()`. */
  stats(): Promise<{ received: number; malformed: number }>;
  stop(): Promise<void>;
}

async function startReplica(
  runtime: "deno" | "bun",
  redis: RedisServer,
  env: Record<string, string> = {},
): Promise<Replica> {
  const child: ChildServer = await startChild(
    runtime === "deno" ? DENO : BUN,
    runtime === "deno" ? ["run", "-A", FIXTURE] : [FIXTURE],
    /READY (\d+)/,
    { env: { PORT: "0", REDIS_URL: redis.url, HISTORY: "1", ...env } },
  );
  const port = Number(child.match[1]);
  return {
    port,
    async publish(room, n, pad) {
      const res = await fetch(`http://127.0.0.1:${port}/publish`, {
        method: "POST",
        body: JSON.stringify({ room, type: "n", data: pad === undefined ? n : { n, pad } }),
      });
      const body = await res.json() as { epoch: string; offset: number };
      return res.ok ? body : undefined;
    },
    async stats() {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      return (await res.json() as { stats: { received: number; malformed: number } }).stats;
    },
    stop: () => child.stop(),
  };
}

/** What one client saw of one room, per epoch: offsets in arrival order. */
interface RoomView {
  epoch: string | undefined;
  last: number;
  /** epoch → offsets received, and the position it started from. */
  byEpoch: Map<string, { from: number; got: number[] }>;
  /** `recovered: false` answers and 4004 closes it was told (a lost stream announced). */
  announced: number;
}

/**
 * A client that recovers by itself over the raw protocol: on every (re)connect it subscribes
 * to its rooms with `recover: {epoch, offset}` from what it last received.
 */
class Recovering {
  readonly rooms = new Map<string, RoomView>();
  ws: WebSocket | undefined;
  closes: number[] = [];
  #subscribed = new Set<string>();
  constructor(rooms: string[]) {
    for (const r of rooms) {
      this.rooms.set(r, { epoch: undefined, last: 0, byEpoch: new Map(), announced: 0 });
    }
  }

  /** Connect to `port`, subscribe (recovering) to every room; resolves once all answered. */
  connect(port: number): Promise<void> {
    this.#subscribed.clear();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    this.ws = ws;
    return new Promise((resolve, reject) => {
      ws.on("error", () => {});
      ws.on("close", (code: number) => {
        this.closes.push(code);
        if (code === 4004) { for (const v of this.rooms.values()) v.announced++; }
        reject(new Error("closed before subscribed"));
      });
      ws.on("message", (raw: Uint8Array) => {
        const m = JSON.parse(new TextDecoder().decode(raw));
        if (m.type === "connection.established") {
          for (const [room, v] of this.rooms) {
            ws.send(JSON.stringify(
              v.epoch === undefined
                ? { type: "subscribe", room }
                : { type: "subscribe", room, recover: { epoch: v.epoch, offset: v.last } },
            ));
          }
        } else if (m.type === "subscribed") {
          const v = this.rooms.get(m.data.room)!;
          const d = m.data as { epoch: string; offset: number; recovered?: boolean };
          if (v.epoch === undefined || d.recovered === false) {
            if (v.epoch !== undefined) v.announced++;
            v.epoch = d.epoch;
            v.last = d.offset;
            if (!v.byEpoch.has(d.epoch)) v.byEpoch.set(d.epoch, { from: d.offset, got: [] });
          } else {
            assert.equal(d.epoch, v.epoch, "recovered: true in another epoch");
          }
          this.#subscribed.add(m.data.room);
          if (this.#subscribed.size === this.rooms.size) resolve();
        } else if (m.type === "error") {
          // A subscribe refused for now (UNAVAILABLE while the store is down): retry later.
          ws.terminate();
        } else if (m.type === "n") {
          const v = this.rooms.get(m.room)!;
          v.byEpoch.get(v.epoch!)!.got.push(m.offset);
          v.last = m.offset;
        }
      });
    });
  }

  /** Kill the socket abruptly (no close frame). */
  kill(): void {
    this.ws?.terminate();
  }

  shut(): void {
    this.ws?.removeAllListeners("close");
    this.ws?.on("close", () => {});
    this.ws?.terminate();
  }
}

/** Within each epoch, offsets are exactly from+1, from+2, ... (no gap, no duplicate). */
function assertContiguous(who: string, v: RoomView): void {
  for (const [epoch, { from, got }] of v.byEpoch) {
    const want = got.map((_, i) => from + 1 + i);
    assert.deepEqual(got, want, `${who}, epoch ${epoch.slice(0, 8)}: a gap or a duplicate`);
  }
}

async function connectRetrying(c: Recovering, ports: number[], first: number): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      return await c.connect(ports[(first + attempt) % ports.length]);
    } catch (error) {
      if (attempt > 50) throw error;
      await delay(20 + Math.random() * 50);
    }
  }
}

/** Two replicas (Deno, Bun) on one private redis-server; everything torn down afterwards. */
interface Replicas {
  readonly redis: RedisServer;
  readonly replicas: Replica[];
  readonly ports: number[];
  /** Clients to shut at the end. */
  readonly clients: Recovering[];
}

async function onTwoReplicas(
  options: { persist?: boolean; env?: Record<string, string> },
  body: (r: Replicas) => Promise<void>,
): Promise<void> {
  const redis = await startRedis(options.persist ? { appendonly: true } : {});
  const replicas: Replica[] = [];
  const clients: Recovering[] = [];
  try {
    replicas.push(
      await startReplica("deno", redis, options.env),
      await startReplica("bun", redis, options.env),
    );
    await body({ redis, replicas, ports: replicas.map((r) => r.port), clients });
  } finally {
    for (const c of clients) c.shut();
    for (const r of replicas) await r.stop();
    await redis.stop();
  }
}

/** `n` recovering clients in `room`, spread over both replicas, connected and subscribed. */
async function members(r: Replicas, n: number, room: string): Promise<Recovering[]> {
  const out: Recovering[] = [];
  for (let i = 0; i < n; i++) {
    const c = new Recovering([room]);
    r.clients.push(c);
    out.push(c);
    await connectRetrying(c, r.ports, i % 2);
  }
  return out;
}

const ROOMS = ["h:0", "h:1", "h:2"];
const SECRET = "a-shared-secret-of-32-characters";

test(
  "History across Deno and Bun replicas on a signed Redis bus: a reconnect storm to the other replica misses nothing, duplicates nothing",
  () =>
    onTwoReplicas({ env: { BACKPLANE_SECRET: SECRET } }, async ({ replicas, ports, clients }) => {
      for (let i = 0; i < 200; i++) {
        const c = new Recovering([ROOMS[i % 3], ROOMS[(i + 1) % 3]]);
        clients.push(c);
        await connectRetrying(c, ports, i % 2);
      }
      // Publish continuously on both replicas into three rooms, while every client's socket
      // is killed three times and reconnected to the other replica.
      let publishing = true;
      const stored = new Map<string, number>(); // room → highest offset reported stored
      const publisher = (async () => {
        let n = 0;
        while (publishing) {
          const room = ROOMS[n % 3];
          const r = await replicas[n % 2].publish(room, ++n);
          assert.ok(r !== undefined, "a publish failed with Redis up");
          stored.set(room, Math.max(stored.get(room) ?? 0, r.offset));
          if (n % 4 === 0) await delay(2);
        }
        return n;
      })();
      let reconnects = 0;
      const storm = clients.map(async (c, i) => {
        let at = i % 2;
        for (let k = 0; k < 3; k++) {
          await delay(200 + Math.random() * 900);
          c.kill();
          at = 1 - at;
          await connectRetrying(c, ports, at);
          reconnects++;
        }
      });
      await Promise.all(storm);
      await delay(300);
      publishing = false;
      const published = await publisher;
      // Every client ends at the room's last stored offset.
      const caughtUp = () =>
        clients.every((c) => [...c.rooms].every(([room, v]) => v.last === stored.get(room)));
      const end = Date.now() + 10_000;
      while (!caughtUp() && Date.now() < end) await delay(50);
      let deliveries = 0;
      clients.forEach((c, i) => {
        for (const [room, v] of c.rooms) {
          assert.equal(v.byEpoch.size, 1, `client ${i} ${room}: the epoch changed`);
          assert.equal(v.announced, 0, `client ${i} ${room}: recovered: false or 4004`);
          assertContiguous(`client ${i} ${room}`, v);
          assert.equal(v.last, stored.get(room), `client ${i} ${room}: did not catch up`);
          deliveries += [...v.byEpoch.values()][0].got.length;
        }
      });
      // Every entry crossed signed: the store's script completes each with offset and epoch
      // after the MAC's end, in exactly the form the receiving replica accepts.
      for (const r of replicas) {
        const { received, malformed } = await r.stats();
        assert.equal(malformed, 0, "a signed history entry was refused");
        assert.ok(received > published / 4, `only ${received} of ${published} crossed`);
      }
      console.log(
        `[history storm] ${published} published into 3 rooms on 2 replicas (Deno, Bun), ` +
          `${reconnects} abrupt reconnects to the other replica, ${deliveries} deliveries ` +
          `counted: 0 gaps, 0 duplicates`,
      );
    }),
  { if: isDeno && hasRedis, timeout: 90_000 },
);

for (const persist of [true, false]) {
  test(
    persist
      ? "History on Redis with an append-only file: kill -9 and restart while publishing; recovery succeeds and nothing reported stored is lost"
      : "History on Redis without persistence: kill -9 and restart while publishing; every client learns the new epoch, none sees a silent gap",
    () =>
      onTwoReplicas({ persist }, async (r) => {
        const { redis, replicas, ports } = r;
        const clients = await members(r, 20, "h:0");
        // Clients closed with 4004 reconnect and recover by themselves.
        const reconnecting = clients.map((c, i) => {
          const again = () => {
            c.ws!.once("close", () => {
              void connectRetrying(c, ports, i % 2).then(again, () => {});
            });
          };
          again();
        });
        void reconnecting;
        const stored: { epoch: string; offset: number }[] = [];
        let failed = 0;
        let publishing = true;
        const publisher = (async () => {
          let n = 0;
          while (publishing) {
            const r = await replicas[n % 2].publish("h:0", ++n);
            if (r === undefined) failed++;
            else stored.push(r);
            await delay(5);
          }
        })();
        await delay(500);
        await redis.down();
        await delay(300);
        await redis.up();
        await delay(1500);
        publishing = false;
        await publisher;
        const epochs = new Set(stored.map((s) => s.epoch));
        const last = stored.at(-1)!;
        const end = Date.now() + 10_000;
        const done = () => clients.every((c) => c.rooms.get("h:0")!.last === last.offset);
        while (!done() && Date.now() < end) await delay(50);
        for (const [i, c] of clients.entries()) {
          const v = c.rooms.get("h:0")!;
          assertContiguous(`client ${i}`, v);
          assert.equal(v.epoch, last.epoch, `client ${i} is in the latest epoch`);
          assert.equal(v.last, last.offset, `client ${i} caught up`);
          if (persist) {
            // The same epoch throughout, and every offset reported stored was received.
            assert.equal(v.byEpoch.size, 1, `client ${i}: one epoch`);
            const got = new Set(v.byEpoch.get(last.epoch)!.got);
            const from = v.byEpoch.get(last.epoch)!.from;
            for (const s of stored) {
              if (s.offset > from) assert.ok(got.has(s.offset), `client ${i} lost ${s.offset}`);
            }
          } else {
            // A new epoch, and the client was told (4004, then recovered: false).
            assert.equal(v.byEpoch.size, 2, `client ${i}: the old epoch and the new one`);
            assert.ok(v.announced > 0, `client ${i} was not told of the new epoch`);
          }
        }
        assert.equal(epochs.size, persist ? 1 : 2, "epochs among what was reported stored");
        console.log(
          `[history redis kill -9, ${persist ? "AOF" : "no persistence"}] ` +
            `${stored.length} stored, ${failed} reported failed during the outage, ` +
            `${epochs.size} epoch(s); 20 clients: 0 gaps, 0 duplicates, ` +
            `${clients.filter((c) => c.closes.includes(4004)).length} closed with 4004`,
        );
      }),
    { if: isDeno && hasRedis, timeout: 60_000 },
  );
}

test(
  "History on Redis: a replica's subscriber connection killed while publishing goes on; it repairs from the stream, no client sees a gap",
  () =>
    onTwoReplicas({}, async (r) => {
      const { redis, replicas } = r;
      const clients = await members(r, 20, "h:0");
      const stored: number[] = [];
      let publishing = true;
      const publisher = (async () => {
        let n = 0;
        while (publishing) {
          // Only replica 0 publishes: replica 1 hears of it only through its subscription.
          const r = await replicas[0].publish("h:0", ++n);
          if (r !== undefined) stored.push(r.offset);
          await delay(3);
        }
      })();
      await delay(400);
      // Kill every pub/sub connection (the replicas' subscribers); commands go on.
      const killed = await redisCommand(redis.port, "CLIENT", "KILL", "TYPE", "pubsub");
      await delay(1500);
      publishing = false;
      await publisher;
      const last = stored.at(-1)!;
      const end = Date.now() + 10_000;
      const done = () =>
        clients.every((c) => c.rooms.get("h:0")!.last === last || c.closes.includes(4004));
      while (!done() && Date.now() < end) await delay(50);
      let repaired = 0;
      for (const [i, c] of clients.entries()) {
        const v = c.rooms.get("h:0")!;
        assertContiguous(`client ${i}`, v);
        if (!c.closes.includes(4004)) {
          assert.equal(v.last, last, `client ${i} caught up`);
          repaired++;
        }
      }
      console.log(
        `[history subscriber killed] CLIENT KILL TYPE pubsub → ${killed.trim()}; ` +
          `${stored.length} stored; ${repaired}/20 clients whole without a reconnect, ` +
          `${20 - repaired} closed with 4004; 0 gaps, 0 duplicates`,
      );
    }),
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "History on Redis: a slow client closed with 4000 reconnects to the other replica, recovers, and misses nothing",
  () =>
    onTwoReplicas({}, async ({ replicas, clients }) => {
      const slow = new Recovering(["h:0"]);
      clients.push(slow);
      // On the Deno replica (Bun ends a slow client without a close frame: the client sees 1006).
      await slow.connect(replicas[0].port);
      // Stop reading (real TCP backpressure) while 64 KiB messages pile up for it.
      // deno-lint-ignore no-explicit-any
      (slow.ws as any)._socket.pause();
      const pad = "x".repeat(64 * 1024);
      let last = 0;
      for (let n = 1; n <= 400 && !slow.closes.includes(4000); n++) {
        last = (await replicas[n % 2].publish("h:0", n, pad))!.offset;
      }
      // deno-lint-ignore no-explicit-any
      (slow.ws as any)._socket.resume();
      const end = Date.now() + 10_000;
      while (!slow.closes.length && Date.now() < end) await delay(20);
      assert.deepEqual(slow.closes, [4000], "closed as a slow client");
      const before = slow.rooms.get("h:0")!.last;
      assert.ok(before < last, "it missed some");
      await connectRetrying(slow, [replicas[1].port], 0);
      while (slow.rooms.get("h:0")!.last < last && Date.now() < end) await delay(20);
      const v = slow.rooms.get("h:0")!;
      assertContiguous("the slow client", v);
      assert.equal(v.last, last, "recovered everything");
      assert.equal(v.announced, 0, "recovered: true");
      console.log(
        `[history slow client] closed with 4000 at offset ${before} of ${last}; ` +
          `recovered ${last - before} on the other replica: 0 gaps, 0 duplicates`,
      );
    }),
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "History on Redis: away longer than the history holds (by count, by age) gets recovered: false; a malformed recover gets INVALID_INPUT and the connection stays open",
  () =>
    onTwoReplicas(
      { env: { HISTORY_MAX_MESSAGES: "20", HISTORY_MAX_AGE_MS: "3000" } },
      async ({ replicas }) => {
        const sockets: WebSocket[] = [];
        try {
          // A raw socket and its messages in order.
          const open = async (port: number) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
            sockets.push(ws);
            const got: { type: string; data: Record<string, unknown> }[] = [];
            const waiters: (() => void)[] = [];
            ws.on("message", (raw: Uint8Array) => {
              got.push(JSON.parse(new TextDecoder().decode(raw)));
              for (const w of waiters.splice(0)) w();
            });
            const next = async (type: string) => {
              for (;;) {
                const k = got.findIndex((x) => x.type === type);
                if (k !== -1) return got.splice(k, 1)[0].data;
                await new Promise<void>((r) => waiters.push(r));
              }
            };
            await next("connection.established");
            return { ws, next };
          };
          const recoverOn = async (port: number, recover: unknown) => {
            const c = await open(port);
            c.ws.send(JSON.stringify({ type: "subscribe", room: "h:0", recover }));
            return c;
          };
          // By count: 25 messages after the position, 20 kept.
          const first = await replicas[0].publish("h:0", 0);
          for (let n = 1; n <= 25; n++) await replicas[n % 2].publish("h:0", n);
          for (const r of replicas) {
            const c = await recoverOn(r.port, { epoch: first!.epoch, offset: first!.offset });
            assert.equal((await c.next("subscribed")).recovered, false, "by count");
          }
          // By age (3 s): 26 ages out while 27 and 28 are kept (an idle stream would expire whole,
          // a new epoch, so 27 keeps it alive).
          const at = await replicas[0].publish("h:0", 26);
          await delay(2000);
          await replicas[1].publish("h:0", 27);
          await delay(1200);
          await replicas[0].publish("h:0", 28); // trims 26 (3.2 s old)
          for (const r of replicas) {
            const c = await recoverOn(r.port, { epoch: at!.epoch, offset: at!.offset - 1 });
            assert.equal((await c.next("subscribed")).recovered, false, "by age");
            const ok = await recoverOn(r.port, { epoch: at!.epoch, offset: at!.offset });
            assert.equal((await ok.next("subscribed")).recovered, true, "a position still held");
          }
          // Malformed: INVALID_INPUT, and the connection answers a ping afterwards.
          for (const r of replicas) {
            const c = await recoverOn(r.port, { epoch: "", offset: -1 });
            assert.equal((await c.next("error")).code, "INVALID_INPUT");
            c.ws.send(JSON.stringify({ type: "ping" }));
            await c.next("pong");
            assert.equal(c.ws.readyState, WebSocket.OPEN);
          }
        } finally {
          for (const ws of sockets) ws.terminate();
        }
      },
    ),
  { if: isDeno && hasRedis, timeout: 60_000 },
);
