import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "../_harness.ts";

const root = new URL("../../", import.meta.url);

// The browser bundle stays small and runtime-neutral: the client may import only these.
const ALLOWED = new Set([
  "../protocol/contract.ts", // types only
  "../protocol/envelope.ts",
  "../core/close_codes.ts",
  "../core/standard_schema.ts", // types only
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
