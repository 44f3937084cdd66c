import assert from "node:assert/strict";
import { Hub } from "../mod.ts";
import { connectMemory } from "../src/testing/mod.ts";
import {
  PROMETHEUS_CONTENT_TYPE,
  prometheusHandler,
  prometheusMetrics,
} from "../src/prometheus.ts";
import { test } from "./_harness.ts";

interface Family {
  help: string;
  type: string;
  samples: { labels: Record<string, string>; value: number }[];
}

/** A small parser for the text format 0.0.4 (enough to read back what we write). */
function parse(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, f = { help: "", type: "", samples: [] });
    return f;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      assert.equal(family(m[1]).help, "", `one HELP for ${m[1]}`);
      family(m[1]).help = m[2];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (m) {
      assert.equal(family(m[1]).type, "", `one TYPE for ${m[1]}`);
      assert.equal(family(m[1]).samples.length, 0, "TYPE before samples");
      family(m[1]).type = m[2];
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    const body = m[2] ?? "";
    while (re.lastIndex < body.length) {
      const l = re.exec(body);
      assert.ok(l, `labels: ${body}`);
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const f = families.get(m[1]);
    assert.ok(f?.type, `TYPE line before ${m[1]}`);
    f.samples.push({ labels, value: Number(m[3]) });
  }
  return families;
}

function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return families.get(name)?.samples.find((s) =>
    JSON.stringify(s.labels) === JSON.stringify(labels)
  )?.value;
}

function sum(families: Map<string, Family>, name: string): number {
  return (families.get(name)?.samples ?? []).reduce((a, s) => a + s.value, 0);
}

const WEIRD = 'we"ird\\type\nx';

async function scriptedHub(): Promise<Hub> {
  const hub = new Hub({
    canJoin: () => true,
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    maxQueueMessages: 3,
    highWaterMark: 10,
    lowWaterMark: 5,
    onMessage: () => {},
  });
  const a = await connectMemory(hub, { url: "http://x/ws?user=ada" });
  const b = await connectMemory(hub, { url: "http://x/ws?user=bob" });
  await a.next();
  await b.next();
  a.send({ type: "subscribe", room: "big" });
  b.send({ type: "subscribe", room: "big" });
  a.send({ type: "subscribe", room: 'sm"all' });
  a.send({ type: "chat", text: "hi" });
  a.send({ type: WEIRD });
  a.send("{bad");
  await a.next("subscribed");
  hub.emit("news", 1, { rooms: "big" });
  b.pause();
  for (let i = 0; i < 10; i++) hub.emit("flood", "xxxxxxxxxx", { users: "bob" });
  await b.closed;
  const plain = await hub.upgrade(new Request("http://x/ws"));
  if (!plain.ok) await plain.response.body?.cancel();
  return hub;
}

test("prometheusMetrics() renders hub.stats() exactly, in the text format 0.0.4", async () => {
  const hub = await scriptedHub();
  const text = prometheusMetrics(hub);
  const s = hub.stats();
  const f = parse(text);
  for (const [name, fam] of f) {
    assert.ok(name.startsWith("hubbub_"), name);
    assert.ok(fam.help.length > 0, `HELP for ${name}`);
    assert.equal(
      fam.type === "counter",
      name.endsWith("_total"),
      `counters end in _total: ${name}`,
    );
  }
  assert.equal(value(f, "hubbub_connections"), s.connections);
  assert.equal(value(f, "hubbub_connections"), 1);
  assert.equal(value(f, "hubbub_users"), s.users);
  assert.equal(value(f, "hubbub_rooms"), s.rooms);
  assert.equal(value(f, "hubbub_room_members", { room: "big" }), 1);
  assert.equal(value(f, "hubbub_room_members", { room: 'sm"all' }), 1, "escaped quote");
  assert.equal(value(f, "hubbub_connections_opened_total"), s.connectionsOpened);
  assert.equal(sum(f, "hubbub_connections_closed_total"), s.connectionsClosed);
  assert.equal(value(f, "hubbub_connections_closed_total", { cause: "slow_client" }), 1);
  assert.equal(value(f, "hubbub_upgrades_refused_total", { reason: "not_websocket" }), 1);
  assert.equal(value(f, "hubbub_frames_in_total"), s.in.messages);
  assert.equal(value(f, "hubbub_frames_in_bytes_total"), s.in.bytes);
  for (const [type, t] of Object.entries(s.inByType)) {
    assert.equal(value(f, "hubbub_messages_in_total", { type }), t.messages, type);
    assert.equal(value(f, "hubbub_messages_in_bytes_total", { type }), t.bytes, type);
  }
  assert.equal(value(f, "hubbub_messages_in_total", { type: WEIRD }), 1, 'escaped \\, " and \\n');
  assert.equal(value(f, "hubbub_messages_in_total", { type: "invalid" }), 1);
  assert.equal(f.get("hubbub_messages_in_total")!.samples.length, Object.keys(s.inByType).length);
  for (const [type, t] of Object.entries(s.outByType)) {
    assert.equal(value(f, "hubbub_messages_out_total", { type }), t.messages, type);
    assert.equal(value(f, "hubbub_messages_out_bytes_total", { type }), t.bytes, type);
  }
  assert.equal(sum(f, "hubbub_messages_out_total"), s.out.messages);
  assert.equal(sum(f, "hubbub_messages_out_bytes_total"), s.out.bytes);
  assert.equal(value(f, "hubbub_emits_total"), s.emits);
  assert.equal(value(f, "hubbub_emits_total"), 11);
  assert.equal(value(f, "hubbub_rate_limited_total"), 0);
  assert.equal(value(f, "hubbub_observer_drops_total"), 0);
  assert.equal(value(f, "hubbub_queued_bytes"), s.queuedBytes.total);
  assert.equal(value(f, "hubbub_queued_bytes_max"), s.queuedBytes.max);
  assert.equal(value(f, "hubbub_queued_bytes_p99"), s.queuedBytes.p99);
  assert.equal(value(f, "hubbub_backplane_up"), 1);
  assert.equal(value(f, "hubbub_backplane_published_total"), 0);
  assert.equal(value(f, "hubbub_history_repairs_total"), s.history.repairs);
  assert.equal(value(f, "hubbub_history_lost_total"), s.history.lost);
  await hub.close();
});

test("prometheusMetrics() takes a prefix and a room count, and refuses a bad prefix", async () => {
  const hub = await scriptedHub();
  const f = parse(prometheusMetrics(hub, { prefix: "chat_", topRooms: 1 }));
  assert.equal(value(f, "chat_connections"), 1);
  assert.equal(f.get("chat_room_members")!.samples.length, 1);
  assert.equal(
    parse(prometheusMetrics(hub, { topRooms: 0 })).get("hubbub_room_members")!
      .samples.length,
    0,
  );
  assert.throws(() => prometheusMetrics(hub, { prefix: "bad-prefix" }), TypeError);
  assert.throws(() => prometheusHandler(hub, { prefix: "9x" }), TypeError);
  await hub.close();
});

test("prometheusHandler() serves the text with its content type, HEAD without a body", async () => {
  const hub = await scriptedHub();
  const handler = prometheusHandler(hub);
  const res = handler(new Request("http://x/metrics"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  const f = parse(await res.text());
  assert.equal(value(f, "hubbub_connections_opened_total"), 2);
  const head = handler(new Request("http://x/metrics", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  const post = handler(new Request("http://x/metrics", { method: "POST" }));
  assert.equal(post.status, 405);
  await post.body?.cancel();
  await hub.close();
});
