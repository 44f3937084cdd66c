#!/usr/bin/env node
// Presence churn bench (issue 14; bench/README.md, "Presence churn"). `npm run bench -- presence`
// runs it through bench/run.mjs; alone: node bench/presence.mjs [flags].
//
// Each run: a private redis-server (no persistence) and one hub process
// (bench/servers/hubbub_presence.ts on Bun: redisBackplane + RedisPresenceStore) pinned to core
// 0, the load client (bench/presence_client.ts, Bun) pinned to core 1. The client opens
// CONNECTIONS WebSockets (two tabs per user), then, in rooms without events ("q") and with
// events ("p"), makes them all join one of ROOMS rooms, churn (leave, join the next) and leave;
// then closes them. Each phase: store writes per second (counted exactly at the hub: a join is
// one add, a leave one remove, a connect or disconnect one user-count write, coalesced per
// user), Redis CPU per write (INFO cpu used_cpu_sys + used_cpu_user, before and after) and the
// hub's. Median of the runs; writes bench/results/presence.{json,md}.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUN = path.join(ROOT, "node_modules/.bin/bun");

const HELP = `usage: node bench/presence.mjs [flags]   (or: npm run bench -- presence [flags])
  --quick             1 run of 2,000 connections
  --runs=N            runs; every figure is the median (default 3, quick 1). A run starts only
                      if it would end within 85 s of the start (as long as the longest run so
                      far), and a run is killed after 80 s: the whole stays under ~90 s
  --connections=N     connections (default 10000, quick 2000)
  --rooms=N           rooms per mode (default 100)
  --no-pin            do not pin processes to cores with taskset
  --verbose           pass the hub's and the load client's stderr through
  --out=DIR           results directory (default bench/results)`;

const flags = {};
for (const arg of process.argv.slice(2)) {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(arg);
  if (!m) {
    console.error(`unknown argument ${arg}\n${HELP}`);
    process.exit(2);
  }
  flags[m[1]] = m[2] ?? true;
}
const KNOWN = ["quick", "runs", "connections", "rooms", "no-pin", "verbose", "out", "help"];
for (const k of Object.keys(flags)) {
  if (!KNOWN.includes(k)) {
    console.error(`unknown flag --${k}\n${HELP}`);
    process.exit(2);
  }
}
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
const QUICK = Boolean(flags.quick);
const RUNS = Number(flags.runs ?? (QUICK ? 1 : 3));
const CONNECTIONS = Number(flags.connections ?? (QUICK ? 2000 : 10_000));
const ROOMS = Number(flags.rooms ?? 100);
const VERBOSE = Boolean(flags.verbose);
const OUT = path.resolve(ROOT, flags.out ?? "bench/results");
if (![RUNS, CONNECTIONS, ROOMS].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error("--runs, --connections and --rooms must be positive integers");
  process.exit(2);
}
/** A run starts only if it would end within BUDGET_S; one is killed after RUN_LIMIT_S. */
const BUDGET_S = 85;
const RUN_LIMIT_S = 80;
const PHASES = [
  "connect",
  "q-join",
  "q-churn",
  "q-leave",
  "p-join",
  "p-churn",
  "p-leave",
  "disconnect",
];
const ROUNDS = { q: 1, p: 1 };

const hasTaskset = !flags["no-pin"] && os.cpus().length >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

/** argv with a raised open-file limit and core pinning (exec keeps the pid). */
function wrap(argv, core) {
  const limited = [
    "bash",
    "-c",
    'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"',
    "bench",
    ...argv,
  ];
  return hasTaskset ? ["taskset", "-c", String(core), ...limited] : limited;
}

const tail = (s, n = 1500) => (s.length > n ? `…${s.slice(-n)}` : s);

/** Spawn, and resolve once stdout or stderr matches `ready` (or reject when it exits first). */
function start(name, argv, core, env, ready) {
  const w = wrap(argv, core);
  const child = spawn(w[0], w.slice(1), {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  child.on("exit", () => live.delete(child));
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: not ready in 30 s: ${tail(out)}`)),
      30_000,
    );
    const take = (d) => {
      out = tail(out + d, 8000);
      if (VERBOSE) process.stderr.write(`[${name}] ${d}`);
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out });
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? sig}): ${tail(out)}`));
    });
  });
}

