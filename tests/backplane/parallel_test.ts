// `deno serve --parallel` (N isolates in one process) with the BroadcastChannel backplane:
// a client on one isolate gets a room message emitted on another. Deno only.
import assert from "node:assert/strict";
import { isDeno, test } from "../_harness.ts";
import { DENO, startChild } from "../_process.ts";
import { freePort } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";

const FIXTURE = new URL("../fixtures/parallel_server.ts", import.meta.url).pathname;

test("BroadcastChannel backplane: deno serve --parallel isolates act as one hub", async () => {
  const port = await freePort();
  // --parallel starts one isolate per core unless DENO_JOBS says otherwise: pin it to 2.
  const server = await startChild(
    DENO,
    ["serve", "--parallel", "-A", "--host", "127.0.0.1", "--port", String(port), FIXTURE],
    /Listening on \S+ with (\d+) threads/,
    { env: { DENO_JOBS: "2" } },
  );
  const clients: TestClient[] = [];
  try {
    assert.equal(server.match[1], "2", "two isolates");
    // Connect until two clients landed on different isolates (the kernel spreads
    // connections over the isolates' SO_REUSEPORT listeners; on a loaded machine the second
    // isolate may start listening a little after the first): for up to 10 s.
    const byIsolate = new Map<string, TestClient>();
    const until = Date.now() + 10_000;
    while (byIsolate.size < 2 && Date.now() < until) {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
      const who = await c.request({ type: "whoami" }, "whoami");
      const isolate = (who.data as { isolate: string }).isolate;
      if (byIsolate.has(isolate)) {
        await c.shut();
        await new Promise((r) => setTimeout(r, 10));
      } else {
        byIsolate.set(isolate, c);
        clients.push(c);
      }
    }
    assert.equal(byIsolate.size, 2, "clients on two different isolates");
    const [[isoA, a], [isoB, b]] = [...byIsolate];
    await a.request({ type: "subscribe", room: "r" }, "subscribed");
    await b.request({ type: "subscribe", room: "r" }, "subscribed");
    b.send({ type: "say", room: "r" });
    const onA = await a.next("said");
    const onB = await b.next("said");
    assert.deepEqual(onA.data, { isolate: isoB }, "emitted on B, received on A");
    assert.deepEqual(onB.data, { isolate: isoB });
    a.send({ type: "say", room: "r" });
    assert.deepEqual((await b.next("said")).data, { isolate: isoA }, "and the other way");
    await a.request({ type: "ping" }, "pong");
    assert.equal(a.messages.filter((m) => m.type === "said").length, 2, "exactly once each");
  } finally {
    await Promise.all(clients.map((c) => c.shut()));
    await server.stop();
  }
}, { if: isDeno, timeout: 60_000 });
