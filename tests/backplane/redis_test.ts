// The Redis backplane against a private redis-server (tests/_redis.ts): the backplane
// contract, then outages for real (kill -9, restart on the same port).
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { BackplaneHealth } from "../../mod.ts";
import { RedisBackplane, redisBackplane } from "../../src/backplane/redis.ts";
import { test, until } from "../_harness.ts";
import {
  hasRedis,
  inCI,
  numsub,
  redisCommand,
  type RedisServer,
  startRedis,
  warnNoRedis,
} from "../_redis.ts";
import { backplaneContract, type BusFixture } from "../contract/backplane_contract.ts";

if (!hasRedis && inCI) {
  test("redis-server is installed (required when CI=true)", () => {
    throw new Error(
      "redis-server is missing: .ci/run must install it (apt-get install redis-server)",
    );
  });
}
warnNoRedis("Redis backplane tests (tests/backplane/redis_test.ts)");

async function redisBus(): Promise<BusFixture> {
  const server = await startRedis();
  return {
    connect: () => redisBackplane({ url: server.url, createClient }),
    down: () => server.down(),
    up: () => server.up(),
    inject: async (channel, payload) => {
      await redisCommand(server.port, "PUBLISH", channel, payload);
    },
    close: () => server.stop(),
  };
}

backplaneContract("redis", redisBus, { outage: true, inject: true }, { if: hasRedis });

/** A started backplane that records what it receives and its health changes. */
async function started(server: RedisServer, maxReconnectDelayMs?: number) {
  const bp = redisBackplane({ url: server.url, createClient, maxReconnectDelayMs });
  const got: string[] = [];
  const health: BackplaneHealth[] = [];
  await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), (h) => {
    health.push(h);
  });
  return { bp, got, health };
}

function redisTest(name: string, fn: (server: RedisServer) => Promise<void>): void {
  test(`RedisBackplane ${name}`, async () => {
    const server = await startRedis();
    try {
      await fn(server);
    } finally {
      await server.stop();
    }
  }, { if: hasRedis, timeout: 30_000 });
}

redisTest(
  "restores the channels held after a restart (not those dropped), each message once",
  async (server) => {
    const { bp, got, health } = await started(server);
    assert.deepEqual(bp.health(), { ok: true });
    await bp.subscribe("a");
    await bp.subscribe("b");
    await bp.subscribe("a"); // idempotent
    await redisCommand(server.port, "PUBLISH", "a", "1");
    await until(() => got.includes("a=1"), 5000, "delivery before the outage");

    const killed = performance.now();
    await server.down();
    await until(() => !bp.health().ok, 10_000, "health to go red");
    const redAfter = performance.now() - killed;
    assert.match(bp.health().error ?? "", /subscriber|publisher/);
    await bp.unsubscribe("b"); // dropped while down: must not come back
    await bp.subscribe("c"); // added while down: must be subscribed on reconnect

    const restarted = performance.now();
    await server.up();
    await until(() => bp.health().ok, 10_000, "health to return");
    const healedAfter = performance.now() - restarted;
    const subs = await numsub(server.port, "a", "b", "c");
    assert.deepEqual([...subs], [["a", 1], ["b", 0], ["c", 1]]);
    for (const ch of ["a", "b", "c"]) await redisCommand(server.port, "PUBLISH", ch, "2");
    await until(() => got.includes("a=2") && got.includes("c=2"), 5000, "delivery after");
    await redisCommand(server.port, "PUBLISH", "a", "fence");
    await until(() => got.includes("a=fence"), 5000, "the fence");
    assert.deepEqual(got, ["a=1", "a=2", "c=2", "a=fence"], "each message once, b not restored");
    assert.ok(health.some((h) => !h.ok) && health.at(-1)?.ok === true, "red, then ok");
    console.log(
      `redis outage (backplane): red ${redAfter.toFixed(0)} ms after kill -9, ` +
        `ok ${healedAfter.toFixed(0)} ms after restart`,
    );
    await bp.close();
    assert.deepEqual(bp.health(), { ok: false, error: "closed" });
  },
);

