#!/usr/bin/env node
// The one test command (`npm test`): static gates, then every suite on Deno and on Bun, then
// the Node suites (NODE_TESTS) on the Node running this script, through tsx and node:test.
// Ends with one line: `N passed, N failed, N skipped` (gates count as one check each; skipped
// are Deno's ignored, Bun's skipped and node:test's skipped tests). Fails when fewer tests ran on a runtime than its
// floor in scripts/test_floor.json (a harness bug that skips everything cannot end green), and
// when a runner hangs past its watchdog (HUBBUB_TEST_WATCHDOG_S, default 600 s per runtime).
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

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

const WATCHDOG_MS = Number(process.env.HUBBUB_TEST_WATCHDOG_S ?? 600) * 1000;
const FLOOR = JSON.parse(readFileSync(new URL("./test_floor.json", import.meta.url), "utf8"));
const running = new Set();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const child of running) killGroup(child);
    process.exit(130);
  });
}

// A watched child runs in its own process group, so a hung runner is killed with everything
// it started (redis-server, fixture servers).
function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

function run(cmd, argv, { quiet = false, watchdogMs } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const detached = watchdogMs !== undefined;
    const child = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"], detached });
    running.add(child);
    let hung = false;
    const timer = detached
      ? setTimeout(() => {
        hung = true;
        console.log(`\n!! ${cmd} ${argv.join(" ")}: still running after ${watchdogMs} ms: killed`);
        killGroup(child);
      }, watchdogMs)
      : undefined;
    let out = "";
    const take = (chunk) => {
      const s = chunk.toString();
      out += s;
      if (!quiet) process.stdout.write(s);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, out: stripAnsi(out), ms: Date.now() - started, hung });
    });
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;
const summary = [];

// `mustSay`: text the output must contain (e.g. the diagnostic an expected failure gives).
async function gate(name, cmd, argv, expectFailure = false, mustSay = undefined) {
  const r = await run(cmd, argv, { quiet: true });
  const said = mustSay === undefined || r.out.includes(mustSay);
  const ok = (expectFailure ? r.code !== 0 : r.code === 0) && said;
  if (!said) console.log(`expected the output to contain: ${mustSay}`);
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
const ADAPTER_ENTRIES = [
  "src/adapters/deno.ts",
  "src/adapters/bun.ts",
  "src/adapters/hono.ts",
  "src/adapters/node.ts",
];

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
  await gate(
    "core-compat probe: a file naming Deno fails that check",
    DENO,
    [
      "check",
      "--config",
      "scripts/core_compat.json",
      "scripts/fixtures/uses_runtime.ts",
    ],
    true,
    "TS2304 [ERROR]: Cannot find name 'Deno'",
  );
  await gate("layers (no cycles; protocol, client, core apart)", process.execPath, [
    "scripts/check_layers.mjs",
  ]);
  await gate(
    "layers probe: a tree breaking every layer rule fails that check",
    process.execPath,
    [
      "scripts/check_layers.mjs",
      "--root",
      "scripts/fixtures/layer_violation",
      "--probe",
    ],
    true,
    "probe: every rule rejected the fixture",
  );
  // The snippets of the README and of every guide in docs/ (deno check expands no globs).
  const guides = readdirSync("docs").filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
  await gate("README and docs/*.md examples type-check", DENO, [
    "check",
    "--doc-only",
    "README.md",
    ...guides,
  ]);
  await gate("deno doc --lint (JSDoc on every export)", DENO, [
    "doc",
    "--lint",
    ...NEUTRAL_ENTRIES,
    ...ADAPTER_ENTRIES,
  ]);
  await gate("deno publish --dry-run", DENO, ["publish", "--dry-run", "--allow-dirty"]);
}

