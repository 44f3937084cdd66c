// The client against real servers: every adapter on the current runtime runs these,
// with the runtime's own global WebSocket as the client.
import assert from "node:assert/strict";
import { z } from "zod";
import { type Hub, type HubOptions, MessageError } from "../../mod.ts";
import {
  type ClientMessage,
  contractSchema,
  defineContract,
  typedEmitter,
} from "../../src/protocol/contract.ts";
import {
  connect,
  type ConnectOptions,
  type HubClient,
  type HubClientLifecycle,
  RequestError,
} from "../../src/client/mod.ts";
import { test, type TestOptions, until } from "../_harness.ts";
import type { ServerHandle, StartServer } from "../contract/transport_contract.ts";

/** The chat contract the tests share. */
export const chat = defineContract({
  client: {
    "chat.send": z.object({ room: z.string(), text: z.string().min(1).max(100) }),
    "slow": z.object({ ms: z.number() }),
  },
  server: {
    "chat.message": z.object({ room: z.string(), from: z.string(), text: z.string() }),
    "tick": z.object({ n: z.number() }),
  },
  requests: { "chat.send": z.object({ seq: z.number() }) },
});

/** Chat server options plus handlers: members of a room can post to it. */
export function chatServer(hubish: Hub, gate?: Promise<void>): { received: string[] } {
  const hub = hubish as unknown as Hub<ClientMessage<typeof chat>>;
  const out = typedEmitter(hub, chat, { validate: true });
  const received: string[] = [];
  let seq = 0;
  hub.on("chat.send", (conn, m) => {
    if (!conn.rooms.has(m.room)) {
      throw new MessageError("NOT_IN_ROOM", "Cannot post: join the room first", { room: m.room });
    }
    received.push(m.text);
    out.emit("chat.message", { room: m.room, from: conn.id, text: m.text }, { rooms: m.room });
    return { seq: ++seq };
  });
  hub.on("slow", async (_conn, m) => {
    await (gate ?? new Promise((r) => setTimeout(r, m.ms)));
    return "late";
  });
  return { received };
}

/** Hub options for the chat server. */
export const chatOptions: HubOptions = {
  // deno-lint-ignore no-explicit-any
  schema: contractSchema(chat) as any,
  canJoin: (_conn, room) => !room.startsWith("secret"),
  onError: () => {},
};

/** Fast reconnects for tests. */
export const fast: ConnectOptions = { minDelayMs: 20, maxDelayMs: 200 };

/** The next lifecycle event of one kind. */
export function next<K extends keyof HubClientLifecycle>(
  client: HubClient<typeof chat>,
  name: K,
  where: (e: HubClientLifecycle[K]) => boolean = () => true,
): Promise<HubClientLifecycle[K]> {
  return new Promise((resolve) => {
    const off = client.onLifecycle(name, (e) => {
      if (!where(e)) return;
      off();
      resolve(e);
    });
  });
}

/** The next app event of one type. */
export function nextEvent<T>(
  client: HubClient<typeof chat>,
  type: "chat.message" | "tick",
  where: (data: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const off = client.on(type, (data) => {
      if (!where(data as T)) return;
      off();
      resolve(data as T);
    });
  });
}

/**
 * Register the client suite for one server factory.
 * @param name Adapter name, prefixed to each test.
 * @param start Server factory.
 * @param options Skip (e.g. wrong runtime).
 */
