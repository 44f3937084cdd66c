// The Redis backplane on a real local Redis Cluster of three masters (sharded pub/sub): the
// backplane contract (its outage = every master killed and restarted), channels spread over
// the shards, and one master killed -9 and restarted while messages flow.
import assert from "node:assert/strict";
import { createClient, createCluster } from "redis";
import { type BackplaneHealth, Hub } from "../../mod.ts";
import {
  clusterChannel,
  redisClusterBackplane,
  redisHistoryStore,
} from "../../src/backplane/redis.ts";
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { delay, test, until } from "../_harness.ts";
import { hasRedis, redisCommand, startRedis, warnNoRedis } from "../_redis.ts";
import { backplaneContract, type BusFixture } from "../contract/backplane_contract.ts";
import { type LocalCluster, startCluster } from "../_redis_cluster.ts";

warnNoRedis("Redis Cluster backplane tests (tests/backplane/redis_cluster_test.ts)");

/** The port of the master serving a channel's slot. */
async function ownerOf(cluster: LocalCluster, channel: string): Promise<number> {
  const reply = await redisCommand(cluster.ports[0], "CLUSTER", "KEYSLOT", channel);
  const slot = Number(reply.slice(1));
  const i = slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2;
  return i;
}

async function clusterBus(): Promise<BusFixture> {
  const cluster = await startCluster();
  return {
    connect: () =>
      redisClusterBackplane({ urls: cluster.urls, createCluster, maxReconnectDelayMs: 200 }),
    down: async () => {
      for (let i = 0; i < 3; i++) await cluster.down(i);
    },
    up: () => cluster.upAll(),
    inject: async (channel, payload) => {
      const c = clusterChannel(channel);
      await redisCommand(cluster.ports[await ownerOf(cluster, c)], "SPUBLISH", c, payload);
    },
    close: () => cluster.stop(),
  };
}

backplaneContract("redis-cluster", clusterBus, { outage: true, inject: true }, { if: hasRedis });

test("clusterChannel tags rooms, users and clients with their name", () => {
  assert.equal(clusterChannel("hubbub:room:lobby"), "hubbub:room:{lobby}");
  assert.equal(clusterChannel("hubbub:user:ada"), "hubbub:user:{ada}");
  assert.equal(clusterChannel("hubbub:client:c-1"), "hubbub:client:{c-1}");
  assert.equal(clusterChannel("hubbub:all"), "hubbub:all");
  assert.equal(clusterChannel("app:room:x", "app:"), "app:room:{x}");
  assert.equal(clusterChannel("other:room:x"), "other:room:x");
});