redisTest(
  "rejects publishes at once while redis is down, and publishes again after",
  async (server) => {
    const { bp } = await started(server);
    await bp.publish("x", "before");
    await server.down();
    await until(() => !bp.health().ok, 10_000, "health to go red");
    const t0 = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => bp.publish("x", String(i))),
    );
    const took = performance.now() - t0;
    assert.ok(results.every((r) => r.status === "rejected"), "every publish rejected");
    // "Cannot publish: redis publisher is down", or the client's own error for a publish
    // made before it noticed the lost connection.
    assert.match(String((results[0] as PromiseRejectedResult).reason), /publish|closed|socket/i);
    // At once: no connect or command timeout (5 s) is waited for. Usually well under 10 ms.
    assert.ok(took < 1000, `100 rejections took ${took.toFixed(1)} ms`);
    await server.up();
    await until(() => bp.health().ok, 10_000, "health to return");
    await bp.publish("x", "after");
    await bp.close();
  },
);

redisTest(
  "start() resolves with red health while redis is unreachable, then heals",
  async (server) => {
    await server.down();
    const bp = redisBackplane({ url: server.url, createClient, maxReconnectDelayMs: 200 });
    const got: string[] = [];
    await bp.subscribe("early"); // before start: held
    const t0 = performance.now();
    await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), () => {});
    assert.ok(performance.now() - t0 < 3000, "start() settled at the first error");
    assert.equal(bp.health().ok, false);
    assert.match(bp.health().error ?? "", /ECONNREFUSED|connect|Socket/i);
    await bp.subscribe("late");
    await server.up();
    await until(() => bp.health().ok, 10_000, "health to return");
    await redisCommand(server.port, "PUBLISH", "early", "1");
    await redisCommand(server.port, "PUBLISH", "late", "2");
    await until(() => got.length === 2, 5000, "both held channels");
    assert.deepEqual(got, ["early=1", "late=2"]);
    await bp.close();
  },
);

redisTest(
  "over the app's own clients: close() unsubscribes but leaves them open",
  async (server) => {
    const publisher = createClient({ url: server.url });
    const subscriber = publisher.duplicate();
    publisher.on("error", () => {});
    subscriber.on("error", () => {});
    await Promise.all([publisher.connect(), subscriber.connect()]);
    assert.throws(() => new RedisBackplane(publisher, publisher), TypeError);
    const bp = new RedisBackplane(publisher, subscriber);
    const got: string[] = [];
    await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), () => {});
    assert.deepEqual(bp.health(), { ok: true });
    await bp.subscribe("mine");
    await bp.publish("mine", "hi");
    await until(() => got.includes("mine=hi"), 5000, "own delivery");
    await bp.close();
    assert.equal(publisher.isReady, true);
    assert.equal(subscriber.isReady, true);
    assert.equal((await numsub(server.port, "mine")).get("mine"), 0, "unsubscribed on close");
    await Promise.all([publisher.close(), subscriber.close()]);
  },
);

test("redisBackplane() refuses bad arguments", () => {
  const bad = (o: unknown) => () => redisBackplane(o as Parameters<typeof redisBackplane>[0]);
  assert.throws(bad({ url: 1, createClient }), TypeError);
  assert.throws(bad({ url: "redis://x" }), TypeError);
});

/**
 * A fake Redis server and clients shaped like node-redis, whose client library
 * forgets every subscription when its connection drops (as some versions do),
 * and that keeps listeners in a list: a listener registered twice is called twice.
 */
class FakeRedis {
  readonly clients: FakeClient[] = [];
  down = false;
  publish(channel: string, message: string): void {
    for (const c of this.clients) {
      if (!c.isReady) continue;
      for (const fn of c.listeners.get(channel) ?? []) fn(message, channel);
    }
  }
  crash(): void {
    this.down = true;
    for (const c of this.clients) c.lose();
  }
  restart(): void {
    this.down = false;
    for (const c of this.clients) c.regain();
  }
}

