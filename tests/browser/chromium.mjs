// Debian's headless Chromium as every browser test starts it: a fresh profile each time, and
// the flags without which Chromium floods this closed network with connections. Playwright
// adds --headless (headless: true) and --user-data-dir (the fresh profile).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
export const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A persistent context on a fresh profile; `close()` ends the browser and removes the
 * profile. `options` go to Playwright (`viewport`, …); `extraArgs` are added to FLAGS. */
export async function launch(options = {}, extraArgs = []) {
  const profile = mkdtempSync(join(tmpdir(), 'ds-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...extraArgs],
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
