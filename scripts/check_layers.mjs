#!/usr/bin/env node
// The layering gate: proves the rules of DESIGN.md "Layers" from the module graph that
// `deno info --json` reports for every export in deno.json (type-only imports included).
//
//   1. no import cycle among src/ files;
//   2. a src/protocol/ file imports only src/protocol/ files (the ground floor);
//   3. a src/client/ file imports nothing from src/core/ (it builds on src/protocol/);
//   4. a src/core/ file imports no src/adapters/, no src/backplane/, no Hono and no Redis.
//
// Usage: node scripts/check_layers.mjs [--root DIR] [--probe]
//   --root DIR  check the tree at DIR (its deno.json, or exports.json, names the exports);
//               imports resolve with the repository's deno.json either way.
//   --probe     the tree is a fixture that breaks every rule: exit 1 ("rejected") only if
//               each of the four rules reported at least one edge, 0 otherwise, so an
//               expected-failure gate fails when the checker stops seeing a rule (or crashes).
// Exit codes: 0 clean, 1 a rule is broken (each offending edge is printed), 2 internal error.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DENO = resolve(repo, "node_modules/.bin/deno");
const argv = process.argv.slice(2);
const probe = argv.includes("--probe");
const rootArg = argv.indexOf("--root");
const root = rootArg >= 0 ? resolve(repo, argv[rootArg + 1] ?? ".") : repo;

/** Fail loudly; in probe mode a crash must not look like a rejection. */
function die(message) {
  console.error(`check_layers: ${message}`);
  process.exit(probe ? 0 : 2);
}

function exportsOf(dir) {
  const file = [resolve(dir, "deno.json"), resolve(dir, "exports.json")].find(existsSync);
  if (file === undefined) die(`no deno.json or exports.json in ${dir}`);
  const exports = JSON.parse(readFileSync(file, "utf8")).exports;
  if (typeof exports === "string") return [exports];
  if (exports === null || typeof exports !== "object") die(`${file} has no exports`);
  return Object.values(exports);
}

/** Module graph: file URL → Set of [raw specifier, resolved specifier]. */
const edges = new Map();
for (const entry of exportsOf(root)) {
  const path = resolve(root, entry);
  const r = spawnSync(
    DENO,
    ["info", "--json", "--config", resolve(repo, "deno.json"), path],
    { cwd: repo, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  if (r.status !== 0) die(`deno info ${entry} failed:\n${r.stderr}`);
  let info;
  try {
    info = JSON.parse(r.stdout);
  } catch {
    die(`deno info ${entry} printed no JSON`);
  }
  for (const m of info.modules ?? []) {
    if (!m.specifier?.startsWith("file:")) continue;
    const out = edges.get(m.specifier) ?? new Map();
    edges.set(m.specifier, out);
    for (const d of m.dependencies ?? []) {
      for (const to of [d.code?.specifier, d.type?.specifier]) {
        if (to !== undefined) out.set(to, d.specifier);
      }
    }
  }
}

const rootUrl = pathToFileURL(root + "/").href;
/** Path relative to the checked root for its files; the specifier itself otherwise. */
function rel(spec) {
  return spec.startsWith(rootUrl)
    ? spec.slice(rootUrl.length)
    : spec.startsWith("file:")
    ? relative(root, fileURLToPath(spec))
    : spec;
}
const inside = (spec, dir) => spec.startsWith(rootUrl + dir);

const HONO_OR_REDIS_RAW = /^(?:npm:|jsr:)?\/?(?:hono|redis|@redis\/[^/@]+)(?:@|\/|$)/;
const HONO_OR_REDIS_RESOLVED =
  /\/node_modules\/(?:hono|redis|@redis)\/|^npm:\/?(?:hono|redis|@redis\/)/;

const violations = { cycle: [], protocol: [], client: [], core: [] };

for (const [from, out] of edges) {
  for (const [to, raw] of out) {
    const edge = `${rel(from)} → ${rel(to)}`;
    if (inside(from, "src/protocol/") && !inside(to, "src/protocol/")) {
      violations.protocol.push(`${edge} (src/protocol/ imports only src/protocol/)`);
    }
    if (inside(from, "src/client/") && inside(to, "src/core/")) {
      violations.client.push(`${edge} (src/client/ imports nothing from src/core/)`);
    }
    if (inside(from, "src/core/")) {
      if (inside(to, "src/adapters/") || inside(to, "src/backplane/")) {
        violations.core.push(`${edge} (src/core/ imports no adapter or backplane)`);
      } else if (HONO_OR_REDIS_RAW.test(raw) || HONO_OR_REDIS_RESOLVED.test(to)) {
        violations.core.push(`${rel(from)} → ${raw} (src/core/ imports no Hono or Redis)`);
      }
    }
  }
}

// Cycles among src/ files: strongly connected components (Tarjan), each reported as one
// closed path of edges.
const srcNodes = [...edges.keys()].filter((s) => inside(s, "src/"));
const srcOut = (s) => [...(edges.get(s)?.keys() ?? [])].filter((t) => inside(t, "src/"));
{
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of srcOut(v)) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) !== idx.get(v)) return;
    const scc = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || srcOut(v).includes(v)) violations.cycle.push(cyclePath(new Set(scc)));
  };
  for (const v of srcNodes) if (!idx.has(v)) strong(v);
}

/** One cycle through the component, as "a → b → a". */
function cyclePath(scc) {
  const start = [...scc].sort()[0];
  const path = [start];
  const seen = new Set([start]);
  const walk = (v) => {
    for (const w of srcOut(v)) {
      if (!scc.has(w)) continue;
      if (w === start) return true;
      if (seen.has(w)) continue;
      seen.add(w);
      path.push(w);
      if (walk(w)) return true;
      path.pop();
    }
    return false;
  };
  walk(start);
  return `${[...path, start].map(rel).join(" → ")} (no import cycles in src/)`;
}

const rules = Object.keys(violations);
let total = 0;
for (const rule of rules) {
  for (const v of violations[rule]) {
    console.log(`layer violation [${rule}]: ${v}`);
    total++;
  }
}
const modules = edges.size;
if (probe) {
  const silent = rules.filter((r) => violations[r].length === 0);
  if (silent.length > 0) {
    console.log(
      `PROBE BROKEN: the fixture breaks every rule, but these reported nothing: ${silent}`,
    );
    process.exit(0);
  }
  console.log(`probe: every rule rejected the fixture (${total} edges in ${modules} modules)`);
  process.exit(1);
}
if (total > 0) {
  console.log(`${total} layer violation(s) in ${modules} modules`);
  process.exit(1);
}
console.log(`layers ok: ${modules} modules, no cycles, protocol → core → adapters kept apart`);
