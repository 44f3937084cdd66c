// The protocol's own Standard Schema types and structural Target, which the contract
// uses instead of the core's: each accepts what the other (and the official spec) makes.
import assert from "node:assert/strict";
import type { StandardSchemaV1 as Official } from "@standard-schema/spec";
import type { StandardSchemaV1 as CoreSchema } from "../../src/core/standard_schema.ts";
import type { Target as CoreTarget } from "../../src/core/hub.ts";
import type { Connection } from "../../src/core/connection.ts";
import type { StandardSchemaV1 } from "../../src/protocol/standard_schema.ts";
import type { Target } from "../../src/protocol/target.ts";
import { test } from "../_harness.ts";

function schema<T>(s: StandardSchemaV1<unknown, T>): StandardSchemaV1<unknown, T> {
  return s;
}

test("The protocol's StandardSchemaV1 accepts the official spec's and the core's schemas, and fits where the core takes one", async () => {
  const official: Official<unknown, number> = {
    "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: Number(v) }) },
  };
  const ours = schema(official);
  const asCore: CoreSchema<unknown, number> = ours;
  const back: StandardSchemaV1<unknown, number> = asCore;
  assert.deepEqual(await back["~standard"].validate("2"), { value: 2 });
});

test("The protocol's Target takes every core Target, a connection in except, and any { id }", () => {
  const fromCore = (t: CoreTarget): Target => t;
  const conn = { id: "c1" } as unknown as Connection;
  const targets: Target[] = [
    fromCore({ rooms: "a", except: conn }),
    { rooms: ["a", "b"], users: "u", clients: new Set(["c"]), except: [conn, "c2", { id: "c3" }] },
    {},
  ];
  assert.equal(targets.length, 3);
});
