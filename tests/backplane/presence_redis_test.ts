// Presence across real replicas: three hub processes (Deno, Bun, Deno) on one private
// redis-server (backplane + RedisPresenceStore, TTL 1.5 s), real WebSocket clients on each.
// Counted, never sampled: every member's `presence.join` / `presence.leave` events are tallied
// per client id, and `presence` / `presence.stats` (the wire requests) and `hub.presence()`,
// `hub.presenceStats()`, `hub.userPresence()` (the server API) are compared with the expected
// state on every replica. Bounds asserted (and the measured times printed):
// - a join or leave: every replica agrees, and every member has its event, within AGREE_MS;
// - kill -9 of a replica: each of its members' leaves reaches every other member exactly once,
//   between TTL/2 and TTL × 4/3 (+ SLACK_MS) after the kill;
// - Redis kill -9 without persistence and restart: presence whole again on every replica within
//   the store's reconnect backoff + one heartbeat interval (+ SLACK_MS), with no event at all.
// Registered on Deno only (the replicas run on both runtimes; one registration keeps CI time
// down).
import assert from "node:assert/strict";
import type { PresenceCounts, PresenceEntry, UserPresence } from "../../mod.ts";
import { delay, isDeno, test } from "../_harness.ts";
import { BUN, type ChildServer, DENO, startChild } from "../_process.ts";
import { hasRedis, type RedisServer, startRedis, warnNoRedis } from "../_redis.ts";
import { TestClient } from "../_ws_client.ts";

warnNoRedis("presence across Redis replicas (tests/backplane/presence_redis_test.ts)");

const FIXTURE = new URL("../fixtures/hub_server.ts", import.meta.url).pathname;
const ROOM = "p:lobby";
/** The replicas' presence TTL; they heartbeat and sweep every TTL/3. */
const TTL = 1500;
const BEAT = TTL / 3;
/** A join or leave: every replica agrees and every member has its event within this. */
const AGREE_MS = 1000;
/** Scheduling slack on a loaded 2-core machine, on top of the protocol's own bounds. */
const SLACK_MS = 300;
/** The store's longest reconnect wait (redisPresenceStore's maxReconnectDelayMs) + jitter. */
const RECONNECT_MS = 1100;

/** One hub process. */
interface Replica {
  readonly name: string;
  readonly port: number;
  /** GET a fixture endpoint: its JSON, or undefined when it answers 503. */
  get<T>(path: string): Promise<T | undefined>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

async function startReplica(runtime: "deno" | "bun", redis: RedisServer): Promise<Replica> {
  const child: ChildServer = await startChild(
    runtime === "deno" ? DENO : BUN,
    runtime === "deno" ? ["run", "-A", FIXTURE] : [FIXTURE],
    /READY (\d+)/,
    { env: { PORT: "0", REDIS_URL: redis.url, PRESENCE: "1", PRESENCE_TTL_MS: String(TTL) } },
  );
  const port = Number(child.match[1]);
  return {
    name: `${runtime}:${port}`,
    port,
    async get<T>(path: string) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const body = await res.json();
      return res.ok ? body as T : undefined;
    },
    kill: () => child.stop(0, "SIGKILL"),
    stop: () => child.stop(),
  };
}

/** One WebSocket client of one replica (a member of ROOM while `inRoom`). */
class Member {
  inRoom = false;
  open = true;
  #asks = 0;
  private constructor(
    readonly replica: Replica,
    readonly user: string,
    readonly client: TestClient,
    readonly id: string,
  ) {}

  static async open(replica: Replica, user: string): Promise<Member> {
    const client = await TestClient.connect(`ws://127.0.0.1:${replica.port}/ws?user=${user}`);
    return new Member(replica, user, client, await client.clientId());
  }

  async join(): Promise<void> {
    const ack = await this.#reply({ type: "subscribe", room: ROOM }, "subscribed");
    assert.equal(ack.room, ROOM);
    this.inRoom = true;
  }

  async leave(): Promise<void> {
    this.inRoom = false;
    await this.#reply({ type: "unsubscribe", room: ROOM }, "unsubscribed");
  }

  async disconnect(): Promise<void> {
    this.inRoom = false;
    this.open = false;
    await this.client.shut();
  }

  /** A wire presence request: its data, or the error's. */
  ask(type: "presence" | "presence.stats"): Promise<Record<string, unknown>> {
    return this.#reply({ type, room: ROOM, id: ++this.#asks }, type);
  }

