// The client against real servers on every adapter of the current runtime, plus a
// server restart on the same port and a server that stops answering.
import assert from "node:assert/strict";
import { isBun, isDeno, test } from "../_harness.ts";
import { startBun, startDeno, startHonoBun, startHonoDeno } from "../adapters/_servers.ts";
import { type ClientWebSocketConstructor, connect } from "../../src/client/mod.ts";
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
    let s = startOnPort(chatOptions);
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
      s = startOnPort(chatOptions, port);
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
  { if: isDeno || isBun, timeout: 30_000 },
);

test(
  "HubClient's keepalive drops a connection whose server stopped answering and reconnects",
  async () => {
    let release!: () => void;
    const stuck = new Promise<void>((r) => release = r);
    let first = true;
    // The first connection's connect hook never decides: the hub holds every frame
    // from it, so its pings go unanswered (connection.established was already sent).
    const s = startOnPort({
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
  { if: isDeno || isBun, timeout: 30_000 },
);

test(
  "HubClient runs on the ws package's WebSocket (for Node 20, which has no global one)",
  async () => {
    const { default: WsWebSocket } = await import("ws");
    const s = startOnPort(chatOptions);
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
  { if: isDeno || isBun, timeout: 30_000 },
);
