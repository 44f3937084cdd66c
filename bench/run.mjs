#!/usr/bin/env node
// Fan-out benchmark harness. `npm run bench` (= node bench/run.mjs) [flags]; see --help and
// bench/README.md. Starts each target server as its own process (pinned to core 0), drives it
// with bench/load_client.ts in a separate Bun process (pinned to core 1), one scenario at a time,
// and writes bench/results/latest.{json,md}.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crossTargets, references, targets as allTargets } from "./targets.mjs";
import { barChart } from "./chart.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = {
  bun: path.join(ROOT, "node_modules/.bin/bun"),
  deno: path.join(ROOT, "node_modules/.bin/deno"),
  node: process.execPath,
};

// ---------------------------------------------------------------------------------------------
// Flags

const HELP = `usage: node bench/run.mjs [suite...] [flags]
  suites: fanout (one process, the table of targets.mjs), cross (cross-replica through one
          private redis-server), history (history rooms, one process and through Redis),
          presence (presence churn through Redis: bench/presence.mjs, its own flags too);
          default all four. npm run bench -- cross runs the cross-replica suite alone.
  --quick               1 run, shorter windows, idle up to 5k (target: < 2 minutes)
  --runs=N              runs per target; every figure is the median (default 3, quick 1)
  --only=a,b            only these targets (plus the references they are compared with)
  --exact               with --only: do not add the references
  --scenarios=a,b       subset of: tp1k,tp5k,latency,idle,slow (default all)
  --window=K            throughput: fixed window of K messages in flight (default: auto, doubling
                        from 4 (quick: 16) while deliveries/s improves >= 5 %, at most 256)
  --group=G             with --window: publish G more at once when G completed (default K/2)
  --no-pin              do not pin server/client to cores 0/1 with taskset
  --verbose             pass server and load-client stderr through
  --out=DIR             results directory (default bench/results)
  --list                list targets and exit`;

const flags = {};
const SUITES = ["fanout", "cross", "history", "presence"];
const suites = [];
for (const arg of process.argv.slice(2)) {
  if (SUITES.includes(arg)) {
    suites.push(arg);
    continue;
  }
  const m = /^--([^=]+)(?:=(.*))?$/.exec(arg);
  if (!m) {
    console.error(`unknown argument ${arg}\n${HELP}`);
    process.exit(2);
  }
  flags[m[1]] = m[2] ?? true;
}
const known = [
  "quick",
  "runs",
  "only",
  "exact",
  "scenarios",
  "window",
  "group",
  "no-pin",
  "verbose",
  "out",
  "list",
  "help",
  "connections", // presence suite only (bench/presence.mjs)
];
for (const k of Object.keys(flags)) {
  if (!known.includes(k)) {
    console.error(`unknown flag --${k}\n${HELP}`);
    process.exit(2);
  }
}
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
if (flags.list) {
  for (const t of [...allTargets, ...crossTargets]) {
    console.log(
      `${t.name.padEnd(24)} ${t.runtime.padEnd(5)} ${(t.suite ?? "fanout").padEnd(8)}${
        t.extra ? "(extra) " : ""
      }${t.command.join(" ")}`,
    );
  }
  process.exit(0);
}

const QUICK = Boolean(flags.quick);
const RUNS = Number(flags.runs ?? (QUICK ? 1 : 3));
const WINDOW = flags.window === undefined ? 0 : Number(flags.window); // 0 = auto
const GROUP = flags.group === undefined ? Math.max(1, WINDOW >> 1) : Number(flags.group);
const WINDOW_MAX = 256;
const VERBOSE = Boolean(flags.verbose);
const OUT = path.resolve(ROOT, flags.out ?? "bench/results");
if (!(RUNS >= 1) || !(WINDOW >= 0) || !(GROUP >= 1)) {
  console.error("--runs, --window and --group must be positive numbers");
  process.exit(2);
}

/** A throughput phase at `clients` listeners (tp1k and tp5k differ only in that). */
function throughputPhase(clients) {
  return {
    kind: "throughput",
    clients,
    size: 100,
    window: WINDOW,
    group: GROUP,
    windowMax: WINDOW_MAX,
    windowStart: QUICK ? 16 : 4,
    maxInFlightS: 0.4,
    probeSettle: QUICK ? 0.05 : 0.1,
    probeMeasure: QUICK ? 0.1 : 0.2,
    warmup: QUICK ? 0.1 : 0.2,
    duration: QUICK ? 0.5 : 1,
  };
}

/**
 * Phase settings (seconds, counts). A run of a target is two sessions, each a fresh server
 * process and one load-client process: "main" = idle (connect up to 10k) → tp5k (close down to
 * 5k) → tp1k → latency, reusing its connections; and "slow" alone, so its memory figures start
 * from a clean server. --quick runs all phases in one session with shorter windows.
 */
const PHASES = {
  idle: {
    kind: "idle",
    steps: QUICK ? [1000, 5000] : [1000, 5000, 10000],
    settle: QUICK ? 0.2 : 0.3,
  },
  tp5k: throughputPhase(5000),
  tp1k: throughputPhase(1000),
  latency: {
    kind: "latency",
    clients: 1000,
    size: 100,
    rate: 20,
    warmup: QUICK ? 0.2 : 0.3,
    duration: QUICK ? 0.6 : 1.2,
  },
  slow: {
    kind: "slow",
    others: 100,
    size: 30_000,
    rate: 100,
    warmup: QUICK ? 0.2 : 0.2,
    // Equal windows: a p99 over a longer window catches more rare stalls (GC) by itself.
    before: QUICK ? 1 : 2,
    during: QUICK ? 1 : 2,
    drain: QUICK ? 0.5 : 0.8,
  },
};
const SESSIONS = QUICK
  ? [["idle", "tp5k", "tp1k", "latency", "slow"]]
  : [["idle", "tp5k", "tp1k", "latency"], ["slow"]];

const scenarioNames = flags.scenarios ? String(flags.scenarios).split(",") : Object.keys(PHASES);
for (const s of scenarioNames) {
  if (!PHASES[s]) {
    console.error(`unknown scenario ${s} (have ${Object.keys(PHASES).join(", ")})`);
    process.exit(2);
  }
}
const sessions = SESSIONS.map((names) => names.filter((n) => scenarioNames.includes(n))).filter((
  x,
) => x.length);

const onlyNames = flags.only
  ? new Set(String(flags.only).split(",").map((s) => s.trim().replaceAll("_", "-")))
  : undefined;
for (const w of onlyNames ?? []) {
  if (![...allTargets, ...crossTargets].some((t) => t.name === w)) {
    console.error(`unknown target ${w}; --list shows them`);
    process.exit(2);
  }
}
// The suites to run: those named, else those of the --only targets, else all.
const activeSuites = suites.length > 0
  ? suites
  : onlyNames
  ? SUITES.filter((s) =>
    [...allTargets, ...crossTargets].some((t) =>
      onlyNames.has(t.name) && (t.suite ?? "fanout") === s
    )
  )
  : SUITES;

