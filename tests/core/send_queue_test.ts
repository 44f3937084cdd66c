import assert from "node:assert/strict";
import { SendQueue } from "../../mod.ts";
import { test } from "../_harness.ts";

test("SendQueue keeps order and refuses frames over its message limit", () => {
  const q = new SendQueue({ maxMessages: 2 });
  assert.equal(q.push("a", 1), true);
  assert.equal(q.push("b", 1), true);
  assert.equal(q.push("c", 1), false);
  assert.equal(q.length, 2);
  assert.equal(q.shift(), "a");
  assert.equal(q.push("c", 1), true);
  assert.deepEqual([q.shift(), q.shift(), q.shift()], ["b", "c", undefined]);
});

test("SendQueue refuses frames over its byte limit and tracks bytes", () => {
  const q = new SendQueue({ maxBytes: 10 });
  assert.equal(q.push("x", 6), true);
  assert.equal(q.push("y", 5), false);
  assert.equal(q.push("z", 4), true);
  assert.equal(q.bytes, 10);
  q.shift();
  assert.equal(q.bytes, 4);
  q.clear();
  assert.equal(q.bytes, 0);
  assert.equal(q.length, 0);
});

test("SendQueue is an async iterable that waits while empty and ends on close", async () => {
  const q = new SendQueue();
  const seen: string[] = [];
  const reader = (async () => {
    for await (const f of q) seen.push(f as string);
  })();
  q.push("1", 1);
  await Promise.resolve();
  q.push("2", 1);
  q.push("3", 1);
  q.close();
  await reader;
  assert.deepEqual(seen, ["1", "2", "3"]);
  assert.equal(q.push("4", 1), false);
});

test("SendQueue keeps order across many pushes and shifts (compaction)", () => {
  const q = new SendQueue({ maxMessages: 5000 });
  const out: number[] = [];
  for (let i = 0; i < 4000; i++) q.push(String(i), 1);
  for (let i = 0; i < 3000; i++) out.push(Number(q.shift()));
  for (let i = 4000; i < 5000; i++) q.push(String(i), 1);
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
  for (let i = 0; i < 5; i++) q.push(String(i), 2);
  const seen: string[] = [];
  q.drainWhile((f) => {
    seen.push(f as string);
    return f !== "2";
  });
  assert.deepEqual(seen, ["0", "1", "2"]);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, 4);
  q.push("5", 2);
  const rest: string[] = [];
  q.drainWhile((f) => rest.push(f as string) > 0);
  assert.deepEqual(rest, ["3", "4", "5"]);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test("SendQueue.drainWhile() survives the queue being cleared from inside send", () => {
  const q = new SendQueue();
  for (let i = 0; i < 3; i++) q.push(String(i), 1);
  q.drainWhile(() => {
    q.clear();
    return false;
  });
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.push("x", 1), true);
  assert.equal(q.shift(), "x");
});
