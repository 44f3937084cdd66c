// Real hub processes (Deno and Bun) sharing one private redis-server, real WebSocket
// clients on each: every targeting mode reaches each recipient exactly once, and a Redis
// crash heals by itself without restarting the hubs. Registered on Deno only (the
// replicas run on both runtimes; one registration keeps CI time down).
import assert from "node:assert/strict";
import type { BackplaneHealth, BackplaneStats, Target } from "../../mod.ts";
import { delay, isDeno, test } from "../_harness.ts";
import { BUN, type ChildServer, DENO, startChild } from "../_process.ts";
import { hasRedis, numsub, type RedisServer, startRedis, warnNoRedis } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";

warnNoRedis("multi-process Redis tests (tests/backplane/multiprocess_test.ts)");

const FIXTURE = new URL("../fixtures/hub_server.ts", import.meta.url).pathname;

interface Health {
  runtime: string;
  health: BackplaneHealth;
  stats: BackplaneStats;
  connections: number;
}

/** One hub process. */
interface Replica {
  readonly name: string;
  readonly port: number;
  emit(type: string, data: unknown, target?: Target): Promise<number>;
  health(): Promise<Health>;
  connect(user: string): Promise<TestClient>;
  stop(): Promise<void>;
}

async function startReplica(runtime: "deno" | "bun", redis: RedisServer): Promise<Replica> {
  const child: ChildServer = await startChild(
    runtime === "deno" ? DENO : BUN,
    runtime === "deno" ? ["run", "-A", FIXTURE] : [FIXTURE],
    /READY (\d+)/,
    { env: { PORT: "0", REDIS_URL: redis.url } },
  );
  const port = Number(child.match[1]);
  const base = `http://127.0.0.1:${port}`;
  return {
    name: `${runtime}:${port}`,
    port,
    async emit(type, data, target) {
      const res = await fetch(`${base}/emit`, {
        method: "POST",
        body: JSON.stringify({ type, data, target }),
      });
      return ((await res.json()) as { delivered: number }).delivered;
    },
    async health() {
      const res = await fetch(`${base}/health`);
      return await res.json() as Health;
    },
    async connect(user) {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws?user=${user}`);
      await c.clientId();
      return c;
    },
    stop: () => child.stop(),
  };
}

/** Poll an async condition every 20 ms, up to `ms`. */
async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await delay(20);
  }
}

async function join(c: TestClient, room: string): Promise<void> {
  const ack = await c.request({ type: "subscribe", room }, "subscribed");
  assert.deepEqual(ack.data, { room });
}

function count(c: TestClient, type: string): number {
  return c.messages.filter((m) => m.type === type).length;
}

/** Start Redis and replicas; always stop everything. */
async function withCluster(
  runtimes: ("deno" | "bun")[],
  fn: (redis: RedisServer, replicas: Replica[], clients: TestClient[]) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const replicas: Replica[] = [];
  const clients: TestClient[] = [];
  try {
    replicas.push(...await Promise.all(runtimes.map((r) => startReplica(r, redis))));
    await fn(redis, replicas, clients);
  } finally {
    await Promise.all(clients.map((c) => c.shut()));
    await Promise.all(replicas.map((r) => r.stop()));
    await redis.stop();
  }
}

test(
  "Redis backplane: Deno and Bun hub processes act as one, every target exactly once",
  async () => {
    await withCluster(["deno", "bun", "deno"], async (redis, [a, b, c], clients) => {
      const open = async (r: Replica, user: string) => {
        const client = await r.connect(user);
        clients.push(client);
        return client;
      };
      const ada1 = await open(a, "ada");
      const dan = await open(a, "dan");
      const ada2 = await open(b, "ada");
      const bob = await open(b, "bob");
      const cat = await open(c, "cat");
      const eve = await open(c, "eve");
      const all = { ada1, dan, ada2, bob, cat, eve };
      await Promise.all([join(ada1, "r"), join(bob, "r"), join(cat, "r")]);
      await Promise.all([join(ada2, "s"), join(eve, "s")]);
      const bobId = await bob.clientId();
      const eveId = await eve.clientId();
      // Wait until Redis itself confirms each replica's interest.
      const want = new Map([
        ["hubbub:all", 3],
        ["hubbub:room:r", 3],
        ["hubbub:room:s", 2],
        ["hubbub:user:ada", 2],
        [`hubbub:client:${bobId}`, 1],
        [`hubbub:client:${eveId}`, 1],
      ]);
      await eventually(
        async () => {
          const got = await numsub(redis.port, ...want.keys());
          return [...want].every(([ch, n]) => got.get(ch) === n);
        },
        10_000,
        "subscriptions at Redis",
      );

      const expected: Record<string, (keyof typeof all)[]> = {};
      const send = async (r: Replica, type: string, target: Target | undefined, who: string[]) => {
        expected[type] = who as (keyof typeof all)[];
        await r.emit(type, { from: r.name }, target);
      };
      await send(a, "broadcast", undefined, ["ada1", "dan", "ada2", "bob", "cat", "eve"]);
      await send(b, "room", { rooms: "r" }, ["ada1", "bob", "cat"]);
      await send(c, "rooms", { rooms: ["r", "s"] }, ["ada1", "bob", "cat", "ada2", "eve"]);
      await send(c, "user-tabs", { users: "ada" }, ["ada1", "ada2"]);
      await send(a, "client", { clients: bobId }, ["bob"]);
      await send(a, "clients", { clients: [bobId, eveId] }, ["bob", "eve"]);
      await send(b, "except", { rooms: "r", except: bobId }, ["ada1", "cat"]);
      await send(a, "union", { users: "ada", rooms: "s" }, ["ada1", "ada2", "eve"]);
      // Fences: Redis keeps each publisher's order, so once every client has the fence of
      // every replica, everything emitted before has arrived (or never will).
      for (const r of [a, b, c]) await r.emit("fence", r.name);
      await eventually(
        () => Object.values(all).every((x) => count(x, "fence") === 3),
        10_000,
        "the fences",
      );
      for (const [type, who] of Object.entries(expected)) {
        for (const [name, client] of Object.entries(all)) {
          assert.equal(
            count(client, type),
            who.includes(name as keyof typeof all) ? 1 : 0,
            `${type} to ${name}`,
          );
        }
      }
      const stats = await Promise.all([a, b, c].map((r) => r.health()));
      assert.deepEqual(stats.map((s) => s.runtime), ["deno", "bun", "deno"]);
      for (const s of stats) {
        assert.deepEqual(s.health, { ok: true });
        assert.equal(s.stats.publishFailed, 0);
        assert.equal(s.stats.malformed, 0);
      }
    });
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test("Redis backplane: a Redis crash heals by itself; local delivery never stops", async () => {
  await withCluster(["deno", "bun"], async (redis, [a, b], clients) => {
    const x = await a.connect("x"); // local to the emitting replica
    const y = await b.connect("y"); // remote
    clients.push(x, y);
    await Promise.all([join(x, "r"), join(y, "r")]);
    await eventually(
      async () => (await numsub(redis.port, "hubbub:room:r")).get("hubbub:room:r") === 2,
      10_000,
      "subscriptions at Redis",
    );
    const seqs = (c: TestClient) =>
      c.messages.filter((m) => m.type === "tick").map((m) => m.data as number);
    // The pump: one emit on replica a every 20 ms, numbered.
    let n = 0;
    let pumping = true;
    const pump = (async () => {
      while (pumping) {
        await a.emit("tick", n++, { rooms: "r" });
        await delay(20);
      }
    })();
    try {
      await eventually(() => seqs(y).length >= 5, 10_000, "remote delivery before the outage");
      const killedAt = performance.now();
      await redis.down();
      let redAt = 0;
      await eventually(
        async () => {
          const [ha, hb] = await Promise.all([a.health(), b.health()]);
          if (!ha.health.ok && redAt === 0) redAt = performance.now();
          return !ha.health.ok && !hb.health.ok;
        },
        10_000,
        "health to go red on both replicas",
      );
      const redError = (await a.health()).health.error;
      const localBefore = seqs(x).length;
      const remoteBefore = seqs(y).length;
      await delay(300); // the outage goes on...
      await eventually(() => seqs(x).length >= localBefore + 10, 10_000, "local delivery");
      assert.ok(!(await a.health()).health.ok, "...and Redis is still down");
      // (y may still get a tick or two published just before the kill.)
      assert.ok(seqs(y).length <= remoteBefore + 2, "no remote delivery during the outage");
      const lastRemote = seqs(y).at(-1)!;

      const restartedAt = performance.now();
      await redis.up();
      let healedAt = 0;
      await eventually(
        async () => {
          const [ha, hb] = await Promise.all([a.health(), b.health()]);
          if (ha.health.ok && hb.health.ok && healedAt === 0) healedAt = performance.now();
          return ha.health.ok && hb.health.ok;
        },
        15_000,
        "health to return on both replicas",
      );
      await eventually(() => seqs(y).some((s) => s > lastRemote), 15_000, "delivery to resume");
      const resumedAt = performance.now();
      pumping = false;
      await pump;
      await a.emit("fence", null, { rooms: "r" });
      await eventually(() => count(x, "fence") === 1 && count(y, "fence") === 1, 10_000, "fence");

      const local = seqs(x);
      assert.deepEqual(
        local,
        Array.from({ length: n }, (_, i) => i),
        "local: every tick, in order",
      );
      const remote = seqs(y);
      assert.ok(remote.every((s, i) => i === 0 || s > remote[i - 1]), "remote: no duplicates");
      assert.ok(remote.length < n, "ticks published during the outage were lost for y");
      const ha = await a.health();
      assert.ok(ha.stats.publishFailed >= 1, "lost publishes were counted");
      assert.equal(ha.stats.published - ha.stats.publishFailed >= remote.length, true);
      console.log(
        `redis outage (2 replicas, deno+bun): red ${
          (redAt - killedAt).toFixed(0)
        } ms after kill -9 ` +
          `(${redError}); both ok ${(healedAt - restartedAt).toFixed(0)} ms after restart; ` +
          `remote delivery resumed ${(resumedAt - restartedAt).toFixed(0)} ms after restart; ` +
          `${n - remote.length} of ${n} ticks lost for the remote client (publishFailed ` +
          `${ha.stats.publishFailed}), 0 lost locally`,
      );
    } finally {
      pumping = false;
      await pump;
    }
  });
}, { if: isDeno && hasRedis, timeout: 60_000 });