function selectTargets() {
  if (!activeSuites.includes("fanout")) return [];
  if (!flags.only) return allTargets.filter((t) => !t.extra);
  const wanted = new Set([...onlyNames].filter((n) => allTargets.some((t) => t.name === n)));
  if (!flags.exact) {
    for (const t of allTargets.filter((t) => wanted.has(t.name))) {
      for (const r of [...(references[t.group] ?? []), ...references.all]) wanted.add(r);
    }
  }
  return allTargets.filter((t) => wanted.has(t.name));
}
const targets = selectTargets();

// ---------------------------------------------------------------------------------------------
// Processes

const hasTaskset = !flags["no-pin"] && os.cpus().length >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const live = new Set();

function killAll(signal = "SIGKILL") {
  for (const child of live) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
process.on("exit", () => killAll());
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** argv with the project binaries, raised open-file limit, and core pinning. */
function wrap(command, core) {
  const [first, ...rest] = command;
  const argv = [BIN[first] ?? first, ...rest];
  // exec keeps the pid, so child.pid is the server's pid for /proc readings.
  const limited = [
    "bash",
    "-c",
    'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"',
    "bench",
    ...argv,
  ];
  return hasTaskset ? ["taskset", "-c", String(core), ...limited] : limited;
}

function track(child) {
  live.add(child);
  child.on("exit", () => live.delete(child));
  return child;
}

function tail(text, n = 1500) {
  return text.length > n ? `…${text.slice(-n)}` : text;
}

async function startServer(target) {
  const argv = wrap(target.command, 0);
  const child = track(
    spawn(argv[0], argv.slice(1), {
      cwd: ROOT,
      env: { ...process.env, ...target.env, PORT: "0", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => {
    err = tail(err + d, 4000);
    if (VERBOSE) process.stderr.write(`[${target.name}] ${d}`);
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no READY within 30s; stderr: ${tail(err)}`)),
      30_000,
    );
    child.stdout.on("data", (d) => {
      out = tail(out + d, 4000);
      const m = /^READY (\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? sig}) before READY; stderr: ${tail(err)}`));
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return { child, port, pid: child.pid, stderr: () => err };
}

async function stop(child, graceMs = 1000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs the load client; resolves with {phaseName: {ok, result | error}} for every phase. */
function runLoadClient(options, timeoutMs) {
  const argv = wrap(["bun", "bench/load_client.ts", JSON.stringify(options)], 1);
  const child = track(
    spawn(argv[0], argv.slice(1), {
      cwd: ROOT,
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => {
    err = tail(err + d, 4000);
    if (VERBOSE) process.stderr.write(String(d));
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      const results = {};
      for (const line of out.split("\n")) {
        const m = /^PHASE (\S+) (.*)$/.exec(line);
        if (m) results[m[1]] = JSON.parse(m[2]);
      }
      const why =
        `load client exited (${code ?? sig})${sig === "SIGKILL" ? " after timeout" : ""}; ` +
        `stderr: ${tail(err, 600)}`;
      for (const p of options.phases) results[p.name] ??= { ok: false, error: why };
      resolve(results);
    });
  });
}

function phaseTimeoutS(p) {
  switch (p.kind) {
    case "slow":
      return p.before + p.during + p.drain + 20;
    case "idle":
      return p.steps.length * (p.settle + 2) + 20;
    case "throughput":
      return 8 * (p.probeSettle + p.probeMeasure) + 3 * (p.warmup + p.duration) + 25;
    default:
      return 3 * (p.warmup + p.duration) + 20;
  }
}

function machineTicks() {
  const f = readFileSync("/proc/stat", "latin1").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(
    Number,
  );
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * The machine may be shared (tests, builds): before each session wait until it has been idle
 * (< 0.15 cores busy) for 0.2 s, at most 30 s (quick: 5 s). Returns the busy cores seen last.
 */
async function waitQuiet() {
  const deadline = Date.now() + (QUICK ? 5_000 : 30_000);
  for (;;) {
    const a = machineTicks();
    await sleep(200);
    const b = machineTicks();
    const busyCores = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * os.cpus().length;
    if (busyCores < 0.15 || Date.now() > deadline) return busyCores;
    await sleep(200);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Auto window: found by probing in a target's first run, then reused (fixed) in its later
 * runs so the runs are comparable and shorter. windowsFound[target][phase] = W.
 */
const windowsFound = {};

/**
 * The reference whose window a target reuses: its group's first reference (bun-corked,
 * deno-loop, node-corked), so that a ratio compares both at the same window; a noisy probe
 * once gave a target a quarter of its reference's window and the ratio measured that, not the
 * server. Targets with a subprotocol (batched framing) are a different delivery mode and keep
 * their own probe; references probe for themselves.
 */
function referenceOf(target) {
  const ref = references[target.group]?.[0];
  if (ref === undefined || ref === target.name || target.subprotocol !== undefined) {
    return undefined;
  }
  return targets.some((t) => t.name === ref) ? ref : undefined;
}

/** One server process, one load-client process running `names` in order. */
async function runSession(target, names) {
  const phases = names.map((name) => {
    const p = { name, ...PHASES[name] };
    const w = windowsFound[target.name]?.[name] ?? windowsFound[referenceOf(target)]?.[name];
    if (p.kind === "throughput" && p.window === 0 && w) {
      Object.assign(p, { window: w, group: Math.max(1, w >> 1) });
    }
    return p;
  });
  const tq = performance.now();
  const busy = await waitQuiet();
  if (VERBOSE) {
    console.error(
      `  (waited ${((performance.now() - tq) / 1000).toFixed(1)} s for a quiet machine)`,
    );
  }
  if (busy >= 0.15) {
    console.error(
      `  (machine still busy after waiting: ${busy.toFixed(2)} cores used by other processes)`,
    );
  }
  let server;
  try {
    server = await startServer(target);
    const opts = {
      port: server.port,
      serverPid: server.pid,
      proto: target.proto ?? "ws",
      subprotocol: target.subprotocol,
      noisePct: NOISE_PCT,
      retries: QUICK ? 0 : 1,
      quietMs: QUICK ? 100 : 200,
      phases,
    };
    const timeout = phases.reduce((a, p) => a + phaseTimeoutS(p), 0) * 1000;
    const results = await runLoadClient(opts, timeout);
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      const why = `server died (${server.child.exitCode ?? server.child.signalCode}); ` +
        `stderr: ${tail(server.stderr(), 600)}`;
      for (const p of phases) if (results[p.name].ok === false) results[p.name].error += `; ${why}`;
    }
    return results;
  } catch (e) {
    return Object.fromEntries(
      phases.map((p) => [p.name, { ok: false, error: String(e?.message ?? e) }]),
    );
  } finally {
    await stop(server?.child);
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

function median(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Medians of the numeric figures the table and JSON summarize. */
function summarize(runs) {
  const ok = (s) => runs.map((r) => r[s]).filter((x) => x?.ok).map((x) => x.result);
  const tp1k = ok("tp1k");
  const tp5k = ok("tp5k");
  const lat = ok("latency");
  const idle = ok("idle");
  const slow = ok("slow");
  const idleKeys = [...new Set(idle.flatMap((r) => Object.keys(r.bytesPerConn)))];
  return {
    deliveriesPerSec1k: median(tp1k.map((r) => r.deliveriesPerSec)),
    deliveriesPerSec5k: median(tp5k.map((r) => r.deliveriesPerSec)),
    window1k: median(tp1k.map((r) => r.window)),
    window5k: median(tp5k.map((r) => r.window)),
    otherCpuPctMax: Math.max(
      0,
      ...[...tp1k, ...tp5k, ...lat, ...slow].map((r) => r.otherCpuPct ?? 0),
    ),
    serverCpuUsPerDelivery1k: median(tp1k.map((r) => r.serverCpuUsPerDelivery)),
    serverCpuUsPerDelivery5k: median(tp5k.map((r) => r.serverCpuUsPerDelivery)),
    serverCpuPct1k: median(tp1k.map((r) => r.serverCpuPct)),
    serverCpuPct5k: median(tp5k.map((r) => r.serverCpuPct)),
    clientCpuPct1k: median(tp1k.map((r) => r.clientCpuPct)),
    clientCpuPct5k: median(tp5k.map((r) => r.clientCpuPct)),
    latencyP50Ms: median(lat.map((r) => r.p50)),
    latencyP99Ms: median(lat.map((r) => r.p99)),
    latencyLost: median(lat.map((r) => r.expected - r.received)),
    idleBytesPerConn: Object.fromEntries(
      idleKeys.map((k) => [k, median(idle.map((r) => r.bytesPerConn[k]))]),
    ),
    // Before the forced GC (kept in the JSON for comparison; the table shows the GC'd figure).
    idleRawBytesPerConn: Object.fromEntries(
      idleKeys.map((k) => [k, median(idle.map((r) => r.rawBytesPerConn?.[k]))]),
    ),
    slowRssGrowthBytes: median(slow.map((r) => r.rssGrowthBytes)),
    slowOthersP99BeforeMs: median(slow.map((r) => r.othersP99BeforeMs)),
    slowOthersP99DuringMs: median(slow.map((r) => r.othersP99DuringMs)),
    slowFate: slowFate(slow),
    okRuns: Object.fromEntries(scenarioNames.map((s) => [s, ok(s).length])),
  };
}

/** Most common outcome for the paused client, with the median of its number. */
function slowFate(results) {
  if (results.length === 0) return null;
  const kinds = new Map();
  for (const r of results) {
    const kind = r.fate.replace(/[\d.]+s\b/, "#s").replace(/\d+ of \d+/, "# of #").replace(
      /all \d+/,
      "all #",
    );
    if (!kinds.has(kind)) kinds.set(kind, []);
    kinds.get(kind).push(r.fate);
  }
  const [kind, fates] = [...kinds.entries()].sort((a, b) => b[1].length - a[1].length)[0];
  const nums = (f) => [...f.matchAll(/[\d.]+/g)].map((m) => Number(m[0]));
  let text = kind;
  if (fates[0].match(/[\d.]+/)) {
    // substitute the medians of the numbers, position by position
    const cols = nums(fates[0]).map((_, i) => median(fates.map((f) => nums(f)[i])));
    let i = 0;
    text = fates[0].replace(/[\d.]+/g, () => fmtPlain(cols[i++]));
  }
  if (fates.length < results.length) text += ` (${fates.length}/${results.length} runs)`;
  return text;
}

function fmtPlain(n) {
  if (n === null || n === undefined) return "?";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function fmtRate(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(0);
}

function fmtNum(n, digits = 2) {
  if (n === null || n === undefined) return "–";
  return n.toFixed(digits);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const a = Math.abs(n);
  if (a >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  if (a >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n.toFixed(0)} B`;
}

function ratio(a, b) {
  return a === null || b === null || b === 0 ? null : a / b;
}

function ratioCell(sum, ref) {
  const r1 = ratio(sum.deliveriesPerSec1k, ref?.deliveriesPerSec1k ?? null);
  const r5 = ratio(sum.deliveriesPerSec5k, ref?.deliveriesPerSec5k ?? null);
  if (r1 === null && r5 === null) return null;
  return `${fmtNum(r1)} / ${fmtNum(r5)}`;
}

const REF_ABBR = {
  "bun-corked": "corked",
  "bun-publish": "publish",
  "deno-loop": "deno-loop",
  "node-corked": "node-corked",
  "node-loop": "node-loop",
};

function buildTable(results) {
  const byName = new Map(results.map((r) => [r.name, r.summary]));
  const head = [
    "target",
    "deliveries/s N=1k",
    "deliveries/s N=5k",
    "× runtime ref (1k / 5k)",
    "× socket.io (1k / 5k)",
    "server µs/delivery (1k / 5k)",
    "CPU % server/client (1k; 5k)",
    "latency p50 / p99 ms (1k @ 20/s)",
    "idle bytes/conn",
    "slow: server RSS growth",
    "slow: others' p99 before → during",
    "slow: paused client",
  ];
  const rows = results.map(({ name, group, summary: s }) => {
    const refs = (references[group] ?? []).filter((r) => byName.has(r));
    const refCell = refs
      .map((r) => {
        const c = ratioCell(s, byName.get(r));
        return c ? `${c} vs ${REF_ABBR[r] ?? r}` : null;
      })
      .filter(Boolean)
      .join("; ") || "–";
    const sio = references.all.find((r) => byName.has(r));
    const idleCell = Object.entries(s.idleBytesPerConn)
      .map(([k, v]) =>
        `${k.replace(/000\b/g, "k").replace(/^0-/, "0→").replace(/-/, "→")}: ${fmtBytes(v)}`
      )
      .join(", ") || "–";
    const cpu = (a, b) => `${a === null ? "–" : a.toFixed(0)}/${b === null ? "–" : b.toFixed(0)}`;
    return [
      name,
      `${fmtRate(s.deliveriesPerSec1k)}${s.window1k ? ` (W=${s.window1k})` : ""}`,
      `${fmtRate(s.deliveriesPerSec5k)}${s.window5k ? ` (W=${s.window5k})` : ""}`,
      refCell,
      (sio && ratioCell(s, byName.get(sio))) || "–",
      `${fmtNum(s.serverCpuUsPerDelivery1k)} / ${fmtNum(s.serverCpuUsPerDelivery5k)}`,
      `${cpu(s.serverCpuPct1k, s.clientCpuPct1k)}; ${cpu(s.serverCpuPct5k, s.clientCpuPct5k)}`,
      `${fmtNum(s.latencyP50Ms)} / ${fmtNum(s.latencyP99Ms)}`,
      idleCell,
      fmtBytes(s.slowRssGrowthBytes),
      `${fmtNum(s.slowOthersP99BeforeMs, 1)} → ${fmtNum(s.slowOthersP99DuringMs, 1)}`,
      s.slowFate ?? "–",
    ];
  });
  return [head, ...rows];
}

function markdownTable(rows) {
  const esc = (c) => String(c).replaceAll("|", "\\|");
  const [head, ...body] = rows;
  return [
    `| ${head.map(esc).join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`,
    ...body.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function textTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)]
    .join("\n");
}

// ---------------------------------------------------------------------------------------------

function versions() {
  const v = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return r.status === 0 ? r.stdout.split("\n")[0].trim() : null;
  };
  const pkg = (name) => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8"))
        .version;
    } catch {
      return null;
    }
  };
  return {
    bun: v(BIN.bun, ["--version"]),
    deno: v(BIN.deno, ["--version"]),
    node: process.version,
    crossws: pkg("crossws"),
    "socket.io": pkg("socket.io"),
  };
}

function legend(results) {
  const tp = PHASES.tp1k;
  const sl = PHASES.slow;
  const noisy = results.filter((r) => r.summary.otherCpuPctMax > NOISE_PCT).map((r) => r.name);
  const lines = [
    `- deliveries/s: messages received by all listening clients per second (all in one room, ~${tp.size}-byte`,
    `  envelopes), windowed closed loop: W messages in flight (published, not yet at every client); the`,
    `  publisher sends W/2 more in one write whenever W/2 have reached every client. ` +
    (WINDOW
      ? `W = ${WINDOW} (--window).`
      : `W is found per reference and N in the first run (doubled from ${PHASES.tp1k.windowStart} while deliveries/s improves`),
    ...(WINDOW ? [] : [
      `  by >= 5 %, until two doublings gain less, at most ${WINDOW_MAX}, and above 16 never more than ` +
      `${PHASES.tp1k.maxInFlightS} s of the server's`,
      `  deliveries in flight; the fastest window probed is used) and reused in later runs. A target`,
      `  compared with a reference runs at that reference's window (batched-framing targets probe their own).`,
    ]),
    `  Measured for ${tp.duration} s after ${tp.warmup} s warm-up.`,
    `- × runtime ref: deliveries/s over the reference's from the same invocation (Bun targets vs bun-corked`,
    `  and bun-publish, Deno targets vs deno-loop, Node targets vs node-corked and node-loop); × socket.io:`,
    `  over socketio-node.`,
    `- server µs/delivery: server process CPU time (utime+stime, all threads) in the window / deliveries.`,
    `  CPU %: server / load client in the window; a load client near 100 % means the figure may be client-bound.`,
    `- latency: publish → receive, measured in the load client (one clock), ${PHASES.latency.rate} msg/s to ` +
    `${PHASES.latency.clients} clients for ${PHASES.latency.duration} s;`,
    `  includes the load client's own time to read 1,000 sockets one after another.`,
    `- idle bytes/conn: server VmRSS difference between connection counts / connections added, each`,
    `  RSS read after the server ran a full GC (SIGUSR2, bench/servers/_gc.mjs; every target alike), so`,
    `  it is what the connections retain. The JSON also has the figures read before that GC.`,
    `- slow: ${sl.others} clients receive ${
      ((sl.size * sl.rate) / 1e6).toFixed(1)
    } MB/s each (${sl.size}-byte messages at ` +
    `${sl.rate}/s) while one more stops reading for ${sl.during} s.`,
    `  RSS growth = peak server RSS while it is paused − RSS before; the others' p99 before → during; what`,
    `  happened to the paused client: the close code it read after resuming, and "after" = when /proc/net/tcp`,
    `  showed the server side of its socket leave ESTABLISHED, else the send time of the last message it got`,
    `  before the close (both from the moment it paused); or how many messages it lost, from when.`,
    `- Every figure is the median of ${RUNS} run(s). Each run of a target: one fresh server for idle → tp5k`,
    `  → tp1k → latency (the load client reuses its connections), one fresh server for slow` +
    (QUICK ? ` (--quick: one server for all).` : `.`),
    ...(noisy.length
      ? [
        `- Other processes used > ${NOISE_PCT} % CPU during some measured window of: ${
          noisy.join(", ")
        }.`,
      ]
      : []),
  ];
  return lines.join("\n");
}

const NOISE_PCT = 25;

async function main() {
  if (targets.length > 0) await mainFanout();
  const cross = crossPlan();
  if (cross.length > 0) await mainCross(cross);
  if (activeSuites.includes("presence")) {
    // Its own script (bench/presence.mjs): the flags it shares with this one pass through.
    const pass = ["quick", "runs", "no-pin", "verbose", "out", "connections"].filter((k) =>
      k in flags
    );
    const argv = [
      "bench/presence.mjs",
      ...pass.map((k) => flags[k] === true ? `--${k}` : `--${k}=${flags[k]}`),
    ];
    const child = track(spawn(process.execPath, argv, { cwd: ROOT, stdio: "inherit" }));
    const code = await new Promise((r) => child.on("exit", (c) => r(c)));
    if (code !== 0) process.exitCode = 1;
  }
}

async function mainFanout() {
  const started = new Date();
  const t0 = performance.now();
  if (!existsSync(BIN.bun)) throw new Error(`missing ${BIN.bun}; run npm install`);
  const settings = {
    runs: RUNS,
    quick: QUICK,
    window: WINDOW,
    group: GROUP,
    pinned: hasTaskset ? "server on core 0, load client on core 1 (taskset)" : "not pinned",
    sessions,
    scenarios: Object.fromEntries(scenarioNames.map((s) => [s, PHASES[s]])),
  };
  console.error(
    `bench: ${targets.map((t) => t.name).join(", ")}; ${RUNS} run(s); scenarios ${
      scenarioNames.join(",")
    }; ` +
      `${settings.pinned}`,
  );
  const runs = new Map(targets.map((t) => [t.name, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const target of targets) {
      const record = {};
      for (const names of sessions) {
        const t = performance.now();
        const res = await runSession(target, names);
        Object.assign(record, res);
        for (const s of names) {
          if (
            WINDOW === 0 && res[s].ok && res[s].result.window && !windowsFound[target.name]?.[s]
          ) {
            (windowsFound[target.name] ??= {})[s] = res[s].result.window;
          }
        }
        const secs = ((performance.now() - t) / 1000).toFixed(1);
        console.error(`  run ${run}/${RUNS} ${target.name.padEnd(20)} ${secs.padStart(5)}s`);
        for (const s of names) console.error(`      ${s.padEnd(8)} ${brief(s, res[s])}`);
      }
      runs.get(target.name).push(record);
    }
  }
  const results = targets.map((t) => ({
    name: t.name,
    runtime: t.runtime,
    group: t.group,
    command: t.command.join(" "),
    summary: summarize(runs.get(t.name)),
    runs: runs.get(t.name),
  }));
  const rows = buildTable(results);
  const errors = results.flatMap((r) =>
    r.runs.flatMap((rec, i) =>
      Object.entries(rec).filter(([, v]) => !v.ok).map(([s, v]) =>
        `${r.name} run ${i + 1} ${s}: ${v.error}`
      )
    )
  );
  const seconds = (performance.now() - t0) / 1000;
  const machine = {
    cpu: os.cpus()[0]?.model ?? "?",
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
  };
  const ver = versions();
  const json = {
    startedAt: started.toISOString(),
    seconds,
    machine,
    versions: ver,
    settings,
    targets: results,
    errors,
  };
  mkdirSync(OUT, { recursive: true });
  const write = (file, text) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  write(path.join(OUT, "latest.json"), JSON.stringify(json, null, 2) + "\n");
  const md = [
    `# hubbub fan-out bench`,
    ``,
    `${started.toISOString()} · ${
      seconds.toFixed(0)
    } s · ${machine.cores} × ${machine.cpu}, ${machine.memGiB} GiB · ` +
    `Bun ${ver.bun} · Deno ${
      ver.deno?.replace(/^deno /, "")
    } · Node ${ver.node} · crossws ${ver.crossws} · ` +
    `socket.io ${ver["socket.io"]} · ${settings.pinned}${QUICK ? " · --quick" : ""}`,
    ``,
    markdownTable(rows),
    ``,
    legend(results),
    ...(errors.length ? [``, `Errors:`, ...errors.map((e) => `- ${e}`)] : []),
    ``,
  ].join("\n");
  write(path.join(OUT, "latest.md"), md);
  write(path.join(OUT, "latest.svg"), fanoutChart(results, started));
  console.log(textTable(rows));
  if (errors.length) {
    console.log(
      `\n${errors.length} scenario(s) failed:\n${errors.map((e) => `  ${e}`).join("\n")}`,
    );
  }
  console.log(
    `\n${seconds.toFixed(0)} s; wrote ${
      path.relative(ROOT, OUT)
    }/latest.json, latest.md and latest.svg`,
  );
}

// ---------------------------------------------------------------------------------------------
// Charts

/** The fan-out results as an SVG chart: deliveries/s per target at N=1k and N=5k. */
function fanoutChart(results, started) {
  const bars = (key) =>
    results.map((r) => ({
      label: r.name,
      value: r.summary[key],
      kind: r.name.startsWith("hubbub") ? "ours" : "ref",
    }));
  return barChart({
    title: "hubbub fan-out: deliveries/s, one room",
    subtitle:
      `${started.toISOString()} · median of ${RUNS} run(s) · bench/results/latest.md has the table`,
    panels: [
      { title: "N = 1,000 listeners", unit: "/s", bars: bars("deliveriesPerSec1k") },
      { title: "N = 5,000 listeners", unit: "/s", bars: bars("deliveriesPerSec5k") },
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-replica and history suites (bench/README.md, "Cross-replica and history")

/** Phases of these suites: the throughput phase of the fan-out table at 1 or 1,000 listeners. */
const CROSS_PHASES = {
  x1: throughputPhase(1),
  x1k: throughputPhase(1000),
  x1kr: throughputPhase(1000),
};
const CROSS_LABEL = {
  x1: "1 room × 1 listener",
  x1k: "1 room × 1,000 listeners",
  x1kr: "1,000 rooms × 1 listener",
};
/** One server per session: one room (1, then 1,000 listeners), then 1,000 rooms of one. */
const CROSS_SESSIONS = [
  { phases: ["x1", "x1k"], env: {} },
  { phases: ["x1kr"], env: { BENCH_ROOMS: "1000" } },
];
/** The raw ceiling has no listeners to spread: one channel, then 1,000 channels. */
const RAW_SESSIONS = [
  { phases: ["x1"], env: {} },
  { phases: ["x1kr"], env: { BENCH_ROOMS: "1000" } },
];
const HISTORY_SESSIONS = [{ phases: ["x1k"], env: {} }];
/** History targets also time recovery: 1,000 clients, 100 missed messages each. */
const RECOVERY = { clients: 1000, missed: 100 };
const HISTORY_RECOVERY_SESSIONS = [...HISTORY_SESSIONS, {
  phases: ["recover"],
  env: {},
  recovery: true,
}];
/** A history target and the same setup with a plain room. */
const PLAIN_OF = {
  "hubbub-bun-history": "hubbub-bun-local",
  "hubbub-deno-history": "hubbub-deno-local",
  "hubbub-bun-redis-history": "hubbub-bun-redis",
};
/** Whose window a target reuses (the reference it is compared with; that runs first). */
const CROSS_WINDOW_OF = {
  "hubbub-bun-redis": "bridge-bun-redis",
  "hubbub-bun-local": "bridge-bun-redis",
  ...PLAIN_OF,
};
/** Redis runs on the servers' core: replicas and Redis share core 0, the load client core 1. */
const REDIS_CORE = 0;
const CROSS_NOISE_PCT = 1000; // Redis's own CPU counts as "other processes": never re-measure for it

/** Which cross/history targets run, with their sessions, in targets.mjs order. */
function crossPlan() {
  const plan = new Map();
  const byName = new Map(crossTargets.map((t) => [t.name, t]));
  const want = (t) => !onlyNames || onlyNames.has(t.name);
  const sessionsOf = (t) =>
    t.suite === "history"
      ? (PLAIN_OF[t.name] ? HISTORY_RECOVERY_SESSIONS : HISTORY_SESSIONS)
      : t.raw
      ? RAW_SESSIONS
      : CROSS_SESSIONS;
  const add = (t, sessions) => {
    const have = plan.get(t.name);
    if (have === undefined) plan.set(t.name, { target: t, sessions });
    else if (sessions === CROSS_SESSIONS) have.sessions = sessions; // x1k included
  };
  for (const suite of ["cross", "history"]) {
    if (!activeSuites.includes(suite)) continue;
    // `extra` targets run only when named in --only.
    const picked = crossTargets.filter((t) =>
      t.suite === suite && want(t) && (!t.extra || onlyNames?.has(t.name))
    );
    for (const t of picked) add(t, sessionsOf(t));
    if (onlyNames && flags.exact) continue;
    // The references every ratio needs.
    if (suite === "cross" && picked.length > 0) {
      for (const t of crossTargets.filter((t) => t.suite === "cross" && !t.extra)) {
        add(t, sessionsOf(t));
      }
    }
    for (const t of picked) {
      const plain = byName.get(PLAIN_OF[t.name]);
      if (plain && !plan.has(plain.name)) add(plain, HISTORY_SESSIONS);
      if (PLAIN_OF[t.name] === undefined && suite === "history") {
        // a plain target picked alone: nothing to add
      }
    }
  }
  return crossTargets.filter((t) => plan.has(t.name)).map((t) => plan.get(t.name));
}

function findRedisServer() {
  if (process.env.REDIS_SERVER) {
    return existsSync(process.env.REDIS_SERVER) ? process.env.REDIS_SERVER : undefined;
  }
  return [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/local/bin", "/usr/sbin"]
    .map((dir) => path.join(dir, "redis-server"))
    .find((p) => existsSync(p));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A private redis-server (no persistence) on a free port, pinned to REDIS_CORE. */
async function startRedisServer() {
  const bin = findRedisServer();
  if (bin === undefined) throw new Error("redis-server not found (set REDIS_SERVER or install it)");
  const port = await freePort();
  const argv = wrap([
    bin,
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
  ], REDIS_CORE);
  const child = track(spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }));
  let log = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server: no start: ${tail(log)}`)),
      10_000,
    );
    const onData = (d) => {
      log = tail(log + d, 4000);
      if (log.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${tail(log)}`));
    });
  });
  return { child, url: `redis://127.0.0.1:${port}` };
}

/** The raw ceiling: bench/servers/redis_raw.ts measures itself, one phase per session. */
async function runRaw(target, phases, env) {
  const out = {};
  for (const p of phases) {
    const settings = QUICK
      ? { warmup: 0.1, duration: 0.5, probe: 0.15 }
      : { warmup: p.warmup, duration: p.duration, probe: 0.3 };
    const argv = wrap([...target.command, JSON.stringify(settings)], 0);
    const child = track(
      spawn(argv[0], argv.slice(1), {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr = tail(stderr + d, 4000);
      if (VERBOSE) process.stderr.write(`[${target.name}] ${d}`);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await new Promise((r) => child.on("exit", (c, sig) => r(c ?? sig)));
    clearTimeout(timer);
    const m = /^RESULT (.*)$/m.exec(stdout);
    out[p.name] = m
      ? { ok: true, result: JSON.parse(m[1]) }
      : { ok: false, error: `raw ceiling exited (${code}) without a result: ${tail(stderr, 600)}` };
  }
  return out;
}

/** The recovery client (bench/recovery_client.ts, Bun, on the load client's core). */
async function runRecovery(server) {
  const settings = { port: server.port, serverPid: server.pid, ...RECOVERY };
  const argv = wrap(["bun", "bench/recovery_client.ts", JSON.stringify(settings)], 1);
  const child = track(
    spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => {
    stderr = tail(stderr + d, 4000);
    if (VERBOSE) process.stderr.write(`[recovery] ${d}`);
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const code = await new Promise((r) => child.on("exit", (c, sig) => r(c ?? sig)));
  clearTimeout(timer);
  const m = /^RESULT (.*)$/m.exec(stdout);
  return m ? { ok: true, result: JSON.parse(m[1]) } : {
    ok: false,
    error: `recovery client exited (${code}) without a result: ${tail(stderr, 600)}`,
  };
}

/** One session of a cross/history target: its own redis-server (if any) and server process. */
async function runCrossSession(target, session) {
  const phases = session.phases.map((name) => {
    const p = { name, ...(CROSS_PHASES[name] ?? {}) };
    // As in the fan-out table, a target compared with a reference runs at its window.
    const w = windowsFound[target.name]?.[name] ??
      windowsFound[CROSS_WINDOW_OF[target.name]]?.[name];
    if (p.window === 0 && w) Object.assign(p, { window: w, group: Math.max(1, w >> 1) });
    return p;
  });
  await waitQuiet();
  let redis;
  let server;
  try {
    if (target.redis) redis = await startRedisServer();
    const env = { ...target.env, ...session.env, ...(redis ? { REDIS_URL: redis.url } : {}) };
    if (target.raw) return await runRaw(target, phases, env);
    server = await startServer({ ...target, env });
    if (session.recovery) return { recover: await runRecovery(server) };
    const opts = {
      port: server.port,
      serverPid: server.pid,
      proto: "ws",
      noisePct: target.redis ? CROSS_NOISE_PCT : NOISE_PCT,
      retries: QUICK ? 0 : 1,
      quietMs: QUICK ? 100 : 200,
      phases,
    };
    const timeout = phases.reduce((a, p) => a + phaseTimeoutS(p), 0) * 1000;
    const results = await runLoadClient(opts, timeout);
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      const why = `server died (${server.child.exitCode ?? server.child.signalCode}); ` +
        `stderr: ${tail(server.stderr(), 600)}`;
      for (const p of phases) if (results[p.name].ok === false) results[p.name].error += `; ${why}`;
    }
    return results;
  } catch (e) {
    return Object.fromEntries(
      phases.map((p) => [p.name, { ok: false, error: String(e?.message ?? e) }]),
    );
  } finally {
    await stop(server?.child);
    await stop(redis?.child);
  }
}

function summarizeCross(runs) {
  const out = {};
  const rec = runs.map((r) => r.recover).filter((x) => x?.ok).map((x) => x.result);
  if (rec.length > 0) {
    out.recover = {
      clients: rec[0].clients,
      missed: rec[0].missed,
      totalMs: median(rec.map((r) => r.totalMs)),
      perClientP50Ms: median(rec.map((r) => r.perClientP50Ms)),
      perClientP99Ms: median(rec.map((r) => r.perClientP99Ms)),
      serverCpuMs: median(rec.map((r) => r.serverCpuMs)),
      // Counted, not sampled: clients that did not get exactly the missed messages, in order.
      wrongMax: Math.max(...rec.map((r) => r.wrong)),
      notRecoveredMax: Math.max(...rec.map((r) => r.clients - r.recovered)),
      okRuns: rec.length,
    };
  }
  for (const phase of Object.keys(CROSS_PHASES)) {
    const ok = runs.map((r) => r[phase]).filter((x) => x?.ok).map((x) => x.result);
    if (ok.length === 0) continue;
    out[phase] = {
      deliveriesPerSec: median(ok.map((r) => r.deliveriesPerSec)),
      window: median(ok.map((r) => r.window)),
      serverCpuUsPerDelivery: median(ok.map((r) => r.serverCpuUsPerDelivery)),
      serverCpuPct: median(ok.map((r) => r.serverCpuPct)),
      clientCpuPct: median(ok.map((r) => r.clientCpuPct)),
      // Redis's CPU is part of this (it is another process).
      otherCpuPct: median(ok.map((r) => r.otherCpuPct)),
      okRuns: ok.length,
    };
  }
  return out;
}

/** The goals of issue 15, checked against this run's medians. */
function crossGoals(by) {
  const r = (a, b, phase) =>
    ratio(by[a]?.[phase]?.deliveriesPerSec ?? null, by[b]?.[phase]?.deliveriesPerSec ?? null);
  const goal = (what, value, want) => ({
    what,
    ratio: value,
    want,
    met: value === null ? null : value >= want,
  });
  return [
    goal(
      "cross-replica messages/s (1 room × 1) vs the raw Redis ceiling",
      r("hubbub-bun-redis", "redis-raw", "x1"),
      0.8,
    ),
    goal(
      "cross-replica messages/s (1 room × 1) vs the hand-written bridge",
      r("hubbub-bun-redis", "bridge-bun-redis", "x1"),
      1.0,
    ),
    goal(
      "1,000 listeners across Redis vs the same on one process",
      r("hubbub-bun-redis", "hubbub-bun-local", "x1k"),
      0.9,
    ),
  ];
}

function crossTables(results) {
  const by = Object.fromEntries(results.map((r) => [r.name, r.summary]));
  const cell = (name, phase) => {
    const s = by[name]?.[phase];
    return s ? `${fmtRate(s.deliveriesPerSec)}${s.window ? ` (W=${s.window})` : ""}` : "–";
  };
  const rat = (name, ref, phases) =>
    by[ref] && name !== ref
      ? phases.map((p) =>
        fmtNum(
          ratio(by[name]?.[p]?.deliveriesPerSec ?? null, by[ref]?.[p]?.deliveriesPerSec ?? null),
        )
      ).join(" / ")
      : "–";
  const us = (name) =>
    ["x1", "x1k", "x1kr"].map((p) => fmtNum(by[name]?.[p]?.serverCpuUsPerDelivery ?? null)).join(
      " / ",
    );
  const other = (name) =>
    ["x1", "x1k", "x1kr"].map((p) => {
      const v = by[name]?.[p]?.otherCpuPct;
      return v === undefined || v === null ? "–" : v.toFixed(0);
    }).join(" / ");
  const crossRows = activeSuites.includes("cross")
    ? results.filter((r) => r.suite === "cross")
    : [];
  const cross = [[
    "target",
    "1 room × 1: msg/s",
    "1 room × 1,000: deliveries/s",
    "1,000 rooms × 1: deliveries/s",
    "× raw ceiling (1×1 / 1k rooms)",
    "× hand-written bridge (1×1 / 1×1k / 1k rooms)",
    "× one process (1×1k / 1k rooms)",
    "server µs/delivery (1×1 / 1×1k / 1k rooms)",
    "other CPU %, Redis incl. (1×1 / 1×1k / 1k rooms)",
  ]];
  for (const { name } of crossRows) {
    cross.push([
      name,
      cell(name, "x1"),
      cell(name, "x1k"),
      cell(name, "x1kr"),
      rat(name, "redis-raw", ["x1", "x1kr"]),
      rat(name, "bridge-bun-redis", ["x1", "x1k", "x1kr"]),
      name === "hubbub-bun-local" || name === "redis-raw"
        ? "–"
        : rat(name, "hubbub-bun-local", ["x1k", "x1kr"]),
      name === "redis-raw" ? "–" : us(name),
      name === "redis-raw" ? "–" : other(name),
    ]);
  }
  const history = [[
    "target",
    "1 room × 1,000: deliveries/s",
    "× the same with a plain room",
    "server µs/delivery",
    `${RECOVERY.clients} clients recover ${RECOVERY.missed} missed each: all done, ms`,
    "per client p50 / p99 ms",
    "server CPU ms",
    "clients wrong / not recovered",
  ]];
  for (const r of results.filter((r) => r.suite === "history")) {
    const plain = PLAIN_OF[r.name];
    history.push([
      r.name,
      cell(r.name, "x1k"),
      plain ? `${rat(r.name, plain, ["x1k"])} vs ${plain}` : "–",
      fmtNum(by[r.name]?.x1k?.serverCpuUsPerDelivery ?? null),
      fmtNum(by[r.name]?.recover?.totalMs ?? null, 0),
      by[r.name]?.recover
        ? `${fmtNum(by[r.name].recover.perClientP50Ms, 0)} / ${
          fmtNum(by[r.name].recover.perClientP99Ms, 0)
        }`
        : "–",
      fmtNum(by[r.name]?.recover?.serverCpuMs ?? null, 0),
      by[r.name]?.recover
        ? `${by[r.name].recover.wrongMax} / ${by[r.name].recover.notRecoveredMax}`
        : "–",
    ]);
  }
  return { cross, history, goals: crossGoals(by) };
}

function crossLegend() {
  return [
    `- Cross-replica: replica A (the publisher's hub) and replica B (the listeners' hub) are two hubs`,
    `  in one server process (bench/servers/hubbub_cross_bun.ts), each with its own redisBackplane`,
    `  (two connections each) to one private redis-server: every message goes A → Redis → B. The server`,
    `  process and Redis share core 0, the load client has core 1. The phases are the fan-out table's`,
    `  throughput phase (windowed closed loop, auto window, ~100-byte envelopes) at 1 and 1,000`,
    `  listeners in one room, and at 1,000 rooms of one listener (each publish = 1,000 emits, one per`,
    `  room). deliveries/s = copies received by all listeners per second (= messages/s with one).`,
    `- redis-raw: one node-redis publisher pipelining PUBLISH to one node-redis subscriber, no`,
    `  WebSockets (bench/servers/redis_raw.ts, Bun): the same ~100-byte payloads and closed loop, windows`,
    `  16/64/256 probed, the best measured; "1k rooms" publishes each message to 1,000 channels.`,
    `- bridge-bun-redis: a hand-written bridge: the corked Bun queues of bun-corked fed by a node-redis`,
    `  subscriber, one PUBLISH per message and room (bench/servers/bridge_bun_redis.ts).`,
    `- hubbub-bun-local: the same server without Redis: one hub, publisher and listeners on it.`,
    `- hubbub-bun-redis-signed: hubbub-bun-redis with a backplaneSecret: every payload signed on A and`,
    `  checked on B (HMAC-SHA256). hubbub-bun-redis-format1 (extra, A/B only): bus format 1 envelopes.`,
    `- "other CPU %" is everything but the server and the load client, Redis included; Redis targets are`,
    `  never re-measured for it (the fan-out table re-measures windows above ${NOISE_PCT} %).`,
    `- History: the same server with BENCH_HISTORY=1, the room keeping a history (maxMessages 1000):`,
    `  on one process in the hub's memory store (Bun, Deno), across Redis in a RedisHistoryStore shared`,
    `  by both replicas; compared with the same setup and a plain room.`,
    `- Recovery (bench/recovery_client.ts): ${RECOVERY.clients} clients subscribe to the room themselves and note`,
    `  their position; all disconnect; ${RECOVERY.missed} messages are published; all reconnect (200 at a time) and`,
    `  subscribe with recover. "all done" = first reconnect → the last client has all ${RECOVERY.missed}; per client =`,
    `  its subscribe → its last missed message; server CPU over that time; each client must get exactly the`,
    `  missed offsets, in order, once (wrong) and recovered: true (not recovered), both counted.`,
  ].join("\n");
}

function crossChart(results, started) {
  const by = Object.fromEntries(results.map((r) => [r.name, r.summary]));
  const kind = (name) =>
    name === "redis-raw" ? "ceiling" : name.startsWith("hubbub") ? "ours" : "ref";
  const panel = (phase) => ({
    title: `${CROSS_LABEL[phase]}: deliveries/s`,
    unit: "/s",
    bars: results.filter((r) => r.suite === "cross" && (phase !== "x1k" || !r.target.raw)).map((
      r,
    ) => {
      const v = by[r.name]?.[phase]?.deliveriesPerSec ?? null;
      const ceil = by["redis-raw"]?.[phase]?.deliveriesPerSec ?? null;
      const local = by["hubbub-bun-local"]?.[phase]?.deliveriesPerSec ?? null;
      const note = r.name === "redis-raw" || r.name === "hubbub-bun-local"
        ? undefined
        : ceil !== null && phase !== "x1k"
        ? `${fmtNum(ratio(v, ceil))}× raw ceiling`
        : local !== null
        ? `${fmtNum(ratio(v, local))}× one process`
        : undefined;
      return { label: r.name, value: v, kind: kind(r.name), note };
    }),
  });
  return barChart({
    title: "hubbub across replicas (Redis pub/sub) vs the raw Redis ceiling",
    subtitle:
      `${started.toISOString()} · median of ${RUNS} run(s) · bench/results/cross.md has the table`,
    panels: ["x1", "x1k", "x1kr"].map(panel),
  });
}

async function mainCross(plan) {
  const started = new Date();
  const t0 = performance.now();
  console.error(
    `bench (cross/history): ${plan.map((p) => p.target.name).join(", ")}; ${RUNS} run(s)`,
  );
  const runs = new Map(plan.map((p) => [p.target.name, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const { target, sessions: ss } of plan) {
      const record = {};
      for (const session of ss) {
        const t = performance.now();
        const res = await runCrossSession(target, session);
        Object.assign(record, res);
        for (const s of session.phases) {
          if (res[s]?.ok && res[s].result.window && !windowsFound[target.name]?.[s]) {
            (windowsFound[target.name] ??= {})[s] = res[s].result.window;
          }
        }
        const secs = ((performance.now() - t) / 1000).toFixed(1);
        console.error(`  run ${run}/${RUNS} ${target.name.padEnd(24)} ${secs.padStart(5)}s`);
        for (const s of session.phases) {
          const r = res[s];
          if (s === "recover" && r?.ok) {
            console.error(
              `      recover all ${r.result.clients} in ${fmtNum(r.result.totalMs, 0)} ms (p99 ${
                fmtNum(r.result.perClientP99Ms, 0)
              } ms), wrong ${r.result.wrong}, recovered ${r.result.recovered}`,
            );
            continue;
          }
          console.error(
            `      ${s.padEnd(5)} ${
              !r?.ok
                ? `ERROR ${String(r?.error).slice(0, 200)}`
                : target.raw
                ? `${fmtRate(r.result.deliveriesPerSec)} del/s (W=${r.result.window})`
                : brief("tp1k", r)
            }`,
          );
        }
      }
      runs.get(target.name).push(record);
    }
  }
  const results = plan.map(({ target }) => ({
    name: target.name,
    suite: target.suite,
    runtime: target.runtime,
    command: target.command.join(" "),
    target,
    summary: summarizeCross(runs.get(target.name)),
    runs: runs.get(target.name),
  }));
  const { cross, history, goals } = crossTables(results);
  const errors = results.flatMap((r) =>
    r.runs.flatMap((rec, i) =>
      Object.entries(rec).filter(([, v]) => !v.ok).map(([s, v]) =>
        `${r.name} run ${i + 1} ${s}: ${v.error}`
      )
    )
  );
  const seconds = (performance.now() - t0) / 1000;
  const goalLines = goals.map((g) =>
    `- ${g.what}: ${g.ratio === null ? "not measured" : `${fmtNum(g.ratio)}×`} (goal ≥ ${
      fmtNum(g.want, 1)
    }×${g.met === null ? "" : g.met ? ", met" : ", not met"})`
  );
  mkdirSync(OUT, { recursive: true });
  const write = (file, text) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  write(
    path.join(OUT, "cross.json"),
    JSON.stringify(
      {
        startedAt: started.toISOString(),
        seconds,
        settings: { runs: RUNS, quick: QUICK, phases: CROSS_PHASES, redisCore: REDIS_CORE },
        goals,
        targets: results.map(({ target: _t, ...r }) => r),
        errors,
      },
      null,
      2,
    ) + "\n",
  );
  const md = [
    `# hubbub cross-replica and history bench`,
    ``,
    `${started.toISOString()} · ${seconds.toFixed(0)} s · ${RUNS} run(s)${
      QUICK ? " · --quick" : ""
    }`,
    ``,
    ...(cross.length > 1
      ? [`## Cross-replica (Redis)`, ``, markdownTable(cross), ``, ...goalLines, ``]
      : []),
    ...(history.length > 1 ? [`## History rooms`, ``, markdownTable(history), ``] : []),
    crossLegend(),
    ...(errors.length ? [``, `Errors:`, ...errors.map((e) => `- ${e}`)] : []),
    ``,
  ].join("\n");
  write(path.join(OUT, "cross.md"), md);
  if (cross.length > 1) write(path.join(OUT, "cross.svg"), crossChart(results, started));
  if (cross.length > 1) console.log(`\n${textTable(cross)}\n\n${goalLines.join("\n")}`);
  if (history.length > 1) console.log(`\n${textTable(history)}`);
  if (errors.length) {
    console.log(
      `\n${errors.length} scenario(s) failed:\n${errors.map((e) => `  ${e}`).join("\n")}`,
    );
  }
  console.log(
    `\n${seconds.toFixed(0)} s; wrote ${path.relative(ROOT, OUT)}/cross.json, cross.md` +
      (cross.length > 1 ? " and cross.svg" : ""),
  );
}

function brief(s, res) {
  if (!res.ok) return `ERROR ${String(res.error).slice(0, 200)}`;
  const r = res.result;
  switch (s) {
    case "tp1k":
    case "tp5k":
      return `${fmtRate(r.deliveriesPerSec)} del/s (W=${r.window}), ${
        fmtNum(r.serverCpuUsPerDelivery)
      } µs/del, ` +
        `cpu srv ${r.serverCpuPct.toFixed(0)}% cli ${r.clientCpuPct.toFixed(0)}% other ${
          r.otherCpuPct.toFixed(0)
        }%` +
        (r.seqErrors ? `, ${r.seqErrors} seq errors` : "");
    case "latency":
      return `p50 ${fmtNum(r.p50)} ms, p99 ${fmtNum(r.p99)} ms, ${r.received}/${r.expected}`;
    case "idle":
      return Object.entries(r.bytesPerConn).map(([k, v]) => `${k}: ${fmtBytes(v)}`).join(", ");
    case "slow":
      return `rss +${fmtBytes(r.rssGrowthBytes)}, p99 ${fmtNum(r.othersP99BeforeMs, 1)} → ` +
        `${fmtNum(r.othersP99DuringMs, 1)} ms, ${r.fate}`;
  }
  return "";
}

main().catch((e) => {
  console.error(e);
  killAll();
  process.exit(1);
});
