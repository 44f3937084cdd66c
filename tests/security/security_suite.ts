// Issue 11's defects, reproduced on real servers (port 0, real sockets) for every adapter.
// Runner-agnostic: tests/security/{deno,bun}_test.ts register it once per adapter.
import assert from "node:assert/strict";
import { ErrorCode, type HubOptions } from "../../mod.ts";
import { delay, isDeno, test, type TestOptions, until } from "../_harness.ts";
import { BUN, DENO, startChild } from "../_process.ts";
import { SecClient as TestClient } from "./_client.ts";
import type { ServerHandle, StartServer } from "../contract/transport_contract.ts";
import { handshake, upgradeThenReset } from "./_handshake.ts";

const BATCH = "hubbub.batch.v1";
const FIXTURE = new URL("../fixtures/reset_server.ts", import.meta.url).pathname;

/** The fixture's ADAPTER for a suite name ("security (hono on deno)" → "hono"). */
function adapterOf(name: string): string {
  return name.includes("hono") ? "hono" : "plain";
}

/**
 * Register the security cases for one adapter.
 * @param name Adapter name, prefixed to each test.
 * @param start Server factory.
 * @param options Skip (wrong runtime).
 */
export function securitySuite(name: string, start: StartServer, options: TestOptions = {}): void {
  const t = (title: string, fn: () => Promise<void>) =>
    test(`${name}: ${title}`, fn, { timeout: 30_000, ...options });

  async function withServer(
    hubOptions: HubOptions,
    fn: (
      s: ServerHandle,
      open: (query?: string, protocols?: string[]) => Promise<TestClient>,
    ) => Promise<void>,
  ): Promise<void> {
    const server = await start({ onError: () => {}, ...hubOptions });
    const clients: TestClient[] = [];
    const open = async (query = "", protocols?: string[]) => {
      const c = await TestClient.connect(server.url + query, protocols);
      clients.push(c);
      return c;
    };
    try {
      await fn(server, open);
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await server.close();
    }
  }

  t("upgrade requests reset before the socket opens do not leak connection slots", async () => {
    // In a child process (see tests/fixtures/reset_server.ts): maxConnections 20, maxPending
    // Upgrades 10, openTimeoutMs 300. Deno itself keeps each reset upgrade's socket (and its
    // server's shutdown then never ends), so the child is killed, not shut down.
    const child = await startChild(
      isDeno ? DENO : BUN,
      isDeno ? ["run", "-A", FIXTURE] : [FIXTURE],
      /READY (\d+)/,
      { env: { ADAPTER: adapterOf(name) } },
    );
    const clients: TestClient[] = [];
    try {
      const url = `ws://127.0.0.1:${child.match[1]}/ws`;
      // Twice maxConnections: before the fix, Deno held every one of their slots forever
      // and answered 503 to every later upgrade.
      for (let i = 0; i < 40; i++) await upgradeThenReset(url);
      await delay(500); // past openTimeoutMs
      for (let i = 0; i < 15; i++) {
        const c = await TestClient.connect(url);
        clients.push(c);
        await c.next((m) => m.type === "connection.established");
      }
      assert.equal(clients.length, 15);
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await child.stop(1000, "SIGKILL");
    }
  });

  t("parallel upgrades for one user open at most maxConnectionsPerUser", async () => {
    await withServer({
      maxConnectionsPerUser: 3,
      identify: async (req) => {
        await delay(5); // every upgrade passes identify before any socket opens
        return { userId: new URL(req.url).searchParams.get("user") ?? undefined };
      },
    }, async (s) => {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () => TestClient.connect(s.url + "?user=ada")),
      );
      const opened = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
      const statuses = results.flatMap((r) =>
        r.status === "rejected" ? [(r.reason as { status?: number }).status] : []
      );
      try {
        assert.equal(opened.length, 3, `opened ${opened.length}, refused ${statuses}`);
        assert.ok(statuses.every((x) => x === 429), `statuses ${statuses}`);
        await until(() => s.hub.userConnections("ada").length === 3);
      } finally {
        await Promise.all(opened.map((c) => c.shut()));
      }
    });
  });

  t("authenticate cannot take a user over maxConnectionsPerUser", async () => {
    await withServer({
      maxConnectionsPerUser: 2,
      authenticate: (_c, m) => typeof m.token === "string" ? m.token : null,
    }, async (s, open) => {
      const clients = await Promise.all([open(), open(), open()]);
      const answers = [];
      for (const c of clients) {
        c.send({ type: "authenticate", token: "ada" });
        answers.push(await c.next((m) => m.type === "authenticated" || m.type === "error"));
      }
      assert.deepEqual(answers.map((m) => m.type), ["authenticated", "authenticated", "error"]);
      assert.equal((answers[2].data as { code: string }).code, ErrorCode.LIMIT_EXCEEDED);
      assert.equal(s.hub.userConnections("ada").length, 2);
    });
  });

  for (const batch of [false, true]) {
    t(
      `one frame larger than maxQueueBytes reaches a reading client${
        batch ? " (batched framing)" : ""
      }`,
      async () => {
        await withServer(
          { maxQueueBytes: 64 * 1024, canJoin: () => true },
          async (s, open) => {
            const c = await open("", batch ? [BATCH] : undefined);
            c.send({ type: "subscribe", room: "r" });
            await c.next((m) => m.type === "subscribed");
            const text = "x".repeat(200 * 1024);
            assert.equal(s.hub.emit("big", { text }, { rooms: "r" }), 1);
            s.hub.emit("after", {}, { rooms: "r" });
            const big = await c.next((m) => m.type === "big");
            assert.equal((big.data as { text: string }).text.length, text.length);
            await c.next((m) => m.type === "after");
            assert.equal(c.closeInfo, undefined, "the client stays connected");
            assert.equal(s.hub.connectionCount, 1);
          },
        );
      },
    );
  }

  t('a "__proto__" message type is counted as an own key and leaves prototypes alone', async () => {
    await withServer({}, async (s, open) => {
      const c = await open();
      c.send({ type: "__proto__" });
      c.send({ type: "ping", id: 1 });
      await c.next((m) => m.type === "pong");
      const byType = s.hub.stats().inByType;
      assert.equal(Object.getPrototypeOf(byType), Object.prototype);
      assert.ok(Object.hasOwn(byType, "__proto__"));
      assert.equal(byType["__proto__"].messages, 1);
    });
  });

  t("inbound bytes are counted in UTF-8", async () => {
    await withServer({}, async (s, open) => {
      const c = await open();
      const before = s.hub.stats().in.bytes;
      const frame = JSON.stringify({ type: "ping", id: "€€€€" });
      c.ws.send(frame);
      await c.next((m) => m.type === "pong");
      const utf8 = new TextEncoder().encode(frame).length;
      assert.equal(frame.length + 8, utf8); // four 3-byte characters
      assert.equal(s.hub.stats().in.bytes - before, utf8);
    });
  });

  t("the handshake names exactly the subprotocol the hub selected", async () => {
    for (
      const [batchFraming, offer, selected] of [
        [false, BATCH, ""], // Bun used to echo the client's first offer
        [true, `a,${BATCH}`, BATCH], // Deno used to answer 400
        [true, `a, ${BATCH}`, BATCH],
        [true, "a, b", ""],
      ] as const
    ) {
      await withServer({ batchFraming }, async (s) => {
        const opened = new Promise<string>((resolve) => {
          const stop = s.hub.observe((e) => {
            if (e.kind !== "connect") return;
            stop();
            resolve(s.hub.connection(e.clientId)?.request.protocol ?? "?");
          });
        });
        const r = await handshake(s.url, { "sec-websocket-protocol": offer });
        const what = `batchFraming ${batchFraming}, offer "${offer}"`;
        assert.equal(r.status, 101, what);
        assert.equal(r.headers["sec-websocket-protocol"] ?? "", selected, what);
        assert.equal(await opened, selected, what);
      });
    }
  });

  t(
    "a fan-out flood within the message rate limit is capped by the fan-out budget; a quiet client is served",
    async () => {
      // Ten senders, each under 100 msg/s, into a 210-member room: ~200k deliveries/s asked
      // for. The budget (here 500 deliveries/s per sender, burst 2x: low enough that even a
      // loaded machine delivers more than it allows; 5,000/s by default) refuses the excess:
      // counted, the deliveries stay under what the budget allows in the run's time, and the
      // senders are told RATE_LIMITED. The quiet client's ping latency is logged, not asserted:
      // a latency bound is a benchmark's job (it fails on a loaded machine, not on a defect).
      const ref: { hub?: ServerHandle["hub"] } = {};
      await withServer({
        canJoin: () => true,
        rateLimit: { deliveriesPerSecond: 500 },
        onMessage: (conn, m) => void ref.hub?.emit("chat", m.text, { rooms: "big", except: conn }),
      }, async (srv, open) => {
        ref.hub = srv.hub;
        const members: TestClient[] = [];
        for (let i = 0; i < 200; i++) members.push(await open());
        const senders: TestClient[] = [];
        for (let i = 0; i < 10; i++) senders.push(await open());
        for (const c of [...members, ...senders]) c.send({ type: "subscribe", room: "big" });
        await until(() => srv.hub.roomSize("big") === 210, 10_000, "210 members");
        for (const m of members) m.ws.removeAllListeners("message"); // members just absorb
        const quiet = await open();
        const rtts: number[] = [];
        let refused = 0;
        const started = Date.now();
        const end = started + 2500;
        const timers = senders.map((c, k) =>
          setInterval(() => c.send({ type: "say", text: `m${k}` }), 11)
        );
        try {
          let seq = 0;
          while (Date.now() < end) {
            const t0 = performance.now();
            quiet.send({ type: "ping", id: ++seq });
            const id = seq;
            await quiet.next((m) => m.type === "pong" && (m.data as { id: number }).id === id);
            rtts.push(performance.now() - t0);
            await delay(20);
          }
        } finally {
          for (const timer of timers) clearInterval(timer);
        }
        const elapsedS = (Date.now() - started) / 1000;
        for (const c of senders) {
          refused += c.messages.filter((m) =>
            m.type === "error" && (m.data as { code: string }).code === ErrorCode.RATE_LIMITED
          ).length;
        }
        rtts.sort((a, b) => a - b);
        const p95 = rtts[Math.floor(rtts.length * 0.95)];
        const delivered = srv.hub.stats().outByType.chat?.messages ?? 0;
        console.log(
          `[fan-out flood] ${name}: quiet ping p50 ${rtts[rtts.length >> 1].toFixed(1)} ms, ` +
            `p95 ${p95.toFixed(1)} ms (n=${rtts.length}); ${delivered} chat deliveries in 2.5 s; ` +
            `senders told RATE_LIMITED ${refused} times`,
        );
        assert.ok(refused > 0, "the budget refused the flood");
        // Each sender may deliver its burst (1,000) plus 500/s, plus one emit over (209) per
        // refill; one more second of slack for frames handed to the hub as the senders stop.
        const allowed = 10 * (1_000 + 500 * (elapsedS + 1) + 209);
        assert.ok(delivered <= allowed, `${delivered} deliveries, budget allows ${allowed}`);
        assert.ok(rtts.length >= 1, "the quiet client was answered");
      });
    },
  );
}
