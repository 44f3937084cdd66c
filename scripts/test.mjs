#!/usr/bin/env node
// The one test command (`npm test`): static gates, then every suite on Deno and on Bun.
// Ends with one line: `N passed, N failed` (gates count as one check each).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
const DENO = bin("deno");
const BUN = bin("bun");
const env = { ...process.env, NO_COLOR: "1" };
delete env.FORCE_COLOR;
// deno-lint-ignore no-control-regex
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
const args = new Set(process.argv.slice(2));
const only = (name) => args.size === 0 || args.has(name);

for (const b of [DENO, BUN]) {
  if (!existsSync(b)) {
    console.error(`missing ${b}: run \`npm ci\` first`);
    process.exit(2);
  }
}

function run(cmd, argv, { quiet = false } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const take = (chunk) => {
      const s = chunk.toString();
      out += s;
      if (!quiet) process.stdout.write(s);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => resolve({ code, out: stripAnsi(out), ms: Date.now() - started }));
  });
}

let passed = 0;
let failed = 0;
const summary = [];

async function gate(name, cmd, argv, expectFailure = false) {
  const r = await run(cmd, argv, { quiet: true });
  const ok = expectFailure ? r.code !== 0 : r.code === 0;
  if (ok) passed++;
  else {
    failed++;
    console.log(r.out.split("\n").slice(-40).join("\n"));
  }
  const line = `${ok ? "ok  " : "FAIL"} gate: ${name} (${(r.ms / 1000).toFixed(1)}s)`;
  console.log(line);
  summary.push(line);
}

// Every published entry point: the runtime-neutral ones (checked without Deno/Bun types)
// and the adapters (which name their runtime). Both lists get the JSDoc lint.
const NEUTRAL_ENTRIES = [
  "mod.ts",
  "src/testing/mod.ts",
  "src/client/mod.ts",
  "src/backplane/redis.ts",
  "src/backplane/broadcast_channel.ts",
  "src/otel/mod.ts",
  "src/prometheus.ts",
  "src/asyncapi.ts",
  "src/inspector/mod.ts",
];
const ADAPTER_ENTRIES = ["src/adapters/deno.ts", "src/adapters/bun.ts", "src/adapters/hono.ts"];

if (only("gates")) {
  console.log("== gates ==");
  await gate("deno fmt --check", DENO, ["fmt", "--check"]);
  await gate("deno lint", DENO, ["lint"]);
  await gate("deno check", DENO, ["check", "mod.ts", "src/", "tests/", "examples/"]);
  await gate("core-compat (ESNext+DOM only, no Deno/Bun types)", DENO, [
    "check",
    "--config",
    "scripts/core_compat.json",
    ...NEUTRAL_ENTRIES,
  ]);
  await gate("core-compat probe: a file naming Deno fails that check", DENO, [
    "check",
    "--config",
    "scripts/core_compat.json",
    "scripts/fixtures/uses_runtime.ts",
  ], true);
  await gate("README examples type-check", DENO, ["check", "--doc-only", "README.md"]);
  await gate("deno doc --lint (JSDoc on every export)", DENO, [
    "doc",
    "--lint",
    ...NEUTRAL_ENTRIES,
    ...ADAPTER_ENTRIES,
  ]);
  await gate("deno publish --dry-run", DENO, ["publish", "--dry-run", "--allow-dirty"]);
}

if (only("deno")) {
  console.log("== tests on Deno ==");
  const r = await run(DENO, ["test", "-A", "tests/"]);
  const m = /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/.exec(r.out);
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[3]);
    summary.push(`Deno: ${m[1]} passed, ${m[3]} failed`);
  } else {
    failed++;
    summary.push("Deno: the runner crashed before its summary (counted as 1 failure)");
  }
  if (m && r.code !== 0 && Number(m[3]) === 0) {
    failed++;
    summary.push(`Deno: exited ${r.code} with no failed test (counted as 1 failure)`);
  }
}

if (only("bun")) {
  console.log("== tests on Bun ==");
  const r = await run(BUN, ["test", "--timeout", "60000", "tests/"]);
  const p = /^\s*(\d+) pass$/m.exec(r.out);
  const f = /^\s*(\d+) fail$/m.exec(r.out);
  if (p && f) {
    passed += Number(p[1]);
    failed += Number(f[1]);
    summary.push(`Bun: ${p[1]} passed, ${f[1]} failed`);
  } else {
    failed++;
    summary.push("Bun: the runner crashed before its summary (counted as 1 failure)");
  }
  if (p && f && r.code !== 0 && Number(f[1]) === 0) {
    failed++;
    summary.push(`Bun: exited ${r.code} with no failed test (counted as 1 failure)`);
  }
}

console.log("\n== summary ==");
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
