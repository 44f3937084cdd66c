// The protocol layer's close-code table and rules, which the client uses and the core
// will re-export (until then, the core's copy must say the same).
import assert from "node:assert/strict";
import * as core from "../../src/core/close_codes.ts";
import {
  assertCloseArgs,
  CloseCode,
  isSendableCloseCode,
  normalizeCloseCode,
  shouldReconnect,
  TERMINAL_CLOSE_CODES,
} from "../../src/protocol/close_codes.ts";
import { test } from "../_harness.ts";

test("The protocol's close-code table, terminal set and shouldReconnect() match the core's", () => {
  assert.deepEqual(CloseCode, core.CloseCode);
  assert.deepEqual([...TERMINAL_CLOSE_CODES].sort(), [...core.TERMINAL_CLOSE_CODES].sort());
  for (let code = 0; code <= 5000; code++) {
    assert.equal(shouldReconnect(code), core.shouldReconnect(code), `code ${code}`);
  }
});

test("normalizeCloseCode() reads Deno's abrupt 0 as 1006 and leaves other codes alone", () => {
  assert.equal(normalizeCloseCode(0), 1006);
  for (const code of [1000, 1001, 1005, 1006, 4000]) assert.equal(normalizeCloseCode(code), code);
});

test("isSendableCloseCode(): a server may send 1000–1003, 1007–1014 and 3000–4999; a client 1000 and 3000–4999", () => {
  const server = (c: number) => isSendableCloseCode(c, "server");
  const client = (c: number) => isSendableCloseCode(c, "client");
  for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1013, 1014, 3000, 4000, 4999]) {
    assert.ok(server(c), `server ${c}`);
  }
  for (const c of [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000, 3000.5, NaN]) {
    assert.ok(!server(c), `server ${c}`);
  }
  for (const c of [1000, 3000, 4003, 4999]) assert.ok(client(c), `client ${c}`);
  for (const c of [1001, 1008, 1011, 2999, 5000, 4000.5]) assert.ok(!client(c), `client ${c}`);
});

test("assertCloseArgs() throws RangeError for a code the sender may not send or a reason over 123 UTF-8 bytes", () => {
  assertCloseArgs(1000, "x".repeat(123), "client");
  assertCloseArgs(1001, "é".repeat(61), "server"); // 122 bytes
  assert.throws(() => assertCloseArgs(1001, "", "client"), RangeError);
  assert.throws(() => assertCloseArgs(1006, "", "server"), RangeError);
  assert.throws(() => assertCloseArgs(1000, "x".repeat(124), "client"), RangeError);
  assert.throws(() => assertCloseArgs(1000, "é".repeat(62), "server"), /over 123 UTF-8 bytes/);
});

test("CloseCode.INSUFFICIENT_STATE is 4004, not terminal: a client reconnects and recovers after it", () => {
  assert.equal(CloseCode.INSUFFICIENT_STATE, 4004);
  assert.equal(shouldReconnect(4004), true);
  assert.equal(TERMINAL_CLOSE_CODES.has(4004), false);
  assert.ok(isSendableCloseCode(CloseCode.INSUFFICIENT_STATE, "server"));
});
