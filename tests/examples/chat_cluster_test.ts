// The chat demo as a cluster: two processes (Deno and Bun) on two ports sharing a private
// redis-server behave as one chat; `deno serve --parallel examples/chat/serve.ts` runs.
// Registered on Deno only (the processes run on both runtimes).
import assert from "node:assert/strict";
import { isDeno, test } from "../_harness.ts";
import { BUN, DENO, startChild } from "../_process.ts";
import { freePort, hasRedis, numsub, startRedis, warnNoRedis } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";

warnNoRedis("chat demo cluster test (tests/examples/chat_cluster_test.ts)");

const MAIN = new URL("../../examples/chat/main.ts", import.meta.url).pathname;
const SERVE = new URL("../../examples/chat/serve.ts", import.meta.url).pathname;

async function user(port: number, name: string, room: string): Promise<TestClient> {
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws?user=${name}`);
  await c.next("connection.established");
  await c.request({ type: "subscribe", room }, "subscribed");
  // The demo announces a join from the hub's onJoin, before the ack: the joiner's own presence
  // came first, with the members the joiner's process (or isolate) knows.
  const own = c.messages.find((m) => m.type === "presence")?.data as { users: string[] };
  assert.deepEqual({ ...own, users: undefined }, {
    room,
    user: name,
    action: "join",
    users: undefined,
  });
  assert.ok(own.users.includes(name), `${name} in ${own.users}`);
  return c;
}

test("The chat demo on Deno and Bun with REDIS_URL: two processes act as one chat", async () => {
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
    const joined = ada.messages.find((m) => m.type === "presence")?.data;
    assert.deepEqual(joined, { room: "lobby", user: "ada", action: "join", users: ["ada"] });
    while ((await numsub(redis.port, "hubbub:room:lobby")).get("hubbub:room:lobby") !== 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const bob = await user(b, "bob", "lobby");
    clients.push(bob);
    // bob's join, announced by the Bun process (which knows only bob), reaches ada.
    assert.deepEqual((await ada.next("presence")).data, {
      room: "lobby",
      user: "bob",
      action: "join",
      users: ["bob"],
    });
    // Messages across processes, both ways; whispers to a user on the other process.
    let got: unknown;
    for (let i = 0; i < 50 && got === undefined; i++) {
      // The Redis subscription for lobby on the other process settles asynchronously.
      ada.send({ type: "message", room: "lobby", text: `hi ${i}` });
      got = await bob.next("message", 200).then((m) => m.data, () => undefined);
    }
    assert.ok(got !== undefined, "bob got ada's message");
    bob.send({ type: "message", room: "lobby", text: "hello ada" });
    let m = await ada.next("message");
    while ((m.data as { user: string }).user !== "bob") m = await ada.next("message");
    assert.deepEqual(m.data, { room: "lobby", user: "bob", text: "hello ada" });
    bob.send({ type: "whisper", to: "ada", text: "psst" });
    assert.deepEqual((await ada.next("whisper")).data, { from: "bob", to: "ada", text: "psst" });
  } finally {
    await Promise.all(clients.map((c) => c.shut()));
    await Promise.all(procs.map((p) => p.stop()));
    await redis.stop();
  }
}, { if: isDeno && hasRedis, timeout: 60_000 });

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
