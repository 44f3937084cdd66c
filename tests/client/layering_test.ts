import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "../_harness.ts";
import { BATCH_PROTOCOL, ServerEvent } from "../../src/protocol/envelope.ts";

const root = new URL("../../", import.meta.url);

// The browser bundle stays small and runtime-neutral: the client may import only these.
// Nothing from ../core/: what the client shares with the server lives in ../protocol/.
const ALLOWED = new Set([
  "../protocol/contract.ts", // types only
  "../protocol/envelope.ts",
  "../protocol/batch.ts",
  "../protocol/close_codes.ts",
  "../protocol/error_codes.ts", // the codes the client tells apart (UNAVAILABLE)
  "../protocol/standard_schema.ts", // types only
  "../protocol/_event_stream.ts", // the bounded stream, shared with Hub.events()
]);

test("The client never names Deno, Bun or Hono and imports only close codes and protocol names", () => {
  const files = readdirSync(new URL("src/client/", root)).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const source = readFileSync(new URL(`src/client/${f}`, root), "utf8");
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bDeno\b|\bBun\b|["']hono/, f);
    for (const [, spec] of code.matchAll(/from\s+"([^"]+)"/g)) {
      assert.ok(spec.startsWith("./") || ALLOWED.has(spec), `${f} imports ${spec}`);
    }
  }
});

test("The client takes event names, batch splitting, UTF-8 length and close rules from the protocol layer", () => {
  const files = readdirSync(new URL("src/client/", root)).filter((f) => f.endsWith(".ts"));
  // "error" is also a socket and a lifecycle event name, so it is not checked here.
  const names = Object.values(ServerEvent).filter((n) => n !== ServerEvent.ERROR);
  for (const f of files) {
    const source = readFileSync(new URL(`src/client/${f}`, root), "utf8");
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    for (const name of names) {
      assert.ok(!code.includes(`"${name}"`), `${f} spells "${name}": use ServerEvent`);
    }
    assert.ok(!code.includes(`"${BATCH_PROTOCOL}"`), `${f} spells the batch subprotocol`);
    assert.doesNotMatch(code, /split\("\\n"\)/, `${f} splits batches itself: use splitBatch`);
    assert.doesNotMatch(code, /TextEncoder/, `${f} measures UTF-8 itself: use utf8Length`);
    assert.doesNotMatch(code, /=== 0 \? 1006/, `${f} maps 0 → 1006 itself: normalizeCloseCode`);
    assert.doesNotMatch(code, /\b(3000|4999)\b/, `${f} checks close codes itself`);
  }
});
