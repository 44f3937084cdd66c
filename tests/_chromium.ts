// Debian's headless Chromium driven by playwright-core, for the browser tests (run on Bun).
// CI installs /usr/bin/chromium (.ci/run); elsewhere the tests skip with a loud notice.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isBun } from "./_harness.ts";

// deno-lint-ignore no-explicit-any
const env = (globalThis as any).process?.env ?? {};
/** The browser binary (HUBBUB_CHROMIUM overrides). */
export const CHROMIUM: string = env.HUBBUB_CHROMIUM ?? "/usr/bin/chromium";
/** Whether it is installed. */
export const hasChromium: boolean = existsSync(CHROMIUM);

/** Print a loud notice when a browser test is skipped for want of Chromium. */
export function warnIfMissing(what: string): void {
  if (!isBun || hasChromium) return;
  console.warn(
    "\n" + "!".repeat(78) + "\n" +
      `!! SKIPPING ${what}: ${CHROMIUM} is missing.\n` +
      "!! Install it with: apt-get update && apt-get install -y chromium\n" +
      "!".repeat(78) + "\n",
  );
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
