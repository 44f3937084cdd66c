// The client against real servers on every adapter of the current runtime, plus (on Deno,
// Bun and Node) a server restart on the same port, a server that stops answering, the ws
// package's WebSocket, a refused upgrade and the batched-framing offer.
import assert from "node:assert/strict";
import { isBun, isDeno, isNode, test } from "../_harness.ts";
import { startBun, startDeno, startHonoBun, startHonoDeno } from "../adapters/_servers.ts";
import { type ClientWebSocketConstructor, connect, UpgradeError } from "../../src/client/mod.ts";
import {
  type chat,
  chatOptions,
  chatServer,
  clientSuite,
  fast,
  next,
  nextEvent,
} from "./_client_suite.ts";
import { startOnPort } from "./_servers.ts";

clientSuite("deno", startDeno, { if: isDeno });
clientSuite("hono/deno", startHonoDeno, { if: isDeno });
clientSuite("bun", startBun, { if: isBun });
clientSuite("hono/bun", startHonoBun, { if: isBun });

test(
  "HubClient rides out a server restart on the same port: reconnects, re-joins, delivers what was queued",
  async () => {
    let s = await startOnPort(chatOptions);
    const port = s.port;
    let state = chatServer(s.hub);
    const a = await connect<typeof chat>(s.url, fast);
    const b = await connect<typeof chat>(s.url, fast);
    try {
      await a.subscribe("lobby");
      await b.subscribe("lobby");
      const closedA = next(a, "close");
      const closedB = next(b, "close");
      await s.close();
      const gone = await closedA;
      assert.equal(gone.code, 1001);
      assert.equal(gone.willReconnect, true);
      await closedB;
      a.send("chat.send", { room: "lobby", text: "during the restart" });
      const reopened = Promise.all([next(a, "open"), next(b, "open")]);
      // a's own copy proves the order: the room is re-joined before the queue is flushed.
      const echo = nextEvent<{ text: string }>(a, "chat.message");
      s = await startOnPort(chatOptions, port);
      state = chatServer(s.hub);
      await reopened;
      assert.equal((await echo).text, "during the restart");
      assert.deepEqual(state.received, ["during the restart"]);
      // b's re-join is handled before its next message (NOT_IN_ROOM otherwise).
      const seen = nextEvent<{ text: string }>(a, "chat.message", (m) => m.text === "after");
      await b.request("chat.send", { room: "lobby", text: "after" });
      await seen;
      assert.equal(s.hub.roomSize("lobby"), 2);
    } finally {
      await a.close();
      await b.close();
      await s.close();
    }
  },
  { timeout: 30_000 },
);

test(
  "HubClient's keepalive drops a connection whose server stopped answering and reconnects",
  async () => {
    let release!: () => void;
    const stuck = new Promise<void>((r) => release = r);
    let first = true;
    // The first connection's connect hook never decides: the hub holds every frame
    // from it, so its pings go unanswered (connection.established was already sent).
    const s = await startOnPort({
      ...chatOptions,
      onConnect: () => {
        if (!first) return;
        first = false;
        return stuck;
      },
    });
    chatServer(s.hub);
    const a = await connect<typeof chat>(s.url, {
      ...fast,
      pingIntervalMs: 100,
      pongTimeoutMs: 150,
    });
    try {
      const firstId = a.clientId;
      const dropped = await next(a, "close");
      assert.deepEqual(dropped, { code: 1006, reason: "keepalive timeout", willReconnect: true });
      await next(a, "open");
      assert.notEqual(a.clientId, firstId);
      await a.subscribe("lobby"); // the new connection answers
      assert.equal(s.hub.roomSize("lobby"), 1);
    } finally {
      release();
      await a.close();
      await s.close();
    }
  },
  { timeout: 30_000 },
);

test(
  "HubClient runs on the ws package's WebSocket (for Node 20, which has no global one)",
  async () => {
    const { default: WsWebSocket } = await import("ws");
    const s = await startOnPort(chatOptions);
    chatServer(s.hub);
    const a = await connect<typeof chat>(s.url, {
      ...fast,
      WebSocket: WsWebSocket as unknown as ClientWebSocketConstructor,
    });
    try {
      await a.subscribe("lobby");
      const echo = nextEvent<{ text: string }>(a, "chat.message");
      assert.deepEqual(await a.request("chat.send", { room: "lobby", text: "via ws" }), { seq: 1 });
      assert.equal((await echo).text, "via ws");
      const closed = next(a, "close");
      s.hub.connection(a.clientId!)!.close(4000, "again");
      assert.equal((await closed).code, 4000);
      await next(a, "open");
      // Re-joined first: a post to the room is accepted (NOT_IN_ROOM otherwise).
      assert.deepEqual(await a.request("chat.send", { room: "lobby", text: "back" }), { seq: 2 });
      assert.equal(s.hub.roomSize("lobby"), 1);
    } finally {
      await a.close();
      await s.close();
    }
  },
  { timeout: 30_000 },
);

test(
  "HubClient surfaces an upgrade the server refuses (401 from identify) with its status, on the runtime's WebSocket and ws",
  async () => {
    const { default: WsWebSocket } = await import("ws");
    const ws = WsWebSocket as unknown as ClientWebSocketConstructor;
    // Not on Node's global WebSocket: undici 6 (Node 20) fires `error` but never `close` when
    // the handshake fails and stays CONNECTING, so no status reaches the client (the client
    // then ends the attempt itself: tests/node/client_servers_test.ts).
    const runtimes = isNode ? [ws] : [undefined, ws];
    const s = await startOnPort({ ...chatOptions, identify: () => null });
    try {
      for (const WebSocket of runtimes) {
        const error = await connect(s.url, { ...fast, maxRetries: 1, WebSocket }).catch((e) => e);
        assert.ok(error instanceof UpgradeError, String(error));
        assert.equal(error.status, 401);
        assert.equal(error.attempts, 2);
      }
      const down = await startOnPort(chatOptions);
      const url = down.url;
      await down.close();
      const unreachable = await connect(url, { ...fast, maxRetries: 0, WebSocket: runtimes[0] })
        .catch((e) => e);
      assert.ok(unreachable instanceof UpgradeError);
      assert.equal(unreachable.status, undefined, "nothing listening: no status");
    } finally {
      await s.close();
    }
  },
  { timeout: 30_000 },
);

test(
  "HubClient offers batched framing by default and the hub selects it; batch: false gets plain frames",
  async () => {
    const s = await startOnPort(chatOptions);
    chatServer(s.hub);
    const a = await connect<typeof chat>(s.url, fast);
    const b = await connect<typeof chat>(s.url, { ...fast, batch: false });
    try {
      assert.equal(s.hub.connection(a.clientId!)!.request.protocol, "hubbub.batch.v1");
      assert.equal(s.hub.connection(b.clientId!)!.request.protocol, "");
      for (const c of [a, b]) {
        await c.subscribe("lobby");
        const got: string[] = [];
        const all = new Promise<void>((resolve) =>
          c.on("chat.message", (m) => got.push(m.text) === 50 && resolve())
        );
        for (let n = 0; n < 50; n++) {
          s.hub.emit("chat.message", { room: "lobby", from: "x", text: `${n}` }, {
            rooms: "lobby",
            except: a.clientId === c.clientId ? b.clientId : a.clientId,
          });
        }
        await all;
        assert.deepEqual(got, Array.from({ length: 50 }, (_, n) => `${n}`));
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
      await s.close();
    }
  },
  { timeout: 30_000 },
);