  /** Send, then wait for the reply of `type` (or an error with the same id). */
  async #reply(message: Record<string, unknown>, type: string): Promise<Record<string, unknown>> {
    const messages = this.client.messages;
    let i = messages.length;
    this.client.send(message);
    while (true) {
      for (; i < messages.length; i++) {
        const m = messages[i];
        const data = m.data as Record<string, unknown>;
        if (m.type === type || (m.type === "error" && data.id === message.id)) {
          return { type: m.type, ...data };
        }
      }
      await this.client.next(undefined, 5000);
    }
  }

  /** How many `type` events for ROOM it got per client id (from message `from` on). */
  tally(type: "presence.join" | "presence.leave", from = 0): Map<string, number> {
    const out = new Map<string, number>();
    for (const m of this.client.messages.slice(from)) {
      const data = m.data as { room?: string; clientId?: string };
      if (m.type !== type || data.room !== ROOM) continue;
      out.set(data.clientId!, (out.get(data.clientId!) ?? 0) + 1);
    }
    return out;
  }

  /** Every presence event it got (from message `from` on). */
  events(from = 0): number {
    return this.client.messages.slice(from)
      .filter((m) => m.type === "presence.join" || m.type === "presence.leave").length;
  }
}

/** What every replica should answer: the room's members and each user's open connections. */
function expected(all: readonly Member[]) {
  const members = all.filter((m) => m.inRoom);
  const list = members.map((m) => ({ clientId: m.id, userId: m.user }))
    .sort((a, b) => a.clientId.localeCompare(b.clientId));
  const stats: PresenceCounts = {
    clients: members.length,
    users: new Set(members.map((m) => m.user)).size,
  };
  const users = new Map<string, UserPresence>();
  for (const m of all) {
    const u = users.get(m.user) ?? { online: false, connections: 0 };
    const connections = u.connections + (m.open ? 1 : 0);
    users.set(m.user, { online: connections > 0, connections });
  }
  return { list, stats, users };
}

function sorted(list: readonly PresenceEntry[]): PresenceEntry[] {
  return [...list].sort((a, b) => a.clientId.localeCompare(b.clientId));
}

/**
 * Where the replicas disagree with the expected state (empty when all agree): on each live
 * replica, the wire `presence` and `presence.stats` of one of its members there, and the
 * server's `hub.presence()`, `hub.presenceStats()` and `hub.userPresence()` of every user.
 */
async function disagreements(replicas: readonly Replica[], all: readonly Member[]) {
  const want = expected(all);
  const wrong: string[] = [];
  const check = (what: string, got: unknown, exp: unknown) => {
    try {
      assert.deepEqual(got, exp);
    } catch {
      wrong.push(`${what}: ${JSON.stringify(got)} (want ${JSON.stringify(exp)})`);
    }
  };
  await Promise.all(replicas.map(async (r) => {
    const asker = all.find((m) => m.replica === r && m.inRoom);
    if (asker !== undefined) {
      const list = await asker.ask("presence");
      check(`${r.name} wire presence`, sorted((list.clients ?? []) as PresenceEntry[]), want.list);
      const stats = await asker.ask("presence.stats");
      check(`${r.name} wire presence.stats`, {
        clients: stats.clients,
        users: stats.users,
      }, want.stats);
    }
    const list = await r.get<{ clients: PresenceEntry[] }>(`/presence?room=${ROOM}`);
    check(`${r.name} hub.presence()`, list && sorted(list.clients), want.list);
    check(
      `${r.name} hub.presenceStats()`,
      await r.get(`/presence/stats?room=${ROOM}`),
      want.stats,
    );
    for (const [user, presence] of want.users) {
      check(
        `${r.name} hub.userPresence(${user})`,
        await r.get(`/presence/user?user=${user}`),
        presence,
      );
    }
  }));
  return wrong;
}

/** Wait until `check()` answers no complaint; the ms it took. Fails past `boundMs`. */
async function within(
  boundMs: number,
  what: string,
  check: () => string[] | Promise<string[]>,
  since = performance.now(),
): Promise<number> {
  let wrong: string[];
  while ((wrong = await check()).length > 0) {
    if (performance.now() - since > boundMs) {
      throw new Error(`${what}: not within ${boundMs} ms:\n  ${wrong.slice(0, 8).join("\n  ")}`);
    }
    await delay(5);
  }
  return performance.now() - since;
}

/** Complaints unless each of `members` got a `type` event for each of `of` (at least once). */
function got(type: "presence.join" | "presence.leave", members: Member[], of: Member[]): string[] {
  const wrong: string[] = [];
  for (const m of members) {
    const t = m.tally(type);
    const missing = of.filter((o) => !t.has(o.id));
    if (missing.length > 0) wrong.push(`${m.id} lacks ${type} of ${missing.length}`);
  }
  return wrong;
}

