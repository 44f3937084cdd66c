// Liveness of the Redis backplane: a connection that stays open but stops forwarding (a proxy
// or load balancer gone quiet) turns health red within probeIntervalMs + probeTimeoutMs, is
// dropped and made again, and messages flow again, each once and in order. A small TCP proxy
// (node:net) sits between one of the backplane's connections and a private redis-server.
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { BackplaneHealth } from "../../mod.ts";
import { redisBackplane } from "../../src/backplane/redis.ts";
import { test, until } from "../_harness.ts";
import { hasRedis, numsub, type RedisServer, startRedis, warnNoRedis } from "../_redis.ts";
import { type StallingProxy, stallingProxy } from "./_stalling_proxy.ts";

warnNoRedis("Redis liveness tests (tests/backplane/redis_liveness_test.ts)");

const PROBE_EVERY = 100;
const PROBE_TIMEOUT = 400;

/**
 * A started backplane whose `through` connection (the second createClient call is the
 * subscriber) goes through the proxy; records deliveries and health changes.
 */
async function backplaneThrough(server: RedisServer, proxy: StallingProxy, through: 0 | 1) {
  let made = 0;
  const bp = redisBackplane({
    url: server.url,
    createClient: (o) => createClient({ ...o, url: made++ === through ? proxy.url : o.url }),
    probeIntervalMs: PROBE_EVERY,
    probeTimeoutMs: PROBE_TIMEOUT,
    maxReconnectDelayMs: 100,
  });
  const got: string[] = [];
  const health: BackplaneHealth[] = [];
  /** When each health change arrived (performance.now()). */
  const at: number[] = [];
  await bp.start((channel, payload) => void got.push(`${channel}=${payload}`), (h) => {
    health.push(h);
    at.push(performance.now());
  });
  await until(() => bp.health().ok, 5000, "health ok at start");
  /**
   * Wait for the first red since `from` whose error matches, from the recorded changes (a red
   * spell can be shorter than a poll: the connection is remade in milliseconds).
   */
  const redSince = async (from: number, error: RegExp): Promise<number> => {
    const i = () => health.findIndex((h, k) => !h.ok && at[k] >= from && error.test(h.error ?? ""));
    await until(() => i() >= 0, 3000, `health to go red with ${error}`);
    return at[i()] - from;
  };
  return { bp, got, health, redSince };
}

/** Publish `n` numbered messages on `room` and wait until exactly those arrived, in order. */
async function flow(
  bp: { publish(c: string, p: string): Promise<void> },
  got: string[],
  tag: string,
  n: number,
) {
  const want = Array.from({ length: n }, (_, i) => `room=${tag}${i}`);
  await Promise.all(want.map((w) => bp.publish("room", w.slice(5))));
  await until(() => got.filter((g) => g.startsWith(`room=${tag}`)).length >= n, 5000, tag);
  assert.deepEqual(got.filter((g) => g.startsWith(`room=${tag}`)), want, `${tag}: once, in order`);
}

function livenessTest(
  name: string,
  fn: (server: RedisServer, proxy: StallingProxy) => Promise<void>,
) {
  test(`RedisBackplane liveness: ${name}`, async () => {
    const server = await startRedis();
    const proxy = await stallingProxy(server.port);
    try {
      await fn(server, proxy);
    } finally {
      await proxy.close();
      await server.stop();
    }
  }, { if: hasRedis, timeout: 20_000 });
}

livenessTest(
  "a subscription that stops delivering turns red in time, is re-established, and delivers again",
  async (server, proxy) => {
    const { bp, got, health, redSince } = await backplaneThrough(server, proxy, 1);
    await bp.subscribe("room");
    await flow(bp, got, "before", 20);
    assert.equal((await numsub(server.port, bp.probeChannel)).get(bp.probeChannel), 1);

    proxy.stall();
    const stalledAt = performance.now();
    const redAfter = await redSince(stalledAt, /^subscriber: no probe back within 400 ms/);
    // The stated bound: probeIntervalMs + probeTimeoutMs (plus scheduling slack).
    assert.ok(redAfter <= PROBE_EVERY + PROBE_TIMEOUT + 250, `red after ${redAfter.toFixed(0)} ms`);

    await until(() => bp.health().ok, 5000, "health to return");
    const healedAfter = performance.now() - stalledAt;
    assert.ok(proxy.accepted >= 2, "the subscriber connection was made again");
    assert.ok(proxy.closed >= 1, "the stalled connection was dropped");
    // One subscription to the room at the server: the stalled connection is gone.
    for (let i = 0; (await numsub(server.port, "room")).get("room") !== 1; i++) {
      assert.ok(i < 200, "the stalled subscription to be gone at the server");
      await new Promise((r) => setTimeout(r, 25));
    }
    await flow(bp, got, "after", 50);
    assert.ok(got.every((g) => g.startsWith("room=")), "no probe reached the hub");
    const flips = health.map((h) => h.ok).filter((ok, i, all) => i === 0 || ok !== all[i - 1]);
    assert.deepEqual(flips.slice(-3), [true, false, true], "ok, red, ok");
    console.log(
      `liveness (subscriber): red ${redAfter.toFixed(0)} ms after the stall, ok again ` +
        `${
          healedAfter.toFixed(0)
        } ms after it (probe every ${PROBE_EVERY} ms, timeout ${PROBE_TIMEOUT} ms)`,
    );
    await bp.close();
  },
);

livenessTest(
  "a publisher connection that stops answering turns red, is re-established, and publishes again",
  async (server, proxy) => {
    const { bp, got, redSince } = await backplaneThrough(server, proxy, 0);
    await bp.subscribe("room");
    await flow(bp, got, "before", 20);

    proxy.stall();
    const stalledAt = performance.now();
    const lost = bp.publish("room", "during").then(() => "resolved", () => "rejected");
    const redAfter = await redSince(stalledAt, /^publisher: no reply to a probe within 400 ms/);
    assert.ok(redAfter <= PROBE_EVERY + PROBE_TIMEOUT + 250, `red after ${redAfter.toFixed(0)} ms`);
    assert.equal(await lost, "rejected", "a publish stuck on the stalled connection rejects");

    await until(() => bp.health().ok, 5000, "health to return");
    assert.ok(proxy.accepted >= 2, "the publisher connection was made again");
    await flow(bp, got, "after", 50);
    assert.ok(!got.includes("room=during"), "the stuck publish never arrived");
    await bp.close();
  },
);

test("RedisBackplane refuses bad probe timing", () => {
  const make = (o: object) => () =>
    redisBackplane({ url: "redis://127.0.0.1:1", createClient, ...o });
  assert.throws(make({ probeIntervalMs: -1 }), TypeError);
  assert.throws(make({ probeTimeoutMs: 0 }), TypeError);
});
