// The bus formats (issue 15): a plain emit crosses as format 2 (a header line, then the frame
// as encoded); history entries and control commands stay format 1; hubs publishing either read
// both (a rolling deploy); every format-2 field is input, checked, and signed with the frame.
// In-memory bus; runs on Deno and Bun.
import assert from "node:assert/strict";
import { Hub, MemoryBus } from "../../mod.ts";
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { Hmac } from "../../src/core/_hmac.ts";
import { test, until } from "../_harness.ts";

const SECRET = "a-shared-secret-of-32-characters";

/** Hubs on one bus (one per format given), a raw tap on `channels`, and a member of r and s on each. */
async function onBus(formats: (1 | 2)[], channels: string[], secret?: string) {
  const bus = new MemoryBus();
  const errors: unknown[] = [];
  const hubs = formats.map((f) =>
    new Hub({
      canJoin: () => true,
      onError: (e) => void errors.push(e),
      backplane: bus.connect(),
      backplaneFormat: f,
      ...(secret === undefined ? {} : { backplaneSecret: secret }),
    })
  );
  await Promise.all(hubs.map((h) => h.ready));
  const members: MemoryClient[] = [];
  for (const hub of hubs) {
    const m = await connectMemory(hub);
    for (const room of ["r", "s"]) {
      m.send({ type: "subscribe", room });
      await m.next("subscribed");
    }
    members.push(m);
  }
  const tap = bus.connect();
  const seen: { channel: string; payload: string }[] = [];
  await tap.start((channel, payload) => void seen.push({ channel, payload }), () => {});
  for (const c of channels) await tap.subscribe(c);
  const close = async () => {
    await tap.close();
    await Promise.all(hubs.map((h) => h.close()));
  };
  return { bus, hubs, members, tap, seen, errors, close };
}

const of = (m: MemoryClient, type: string) => m.messages.filter((x) => x.type === type);
const idOf = (m: MemoryClient) =>
  (of(m, "connection.established")[0].data as { clientId: string }).clientId;

test("A one-room emit crosses the bus as format 2: a header line without a message id, then the frame as its members get it", async () => {
  const { hubs: [a], members: [, bm], seen, errors, close } = await onBus(
    [2, 2],
    ["hubbub:room:r"],
  );
  a.emit("chat", { text: 'a "quoted"\\ line\n' }, { rooms: "r" });
  await until(() => of(bm, "chat").length === 1 && seen.length === 1);
  const { payload } = seen[0];
  const nl = payload.indexOf("\n");
  const nodeId = a.backplaneStats().nodeId;
  assert.equal(payload.slice(0, nl), `{"v":2,"o":${JSON.stringify(nodeId)},"t":{"r":["r"]}}`);
  // The frame after the newline is the encoded envelope itself, not escaped into a string.
  assert.deepEqual(JSON.parse(payload.slice(nl + 1)), of(bm, "chat")[0]);
  assert.equal(payload.slice(nl + 1).indexOf("\n"), -1, "a JSON frame has no raw newline");
  assert.deepEqual(errors, []);
  await close();
});

test("An emit to several channels carries one id in format 2: a replica on two of them delivers it once", async () => {
  const { hubs: [a, b], members: [, bm], seen, close } = await onBus(
    [2, 2],
    ["hubbub:room:r", "hubbub:room:s"],
  );
  a.emit("both", 1, { rooms: ["r", "s"] });
  a.broadcastRaw(new Uint8Array([0, 1, 254, 255]), { rooms: ["r", "s"] });
  await until(() => seen.length === 4 && bm.binary.length === 1 && of(bm, "both").length === 1);
  const heads = seen.map((s) => JSON.parse(s.payload.slice(0, s.payload.indexOf("\n"))));
  assert.equal(heads[0].i, heads[1].i, "one id on both channels");
  assert.equal(heads[2].i, heads[3].i);
  assert.notEqual(heads[0].i, heads[2].i, "one id per emit");
  assert.equal(heads[2].b, 1, "a binary frame is base64 after the header");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(of(bm, "both").length, 1);
  assert.deepEqual([...bm.binary[0]], [0, 1, 254, 255]);
  assert.equal(bm.binary.length, 1);
  assert.equal(b.backplaneStats().duplicates, 2);
  await close();
});

