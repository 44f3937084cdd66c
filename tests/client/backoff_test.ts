import assert from "node:assert/strict";
import { backoffDelay } from "../../src/client/mod.ts";
import { test } from "../_harness.ts";

test("backoffDelay() draws from [0, min(maxDelayMs, minDelayMs × 2^(attempt−1))) (full jitter)", () => {
  const opts = { minDelayMs: 100, maxDelayMs: 1000 };
  const ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
  ceilings.forEach((ceiling, i) => {
    assert.equal(backoffDelay(i + 1, opts, () => 0), 0);
    assert.equal(backoffDelay(i + 1, opts, () => 0.5), ceiling / 2);
    assert.equal(backoffDelay(i + 1, opts, () => 0.999999), ceiling - 1);
  });
});

test("backoffDelay() stays under its ceiling for real random draws and huge attempt numbers", () => {
  for (let attempt = 1; attempt <= 2000; attempt += 37) {
    const d = backoffDelay(attempt, { minDelayMs: 250, maxDelayMs: 5000 });
    assert.ok(
      Number.isInteger(d) && d >= 0 && d < Math.min(5000, 250 * 2 ** (attempt - 1)),
      `${d}`,
    );
  }
  assert.equal(backoffDelay(1e6, { maxDelayMs: 30_000 }, () => 0.5), 15_000);
});

test("backoffDelay() uses 500 ms and 30 s by default and treats bad random values as 0", () => {
  assert.equal(backoffDelay(1, {}, () => 0.5), 250);
  assert.equal(backoffDelay(20, {}, () => 0.5), 15_000);
  assert.equal(backoffDelay(3, {}, () => 1), 0);
  assert.equal(backoffDelay(3, {}, () => NaN), 0);
  assert.equal(backoffDelay(3, {}, () => -1), 0);
});

test("backoffDelay() refuses an attempt that is not a positive integer", () => {
  assert.throws(() => backoffDelay(0), RangeError);
  assert.throws(() => backoffDelay(1.5), RangeError);
});
