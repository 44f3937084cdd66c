// The Redis backplane against a private redis-server (tests/_redis.ts): the backplane
// contract, then outages for real (kill -9, restart on the same port).
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { BackplaneHealth } from "../../mod.ts";
import { Hub } from "../../mod.ts";
import {
  decodeRedisBatch,
  encodeRedisBatch,
  RedisBackplane,
  redisBackplane,
} from "../../src/backplane/redis.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test, until } from "../_harness.ts";
import {
  hasRedis,
  numsub,
  redisCommand,
  type RedisServer,
  requireRedis,
  startRedis,
} from "../_redis.ts";
import { backplaneContract, type BusFixture } from "../contract/backplane_contract.ts";

requireRedis("Redis backplane tests (tests/backplane/redis_test.ts)");

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

// ---------------------------------------------------------------------------------------------
// Batches: what one replica publishes on one channel in one event-loop turn is one Redis message.

test("Redis batch format v1: encodes and decodes any payloads, in order", () => {
  const payloads = ['{"a":1}', "", "x", "12:34", "!b1\n3:abc", "é😀\n", "7:", '{"f":"\\u0000"}'];
  const batch = encodeRedisBatch(payloads);
  assert.equal(encodeRedisBatch(['{"a":1}', "x"]), '!b1\n7:{"a":1}1:x', "the documented example");
  const out: string[] = [];
  decodeRedisBatch(batch, (p) => void out.push(p));
  assert.deepEqual(out, payloads);
  // A replica that does not batch: one payload, as is (hub payloads start with "{" or a MAC).
  const single: string[] = [];
  decodeRedisBatch('{"v":1}', (p) => void single.push(p));
  decodeRedisBatch("QUJD.{}", (p) => void single.push(p));
  assert.deepEqual(single, ['{"v":1}', "QUJD.{}"]);
  // What cannot be decoded is handed on as is (the hub counts it malformed), after what could.
  for (
    const [bad, want] of [
      ["!b2\n1:x", ["!b2\n1:x"]], // another version
      ["!b1\n1:x9:short", ["x", "9:short"]], // a length past the end
      ["!b1\n1:xy", ["x", "y"]], // no length
      ["!b1\n-1:x", ["-1:x"]],
    ] as const
  ) {
    const got: string[] = [];
    decodeRedisBatch(bad, (p) => void got.push(p));
    assert.deepEqual(got, want, bad);
  }
});

/** A plain node-redis subscriber counting the raw Redis messages of some channels. */
async function rawSubscriber(server: RedisServer, channels: string[]) {
  const client = createClient({ url: server.url });
  client.on("error", () => {});
  await client.connect();
  const raw = new Map<string, string[]>(channels.map((c) => [c, []]));
  await client.subscribe(channels, (message, channel) => void raw.get(channel)!.push(message));
  return { raw, close: () => client.close() };
}

redisTest(
  "coalesces one channel's publishes of one turn into one message, pipelined across channels",
  async (server) => {
    const a = await started(server);
    const b = await started(server);
    const others = Array.from({ length: 300 }, (_, i) => `ch${i}`);
    for (const c of ["one", ...others]) await b.bp.subscribe(c);
    const spy = await rawSubscriber(server, ["one", "ch0", "bang"]);
    await b.bp.subscribe("bang");
    const promises: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      promises.push(a.bp.publish("one", `{"n":${i}}`));
      if (i < others.length) promises.push(a.bp.publish(others[i], `{"c":${i}}`));
    }
    for (let i = 200; i < others.length; i++) promises.push(a.bp.publish(others[i], `{"c":${i}}`));
    promises.push(a.bp.publish("bang", "!not a batch"));
    await Promise.all(promises);
    const total = 200 + others.length + 1;
    await until(() => b.got.length === total, 5000, "every payload at b");
    const want = Array.from({ length: 200 }, (_, i) => `one={"n":${i}}`);
    assert.deepEqual(b.got.filter((g) => g.startsWith("one=")), want, "in order, once each");
    for (let i = 0; i < others.length; i++) assert.ok(b.got.includes(`ch${i}={"c":${i}}`));
    assert.ok(b.got.includes("bang=!not a batch"), "a lone payload starting with ! arrives intact");
    await until(() => spy.raw.get("bang")!.length === 1, 5000, "the raw view");
    assert.equal(spy.raw.get("one")!.length, 1, "200 payloads, one Redis message");
    assert.ok(spy.raw.get("one")![0].startsWith("!b1\n"), "a v1 batch");
    assert.deepEqual(spy.raw.get("ch0"), ['{"c":0}'], "a turn's single payload goes as is");
    assert.ok(spy.raw.get("bang")![0].startsWith("!b1\n"), "...unless it starts with !");
    // The next turn is a new message.
    await a.bp.publish("one", "next");
    await until(() => spy.raw.get("one")!.length === 2, 5000, "a second message");
    assert.deepEqual(spy.raw.get("one")![1], "next");
    await spy.close();
    await Promise.all([a.bp.close(), b.bp.close()]);
  },
);

