import assert from "node:assert/strict";
import { frameSize, SendQueue } from "../../mod.ts";
import { test } from "../_harness.ts";

test("SendQueue keeps order and refuses frames over its message limit", () => {
  const q = new SendQueue({ maxMessages: 2 });
  assert.equal(q.push("a"), true);
  assert.equal(q.push("b"), true);
  assert.equal(q.push("c"), false);
  assert.equal(q.length, 2);
  assert.equal(q.shift(), "a");
  assert.equal(q.push("c"), true);
  assert.deepEqual([q.shift(), q.shift(), q.shift()], ["b", "c", undefined]);
});

test("SendQueue refuses frames over its byte limit and tracks bytes", () => {
  const q = new SendQueue({ maxBytes: 10 });
  assert.equal(q.push("xxxxxx"), true);
  assert.equal(q.push("yyyyy"), false);
  assert.equal(q.push(new Uint8Array(4)), true);
  assert.equal(q.bytes, 10);
  q.shift();
  assert.equal(q.bytes, 4);
  q.clear();
  assert.equal(q.bytes, 0);
  assert.equal(q.length, 0);
});

test("SendQueue counts text by UTF-16 code units and binary by bytes (frameSize)", () => {
  assert.equal(frameSize("héllo"), 5);
  assert.equal(frameSize("😀"), 2);
  assert.equal(frameSize(new Uint8Array(7)), 7);
  const q = new SendQueue();
  q.push("héllo");
  q.push(new Uint8Array(7));
  assert.equal(q.bytes, 12);
});

test("SendQueue.drainWhile() recounts the bytes it keeps when stopped early", () => {
  const q = new SendQueue();
  q.push("aaaa");
  q.push("bb");
  q.push(new Uint8Array(3));
  q.drainWhile(() => false);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, 5);
  q.drainWhile(() => true);
  assert.equal(q.bytes, 0);
  // The drained array is reused: later frames still come out in order, none twice.
  for (let round = 0; round < 3; round++) {
    q.push(`r${round}a`);
    q.push(`r${round}b`);
    const out: string[] = [];
    q.drainWhile((f) => out.push(f as string) > 0);
    assert.deepEqual(out, [`r${round}a`, `r${round}b`]);
  }
});

test("SendQueue is an async iterable that waits while empty and ends on close", async () => {
  const q = new SendQueue();
  const seen: string[] = [];
  const reader = (async () => {
    for await (const f of q) seen.push(f as string);
  })();
  q.push("1");
  await Promise.resolve();
  q.push("2");
  q.push("3");
  q.close();
  await reader;
  assert.deepEqual(seen, ["1", "2", "3"]);
  assert.equal(q.push("4"), false);
});

test("SendQueue keeps order across many pushes and shifts (compaction)", () => {
  const q = new SendQueue({ maxMessages: 5000 });
  const out: number[] = [];
  for (let i = 0; i < 4000; i++) q.push(String(i));
  for (let i = 0; i < 3000; i++) out.push(Number(q.shift()));
  for (let i = 4000; i < 5000; i++) q.push(String(i));
  let f;
  while ((f = q.shift()) !== undefined) out.push(Number(f));
  assert.deepEqual(out, Array.from({ length: 5000 }, (_, i) => i));
});

test("SendQueue rejects non-positive limits", () => {
  assert.throws(() => new SendQueue({ maxMessages: 0 }), RangeError);
  assert.throws(() => new SendQueue({ maxBytes: -1 }), RangeError);
});

test("SendQueue.drainWhile() takes frames in order until told to stop, keeping the rest", () => {
  const q = new SendQueue();
  for (let i = 0; i < 5; i++) q.push(String(i));
  const seen: string[] = [];
  q.drainWhile((f) => {
    seen.push(f as string);
    return f !== "2";
  });
  assert.deepEqual(seen, ["0", "1", "2"]);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, 2);
  q.push("5");
  const rest: string[] = [];
  q.drainWhile((f) => rest.push(f as string) > 0);
  assert.deepEqual(rest, ["3", "4", "5"]);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test("SendQueue.drainWhile() survives the queue being cleared from inside send", () => {
  const q = new SendQueue();
  for (let i = 0; i < 3; i++) q.push(String(i));
  q.drainWhile(() => {
    q.clear();
    return false;
  });
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.push("x"), true);
  assert.equal(q.shift(), "x");
});
