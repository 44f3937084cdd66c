#!/usr/bin/env node
// Fan-out benchmark harness. `npm run bench` (= node bench/run.mjs) [flags]; see --help and
// bench/README.md. Starts each target server as its own process (pinned to core 0), drives it
// with bench/load_client.ts in a separate Bun process (pinned to core 1), one scenario at a time,
// and writes bench/results/latest.{json,md}.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { references, targets as allTargets } from "./targets.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = {
  bun: path.join(ROOT, "node_modules/.bin/bun"),
  deno: path.join(ROOT, "node_modules/.bin/deno"),
  node: process.execPath,
};

// ---------------------------------------------------------------------------------------------
// Flags

const HELP = `usage: node bench/run.mjs [flags]
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
for (const arg of process.argv.slice(2)) {
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
  for (const t of allTargets) {
    console.log(
      `${t.name.padEnd(22)} ${t.runtime.padEnd(5)} ${t.extra ? "(extra) " : ""}${
        t.command.join(" ")
      }`,
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

function selectTargets() {
  if (!flags.only) return allTargets.filter((t) => !t.extra);
  const wanted = new Set(String(flags.only).split(",").map((s) => s.trim().replaceAll("_", "-")));
  for (const w of wanted) {
    if (!allTargets.some((t) => t.name === w)) {
      console.error(`unknown target ${w}; --list shows them`);
      process.exit(2);
    }
  }
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
  console.log(textTable(rows));
  if (errors.length) {
    console.log(
      `\n${errors.length} scenario(s) failed:\n${errors.map((e) => `  ${e}`).join("\n")}`,
    );
  }
  console.log(
    `\n${seconds.toFixed(0)} s; wrote ${path.relative(ROOT, OUT)}/latest.json and latest.md`,
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