// Count one runtime's results: passed, failed and skipped; a hang, a crash, a non-zero exit
// with no failed test, and fewer tests run than the floor each count as one more failure.
function tally(label, key, r, counts) {
  if (r.hung) {
    failed++;
    summary.push(`${label}: hung, killed by the watchdog after ${r.ms} ms (counted as 1 failure)`);
    if (counts === undefined) return;
  }
  if (counts === undefined) {
    failed++;
    summary.push(`${label}: the runner crashed before its summary (counted as 1 failure)`);
    return;
  }
  passed += counts.passed;
  failed += counts.failed;
  skipped += counts.skipped;
  summary.push(
    `${label}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
  );
  if (r.code !== 0 && counts.failed === 0 && !r.hung) {
    failed++;
    summary.push(`${label}: exited ${r.code} with no failed test (counted as 1 failure)`);
  }
  const ran = counts.passed + counts.failed;
  const floor = FLOOR[key];
  if (typeof floor !== "number" || ran < floor) {
    failed++;
    summary.push(
      `${label}: ${ran} tests ran, under the floor of ${floor} in scripts/test_floor.json ` +
        `(counted as 1 failure)`,
    );
  }
}

// The last match of a pattern (a test's own output may contain look-alike lines).
const last = (re, text) => [...text.matchAll(re)].at(-1);

if (only("deno")) {
  console.log("== tests on Deno ==");
  const r = await run(DENO, ["test", "-A", "tests/"], { watchdogMs: WATCHDOG_MS });
  const m = last(
    /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/g,
    r.out,
  );
  tally(
    "Deno",
    "deno",
    r,
    m && { passed: Number(m[1]), failed: Number(m[3]), skipped: Number(m[4] ?? 0) },
  );
}

if (only("bun")) {
  console.log("== tests on Bun ==");
  const r = await run(BUN, ["test", "--timeout", "60000", "tests/"], { watchdogMs: WATCHDOG_MS });
  const p = last(/^\s*(\d+) pass$/gm, r.out);
  const f = last(/^\s*(\d+) fail$/gm, r.out);
  const s = last(/^\s*(\d+) skip$/gm, r.out);
  const todo = last(/^\s*(\d+) todo$/gm, r.out);
  tally(
    "Bun",
    "bun",
    r,
    p && f && {
      passed: Number(p[1]),
      failed: Number(f[1]),
      skipped: Number(s?.[1] ?? 0) + Number(todo?.[1] ?? 0),
    },
  );
}

// What runs on Node: the transport contract (./node, Hono on Node), the Node adapter's own tests,
// the chat demo's Node entry (tests/node/) and the client tests. Node
// runs no TypeScript: tsx (a devDependency) loads it. `--experimental-websocket` gives Node 20
// its global WebSocket (undici's, on by default from Node 22), which the client suite uses.
const testsIn = (dir) =>
  readdirSync(dir).filter((f) => f.endsWith("_test.ts")).map((f) => `${dir}/${f}`);
const NODE_TESTS = [
  "tests/adapters/node_test.ts",
  ...testsIn("tests/node"),
  ...testsIn("tests/client"),
];

if (only("node")) {
  console.log(`== tests on Node ${process.version} ==`);
  const r = await run(process.execPath, [
    // Node 20's WebSocket is behind a flag (on by default from Node 22).
    ...(typeof globalThis.WebSocket === "undefined" ? ["--experimental-websocket"] : []),
    "--import",
    "tsx",
    "--test",
    "--test-reporter=tap",
    "--test-concurrency=1",
    // A test that timed out may leave its server open: exit once every test has ended
    // instead of hanging until the watchdog.
    "--test-force-exit",
    ...NODE_TESTS,
  ], { watchdogMs: WATCHDOG_MS });
  const count = (name) => last(new RegExp(`^# ${name} (\\d+)$`, "gm"), r.out);
  const p = count("pass");
  const f = count("fail");
  // A cancelled test (its file crashed, or its parent failed) did not pass: a failure.
  const c = count("cancelled");
  const s = count("skipped");
  const todo = count("todo");
  tally(
    "Node",
    "node",
    r,
    p && f && {
      passed: Number(p[1]),
      failed: Number(f[1]) + Number(c?.[1] ?? 0),
      skipped: Number(s?.[1] ?? 0) + Number(todo?.[1] ?? 0),
    },
  );
}

console.log("\n== summary ==");
for (const line of summary) console.log(line);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
