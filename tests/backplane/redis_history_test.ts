// RedisHistoryStore against a private redis-server (tests/_redis.ts): the history store
// contract, then what only Redis can do: concurrent appenders on two connections, publishing
// atomically with the append, kill -9 with and without persistence, a Redis that does not answer.
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { HistoryAppended, HistoryPolicy } from "../../mod.ts";
import { RedisHistoryStore, redisHistoryStore } from "../../src/backplane/redis.ts";
import { test, until } from "../_harness.ts";
import { hasRedis, redisCommand, type RedisServer, requireRedis, startRedis } from "../_redis.ts";
import { connected, release } from "../_redis_client.ts";
import {
  AWKWARD_ROOMS,
  headOf,
  historyStoreContract,
  type Listener,
} from "../contract/history_store_contract.ts";

requireRedis("Redis history store tests (tests/backplane/redis_history_test.ts)");

async function listen(url: string, channel: string): Promise<Listener> {
  const sub = await connected(url);
  const messages: string[] = [];
  await sub.subscribe(channel, (m) => void messages.push(m));
  return { messages, close: () => release(sub) };
}

historyStoreContract(
  "RedisHistoryStore",
  async () => {
    const server = await startRedis();
    const client = await connected(server.url);
    return {
      store: new RedisHistoryStore(client),
      listen: (channel) => listen(server.url, channel),
      async close() {
        await release(client);
        await server.stop();
      },
    };
  },
  { publishes: true },
  { if: hasRedis },
);

const POLICY: Required<HistoryPolicy> = { maxMessages: 1000, maxAgeMs: 600_000 };

function redisTest(
  name: string,
  fn: (server: RedisServer) => Promise<void>,
  appendonly = false,
): void {
  test(`RedisHistoryStore ${name}`, async () => {
    const server = await startRedis({ appendonly });
    try {
      await fn(server);
    } finally {
      await server.stop();
    }
  }, { if: hasRedis, timeout: 30_000 });
}

redisTest(
  "keeps one room's offsets unique and published in order across two connections",
  async (server) => {
    const [a, b] = [await connected(server.url), await connected(server.url)];
    const stores = [new RedisHistoryStore(a), new RedisHistoryStore(b)];
    const room = 'race "{}" \\ ü';
    const channel = `hubbub:room:${room}`;
    const listener = await listen(server.url, channel);
    const PER = 150;
    const payload = (w: number, i: number) => `{"w":${w},"i":${i},"n":`;
    try {
      // Both appenders in flight at once: 8 appends outstanding per connection.
      const results: { w: number; i: number; e: HistoryAppended }[] = [];
      await Promise.all(stores.map(async (store, w) => {
        for (let i = 0; i < PER; i += 8) {
          await Promise.all(Array.from({ length: Math.min(8, PER - i) }, async (_, k) => {
            const e = await store.append(room, {
              head: headOf("m", [w, i + k], room),
              publish: { channel, payload: payload(w, i + k) },
            }, POLICY);
            results.push({ w, i: i + k, e });
          }));
        }
      }));
      const N = 2 * PER;
      assert.equal(results.length, N);
      const offsets = results.map((r) => r.e.offset).sort((x, y) => x - y);
      assert.deepEqual(
        offsets,
        Array.from({ length: N }, (_, k) => k + 1),
        "a permutation of 1..N",
      );
      assert.equal(new Set(results.map((r) => r.e.epoch)).size, 1, "one epoch");
      // A fence after everything: once it is here, anything published before it is too.
      const fence = await stores[0].append(room, {
        head: headOf("fence", 0, room),
        publish: { channel, payload: '{"fence":1,"n":' },
      }, POLICY);
      assert.equal(fence.offset, N + 1);
      await until(() => listener.messages.length >= N + 1, 10_000, "N payloads and the fence");
      assert.equal(listener.messages.length, N + 1, "exactly N payloads and the fence");
      const byOffset = [...results].sort((x, y) => x.e.offset - y.e.offset);
      const epoch = JSON.stringify(results[0].e.epoch);
      assert.deepEqual(
        listener.messages.slice(0, N),
        byOffset.map((r) => payload(r.w, r.i) + r.e.offset + ',"e":' + epoch + "}"),
        "each payload exactly as the contract says, in offset order",
      );
      // And the stream holds the same: every frame at its offset.
      const read = await stores[1].read(room, {}, POLICY);
      assert.deepEqual(
        read.entries.slice(0, N).map((e) => e.frame),
        byOffset.map((r) => r.e.frame),
      );
    } finally {
      await listener.close();
      await release(a, b);
    }
  },
);