/** Three replicas (Deno, Bun, Deno) on one Redis; everything stopped afterwards. */
async function withCluster(
  fn: (redis: RedisServer, replicas: Replica[], members: Member[]) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const replicas: Replica[] = [];
  const members: Member[] = [];
  try {
    replicas.push(
      ...await Promise.all((["deno", "bun", "deno"] as const).map((r) => startReplica(r, redis))),
    );
    await fn(redis, replicas, members);
  } finally {
    await Promise.all(members.map((m) => m.client.shut()));
    await Promise.all(replicas.map((r) => r.stop()));
    await redis.stop();
  }
}

const ms = (n: number) => `${Math.round(n)} ms`;

test(
  "Presence on Deno, Bun and Deno replicas on Redis: every replica agrees after each join and leave, and each reaches every member once",
  async () => {
    await withCluster(async (_redis, replicas, all) => {
      const open = async (r: number, user: string) => {
        const m = await Member.open(replicas[r], user);
        all.push(m);
        return m;
      };
      const timings = { agree: 0, events: 0 };
      const step = async (what: string, since: number, done: () => string[]) => {
        timings.events = Math.max(timings.events, await within(AGREE_MS, what, done, since));
        const agree = await within(
          AGREE_MS,
          `${what}: agreement`,
          () => disagreements(replicas, all),
          since,
        );
        timings.agree = Math.max(timings.agree, agree);
      };
      // Six watchers join one at a time, two per replica; ada and bob have a tab on two replicas.
      const users = ["ada", "bob", "ada", "cat", "dan", "bob"];
      const watchers: Member[] = [];
      for (let i = 0; i < users.length; i++) {
        const w = await open(i % 3, users[i]);
        const t0 = performance.now();
        await w.join();
        watchers.push(w);
        await step(`watcher ${i} joins`, t0, () => got("presence.join", watchers, [w]));
      }
      // 24 movers (8 per replica, users m0..m11 with a tab on two replicas) join at once...
      const movers: Member[] = [];
      for (let k = 0; k < 24; k++) movers.push(await open(k % 3, `m${k >> 1}`));
      let t0 = performance.now();
      await Promise.all(movers.map((m) => m.join()));
      await step("24 movers join at once", t0, () => got("presence.join", watchers, movers));
      // ...and leave at once: half unsubscribe, half close their socket.
      t0 = performance.now();
      await Promise.all(movers.map((m, k) => k % 2 === 0 ? m.leave() : m.disconnect()));
      await step("24 movers leave at once", t0, () => got("presence.leave", watchers, movers));
      // The first watcher of each replica leaves, one at a time.
      for (let j = 0; j < 3; j++) {
        const w = watchers[j];
        t0 = performance.now();
        await w.leave();
        const rest = watchers.slice(j + 1);
        await step(`watcher ${j} leaves`, t0, () => got("presence.leave", rest, [w]));
      }
      // Late duplicates (a re-registration, a repeated sweep) would show up within a heartbeat or two.
      await delay(2 * BEAT);
      assert.deepEqual(await disagreements(replicas, all), []);

      let counted = 0;
      const exactly = (who: string, t: Map<string, number>, want: Map<string, number>) => {
        for (const n of t.values()) counted += n;
        assert.deepEqual(new Map([...t].sort()), new Map([...want].sort()), who);
      };
      watchers.forEach((w, i) => {
        // Joins: every watcher that joined after it (and its own), every mover; once each.
        const joins = new Map<string, number>();
        watchers.slice(i).forEach((o) => joins.set(o.id, 1));
        movers.forEach((o) => joins.set(o.id, 1));
        exactly(`watcher ${i} (${w.replica.name}): joins`, w.tally("presence.join"), joins);
        // Leaves: every mover, and each of watchers 0..2 that left while it was still in.
        const leaves = new Map<string, number>();
        movers.forEach((o) => leaves.set(o.id, 1));
        watchers.slice(0, Math.min(i, 3)).forEach((o) => leaves.set(o.id, 1));
        exactly(`watcher ${i} (${w.replica.name}): leaves`, w.tally("presence.leave"), leaves);
      });
      for (const m of movers) {
        const joins = m.tally("presence.join");
        assert.equal(joins.get(m.id), 1, `mover ${m.id}: its own join once`);
        for (const [id, n] of [...joins, ...m.tally("presence.leave")]) {
          assert.equal(n, 1, `mover ${m.id}: an event of ${id} ${n} times`);
        }
        assert.ok([...joins.keys()].every((id) => movers.some((o) => o.id === id)), "only movers");
      }
      console.log(
        `[presence] 30 members on 3 replicas (Deno, Bun, Deno): ${counted} join/leave events ` +
          `counted at the 6 watchers, each exactly once; events everywhere within ` +
          `${ms(timings.events)}, presence/presence.stats/userPresence agreed on every replica ` +
          `(wire and server API) within ${
            ms(timings.agree)
          } of each join or leave (bound ${AGREE_MS} ms)`,
      );
    });
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "Presence on Redis: kill -9 of a replica; its members leave every list, and each leave reaches every other member once, within the TTL plus one sweep",
  async () => {
    await withCluster(async (_redis, replicas, all) => {
      // Three members per replica; ada has a tab on the Bun replica and one on the first Deno.
      const users = [["ada", "dan", "eve"], ["ada", "k1", "k2"], ["fay", "gus", "hal"]];
      for (let r = 0; r < 3; r++) {
        for (const user of users[r]) all.push(await Member.open(replicas[r], user));
      }
      await Promise.all(all.map((m) => m.join()));
      await within(AGREE_MS, "joins: agreement", () => disagreements(replicas, all));
      const dead = all.filter((m) => m.replica === replicas[1]);
      const alive = all.filter((m) => m.replica !== replicas[1]);
      const from = new Map(alive.map((m) => [m, m.client.messages.length]));

      const killed = performance.now();
      await replicas[1].kill();
      for (const m of dead) {
        m.inRoom = false;
        m.open = false;
      }
      const survivors = [replicas[0], replicas[2]];
      const leaves = await within(
        TTL + BEAT + SLACK_MS,
        "the dead replica's leaves",
        () => got("presence.leave", alive, dead),
        killed,
      );
      const agreed = await within(
        TTL + BEAT + SLACK_MS,
        "survivors' agreement",
        () => disagreements(survivors, all),
        killed,
      );
      assert.ok(leaves >= TTL / 2, `leaves after ${ms(leaves)}: sooner than the TTL allows`);
      // Later sweeps (every replica's, for a few rounds) announce nothing again.
      await delay(TTL);
      for (const m of alive) {
        const want = new Map(dead.map((d) => [d.id, 1]));
        assert.deepEqual(m.tally("presence.leave", from.get(m)), want, `${m.id}: leaves`);
        assert.equal(m.events(from.get(m)), dead.length, `${m.id}: no other presence event`);
      }
      assert.deepEqual(await disagreements(survivors, all), []);
      console.log(
        `[presence kill -9] the Bun replica's 3 members: presence.leave at each of the 6 other ` +
          `members exactly once, ${ms(leaves)} after the kill (TTL ${TTL} ms, sweep every ` +
          `${BEAT} ms: bound ${TTL + BEAT} + ${SLACK_MS} ms); lists, counts and users agreed ` +
          `on both survivors at ${ms(agreed)}`,
      );
    });
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);

test(
  "Presence on Redis: after kill -9 and a restart of Redis without persistence, every replica's presence is whole again within one heartbeat of reconnecting, with no join or leave event",
  async () => {
    await withCluster(async (redis, replicas, all) => {
      const users = [["ada", "bob"], ["ada", "cat"], ["dan", "bob"]];
      for (let r = 0; r < 3; r++) {
        for (const user of users[r]) all.push(await Member.open(replicas[r], user));
      }
      await Promise.all(all.map((m) => m.join()));
      await within(AGREE_MS, "joins: agreement", () => disagreements(replicas, all));
      await delay(BEAT); // the joins' events are all out
      const from = new Map(all.map((m) => [m, m.client.messages.length]));

      await redis.down();
      // While it is down, presence reads fail: UNAVAILABLE on the wire, 503 from the API.
      await within(2000, "UNAVAILABLE while Redis is down", async () => {
        const answer = await all[0].ask("presence");
        return answer.code === "UNAVAILABLE" ? [] : [`answered ${JSON.stringify(answer)}`];
      });
      assert.equal(await replicas[1].get(`/presence/stats?room=${ROOM}`), undefined);
      await delay(2 * BEAT); // heartbeats fail meanwhile
      await redis.up();
      const up = performance.now();
      const whole = await within(
        RECONNECT_MS + BEAT + SLACK_MS,
        "presence whole again",
        () => disagreements(replicas, all),
        up,
      );
      // Nobody joined or left: no event, then or at the next heartbeats and sweeps.
      await delay(TTL + BEAT);
      assert.deepEqual(await disagreements(replicas, all), []);
      for (const m of all) assert.equal(m.events(from.get(m)), 0, `${m.id}: presence events`);
      console.log(
        `[presence Redis restart] 6 members on 3 replicas: whole again on every replica ` +
          `${ms(whole)} after Redis came back (bound: reconnect ${RECONNECT_MS} + heartbeat ` +
          `${BEAT} + ${SLACK_MS} ms), 0 join/leave events`,
      );
    });
  },
  { if: isDeno && hasRedis, timeout: 60_000 },
);