async function stop(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
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

/** One run: Redis and the hub on core 0, the load client on core 1. */
async function run() {
  const bin = findRedisServer();
  if (bin === undefined) throw new Error("redis-server not found (set REDIS_SERVER or install it)");
  const redisPort = await freePort();
  let redis;
  let hub;
  try {
    redis = await start(
      "redis",
      [
        bin,
        ...["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        ...["--protected-mode", "no"],
      ],
      0,
      {},
      /Ready to accept connections/,
    );
    hub = await start("hub", [BUN, "bench/servers/hubbub_presence.ts"], 0, {
      PORT: "0",
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    }, /^READY (\d+)\s*$/m);
    const options = {
      port: Number(hub.match[1]),
      serverPid: hub.child.pid,
      redisPort,
      connections: CONNECTIONS,
      rooms: ROOMS,
      connectConcurrency: 256,
      rounds: ROUNDS,
      modes: ["q", "p"],
    };
    const client = spawn(
      ...(() => {
        const w = wrap([BUN, "bench/presence_client.ts", JSON.stringify(options)], 1);
        return [w[0], w.slice(1)];
      })(),
      { cwd: ROOT, env: process.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    live.add(client);
    let out = "";
    let err = "";
    client.stdout.on("data", (d) => (out += d));
    client.stderr.on("data", (d) => {
      err = tail(err + d, 4000);
      if (VERBOSE) process.stderr.write(String(d));
    });
    const timer = setTimeout(() => client.kill("SIGKILL"), RUN_LIMIT_S * 1000);
    const code = await new Promise((r) => client.on("exit", (c, sig) => r(c ?? sig)));
    clearTimeout(timer);
    live.delete(client);
    const results = {};
    for (const line of out.split("\n")) {
      const m = /^PHASE (\S+) (.*)$/.exec(line);
      if (m) results[m[1]] = JSON.parse(m[2]).result;
    }
    if (!out.includes("\nDONE")) {
      throw new Error(
        `load client exited (${code}) before DONE: ${tail(err, 800)}\nhub: ${
          tail(hub.output(), 800)
        }`,
      );
    }
    return results;
  } finally {
    await stop(hub?.child);
    await stop(redis?.child);
  }
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const fmt = (x, digits = 0) =>
  x === null
    ? "—"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const WHAT = {
  connect: "connect (user counts)",
  "q-join": "join, no events",
  "q-churn": `churn ×${ROUNDS.q}, no events`,
  "q-leave": "leave, no events",
  "p-join": "join, with events",
  "p-churn": `churn ×${ROUNDS.p}, with events`,
  "p-leave": "leave, with events",
  disconnect: "disconnect (user counts)",
};

async function main() {
  const started = new Date();
  const t0 = performance.now();
  const runs = [];
  let longest = 0;
  for (let i = 0; i < RUNS; i++) {
    const elapsed = (performance.now() - t0) / 1000;
    if (i > 0 && elapsed + longest > BUDGET_S) {
      console.error(`[presence] no run ${i + 1}: it would end after ${BUDGET_S} s`);
      break;
    }
    console.error(`[presence] run ${i + 1}/${RUNS}: ${CONNECTIONS} connections, ${ROOMS} rooms`);
    const r0 = performance.now();
    runs.push(await run());
    longest = Math.max(longest, (performance.now() - r0) / 1000);
  }
  const summary = {};
  for (const name of PHASES) {
    const rs = runs.map((r) => r[name]).filter(Boolean);
    if (rs.length === 0) continue;
    summary[name] = {
      writes: rs[0].total,
      opsPerSec: median(rs.map((r) => r.opsPerSec)),
      seconds: median(rs.map((r) => r.seconds)),
      redisCpuUsPerOp: median(rs.map((r) => r.redisCpuUsPerOp)),
      redisCpuPct: median(rs.map((r) => r.redisCpuPct)),
      serverCpuUsPerOp: median(rs.map((r) => r.serverCpuUsPerOp)),
      deliveries: median(rs.map((r) => r.deliveries)),
      writeP99Ms: median(rs.map((r) => r.writeP99Ms)),
      writeMaxMs: Math.max(...rs.map((r) => r.writeMaxMs)),
    };
  }
  const head = [
    "phase",
    "store writes",
    "writes/s",
    "Redis CPU µs/write",
    "Redis CPU %",
    "hub CPU µs/write",
    "write p99 / max ms",
    "events delivered",
  ];
  const rows = PHASES.filter((p) => summary[p]).map((p) => {
    const s = summary[p];
    return [
      WHAT[p],
      fmt(s.writes),
      fmt(s.opsPerSec),
      fmt(s.redisCpuUsPerOp, 1),
      fmt(s.redisCpuPct),
      fmt(s.serverCpuUsPerOp, 1),
      `${fmt(s.writeP99Ms, 1)} / ${fmt(s.writeMaxMs, 1)}`,
      fmt(s.deliveries),
    ];
  });
  const seconds = (performance.now() - t0) / 1000;
  const md = [
    `# hubbub presence churn bench`,
    ``,
    `${started.toISOString()} · ${
      CONNECTIONS.toLocaleString("en-US")
    } connections (2 tabs per user) · ` +
    `${ROOMS} rooms per mode · median of ${runs.length} run(s) · ${os.cpus().length} cores, ` +
    (hasTaskset ? "hub and Redis on core 0, load client on core 1" : "not pinned") +
    ` · ${seconds.toFixed(0)} s`,
    ``,
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    ``,
    `One hub process (Bun, redisBackplane + RedisPresenceStore on one private redis-server without`,
    `persistence). A write is one store script: a join is one add, a leave one remove, a churn`,
    `round one of each per connection, a connect or disconnect one user-count write (coalesced`,
    `per user). Counted exactly at the hub; a phase is timed from its first frame until every`,
    `write it caused completed. Redis CPU from INFO cpu (used_cpu_sys + used_cpu_user). A write's`,
    `time is from the hub's call to the store's reply (a burst queues on the store's connection). With`,
    `events, each join and leave is also one emit to the room through the backplane (one PUBLISH)`,
    `and its deliveries to the room's members.`,
  ].join("\n");
  mkdirSync(OUT, { recursive: true });
  writeFileSync(
    path.join(OUT, "presence.json"),
    JSON.stringify(
      {
        started: started.toISOString(),
        settings: {
          connections: CONNECTIONS,
          rooms: ROOMS,
          runs: runs.length,
          rounds: ROUNDS,
          pinned: hasTaskset,
        },
        summary,
        runs,
      },
      null,
      2,
    ) + "\n",
  );
  writeFileSync(path.join(OUT, "presence.md"), md + "\n");
  console.log(`\n${md}\n\nwrote ${path.relative(ROOT, OUT) || "."}/presence.json and presence.md`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
