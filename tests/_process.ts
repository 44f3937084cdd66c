// Child processes for multi-process tests: start a server script on Deno or Bun, wait for
// the line it prints when ready, stop it with SIGTERM (SIGKILL after a grace period).
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

const bin = (name: string) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;

/** The repo's own Deno and Bun binaries (from npm). */
export const DENO: string = bin("deno");
/** The repo's Bun binary. */
export const BUN: string = bin("bun");

/** A running child server. */
export interface ChildServer {
  readonly proc: ChildProcess;
  /** The first match of the ready pattern. */
  readonly match: RegExpMatchArray;
  /** Everything it printed so far. */
  output(): string;
  /** `signal` (default SIGTERM), then SIGKILL after `graceMs`; resolves once it exited. Idempotent. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Start `cmd args` and wait until its output matches `ready`.
 * @throws {Error} If it exits first or does not match within `timeoutMs`.
 */
export async function startChild(
  cmd: string,
  args: string[],
  ready: RegExp,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ChildServer> {
  const proc = spawn(cmd, args, {
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  let match: RegExpMatchArray | null = null;
  let onOutput = () => {};
  const take = (chunk: Uint8Array) => {
    out += new TextDecoder().decode(chunk);
    onOutput();
  };
  proc.stdout!.on("data", take);
  proc.stderr!.on("data", take);
  let stopped = false;
  const stop = async (graceMs = 3000, signal: NodeJS.Signals = "SIGTERM") => {
    if (!stopped) {
      stopped = true;
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        // process.kill, not proc.kill: Deno's ChildProcess sends only one signal.
        const timer = setTimeout(() => {
          try {
            process.kill(proc.pid!, "SIGKILL");
          } catch { /* gone */ }
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }
    }
    await exited;
    proc.stdout?.destroy();
    proc.stderr?.destroy();
  };
  try {
    match = await new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${cmd} ${args.join(" ")}: not ready in time:\n${out}`)),
        options.timeoutMs ?? 30_000,
      );
      onOutput = () => {
        const m = out.match(ready);
        if (m) {
          clearTimeout(timer);
          onOutput = () => {};
          resolve(m);
        }
      };
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${cmd} ${args.join(" ")} exited (${code}) before ready:\n${out}`));
      });
      onOutput();
    });
  } catch (error) {
    await stop(0);
    throw error;
  }
  return { proc, match, output: () => out, stop };
}
