// Runner-agnostic test registration: Deno.test on Deno, bun:test on Bun, node:test on Node.
// Test files import { test } from here and run unchanged on every runtime.

/** A test body. */
export type TestFn = () => void | Promise<void>;

/** Options for one test. */
export interface TestOptions {
  /** Skip unless true. */
  if?: boolean;
  /**
   * Time limit in ms, on every runtime: past it the test fails (so a deadlock fails the run
   * instead of hanging it). Deno has no per-test limit of its own: {@linkcode test} races the
   * body against a timer there.
   * @default {20_000}
   */
  timeout?: number;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
/** Running under Deno. */
export const isDeno: boolean = typeof g.Deno?.test === "function";
/** Running under Bun. */
export const isBun: boolean = typeof g.Bun !== "undefined";
/** Running under Node (`node --import tsx --test`). */
export const isNode: boolean = !isDeno && !isBun && typeof g.process?.versions?.node === "string";
/** The runtime's name. */
export const runtime: "deno" | "bun" | "node" = isDeno ? "deno" : isBun ? "bun" : "node";

// Specifiers in variables: each runtime resolves only its own runner.
const bunTestModule = "bun:test";
const nodeTestModule = "node:test";
// deno-lint-ignore no-explicit-any
const bun: any = isBun ? await import(bunTestModule) : undefined;
// deno-lint-ignore no-explicit-any
const node: any = isNode ? await import(nodeTestModule) : undefined;

/**
 * Register a test on the current runtime.
 * @param name A sentence: what is true.
 * @param fn The body.
 * @param options Skip conditions and timeout.
 */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  const skip = options.if === false;
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (isDeno) {
    g.Deno.test({ name, fn: withTimeout(fn, timeout), ignore: skip });
  } else if (isNode) {
    // node:test fails a test past its `timeout` and counts `skip` as skipped.
    node.test(name, { skip, timeout }, () => fn());
  } else if (skip) {
    bun.test.skip(name, fn);
  } else {
    bun.test(name, fn, timeout);
  }
}

/** The per-test time limit when a test sets none. */
export const DEFAULT_TIMEOUT_MS = 20_000;

/**
 * The body, failing with a timeout error if it has not settled after `ms` (Deno's runner has
 * no per-test limit). The timer is cleared either way, so the sanitizers stay quiet.
 * @param fn The test body.
 * @param ms The limit.
 * @returns A body that settles within `ms`.
 */
export function withTimeout(fn: TestFn, ms: number): () => Promise<void> {
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Test timed out after ${ms} ms (a deadlock, or a slow test?)`)),
        ms,
      );
    });
    try {
      await Promise.race([Promise.resolve().then(fn), limit]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Resolve after `ms` (for tests that must let real time pass, e.g. a 1 s idle timeout). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Wait until `predicate()` is true, checking after each macrotask turn, up to `ms`.
 * For conditions with no event to wait on (e.g. a server-side counter).
 */
export async function until(
  predicate: () => boolean,
  ms = 5000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await delay(5);
  }
}
