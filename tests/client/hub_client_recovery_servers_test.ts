// The client's recovery against a real hub that keeps history (in memory), on the current
// runtime: a connection the server closes (4004, 4000) re-joins with recover and gets every
// message once, in order; a position older than the history holds says recovered: false;
// history() reads the stream and refuses a room the client is not in.
import assert from "node:assert/strict";
import { z } from "zod";
import type { HubOptions } from "../../mod.ts";
import { defineContract } from "../../src/protocol/contract.ts";
import { connect, type HubClient, type RecoveryEvent, RequestError } from "../../src/client/mod.ts";
import { isBun, isDeno, test } from "../_harness.ts";
import { startOnPort } from "./_servers.ts";

const contract = defineContract({ client: {}, server: { n: z.number() } });
type Client = HubClient<typeof contract>;

const options: HubOptions = {
  canJoin: () => true,
  history: (room) =>
    room.startsWith("h:") ? { maxMessages: room === "h:short" ? 2 : 100 } : undefined,
};

/** The offsets and payloads a client's listener got for `room`. */
function collect(client: Client, room: string): [number | undefined, number][] {
  const got: [number | undefined, number][] = [];
  client.on("n", (n, e) => {
    if (e.room === room) got.push([e.offset, n]);
  });
  return got;
}

/** Resolves once `got` holds `count` entries (checked on every event of the client). */
function received(client: Client, got: unknown[], count: number): Promise<void> {
  return new Promise((resolve) => {
    if (got.length >= count) return resolve();
    const off = client.on("n", () => {
      // Listeners run in the order added: `collect`'s ran first.
      if (got.length < count) return;
      off();
      resolve();
    });
  });
}

function nextRecovery(client: Client): Promise<RecoveryEvent> {
  return new Promise((resolve) => {
    const off = client.onLifecycle("recovery", (e) => {
      off();
      resolve(e);
    });
  });
}

for (const [code, reason] of [[4004, "insufficient state"], [4000, "slow client"]] as const) {
  test(
    `HubClient on a real hub: closed with ${code}, it re-joins with recover and gets every message once, in order`,
    async () => {
      const s = await startOnPort(options);
      const client = await connect<typeof contract>(s.url, { minDelayMs: 20, maxDelayMs: 50 });
      try {
        const got = collect(client, "h:a");
        await client.subscribe("h:a");
        const { epoch } = client.position("h:a")!;
        assert.equal(typeof epoch, "string");
        for (const n of [1, 2, 3]) s.hub.emit("n", n, { rooms: "h:a" });
        await received(client, got, 3);
        const recovery = nextRecovery(client);
        s.hub.connection(client.clientId!)!.close(code, reason);
        for (const n of [4, 5, 6]) s.hub.emit("n", n, { rooms: "h:a" }); // while it is away
        assert.deepEqual(await recovery, { room: "h:a", recovered: true, epoch, offset: 6 });
        s.hub.emit("n", 7, { rooms: "h:a" });
        await received(client, got, 7);
        assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7].map((n) => [n, n]));
        assert.deepEqual(client.position("h:a"), { epoch, offset: 7 });
        const h = await client.history("h:a", { limit: 3 });
        assert.equal(h.epoch, epoch);
        assert.equal(h.offset, 7);
        assert.deepEqual(h.messages.map((m) => [m.offset, m.data]), [[5, 5], [6, 6], [7, 7]]);
        const outside = await client.history("h:other").catch((e) => e);
        assert.ok(outside instanceof RequestError);
        assert.equal(outside.code, "NOT_SUBSCRIBED");
      } finally {
        await client.close();
        await s.close();
      }
    },
    { if: isDeno || isBun, timeout: 30_000 },
  );
}

test(
  "HubClient on a real hub: away longer than the history holds, recovered is false and the position is the stream's head",
  async () => {
    const s = await startOnPort(options);
    const client = await connect<typeof contract>(s.url, { minDelayMs: 20, maxDelayMs: 50 });
    try {
      const got = collect(client, "h:short");
      await client.subscribe("h:short");
      await client.subscribe("plain");
      const { epoch } = client.position("h:short")!;
      const recoveries: RecoveryEvent[] = [];
      const both = new Promise<void>((resolve) => {
        client.onLifecycle("recovery", (e) => {
          recoveries.push(e);
          if (recoveries.length === 2) resolve();
        });
      });
      s.hub.connection(client.clientId!)!.close(4004, "insufficient state");
      for (const n of [1, 2, 3, 4, 5]) s.hub.emit("n", n, { rooms: "h:short" });
      await both;
      recoveries.sort((a, b) => a.room.localeCompare(b.room));
      assert.deepEqual(recoveries, [
        { room: "h:short", recovered: false, epoch, offset: 5 },
        { room: "plain", recovered: false, epoch: undefined, offset: undefined },
      ]);
      s.hub.emit("n", 6, { rooms: "h:short" });
      await received(client, got, 1);
      assert.deepEqual(got, [[6, 6]], "nothing replayed; live from the head on");
    } finally {
      await client.close();
      await s.close();
    }
  },
  { if: isDeno || isBun, timeout: 30_000 },
);
