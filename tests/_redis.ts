// A private redis-server per test: started on a free port with no persistence, killed
// (down) and restarted on the same port (up) to cause real outages, stopped afterwards.
// Works on Deno and Bun (node:child_process, node:net).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "./_harness.ts";

/**
 * Where redis-server is, or undefined: `$REDIS_SERVER` when set (a path; one that does not
 * exist simulates a machine without Redis), else the PATH and the usual places.
 */
export const redisServerPath: string | undefined = process.env.REDIS_SERVER !== undefined
  ? (existsSync(process.env.REDIS_SERVER) ? process.env.REDIS_SERVER : undefined)
  : (process.env.PATH ?? "")
    .split(":")
    .concat(["/usr/bin", "/usr/local/bin", "/usr/sbin"])
    .map((dir) => `${dir}/redis-server`)
    .find((path) => existsSync(path));

/** Whether this run is CI (`CI=true`): a missing redis-server fails there instead of skipping. */
export const inCI: boolean = process.env.CI === "true";

/** Whether Redis suites run here. */
export const hasRedis: boolean = redisServerPath !== undefined;

let warned = false;
/** Print the loud notice for a skipped Redis suite (once per process). */
export function warnNoRedis(suite: string): void {
  if (hasRedis || warned) return;
  warned = true;
  const bar = "!".repeat(78);
  console.warn(
    `\n${bar}\n!! SKIPPED: ${suite}: redis-server is not installed.\n` +
      `!! Install it (Debian/Ubuntu: apt-get install -y redis-server) to run the Redis backplane tests.\n` +
      (inCI
        ? `!! CI=true: this run FAILS (see "redis-server is installed").\n`
        : `!! In CI (CI=true) a missing redis-server fails the run instead.\n`) +
      bar + "\n",
  );
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A running private redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Whether the server is running now. */
  readonly running: boolean;
  /** Kill it (SIGKILL, like a crash) and wait until it is gone. */
  down(): Promise<void>;
  /** Start it again on the same port and wait until it accepts connections. */
  up(): Promise<void>;
  /** Stop it for good. Idempotent. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Persist with the append-only file (`--appendonly yes --appendfsync always`) in a private
   * temp dir, kept across down/up and removed by `stop()`: every write acknowledged before a
   * kill -9 is there after `up()`.
   * @default {false (no persistence: a restart loses everything)}
   */
  appendonly?: boolean;
}

/**
 * Start a private redis-server (`--save "" --appendonly no`, unless `appendonly`) on a free port.
 * @throws {Error} If redis-server is not installed or does not start within 10 s.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  if (redisServerPath === undefined) throw new Error("Cannot start redis: redis-server not found");
  const path = redisServerPath;
  const port = await freePort();
  const dir = options.appendonly === true
    ? mkdtempSync(join(tmpdir(), "hubbub-redis-"))
    : undefined;
  const persistence = dir === undefined
    ? ["--appendonly", "no"]
    : ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function up(): Promise<void> {
    if (child !== undefined) return;
    const proc = spawn(path, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      ...persistence,
      "--protected-mode",
      "no",
      "--daemonize",
      "no",
      "--loglevel",
      "notice",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    let log = "";
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start on ${port}:\n${log}`)),
        10_000,
      );
      const onData = (chunk: Uint8Array) => {
        log += new TextDecoder().decode(chunk);
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) on ${port}:\n${log}`));
      });
    });
    try {
      await ready;
    } catch (error) {
      await down();
      throw error;
    }
  }

  async function down(): Promise<void> {
    const proc = child;
    if (proc === undefined) return;
    child = undefined;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
    proc.stdout?.destroy();
    proc.stderr?.destroy();
  }

  await up();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    down,
    up,
    async stop() {
      await down();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Send raw Redis commands on a fresh TCP connection and return the raw reply text.
 * Enough for PUBLISH and PUBSUB NUMSUB in tests without a client library.
 */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let out = "";
    socket.on("data", (chunk) => {
      out += chunk.toString();
      if (complete(out)) socket.end();
    });
    socket.once("error", reject);
    socket.once("close", () => resolve(out));
    const enc = new TextEncoder();
    let cmd = `*${args.length}\r\n`;
    for (const a of args) cmd += `$${enc.encode(a).length}\r\n${a}\r\n`;
    socket.write(cmd);
  });
}

// Whether a RESP reply is complete (integers, simple strings, errors, bulk strings, flat arrays).
function complete(s: string): boolean {
  const lines = s.split("\r\n");
  if (lines.length < 2) return false;
  const head = lines[0];
  if (head[0] !== "*") return true;
  const n = Number(head.slice(1));
  let i = 1;
  for (let k = 0; k < n; k++) {
    const line = lines[i];
    if (line === undefined || i >= lines.length - 1) return false;
    if (line[0] === "$") i += Number(line.slice(1)) < 0 ? 1 : 2;
    else i += 1;
  }
  return i <= lines.length - 1;
}

/** Subscribers of each channel, as Redis counts them (PUBSUB NUMSUB). */
export async function numsub(port: number, ...channels: string[]): Promise<Map<string, number>> {
  const reply = await redisCommand(port, "PUBSUB", "NUMSUB", ...channels);
  const lines = reply.split("\r\n");
  const out = new Map<string, number>();
  // *2N, then per channel: $len, name, :count
  for (let i = 1; i + 2 < lines.length; i += 3) {
    out.set(lines[i + 1], Number(lines[i + 2].slice(1)));
  }
  return out;
}

/**
 * What every Redis suite does first: in CI (`CI=true`) without redis-server, register a
 * failing test that says so; elsewhere, print the loud notice (once) that the suite skips.
 */
export function requireRedis(suite: string): void {
  if (!hasRedis && inCI) {
    test("redis-server is installed (required when CI=true)", () => {
      throw new Error(
        "redis-server is missing: .ci/run must install it (apt-get install redis-server)",
      );
    });
  }
  warnNoRedis(suite);
}