test("Hubs publishing format 1 and format 2 read each other (a rolling deploy), and history and control stay format 1", async () => {
  const { hubs: [old, now], members: [om, nm], seen, tap, close } = await onBus(
    [1, 2],
    ["hubbub:room:r"],
  );
  old.emit("from-old", 1, { rooms: "r" });
  now.emit("from-new", 2, { rooms: "r" });
  old.broadcastRaw(new Uint8Array([7]), { rooms: "r" });
  now.broadcastRaw(new Uint8Array([8]), { rooms: "r" });
  await until(() => of(nm, "from-old").length === 1 && of(om, "from-new").length === 1);
  // Each member gets its own hub's binary frame locally and the other's across the bus.
  await until(() => nm.binary.length === 2 && om.binary.length === 2);
  assert.deepEqual(nm.binary.map((b) => b[0]).sort(), [7, 8]);
  assert.deepEqual(om.binary.map((b) => b[0]).sort(), [7, 8]);
  const fromOld = seen.filter((s) => s.payload.includes(old.backplaneStats().nodeId));
  assert.equal(fromOld.length, 2);
  for (const s of fromOld) assert.match(s.payload, /^\{"v":1,/);
  for (const s of fromOld) assert.equal(s.payload.indexOf("\n"), -1);
  const fromNew = seen.filter((s) => s.payload.includes(now.backplaneStats().nodeId));
  for (const s of fromNew) assert.match(s.payload, /^\{"v":2,[^\n]*\n/);
  // A control command from the format-2 hub is format 1 and is carried out by the old one.
  const id = idOf(om);
  await tap.subscribe("hubbub:client:" + id);
  seen.length = 0;
  now.leaveAll({ clients: id }, "r");
  await until(() => seen.length === 1);
  assert.match(seen[0].payload, /^\{"v":1,.*"k":\{/);
  await until(() => old.rooms().get("r") === undefined);
  await close();
});

test("Malformed format-2 payloads are counted and cost exactly themselves", async () => {
  const { hubs: [a], members: [am], tap, errors, close } = await onBus([2], []);
  const bad = [
    '{"v":2}\n{}', // no origin, no target
    '{"v":2,"o":"x","t":{}}\n{}', // names nobody
    '{"v":2,"o":"x","t":{"r":["r"]},"n":1}\n{}', // a field format 2 does not have
    '{"v":2,"o":"x","t":{"r":["r"]},"k":{"op":"leave","room":"r"}}\n', // nor commands
    '{"v":3,"o":"x","t":{"r":["r"]}}\n{}',
    '{"v":2,"o":"x","t":{"r":["r"]},"b":1}\n!!!not base64!!!',
    '{"v":2,"o":"x","i":"","t":{"r":["r"]}}\n{}',
    '{"v":2,"o":"x","t":{"r":[1]}}\n{}',
    '{"v":2,"o":"x","t":{"r":["r"]},"b":2}\n{}',
    "{not json\n{}",
    "\n{}",
    '{"v":2,"o":"x","t":{"r":["r"]}', // no newline: read as format 1, which it is not
  ];
  for (const p of bad) await tap.publish("hubbub:room:r", p);
  for (let i = 0; i < 5; i++) {
    await tap.publish("hubbub:room:r", `{"v":2,"o":"x","t":{"r":["r"]}}\n{"type":"n","data":${i}}`);
  }
  await until(() => of(am, "n").length === 5);
  assert.deepEqual(of(am, "n").map((m) => m.data), [0, 1, 2, 3, 4]);
  assert.equal(a.backplaneStats().malformed, bad.length);
  assert.deepEqual(errors, [], "nothing thrown out of the receive path");
  assert.equal(a.rooms().get("r"), 1, "no command was carried out");
  await close();
});

test("With backplaneSecret, a format-2 MAC covers header and frame: a changed frame, an unsigned or a foreign-signed payload is dropped", async () => {
  const { hubs: [a, b], members: [, bm], tap, close } = await onBus([2, 2], [], SECRET);
  a.emit("hello", 1, { rooms: "r" });
  await until(() => of(bm, "hello").length === 1);
  const text = '{"v":2,"o":"x","t":{"r":["r"]}}\n{"type":"forged","data":0}';
  const mac = new Hmac(SECRET).signText(text);
  await tap.publish("hubbub:room:r", text); // unsigned
  await tap.publish("hubbub:room:r", mac + "." + text.replace('"data":0', '"data":1'));
  await tap.publish(
    "hubbub:room:r",
    new Hmac("another-secret-32-characters-xx").signText(text) + "." + text,
  );
  const good = '{"v":2,"o":"x","t":{"r":["r"]}}\n{"type":"signed","data":2}';
  await tap.publish("hubbub:room:r", new Hmac(SECRET).signText(good) + "." + good);
  await until(() => of(bm, "signed").length === 1);
  assert.equal(of(bm, "forged").length, 0);
  assert.equal(b.backplaneStats().malformed, 3);
  await close();
});

test("Hub refuses a backplaneFormat other than 1 or 2 with a TypeError that names it", () => {
  for (const f of [0, 3, "2", null]) {
    assert.throws(
      () => new Hub({ backplaneFormat: f as never }),
      (e) => e instanceof TypeError && /backplaneFormat must be 1 or 2/.test(e.message),
    );
  }
});
