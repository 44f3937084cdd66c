// A local Redis Cluster of three masters (no replicas) on free ports, for tests: each node
// killable (SIGKILL) and restartable on its port and config, optionally one behind a stalling
// proxy. Works on Deno, Bun and Node (node:child_process).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, redisCommand, redisServerPath } from "./_redis.ts";
import { type StallingProxy, stallingProxy } from "./backplane/_stalling_proxy.ts";

/** A local cluster of three masters (no replicas), each node killable and restartable. */
export interface LocalCluster {
  /** The nodes' ports. */
  readonly ports: number[];
  /** The ports clients are told to use (a node behind a proxy announces the proxy's). */
  readonly clientPorts: number[];
  readonly urls: string;
  /** The proxy in front of the `proxied` node, if any. */
  readonly proxy?: StallingProxy;
  /** Kill node i (SIGKILL). */
  down(i: number): Promise<void>;
  /** Restart node i on its port and config, and wait for cluster_state:ok. */
  up(i: number): Promise<void>;
  /** Restart every node that is down, then wait for cluster_state:ok. */
  upAll(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * @param proxied A node to put behind a stalling proxy: the node announces the proxy's port,
 *   so clients reach it only through the proxy (the cluster bus goes direct).
 */
export async function startCluster(proxied?: number): Promise<LocalCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), "hubbub-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const proxy = proxied === undefined ? undefined : await stallingProxy(ports[proxied]);
  const announce: (number | undefined)[] = [];
  if (proxied !== undefined) announce[proxied] = proxy!.port;
  // The cluster bus on its own free port (port + 10000 may be taken or past 65535).
  const busPorts = [await freePort(), await freePort(), await freePort()];
  const clientPorts = ports.map((p, i) => announce[i] ?? p);
  const procs: (ChildProcess | undefined)[] = [undefined, undefined, undefined];
  const exits: Promise<void>[] = [Promise.resolve(), Promise.resolve(), Promise.resolve()];

  async function up(i: number): Promise<void> {
    if (procs[i] !== undefined) return;
    const port = ports[i];
    const proc = spawn(redisServerPath!, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      path.join(dir, `nodes-${port}.conf`),
      "--cluster-port",
      String(busPorts[i]),
      ...(announce[i] !== undefined
        ? [
          "--cluster-announce-port",
          String(announce[i]),
          "--cluster-announce-bus-port",
          String(busPorts[i]),
        ]
        : []),
      "--cluster-node-timeout",
      "2000",
      // One master down leaves the other shards serving (the default stops them all).
      "--cluster-require-full-coverage",
      "no",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    procs[i] = proc;
    exits[i] = new Promise((resolve) => proc.once("exit", () => resolve()));
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${port}: ${log}`)), 10_000);
      const onData = (d: Uint8Array) => {
        log += new TextDecoder().decode(d);
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.once("exit", () => {
        clearTimeout(timer);
        reject(new Error(`node ${port} exited: ${log}`));
      });
    });
  }

  async function down(i: number): Promise<void> {
    const proc = procs[i];
    if (proc === undefined) return;
    procs[i] = undefined;
    proc.kill("SIGKILL");
    await exits[i];
    proc.stdout?.destroy();
    proc.stderr?.destroy();
  }

  for (let i = 0; i < 3; i++) await up(i);
  // Slots split in three, then every node meets the first (faster than redis-cli --cluster create).
  const ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
  for (let i = 0; i < 3; i++) {
    await redisCommand(ports[i], "CLUSTER", "ADDSLOTSRANGE", ...ranges[i].map(String));
  }
  for (let i = 1; i < 3; i++) {
    await redisCommand(
      ports[i],
      "CLUSTER",
      "MEET",
      "127.0.0.1",
      String(ports[0]),
      String(busPorts[0]),
    );
  }
  await waitOk(ports, clientPorts);
  return {
    ports,
    clientPorts,
    proxy,
    urls: clientPorts.map((p) => `redis://127.0.0.1:${p}`).join(","),
    down,
    up: async (i) => {
      await up(i);
      await waitOk(ports, clientPorts);
    },
    upAll: async () => {
      for (let i = 0; i < 3; i++) await up(i);
      await waitOk(ports, clientPorts);
    },
    stop: async () => {
      await proxy?.close();
      for (let i = 0; i < 3; i++) await down(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every node says cluster_state:ok, knows all three, and lists every master's slots. */
async function waitOk(ports: number[], clientPorts: number[]): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const infos = await Promise.all(ports.map((p) => redisCommand(p, "CLUSTER", "INFO")));
    const slots = await Promise.all(ports.map((p) => redisCommand(p, "CLUSTER", "SLOTS")));
    if (
      infos.every((i) => i.includes("cluster_state:ok") && i.includes("cluster_known_nodes:3")) &&
      slots.every((s) => clientPorts.every((p) => s.includes(`:${p}\r\n`)))
    ) return;
    if (Date.now() > end) throw new Error(`cluster not ok:\n${infos.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
