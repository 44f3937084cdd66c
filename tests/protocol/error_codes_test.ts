// The protocol's stable error codes, as DESIGN.md spells them on the wire.
import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/error_codes.ts";
import { test } from "../_harness.ts";

test("ErrorCode spells each code as its own name, history's NOT_SUBSCRIBED and UNAVAILABLE included", () => {
  assert.equal(ErrorCode.NOT_SUBSCRIBED, "NOT_SUBSCRIBED");
  assert.equal(ErrorCode.UNAVAILABLE, "UNAVAILABLE");
  for (const [name, code] of Object.entries(ErrorCode)) assert.equal(code, name);
  for (
    const code of ["INVALID_JSON", "INVALID_INPUT", "UNKNOWN_TYPE", "SUBSCRIBE_REFUSED"]
  ) assert.ok(Object.values(ErrorCode).includes(code as never), code);
});
