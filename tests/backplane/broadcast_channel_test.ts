// The BroadcastChannel backplane: the backplane contract in one isolate (distinct
// BroadcastChannel objects with one name deliver to each other there), then across workers.
import assert from "node:assert/strict";
import { Hub } from "../../mod.ts";
import { BroadcastChannelBackplane } from "../../src/backplane/broadcast_channel.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { isBun, test, until } from "../_harness.ts";
import { freePort } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";
import { backplaneContract } from "../contract/backplane_contract.ts";

let n = 0;
backplaneContract("BroadcastChannel", () => {
  // A fresh name per test: nothing from an earlier test can leak in.
  const name = `hubbub-test-${n++}-${crypto.randomUUID()}`;
  return Promise.resolve({
    connect: () => new BroadcastChannelBackplane({ name }),
    inject: (channel, payload) => {
      const bc = new BroadcastChannel(name);
      bc.postMessage([[[channel], payload]]);
      bc.close();
      return Promise.resolve();
    },
    coalesces: true,
    close: () => Promise.resolve(),
  });
}, { outage: false, inject: true }); // no outage: a BroadcastChannel cannot be taken down

test("BroadcastChannel objects with one name deliver to each other in one isolate", async () => {
  const a = new BroadcastChannel("hubbub-same-isolate");
  const b = new BroadcastChannel("hubbub-same-isolate");
  const got: unknown[] = [];
  b.onmessage = (e) => void got.push(e.data);
  a.postMessage("hi");
  await until(() => got.length === 1, 2000, "delivery between two objects");
  assert.deepEqual(got, ["hi"]);
  a.close();
  b.close();
});

test("BroadcastChannel backplane: hubs in the main thread and a worker act as one", async () => {
  const name = `hubbub-worker-${crypto.randomUUID()}`;
  const hub = new Hub({ backplane: new BroadcastChannelBackplane({ name }) });
  await hub.ready;
  const local = await connectMemory(hub);
  const id = ((await local.next("connection.established")).data as { clientId: string }).clientId;
  hub.join(id, "r");
  const worker = new Worker(new URL("../fixtures/bc_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const inbox: Record<string, unknown>[] = [];
  let wake = () => {};
  worker.onmessage = (e) => {
    inbox.push(e.data);
    wake();
  };
  const waitFor = async (pred: (m: Record<string, unknown>) => boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!inbox.some(pred)) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };
  try {
    worker.postMessage({ cmd: "start", name });
    await waitFor((m) => m.ready === true, "the worker's hub");
    hub.emit("from-main", null, { rooms: "r" });
    await waitFor((m) => m.got === "from-main", "the worker's client to get the main emit");
    worker.postMessage({ cmd: "emit", type: "from-worker", room: "r" });
    await local.next("from-worker");
    worker.postMessage({ cmd: "close" });
    await waitFor((m) => m.closed === true, "the worker's hub to close");
  } finally {
    worker.terminate();
    local.close();
    await hub.close();
  }
});

test("BroadcastChannel backplane: one postMessage per turn, one copy per multi-room emit", async () => {
  const name = `hubbub-batch-${crypto.randomUUID()}`;
  const spy = new BroadcastChannel(name);
  const posts: unknown[] = [];
  spy.onmessage = (e) => void posts.push(e.data);
  const hub = new Hub({ backplane: new BroadcastChannelBackplane({ name }) });
  await hub.ready;
  hub.emit("one", 1, { rooms: ["a", "b", "c"] });
  hub.emit("two", 2);
  await until(() => posts.length >= 1, 2000, "the post");
  // A fence instead of a sleep: an emit in a later turn is posted after the first turn's post.
  hub.emit("fence", 3);
  await until(() => posts.length >= 2, 2000, "the fence's post");
  assert.equal(posts.length, 2, "one postMessage for the turn, one for the fence's");
  assert.match(JSON.stringify(posts[1]), /fence/);
  posts.pop();
  assert.equal(posts.length, 1, "one postMessage for the turn");
  const batch = posts[0] as [string[], string][];
  assert.equal(batch.length, 2);
  assert.deepEqual(batch[0][0], ["hubbub:room:a", "hubbub:room:b", "hubbub:room:c"]);
  assert.deepEqual(batch[1][0], ["hubbub:all"]);
  await hub.close();
  assert.deepEqual(hub.backplaneHealth, { ok: false, error: "closed" });
  spy.close();
});

test(
  "BroadcastChannel backplane: Bun workers sharing a port (reusePort) act as one hub",
  async () => {
    const port = await freePort();
    const name = `hubbub-bun-workers-${crypto.randomUUID()}`;
    const url = new URL("../fixtures/bun_serve_worker.ts", import.meta.url).href;
    const workers = [new Worker(url, { type: "module" }), new Worker(url, { type: "module" })];
    const reply = (w: Worker, key: string) =>
      new Promise<void>((resolve) => {
        w.onmessage = (e) => {
          if (e.data?.[key] === true) resolve();
        };
      });
    const clients: TestClient[] = [];
    try {
      await Promise.all(workers.map((w) => {
        const ready = reply(w, "ready");
        w.postMessage({ cmd: "start", port, name });
        return ready;
      }));
      const byWorker = new Map<string, TestClient>();
      for (let i = 0; i < 60 && byWorker.size < 2; i++) {
        const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
        clients.push(c);
        const who = (await c.request({ type: "whoami" }, "whoami")).data as { worker: string };
        if (!byWorker.has(who.worker)) byWorker.set(who.worker, c);
      }
      assert.equal(byWorker.size, 2, "clients on both workers");
      const [[, a], [wb, b]] = [...byWorker];
      await a.request({ type: "subscribe", room: "r" }, "subscribed");
      await b.request({ type: "subscribe", room: "r" }, "subscribed");
      b.send({ type: "say", room: "r" });
      assert.deepEqual(
        (await a.next("said")).data,
        { worker: wb },
        "emitted on one, received on the other",
      );
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await Promise.all(workers.map((w) => {
        const closed = reply(w, "closed");
        w.postMessage({ cmd: "close" });
        return closed;
      }));
      for (const w of workers) w.terminate();
    }
  },
  { if: isBun, timeout: 30_000 },
);