test("Redis Cluster backplane: one master killed and restarted while messages flow", async () => {
  const cluster = await startCluster();
  const make = () =>
    redisClusterBackplane({
      urls: cluster.urls,
      createCluster,
      maxReconnectDelayMs: 200,
      probeIntervalMs: 200,
      probeTimeoutMs: 3000,
    });
  const a = make();
  const b = make();
  const got: string[] = [];
  const health: BackplaneHealth[] = [];
  try {
    await a.start(() => {}, () => {});
    await b.start((channel, payload) => void got.push(`${channel}=${payload}`), (h) => {
      health.push(h);
    });
    await until(() => a.health().ok && b.health().ok, 10_000, "both ok");
    // Liveness on every shard: each backplane has one probe channel on each master.
    for (const port of cluster.ports) {
      const reply = await redisCommand(port, "PUBSUB", "SHARDCHANNELS", "hubbub:probe:*");
      const names = reply.split("\r\n").filter((l) => l.startsWith("hubbub:probe:"));
      assert.equal(names.length, 2, `two probe channels (a's and b's) on node ${port}: ${names}`);
      assert.deepEqual(
        new Set(names.map((n) => n.slice(0, n.indexOf(":{")))),
        new Set([a.probeChannel, b.probeChannel]),
      );
    }
    // Rooms on every shard: which master owns each.
    const rooms = Array.from({ length: 12 }, (_, i) => `hubbub:room:r${i}`);
    const owner = new Map<string, number>();
    for (const r of rooms) owner.set(r, await ownerOf(cluster, clusterChannel(r)));
    assert.deepEqual(new Set(owner.values()), new Set([0, 1, 2]), "channels spread over 3 shards");
    for (const r of rooms) await b.subscribe(r);
    const round = async (tag: string, which: string[]) => {
      await Promise.allSettled(which.map((r) => a.publish(r, tag)));
    };
    await round("before", rooms);
    await until(() => got.filter((g) => g.endsWith("=before")).length === 12, 5000, "before");

    // Kill the master of r0's shard while publishing goes on.
    const victim = owner.get(rooms[0])!;
    const killedAt = performance.now();
    await cluster.down(victim);
    await until(() => !b.health().ok, 10_000, "health to go red");
    const redAfter = performance.now() - killedAt;
    const during = await Promise.allSettled(rooms.map((r) => a.publish(r, "during")));
    const failed = rooms.filter((_, i) => during[i].status === "rejected");
    assert.ok(failed.length > 0, "publishes to the dead shard fail");
    assert.ok(
      failed.every((r) => owner.get(r) === victim),
      "only the dead shard's channels fail",
    );
    await until(
      () => got.filter((g) => g.endsWith("=during")).length === 12 - failed.length,
      5000,
      "the other shards keep delivering",
    );

    const restartedAt = performance.now();
    await cluster.up(victim);
    await until(() => a.health().ok && b.health().ok, 20_000, "health to return");
    const healedAfter = performance.now() - restartedAt;
    // Delivery resumes on every channel by itself, each message once.
    let n = 0;
    await until(
      () => {
        if (n % 20 === 0) void round(`after${n}`, rooms);
        n++;
        return rooms.every((r) => got.some((g) => g.startsWith(`${r}=after`)));
      },
      20_000,
      "delivery on every shard to resume",
    );
    await round("fence", rooms);
    await until(() => got.filter((g) => g.endsWith("=fence")).length === 12, 5000, "fence");
    const counts = new Map<string, number>();
    for (const g of got) counts.set(g, (counts.get(g) ?? 0) + 1);
    assert.ok([...counts.values()].every((c) => c === 1), "no message twice");
    const flips = health.map((h) => h.ok).filter((ok, i, all) => i === 0 || ok !== all[i - 1]);
    assert.deepEqual(flips.slice(-2), [false, true], "red, then ok");
    console.log(
      `cluster: master ${victim + 1}/3 killed: red ${redAfter.toFixed(0)} ms after, ` +
        `ok ${healedAfter.toFixed(0)} ms after its restart; ${failed.length}/12 channels on it`,
    );
  } finally {
    await a.close();
    await b.close();
    await cluster.stop();
  }
}, { if: hasRedis, timeout: 60_000 });

