import assert from "node:assert/strict";
import { BATCH_PROTOCOL, splitBatch } from "../../src/protocol/batch.ts";
import { test } from "../_harness.ts";

test("splitBatch() returns a frame without a newline as is, and the non-empty lines of a batch", () => {
  assert.equal(BATCH_PROTOCOL, "hubbub.batch.v1");
  const one = '{"type":"a","data":{"text":"x\\ny"},"timestamp":1}'; // an escaped newline stays
  assert.deepEqual(splitBatch(one), [one]);
  assert.deepEqual(splitBatch('{"type":"a"}\n{"type":"b"}\n'), ['{"type":"a"}', '{"type":"b"}']);
  assert.deepEqual(splitBatch("\n\n"), []);
});