export function clientSuite(name: string, start: StartServer, options: TestOptions = {}): void {
  const t = (title: string, fn: () => Promise<void>) =>
    test(`HubClient on ${name}: ${title}`, fn, { timeout: 30_000, ...options });

  async function withChat(
    fn: (s: ServerHandle, open: (o?: ConnectOptions) => Promise<HubClient<typeof chat>>, state: {
      received: string[];
    }) => Promise<void>,
    gate?: Promise<void>,
  ): Promise<void> {
    const s = await start(chatOptions);
    const state = chatServer(s.hub, gate);
    const clients: HubClient<typeof chat>[] = [];
    const open = async (o: ConnectOptions = {}) => {
      const c = await connect<typeof chat>(s.url, { ...fast, ...o });
      clients.push(c);
      return c;
    };
    try {
      await fn(s, open, state);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await s.close();
    }
  }

  t(
    "typed request round trip: the handler's result comes back, the room gets the event",
    async () => {
      await withChat(async (s, open) => {
        const a = await open();
        const b = await open();
        assert.equal(a.state, "open");
        assert.ok(s.hub.connection(a.clientId!));
        await Promise.all([a.subscribe("lobby"), b.subscribe("lobby")]);
        assert.equal(s.hub.roomSize("lobby"), 2);
        const arrived = nextEvent<{ from: string; text: string }>(b, "chat.message");
        const { seq } = await a.request("chat.send", { room: "lobby", text: "hello" });
        assert.equal(seq, 1);
        assert.deepEqual(await arrived, { room: "lobby", from: a.clientId, text: "hello" });
      });
    },
  );

  t(
    "refusals and invalid input reject with RequestError codes; the connection stays open",
    async () => {
      await withChat(async (_s, open) => {
        const a = await open();
        const notIn = await a.request("chat.send", { room: "elsewhere", text: "x" }).catch((e) =>
          e
        );
        assert.ok(notIn instanceof RequestError);
        assert.equal(notIn.code, "NOT_IN_ROOM");
        assert.equal(notIn.data.room, "elsewhere");
        await a.subscribe("lobby");
        const invalid = await a.request("chat.send", { room: "lobby", text: "" }).catch((e) => e);
        assert.equal(invalid.code, "INVALID_INPUT");
        assert.deepEqual((invalid.data.issues as { path: string[] }[])[0].path, ["text"]);
        const loose = a as unknown as HubClient;
        const unknown = await loose.request("nope", {}).catch((e: RequestError) =>
          e
        ) as RequestError;
        assert.equal(unknown.code, "UNKNOWN_TYPE");
        assert.equal(a.state, "open");
      });
    },
  );

  t("a request times out with TimeoutError, and the late ack is ignored", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    await withChat(async (_s, open) => {
      const a = await open();
      const errors: unknown[] = [];
      a.onLifecycle("error", (e) => errors.push(e));
      await assert.rejects(
        a.request("slow", { ms: 0 }, { timeout: 50 }),
        (e: Error) => e.name === "TimeoutError",
      );
      const controller = new AbortController();
      const aborted = a.request("slow", { ms: 0 }, { signal: controller.signal });
      controller.abort();
      await assert.rejects(aborted, (e: Error) => e.name === "AbortError");
      release();
      await a.subscribe("lobby"); // the late acks arrived before this one
      assert.deepEqual(errors, []);
    }, gate).finally(() => release());
  });

  t(
    "subscribe() resolves on the ack and rejects a refused room; unsubscribe() leaves",
    async () => {
      await withChat(async (s, open) => {
        const a = await open();
        await a.subscribe("lobby");
        const refused = await a.subscribe("secret-plans").catch((e) => e);
        assert.ok(refused instanceof RequestError);
        assert.equal(refused.code, "SUBSCRIBE_REFUSED");
        assert.deepEqual(a.rooms, ["lobby"]);
        assert.equal(s.hub.roomSize("secret-plans"), 0);
        await a.unsubscribe("lobby");
        assert.equal(s.hub.roomSize("lobby"), 0);
        assert.deepEqual(a.rooms, []);
      });
    },
  );

  t(
    "after the server kills the socket it reconnects, re-joins its rooms and flushes what was sent offline",
    async () => {
      await withChat(async (s, open, state) => {
        const a = await open();
        const b = await open();
        await a.subscribe("lobby");
        await b.subscribe("lobby");
        const firstId = a.clientId!;
        const closed = next(a, "close");
        s.hub.connection(firstId)!.close(4000, "slow client");
        assert.deepEqual(await closed, { code: 4000, reason: "slow client", willReconnect: true });
        assert.notEqual(a.state, "open");
        const reopened = next(a, "open");
        a.send("chat.send", { room: "lobby", text: "sent while offline" });
        const seen = nextEvent<{ text: string }>(b, "chat.message");
        const e = await reopened;
        assert.equal(e.reconnected, true);
        assert.notEqual(a.clientId, firstId);
        assert.equal((await seen).text, "sent while offline");
        assert.deepEqual(state.received, ["sent while offline"]);
        assert.ok(s.hub.roomMembers("lobby").some((c) => c.id === a.clientId));
        const mine = nextEvent<{ text: string }>(
          a,
          "chat.message",
          (m) => m.text === "welcome back",
        );
        await b.request("chat.send", { room: "lobby", text: "welcome back" });
        assert.equal((await mine).text, "welcome back");
      });
    },
  );

  for (const code of [1008, 4001, 4003]) {
    t(`close code ${code} from the server stops it for good, with the reason`, async () => {
      await withChat(async (s, open) => {
        const a = await open();
        let retries = 0;
        a.onLifecycle("reconnecting", () => retries++);
        s.hub.connection(a.clientId!)!.close(code, "go away");
        assert.deepEqual(await a.closed, { code, reason: "go away" });
        assert.equal(a.state, "closed");
        assert.equal(retries, 0);
        await assert.rejects(a.subscribe("lobby"), /client is closed/);
        await until(() => s.hub.connectionCount === 0, 5000, "server side to close");
      });
    });
  }

  t("events() iterates app events in order over a burst, and ends on close", async () => {
    await withChat(async (s, open) => {
      const a = await open({ batch: true });
      assert.equal(s.hub.connection(a.clientId!)!.request.protocol, "hubbub.batch.v1");
      await a.subscribe("ticks");
      const it = a.events();
      for (let n = 0; n < 200; n++) s.hub.emit("tick", { n }, { rooms: "ticks" });
      const got: number[] = [];
      for await (const e of it) {
        if (e.type === "tick") got.push(e.data.n);
        if (got.length === 200) break;
      }
      assert.deepEqual(got, Array.from({ length: 200 }, (_, n) => n));
      const tail = a.events();
      await a.close();
      assert.equal((await tail.next()).done, true);
    });
  });
}