test(
  "Redis Cluster backplane: a shard whose connections stop forwarding turns red, is re-established, delivers again",
  async () => {
    const cluster = await startCluster(0);
    const make = () =>
      redisClusterBackplane({
        urls: cluster.urls,
        createCluster,
        maxReconnectDelayMs: 200,
        probeIntervalMs: 100,
        probeTimeoutMs: 500,
      });
    const a = make();
    const b = make();
    const got: string[] = [];
    const reds: { at: number; error: string }[] = [];
    try {
      await a.start(() => {}, () => {});
      await b.start((channel, payload) => void got.push(`${channel}=${payload}`), (h) => {
        if (!h.ok) reds.push({ at: performance.now(), error: h.error ?? "" });
      });
      await until(() => a.health().ok && b.health().ok, 10_000, "both ok");
      const rooms = Array.from({ length: 12 }, (_, i) => `hubbub:room:r${i}`);
      const owners = await Promise.all(rooms.map((r) => ownerOf(cluster, clusterChannel(r))));
      assert.ok(owners.includes(0), "some rooms live on the proxied shard");
      for (const r of rooms) await b.subscribe(r);
      await Promise.all(rooms.map((r) => a.publish(r, "before")));
      await until(() => got.filter((g) => g.endsWith("=before")).length === 12, 5000, "before");

      cluster.proxy!.stall(); // shard 0's connections (both backplanes') go quiet, TCP open
      const stalledAt = performance.now();
      await until(() => reds.some((r) => r.at >= stalledAt), 5000, "health to go red");
      const red = reds.find((r) => r.at >= stalledAt)!;
      assert.match(red.error, /no probe back within 500 ms|no reply to a probe within 500 ms/);
      // Stated bound: probeIntervalMs + probeTimeoutMs (plus slack for a loaded machine).
      assert.ok(
        red.at - stalledAt <= 100 + 500 + 400,
        `red after ${(red.at - stalledAt).toFixed(0)} ms`,
      );
      await until(() => a.health().ok && b.health().ok, 15_000, "health to return");
      let n = 0;
      await until(
        () => {
          if (n++ % 20 === 0) { for (const r of rooms) a.publish(r, `after${n}`).catch(() => {}); }
          return rooms.every((r) => got.some((g) => g.startsWith(`${r}=after`)));
        },
        15_000,
        "delivery on every shard to resume",
      );
      await Promise.all(rooms.map((r) => a.publish(r, "fence")));
      await until(() => got.filter((g) => g.endsWith("=fence")).length === 12, 5000, "fence");
      const counts = new Map<string, number>();
      for (const g of got) counts.set(g, (counts.get(g) ?? 0) + 1);
      assert.ok([...counts.values()].every((c) => c === 1), "no message twice");
      console.log(
        `cluster liveness: red ${(red.at - stalledAt).toFixed(0)} ms after shard 1/3 stalled ` +
          `(${red.error.slice(0, 40)}…); ${cluster.proxy!.accepted} proxied connections in all`,
      );
    } finally {
      await a.close();
      await b.close();
      await cluster.stop();
    }
  },
  { if: hasRedis, timeout: 60_000 },
);

test(
  "History on Redis Cluster: the cluster carries pub/sub, a RedisHistoryStore on one Redis the streams; replicas agree on offsets, in order, once",
  async () => {
    const cluster = await startCluster();
    const redis = await startRedis();
    const store = redisHistoryStore({ url: redis.url, createClient });
    await store.ready;
    const hubs = [0, 1].map(() =>
      new Hub({
        canJoin: () => true,
        history: () => ({ maxMessages: 500 }),
        historyStore: store,
        backplane: redisClusterBackplane({ urls: cluster.urls, createCluster }),
      })
    );
    const clients: MemoryClient[] = [];
    try {
      await Promise.all(hubs.map((h) => h.ready));
      for (const hub of hubs) {
        for (let i = 0; i < 2; i++) {
          const c = await connectMemory(hub);
          await c.next("connection.established");
          c.send({ type: "subscribe", room: "chat:lobby" });
          await c.next("subscribed");
          clients.push(c);
        }
      }
      await delay(300); // each hub's SSUBSCRIBE of the room's shard channel
      for (let i = 1; i <= 60; i++) {
        await hubs[i % 2].publish("chat:lobby", "n", i);
        await delay(10); // longer than a repair's grace: a message not heard would show
      }
      const offsets = (c: MemoryClient) =>
        c.messages.filter((m) => m.type === "n").map((m) =>
          (m as unknown as { offset: number }).offset
        );
      await until(() => clients.every((c) => offsets(c).length === 60), 10_000, "60 each");
      const want = [...Array(60).keys()].map((i) => i + 1);
      for (const c of clients) assert.deepEqual(offsets(c), want);
      // Each hub heard the other's messages through the cluster, not by reading the store (a
      // read fills a gap only when a message is late: a few at most).
      const repairs = hubs.map((h) => h.stats().history.repairs);
      console.log(`[history on cluster] repair reads per hub: ${repairs.join(", ")} (of 30 each)`);
      for (const r of repairs) assert.ok(r <= 3, `${r} repair reads`);
    } finally {
      for (const hub of hubs) await hub.close();
      await store.close();
      await redis.stop();
      await cluster.stop();
    }
  },
  { if: hasRedis, timeout: 60_000 },
);