redisTest(
  "after kill -9 without persistence: a new epoch, offsets from 1, the same store works again",
  async (server) => {
    const client = await connected(server.url);
    const store = new RedisHistoryStore(client, { commandTimeoutMs: 500 });
    try {
      for (let i = 1; i <= 3; i++) await store.append("k", { head: headOf("m", i, "k") }, POLICY);
      const before = await store.read("k", { after: 0 }, POLICY);
      assert.deepEqual([before.offset, before.entries.length], [3, 3]);
      assert.equal(await cachedScripts(server.port), 2, "both scripts cached before the kill");

      await server.down();
      // Down: every append and read rejects, within the timeout, none resolves.
      const t0 = performance.now();
      const attempts = await Promise.allSettled([
        ...Array.from(
          { length: 20 },
          (_, i) => store.append("k", { head: headOf("m", `down${i}`, "k") }, POLICY),
        ),
        ...Array.from({ length: 20 }, () => store.read("k", { after: 3 }, POLICY)),
      ]);
      const took = performance.now() - t0;
      const resolved = attempts.filter((r) => r.status === "fulfilled").length;
      assert.equal(resolved, 0, "no append or read resolves while redis is down");
      assert.ok(took < 500 + 400, `rejected within the timeout (took ${took.toFixed(0)} ms)`);
      assert.match(
        String((attempts[0] as PromiseRejectedResult).reason),
        /Cannot append to the history of "k": redis: /,
      );
      console.log(`redis down (history): 40 commands rejected in ${took.toFixed(0)} ms`);

      await server.up();
      assert.equal(await cachedScripts(server.port), 0, "a restarted redis has no scripts");
      const after = await eventually(() => store.read("k", { after: 3 }, POLICY));
      assert.notEqual(after.epoch, before.epoch, "a new epoch");
      assert.deepEqual([after.offset, after.entries, after.complete], [0, [], false]);
      const next = await store.append("k", { head: headOf("m", "again", "k") }, POLICY);
      assert.deepEqual([next.offset, next.epoch], [1, after.epoch], "offsets restart at 1");
      assert.equal(await cachedScripts(server.port), 2, "EVAL loaded them again");
    } finally {
      await release(client);
    }
  },
);

redisTest(
  "after kill -9 with an append-only file: the same epoch and every append that resolved",
  async (server) => {
    const client = await connected(server.url);
    const store = new RedisHistoryStore(client, { commandTimeoutMs: 1000 });
    try {
      // Appends one after another, the kill landing in the middle of them.
      const resolved: HistoryAppended[] = [];
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          try {
            resolved.push(await store.append("p", { head: headOf("m", i, "p") }, POLICY));
          } catch {
            return;
          }
        }
      })();
      await until(() => resolved.length >= 30, 10_000, "30 appends before the kill");
      await server.down();
      stop = true;
      await writer;
      const stored = resolved.length;
      await server.up();
      const read = await eventually(() => store.read("p", { after: 0 }, POLICY));
      assert.equal(read.epoch, resolved[0].epoch, "the same epoch");
      assert.equal(read.complete, true);
      // The one in flight at the kill may or may not have been stored (it was reported failed).
      assert.ok(
        read.offset === stored || read.offset === stored + 1,
        `${stored} resolved, ${read.offset} held`,
      );
      assert.deepEqual(
        read.entries.slice(0, stored).map((e) => [e.offset, e.frame]),
        resolved.map((e) => [e.offset, e.frame]),
        "every append that resolved is readable, as it was",
      );
      const next = await store.append("p", { head: headOf("m", "next", "p") }, POLICY);
      assert.deepEqual([next.offset, next.epoch], [read.offset + 1, read.epoch]);
      console.log(`redis kill -9 with AOF (history): ${stored} resolved, ${read.offset} held`);
    } finally {
      await release(client);
    }
  },
  true,
);