class FakeClient {
  isReady = false;
  isOpen = false;
  readonly listeners = new Map<string, ((m: string, c: string) => void)[]>();
  readonly events = new Map<string, Set<(arg?: unknown) => void>>();
  subscribeCalls = 0;
  constructor(readonly server: FakeRedis) {
    server.clients.push(this);
  }
  on(event: string, fn: (arg?: unknown) => void): this {
    if (!this.events.has(event)) this.events.set(event, new Set());
    this.events.get(event)!.add(fn);
    return this;
  }
  off(event: string, fn: (arg?: unknown) => void): this {
    this.events.get(event)?.delete(fn);
    return this;
  }
  emit(event: string, arg?: unknown): void {
    for (const fn of [...(this.events.get(event) ?? [])]) fn(arg);
  }
  connect(): Promise<void> {
    this.isOpen = true;
    queueMicrotask(() =>
      this.server.down ? this.emit("error", new Error("refused")) : this.regain()
    );
    return Promise.resolve();
  }
  lose(): void {
    if (!this.isOpen) return;
    this.isReady = false;
    this.listeners.clear(); // the library forgets its subscriptions
    this.emit("error", new Error("Socket closed unexpectedly"));
    this.emit("reconnecting");
  }
  regain(): void {
    if (!this.isOpen || this.isReady) return;
    this.isReady = true;
    this.emit("ready");
  }
  publish(channel: string, message: string): Promise<number> {
    if (!this.isReady) return Promise.reject(new Error("offline"));
    this.server.publish(channel, message);
    return Promise.resolve(1);
  }
  subscribe(channels: string | string[], fn: (m: string, c: string) => void): Promise<void> {
    if (!this.isReady) return Promise.reject(new Error("offline"));
    this.subscribeCalls++;
    for (const c of typeof channels === "string" ? [channels] : channels) {
      if (!this.listeners.has(c)) this.listeners.set(c, []);
      this.listeners.get(c)!.push(fn); // a list on purpose: double registration shows
    }
    return Promise.resolve();
  }
  unsubscribe(channels: string | string[], fn: (m: string, c: string) => void): Promise<void> {
    if (!this.isReady) return Promise.reject(new Error("offline"));
    for (const c of typeof channels === "string" ? [channels] : channels) {
      const list = (this.listeners.get(c) ?? []).filter((x) => x !== fn);
      if (list.length === 0) this.listeners.delete(c);
      else this.listeners.set(c, list);
    }
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.isOpen = false;
    this.isReady = false;
    return Promise.resolve();
  }
}

test("RedisBackplane resubscribes itself when the client library forgets, never twice", async () => {
  const server = new FakeRedis();
  const pub = new FakeClient(server);
  const sub = new FakeClient(server);
  const bp = new RedisBackplane(pub, sub, { ownClients: true });
  const got: string[] = [];
  const health: BackplaneHealth[] = [];
  await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), (h) => {
    health.push(h);
  });
  await until(() => bp.health().ok, 2000, "ok");
  await bp.subscribe("a");
  server.publish("a", "1");
  server.crash();
  assert.deepEqual(bp.health(), { ok: false, error: "subscriber: Socket closed unexpectedly" });
  await assert.rejects(bp.publish("a", "lost"), /Cannot publish: redis publisher is down/);
  server.restart();
  await until(() => bp.health().ok, 2000, "ok again");
  assert.deepEqual(sub.listeners.get("a")?.length, 1, "restored by the backplane, once");
  // Another reconnect where the library did keep its subscriptions: still one listener.
  sub.isReady = false;
  sub.emit("reconnecting");
  sub.regain();
  await until(() => bp.health().ok, 2000, "ok after the second reconnect");
  assert.equal(sub.listeners.get("a")?.length, 1, "not registered twice");
  await bp.publish("a", "2");
  assert.deepEqual(got, ["a=1", "a=2"]);
  const flips = health.map((h) => h.ok).filter((ok, i, all) => i === 0 || ok !== all[i - 1]);
  assert.deepEqual(flips, [false, true, false, true, false, true]);
  await bp.close();
  assert.equal(sub.isOpen, false, "owned clients are closed");
});
