import assert from "node:assert/strict";
import type { StandardSchemaV1 as Official } from "@standard-schema/spec";
import type { StandardSchemaV1 } from "../../mod.ts";
import { test } from "../_harness.ts";

// Compile-time: a schema typed with the official spec is accepted where hubbub takes one.
function accept<T>(schema: StandardSchemaV1<unknown, T>): StandardSchemaV1<unknown, T> {
  return schema;
}

test("hubbub's StandardSchemaV1 accepts schemas typed with @standard-schema/spec", async () => {
  const official: Official<unknown, { type: "a" }> = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (v) => v === "a" ? { value: { type: "a" } } : { issues: [{ message: "no" }] },
    },
  };
  const ours = accept(official);
  assert.deepEqual(await ours["~standard"].validate("a"), { value: { type: "a" } });
  assert.deepEqual(await ours["~standard"].validate("b"), { issues: [{ message: "no" }] });
});