redisTest(
  "rejects within the timeout when redis does not answer, and never stores it later",
  async (server) => {
    const client = await connected(server.url);
    const store = new RedisHistoryStore(client, { commandTimeoutMs: 300 });
    const listener = await listen(server.url, "ch");
    try {
      await store.append("t", { head: headOf("m", 0, "t") }, POLICY);
      // Quick replies: the store learns Redis's clock (for the appends' deadline).
      for (let i = 0; i < 10; i++) await store.read("t", {}, POLICY);
      // Another connection keeps Redis busy for 1.5 s.
      const busy = redisCommand(
        server.port,
        "EVAL",
        "local t = redis.call('TIME'); local s = t[1] * 1000000 + t[2]; " +
          "repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s > 1500000",
        "0",
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const t0 = performance.now();
      const attempts = await Promise.allSettled([
        store.append("t", {
          head: headOf("m", "late", "t"),
          publish: { channel: "ch", payload: '{"late":1,"n":' },
        }, POLICY),
        store.read("t", {}, POLICY),
      ]);
      const took = performance.now() - t0;
      assert.deepEqual(attempts.map((r) => r.status), ["rejected", "rejected"]);
      assert.ok(took < 300 + 300, `rejected within the timeout (took ${took.toFixed(0)} ms)`);
      await busy;
      // The append had been sent, and Redis ran its script once free: past its deadline, the
      // script stored and published nothing. A fence shows what the channel and stream got.
      const fence = await store.append("t", {
        head: headOf("m", "fence", "t"),
        publish: { channel: "ch", payload: '{"fence":1,"n":' },
      }, POLICY);
      assert.equal(fence.offset, 2, "the late append took no offset");
      await until(() => listener.messages.length > 0, 5000, "the fence");
      assert.deepEqual(listener.messages, [`{"fence":1,"n":2,"e":${JSON.stringify(fence.epoch)}}`]);
      const read = await store.read("t", {}, POLICY);
      assert.deepEqual(read.entries.map((e) => JSON.parse(e.frame).data), [0, "fence"]);
    } finally {
      await listener.close();
      await release(client);
    }
  },
);

redisTest(
  "redisHistoryStore() connects its own client, works, and close() releases it",
  async (server) => {
    const store = redisHistoryStore({ url: server.url, createClient, prefix: "app:" });
    await store.ready;
    const e = await store.append("f", { head: headOf("m", 1, "f") }, POLICY);
    assert.equal(e.offset, 1);
    const keys = await redisCommand(server.port, "KEYS", "*");
    assert.ok(keys.includes("app:{f}:m") && keys.includes("app:{f}:s"), keys);
    assert.equal((await store.read("f", {}, POLICY)).entries.length, 1);
    await store.close();
    await store.close(); // idempotent
    await assert.rejects(store.read("f", {}, POLICY), /store is closed/);
    assert.throws(
      () => redisHistoryStore({ url: 1 as unknown as string, createClient }),
      TypeError,
    );
    assert.throws(() => new RedisHistoryStore({} as never), TypeError);
    assert.throws(() => new RedisHistoryStore(store as never, { prefix: "a{" }), TypeError);
  },
);

redisTest(
  "redisHistoryStore() on a redis that is down: ready resolves, commands reject, then work",
  async (server) => {
    await server.down();
    const store = redisHistoryStore({ url: server.url, createClient, maxReconnectDelayMs: 100 });
    try {
      const t0 = performance.now();
      await store.ready;
      const attempts = await Promise.allSettled(
        Array.from(
          { length: 10 },
          (_, i) => store.append("d", { head: headOf("m", i, "d") }, POLICY),
        ),
      );
      const took = performance.now() - t0;
      assert.equal(
        attempts.filter((r) => r.status === "fulfilled").length,
        0,
        "none resolves",
      );
      assert.ok(took < 2000, `ready and 10 rejections in ${took.toFixed(0)} ms`);
      await server.up();
      const e = await eventually(() => store.append("d", { head: headOf("m", "up", "d") }, POLICY));
      assert.equal(e.offset, 1, "nothing queued while down ran later");
    } finally {
      await store.close();
    }
  },
);

redisTest(
  "a room's two keys share one non-empty hash tag, whatever the room's name",
  async (server) => {
    const client = await connected(server.url);
    try {
      const store = new RedisHistoryStore(client);
      const rooms = [...AWKWARD_ROOMS, "a%7Db", "a}b", "%", "}"];
      for (const room of rooms) await store.append(room, { head: headOf("m", 1, room) }, POLICY);
      const keys = (await client.sendCommand(["KEYS", "*"])) as string[];
      assert.equal(keys.length, 2 * rooms.length, "two keys per room, none shared");
      // The cluster rule: the tag is what lies between the first { and the next }, if not empty.
      const tag = (key: string) => {
        const open = key.indexOf("{");
        const close = key.indexOf("}", open + 1);
        return key.slice(open + 1, close);
      };
      const tags = new Map<string, string[]>();
      for (const key of keys) {
        assert.ok(tag(key).length > 0, `${key}: a non-empty tag`);
        assert.match(key, /^hubbub:\{.*\}:[ms]$/s);
        tags.set(tag(key), [...(tags.get(tag(key)) ?? []), key.slice(-1)]);
      }
      assert.equal(tags.size, rooms.length, "one tag per room");
      for (const [t, kinds] of tags) assert.deepEqual(kinds.sort(), ["m", "s"], t);
      assert.ok(
        tags.has("a%257Db") && tags.has("a%7Db") && tags.has("{x%7D"),
        [...tags.keys()].join(),
      );
    } finally {
      await release(client);
    }
  },
);

redisTest("a room's keys expire maxAgeMs after its last append", async (server) => {
  const client = await connected(server.url);
  try {
    const store = new RedisHistoryStore(client);
    await store.append("x", { head: headOf("m", 1, "x") }, { maxMessages: 10, maxAgeMs: 5000 });
    for (const key of ["hubbub:{x}:m", "hubbub:{x}:s"]) {
      const ttl = Number((await redisCommand(server.port, "PTTL", key)).slice(1));
      assert.ok(ttl > 4000 && ttl <= 5000, `${key}: pttl ${ttl}`);
    }
  } finally {
    await release(client);
  }
});

/** How many scripts Redis has cached (INFO memory). */
async function cachedScripts(port: number): Promise<number> {
  const info = await redisCommand(port, "INFO", "memory");
  return Number(/number_of_cached_scripts:(\d+)/.exec(info)?.[1] ?? "NaN");
}

/** Retry until it resolves (the client reconnecting after a restart), at most 10 s. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
