// The chat demo as a cluster: two processes (Deno and Bun) on two ports sharing a private
// redis-server behave as one chat (messages, whispers, presence, history); `deno serve
// --parallel examples/chat/serve.ts` runs (without Redis: messages only); a demo process
// restarted on Redis loses nothing: the bundled client recovers every message once.
// Registered on Deno only (the processes run on both runtimes).
import assert from "node:assert/strict";
import { isDeno, test } from "../_harness.ts";
import { BUN, DENO, startChild } from "../_process.ts";
import { freePort, hasRedis, numsub, startRedis, warnNoRedis } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";
import { startCluster } from "../_redis_cluster.ts";
import { connect, RequestError } from "../../src/client/mod.ts";

warnNoRedis("chat demo cluster test (tests/examples/chat_cluster_test.ts)");

const MAIN = new URL("../../examples/chat/main.ts", import.meta.url).pathname;
const SERVE = new URL("../../examples/chat/serve.ts", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Data = any;

/** Connect to the demo on `port` as `name` and join `room`; the ack and own presence.join. */
async function user(port: number, name: string, room: string): Promise<TestClient> {
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws?user=${name}`);
  await c.next("connection.established");
  await c.request({ type: "subscribe", room }, "subscribed");
  return c;
}

/**
 * The `presence.join` or `presence.leave` of `clientId`, received already or next (a joiner's
 * own join may come before or after its `subscribed`: both are sent as the join completes).
 */
async function presenceOf(c: TestClient, type: string, clientId: string): Promise<Data> {
  const is = (m: { type: string; data: unknown }) =>
    m.type === type && (m.data as Data).clientId === clientId;
  const seen = c.messages.find(is);
  if (seen !== undefined) return seen.data;
  while (true) {
    const m = await c.next(type);
    if (is(m)) return m.data;
  }
}

/**
 * ada's messages to the lobby until bob (on another process) gets one (the Redis
 * subscription there settles asynchronously), then bob's "hello ada": the message ada got.
 */
async function bothWays(ada: TestClient, bob: TestClient): Promise<Data> {
  let got: Data;
  for (let i = 0; i < 50 && got === undefined; i++) {
    ada.send({ type: "message", room: "lobby", text: `hi ${i}` });
    got = await bob.next("message", 200).then((m) => m, () => undefined);
  }
  assert.ok(got !== undefined, "bob got ada's message");
  bob.send({ type: "message", room: "lobby", text: "hello ada" });
  let m = await ada.next("message");
  while ((m.data as Data).user !== "bob") m = await ada.next("message");
  return m;
}

test(
  "The chat demo on Deno and Bun with REDIS_URL: two processes act as one chat, with one presence and one history",
  async () => {
    const redis = await startRedis();
    const env = { PORT: "0", REDIS_URL: redis.url };
    const clients: TestClient[] = [];
    const procs = await Promise.all([
      startChild(DENO, ["run", "-A", MAIN], /chat demo on http:\/\/localhost:(\d+)\//, { env }),
      startChild(BUN, [MAIN], /chat demo on http:\/\/localhost:(\d+)\//, { env }),
    ]);
    try {
      // main.ts reports the backplane before it starts listening.
      for (const p of procs) assert.match(p.output(), /redis backplane at \S+: connected/);
      const [a, b] = procs.map((p) => Number(p.match[1]));
      const ada = await user(a, "ada", "lobby");
      clients.push(ada);
      const adaId = await ada.clientId();
      assert.deepEqual(await presenceOf(ada, "presence.join", adaId), {
        room: "lobby",
        clientId: adaId,
        userId: "ada",
      });
      while ((await numsub(redis.port, "hubbub:room:lobby")).get("hubbub:room:lobby") !== 1) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const bob = await user(b, "bob", "lobby");
      clients.push(bob);
      const bobId = await bob.clientId();
      // bob's join, on the Bun process, reaches ada on the Deno one; bob's member list has both.
      assert.deepEqual(await presenceOf(ada, "presence.join", bobId), {
        room: "lobby",
        clientId: bobId,
        userId: "bob",
      });
      const list = (await bob.request({ type: "presence", room: "lobby", id: 1 }, "presence"))
        .data as Data;
      assert.deepEqual(list.clients.map((c: Data) => c.userId).sort(), ["ada", "bob"]);
      // Messages across processes, both ways, with the offsets of one stream.
      const m = await bothWays(ada, bob);
      assert.deepEqual(m.data, { room: "lobby", user: "bob", text: "hello ada" });
      const last = (m as Data).offset;
      // A latecomer on the Bun process reads the room's history: every message once, in order.
      const cy = await user(b, "cy", "lobby");
      clients.push(cy);
      const h = (await cy.request({ type: "history", room: "lobby", id: 2 }, "history"))
        .data as Data;
      assert.equal(h.offset, last);
      const offsets = h.messages.map((e: Data) => e.offset);
      assert.deepEqual(
        offsets,
        Array.from({ length: offsets.length }, (_, i) => last - offsets.length + 1 + i),
      );
      assert.equal(h.messages.at(-1).data.text, "hello ada");
      // Whispers to a user on the other process; to one online nowhere: USER_OFFLINE on both.
      bob.send({ type: "whisper", to: "ada", text: "psst" });
      assert.deepEqual((await ada.next("whisper")).data, { from: "bob", to: "ada", text: "psst" });
      for (const c of [ada, bob]) {
        const err = await c.request({ type: "whisper", to: "nobody", text: "hello?" }, "error");
        assert.equal((err.data as Data).code, "USER_OFFLINE");
      }
      // bob leaves on the Bun process: ada, on the Deno one, hears it.
      await bob.shut();
      assert.deepEqual(await presenceOf(ada, "presence.leave", bobId), {
        room: "lobby",
        clientId: bobId,
        userId: "bob",
      });
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await Promise.all(procs.map((p) => p.stop()));
      await redis.stop();
    }
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "The chat demo with REDIS_URL restarted: the bundled client recovers every message said meanwhile, each once, in order",
  async () => {
    const redis = await startRedis();
    const port = await freePort();
    const ready = /chat demo on http:\/\/localhost:(\d+)\//;
    const env = { REDIS_URL: redis.url };
    const start = () =>
      startChild(DENO, ["run", "-A", MAIN], ready, { env: { ...env, PORT: `${port}` } });
    let a = await start();
    const b = await startChild(BUN, [MAIN], ready, { env: { ...env, PORT: "0" } });
    const ada = await connect(`ws://127.0.0.1:${port}/ws?user=ada`, {
      minDelayMs: 50,
      maxDelayMs: 200,
    });
    const bob = await user(Number(b.match[1]), "bob", "lobby");
    try {
      const got: string[] = [];
      ada.on("message", (m, e) => got.push(`${e.offset} ${(m as Data).text}`));
      const recovered = new Promise<boolean>((resolve) =>
        ada.onLifecycle("recovery", (e) => resolve(e.recovered))
      );
      await ada.subscribe("lobby");
      const said = async (c: TestClient, text: string) => {
        c.send({ type: "message", room: "lobby", text });
        while (((await c.next("message")).data as Data).text !== text);
      };
      await ada.request("message", { room: "lobby", text: "before" });
      // Stopped (every client gets 1001 and reconnects); bob, on the other process, goes on.
      await a.stop();
      for (const text of ["while down 1", "while down 2"]) await said(bob, text);
      a = await start();
      assert.equal(await recovered, true, "the history outlived the process: recovered");
      await said(bob, "after");
      while (got.length < 4) await new Promise((r) => setTimeout(r, 20));
      const base = Number(got[0].split(" ")[0]);
      assert.deepEqual(got, [
        `${base} before`,
        `${base + 1} while down 1`,
        `${base + 2} while down 2`,
        `${base + 3} after`,
      ]);
    } finally {
      await ada.close();
      await bob.shut();
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    }
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "The chat demo with REDIS_URL during a Redis outage: a message is refused UNAVAILABLE to its sender and delivered to nobody; after it, chat resumes",
  async () => {
    const redis = await startRedis(); // no persistence: the restarted Redis has new streams
    const ready = /chat demo on http:\/\/localhost:(\d+)\//;
    const a = await startChild(DENO, ["run", "-A", MAIN], ready, {
      env: { REDIS_URL: redis.url, PORT: "0" },
    });
    const url = (name: string) => `ws://127.0.0.1:${a.match[1]}/ws?user=${name}`;
    const options = { minDelayMs: 50, maxDelayMs: 200 };
    const ada = await connect(url("ada"), options);
    const bob = await connect(url("bob"), options);
    try {
      const got: string[] = [];
      bob.on("message", (m) => got.push((m as Data).text));
      const recoveries: boolean[] = [];
      bob.onLifecycle("recovery", ({ recovered }) => recoveries.push(recovered));
      await ada.subscribe("lobby");
      await bob.subscribe("lobby");
      await redis.down();
      const err = await ada.request("message", { room: "lobby", text: "lost" }).catch((e) => e);
      assert.ok(err instanceof RequestError, String(err));
      assert.equal(err.code, "UNAVAILABLE");
      await redis.up();
      // The new Redis lost the streams: the hub closes the rooms' members with 4004, and the
      // clients re-join (recovered: false). A message accepted while bob is still re-joining
      // is not his to recover (his continuity is already lost), so ada goes on saying
      // something until bob hears one of her messages: chat goes on.
      let heard: string | undefined;
      for (let i = 0; i < 100 && heard === undefined; i++) {
        const text = `back ${i}`;
        const ok = await ada.request("message", { room: "lobby", text }).then(
          () => true,
          () => false,
        );
        for (let t = 0; t < 10 && heard === undefined; t++) {
          heard = got.find((g) => g.startsWith("back "));
          if (heard === undefined) await new Promise((r) => setTimeout(r, ok ? 30 : 10));
        }
      }
      assert.ok(heard !== undefined, "chat resumed once Redis was back");
      assert.deepEqual(recoveries, [false], "bob learned once that the lobby's stream was lost");
      assert.ok(!got.includes("lost"), "the refused message reached nobody");
    } finally {
      await Promise.all([ada.close(), bob.close()]);
      await a.stop();
      await redis.stop();
    }
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test("The chat demo under deno serve --parallel: every member gets a room message", async () => {
  const port = await freePort();
  const server = await startChild(
    DENO,
    ["serve", "--parallel", "-A", "--host", "127.0.0.1", "--port", String(port), SERVE],
    /Listening on \S+ with \d+ threads/,
    { env: { DENO_JOBS: "2", REDIS_URL: "" } },
  );
  const clients: TestClient[] = [];
  try {
    for (const name of ["ada", "bob", "cat", "dan", "eve", "fay"]) {
      clients.push(await user(port, name, "lobby"));
    }
    clients[0].send({ type: "message", room: "lobby", text: "all of you" });
    for (const c of clients) {
      const m = await c.next("message");
      assert.deepEqual(m.data, { room: "lobby", user: "ada", text: "all of you" });
    }
  } finally {
    await Promise.all(clients.map((c) => c.shut()));
    await server.stop();
  }
}, { if: isDeno, timeout: 60_000 });

test(
  "The chat demo with REDIS_CLUSTER: two processes on a 3-master Redis Cluster (sharded pub/sub) and one Redis for the stores act as one chat",
  async () => {
    const cluster = await startCluster();
    const redis = await startRedis();
    const env = { PORT: "0", REDIS_CLUSTER: cluster.urls, REDIS_URL: redis.url };
    const clients: TestClient[] = [];
    const procs = await Promise.all([
      startChild(DENO, ["run", "-A", MAIN], /chat demo on http:\/\/localhost:(\d+)\//, { env }),
      startChild(BUN, [MAIN], /chat demo on http:\/\/localhost:(\d+)\//, { env }),
    ]);
    try {
      for (const p of procs) {
        assert.match(p.output(), /redis cluster backplane \(3 nodes\): connected/);
      }
      const [a, b] = procs.map((p) => Number(p.match[1]));
      const ada = await user(a, "ada", "lobby");
      const bob = await user(b, "bob", "lobby");
      clients.push(ada, bob);
      // bob's join on the Bun process reaches ada on the Deno one (through the cluster).
      assert.equal((await presenceOf(ada, "presence.join", await bob.clientId())).userId, "bob");
      const m = await bothWays(ada, bob);
      assert.equal((m.data as Data).text, "hello ada");
      for (const c of [ada, bob]) {
        const err = await c.request({ type: "whisper", to: "nobody", text: "hello?" }, "error");
        assert.equal((err.data as Data).code, "USER_OFFLINE");
      }
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await Promise.all(procs.map((p) => p.stop()));
      await redis.stop();
      await cluster.stop();
    }
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);
