import { createRequire } from 'node:module';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium, which test/e2e/install-browser.sh installs. */
export const CHROMIUM = '/usr/bin/chromium';
/** axe-core, injected into a page to check it (a pinned devDependency). */
export const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** One headless Chromium for a test file, with nothing running in the background. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
