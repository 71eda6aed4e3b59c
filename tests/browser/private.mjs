// A private dashboard (public_read off) in headless Chromium: before logging in the page says
// it needs a login and shows no figures; after logging in through the header, the live status
// arrives without a reload (the machine's figures, measured by the web service itself).
//
// Usage: node private.mjs BASE_URL PASSWORD
// Prints one JSON line {"ok": bool, "checks": {...}}; exit 0 when every check passed.
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';

const [base, password] = process.argv.slice(2);
if (!base || !password) {
  console.error('usage: node private.mjs BASE_URL PASSWORD');
  process.exit(2);
}
const TIMEOUT = 20000;
const browser = await launch({ viewport: { width: 1280, height: 900 } });
const text = (page, selector) => page.locator(selector).first().textContent();
const cpu = '[data-figure="cpu_percent"] .figure-value';

try {
  const page = await browser.context.newPage();
  await page.goto(`${base}/`);
  await check('asks_for_login', async () => {
    await page.waitForFunction(() => /log in/i.test(document.getElementById('connection').textContent),
      null, { timeout: TIMEOUT });
    const shown = await text(page, cpu);
    if (shown !== '—') throw new Error(`a figure before logging in: ${shown}`);
    return { banner: await text(page, '#connection') };
  });
  await check('shows_itself_after_login', async () => {
    await page.fill('#password', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction((sel) => document.getElementById('connection').hidden
      && /%/.test(document.querySelector(sel).textContent), cpu, { timeout: TIMEOUT });
    return { cpu: await text(page, cpu), who: await text(page, '#who') };
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
