// Debian's headless Chromium driven by playwright-core, for the browser tests (run on Bun).
// CI installs /usr/bin/chromium (.ci/run); elsewhere the tests skip with a loud notice, except
// in CI (CI=true), where a missing Chromium fails the run (as a missing redis-server does).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isBun, test } from "./_harness.ts";

// deno-lint-ignore no-explicit-any
const env = (globalThis as any).process?.env ?? {};
/** The browser binary (HUBBUB_CHROMIUM overrides). */
export const CHROMIUM: string = env.HUBBUB_CHROMIUM ?? "/usr/bin/chromium";
/** Whether it is installed. */
export const hasChromium: boolean = existsSync(CHROMIUM);
/** Whether this run is CI (`CI=true`): a missing Chromium fails there instead of skipping. */
export const inCI: boolean = env.CI === "true";

/**
 * Print a loud notice when a browser test is skipped for want of Chromium; in CI, also
 * register a test that fails, so the run cannot end green without its browser tests.
 * Call it at the top level of a browser test file.
 */
export function warnIfMissing(what: string): void {
  if (!isBun || hasChromium) return;
  console.warn(
    "\n" + "!".repeat(78) + "\n" +
      `!! SKIPPING ${what}: ${CHROMIUM} is missing.\n` +
      "!! Install it with: apt-get update && apt-get install -y chromium\n" +
      (inCI
        ? `!! CI=true: this run FAILS (see "Chromium is installed").\n`
        : "!! In CI (CI=true) a missing Chromium fails the run instead.\n") +
      "!".repeat(78) + "\n",
  );
  if (inCI) {
    test(`Chromium is installed for ${what} (required when CI=true)`, () => {
      throw new Error(`${CHROMIUM} is missing: .ci/run must install it (apt-get install chromium)`);
    });
  }
}

/** Launch Chromium with a fresh profile; `dispose()` closes it and removes the profile. */
export async function launchChromium(viewport: { width: number; height: number }) {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "hubbub-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    dispose: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
