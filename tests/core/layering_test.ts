import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "../_harness.ts";

const root = new URL("../../", import.meta.url);

function files(dir: string): string[] {
  return readdirSync(new URL(dir, root), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(`${dir}${e.name}/`) : e.name.endsWith(".ts") ? [`${dir}${e.name}`] : []
  );
}

test("The core and protocol never name Deno, Bun or Hono, nor import an adapter", () => {
  const core = [
    ...files("src/core/"),
    ...files("src/protocol/"),
    ...files("src/testing/"),
    "mod.ts",
  ];
  assert.ok(core.length >= 8);
  for (const f of core) {
    const code = readFileSync(new URL(f, root), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bDeno\b|\bBun\b|["']hono|\/adapters\//, f);
  }
});
