import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "../_harness.ts";

const root = new URL("../../", import.meta.url);

function files(dir: string): string[] {
  return readdirSync(new URL(dir, root), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(`${dir}${e.name}/`) : e.name.endsWith(".ts") ? [`${dir}${e.name}`] : []
  );
}

function code(f: string): string {
  return readFileSync(new URL(f, root), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
}

test("Only the ./otel entry imports @opentelemetry/api: `.` never pulls it in", () => {
  const all = [...files("src/"), "mod.ts"];
  const users = all.filter((f) => /["']@opentelemetry\//.test(code(f)));
  assert.deepEqual(users, ["src/otel/mod.ts"]);
});

test("The observability entries are runtime-neutral: no Deno, Bun, Hono or adapter", () => {
  const neutral = [
    ...files("src/otel/"),
    ...files("src/inspector/"),
    "src/prometheus.ts",
    "src/asyncapi.ts",
    "src/_stats_metrics.ts",
  ];
  for (const f of neutral) {
    assert.doesNotMatch(code(f), /\bDeno\b|\bBun\b|["']hono|\/adapters\//, f);
  }
});