redisTest("a batch past maxBatchLength is split, order kept", async (server) => {
  const a = redisBackplane({ url: server.url, createClient, maxBatchLength: 100 });
  await a.start(() => {}, () => {});
  const b = await started(server);
  await b.bp.subscribe("c");
  const spy = await rawSubscriber(server, ["c"]);
  const payloads = Array.from({ length: 50 }, (_, i) => `{"i":"${String(i).padStart(2, "0")}"}`);
  assert.ok(payloads.every((p) => p.length === 10));
  await Promise.all(payloads.map((p) => a.publish("c", p)));
  await until(() => b.got.length === 50, 5000, "every payload");
  assert.deepEqual(b.got, payloads.map((p) => `c=${p}`));
  assert.equal(spy.raw.get("c")!.length, 5, "10 payloads of 10 per batch of at most 100");
  await spy.close();
  await Promise.all([a.close(), b.bp.close()]);
});

redisTest(
  "reads single payloads from replicas that do not batch, mixed with batches, in order",
  async (server) => {
    const old = redisBackplane({ url: server.url, createClient, coalesce: false });
    await old.start(() => {}, () => {});
    const b = await started(server);
    await b.bp.subscribe("r");
    const spy = await rawSubscriber(server, ["r"]);
    await Promise.all(Array.from({ length: 100 }, (_, i) => old.publish("r", `{"o":${i}}`)));
    await until(() => spy.raw.get("r")!.length === 100, 5000, "100 raw messages");
    assert.ok(spy.raw.get("r")!.every((m) => m.startsWith("{")), "coalesce: false sends singles");
    await redisCommand(server.port, "PUBLISH", "r", encodeRedisBatch(['{"x":1}', '{"x":2}']));
    await old.publish("r", '{"o":"last"}');
    await until(() => b.got.length === 103, 5000, "every payload");
    assert.deepEqual(b.got, [
      ...Array.from({ length: 100 }, (_, i) => `r={"o":${i}}`),
      'r={"x":1}',
      'r={"x":2}',
      'r={"o":"last"}',
    ]);
    await spy.close();
    await Promise.all([old.close(), b.bp.close()]);
  },
);

redisTest(
  "hubs with and without coalescing share one Redis: every burst arrives once, in order",
  async (server) => {
    const hub = (coalesce: boolean) =>
      new Hub({ backplane: redisBackplane({ url: server.url, createClient, coalesce }) });
    const a = hub(true);
    const b = hub(false);
    await Promise.all([a.ready, b.ready]);
    const ca = await connectMemory(a, { url: "http://localhost/ws" });
    const cb = await connectMemory(b, { url: "http://localhost/ws" });
    const ida = ((await ca.next("connection.established")).data as { clientId: string }).clientId;
    const idb = ((await cb.next("connection.established")).data as { clientId: string }).clientId;
    a.join(ida, "r");
    b.join(idb, "r");
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 300; i++) {
      a.emit("fromA", i, { rooms: "r" });
      b.emit("fromB", i, { rooms: "r" });
    }
    const seq = (c: typeof ca, type: string) =>
      c.messages.filter((m) => m.type === type).map((m) => m.data as number);
    await until(
      () => seq(cb, "fromA").length >= 300 && seq(ca, "fromB").length >= 300,
      5000,
      "300",
    );
    const want = Array.from({ length: 300 }, (_, i) => i);
    assert.deepEqual(seq(cb, "fromA"), want, "a (batches) -> b");
    assert.deepEqual(seq(ca, "fromB"), want, "b (singles) -> a");
    assert.equal(a.backplaneStats().malformed + b.backplaneStats().malformed, 0);
    assert.equal(a.backplaneStats().publishFailed, 0);
    await Promise.all([a.close(), b.close()]);
  },
);

test("a failed batch rejects the publish of every payload in it; the next turn goes on", async () => {
  const server = new FakeRedis();
  const pub = new FakeClient(server);
  const sub = new FakeClient(server);
  let calls = 0;
  let fail = true;
  const publish = pub.publish.bind(pub);
  pub.publish = (channel: string, message: string) => {
    if (channel.startsWith("hubbub:probe:")) return publish(channel, message);
    calls++;
    return fail ? Promise.reject(new Error("OOM command not allowed")) : publish(channel, message);
  };
  const bp = new RedisBackplane(pub, sub, { ownClients: true });
  const got: string[] = [];
  await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), () => {});
  await until(() => bp.health().ok, 2000, "ok");
  await bp.subscribe("a");
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => bp.publish("a", String(i))),
  );
  assert.equal(calls, 1, "one PUBLISH for the five");
  assert.deepEqual(results.map((r) => r.status), Array(5).fill("rejected"));
  for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /OOM/);
  fail = false;
  await Promise.all([bp.publish("a", "5"), bp.publish("a", "6")]);
  assert.equal(calls, 2);
  assert.deepEqual(got, ["a=5", "a=6"]);
  await bp.close();
});
