// The one timeout-plus-abort guard behind request(), unsubscribe() and subscribe().
import assert from "node:assert/strict";
import { armDeadline } from "../../src/client/_deadline.ts";
import { TimeoutError } from "../../src/client/mod.ts";
import { test } from "../_harness.ts";
import { ManualTimers } from "./_fakes.ts";

test("armDeadline() gives up with a TimeoutError after ms, and disarming clears the timer", () => {
  const timers = new ManualTimers();
  const seen: unknown[] = [];
  armDeadline(timers, 100, undefined, 'request "x"', (e) => seen.push(e));
  assert.deepEqual(timers.pending, [100]);
  timers.advance(100);
  assert.equal(seen.length, 1);
  assert.ok(seen[0] instanceof TimeoutError);
  assert.equal((seen[0] as Error).message, 'Cannot complete request "x": timed out after 100 ms');

  const disarm = armDeadline(timers, 100, undefined, "y", (e) => seen.push(e));
  disarm();
  assert.deepEqual(timers.pending, []);
  timers.advance(1000);
  assert.equal(seen.length, 1);
});

test("armDeadline() gives up with the signal's reason, arms no timer for 0 or Infinity, and disarming detaches the signal", () => {
  const timers = new ManualTimers();
  const seen: unknown[] = [];
  const controller = new AbortController();
  const disarm = armDeadline(timers, 0, controller.signal, "x", (e) => seen.push(e));
  armDeadline(timers, Infinity, undefined, "x", (e) => seen.push(e));
  assert.deepEqual(timers.pending, []);
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(seen.length, 1);
  assert.equal(seen[0], reason);

  const other = new AbortController();
  armDeadline(timers, 50, other.signal, "x", (e) => seen.push(e))();
  other.abort();
  timers.advance(50);
  assert.equal(seen.length, 1, "a disarmed deadline never gives up");
  disarm();
});
