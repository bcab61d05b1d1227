import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium, which test/e2e/install-browser.sh installs. */
export const CHROMIUM = '/usr/bin/chromium';
/** axe-core, injected into a page to check it (a pinned devDependency). */
export const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/**
 * One headless Chromium for a test file, with nothing running in the background. Fails, never
 * skips, without Chromium: CI installs it (test/e2e/install-browser.sh). `extraArgs` for what one
 * suite needs besides (ui-browser.test.ts: the message frame in screenshots).
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
