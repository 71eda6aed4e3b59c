// A private dashboard (public_read off) in headless Chromium: before logging in the page says
// it needs a login and shows no figures; after logging in through the header, the live status
// arrives without a reload (the machine's figures, measured by the web service itself). The
// cameras page likewise asks for a login, not "cannot be reached", and shows its list after
// one made in its own header. The logs panel gives the server's reason why the logs cannot be
// read. Over https:// (the dashboard's own certificate, which this browser is told to accept
// with --ignore-certificate-errors) the session cookie the login set is Secure.
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
const https = base.startsWith('https:');
const browser = await launch({ viewport: { width: 1280, height: 900 } }, https ? ['--ignore-certificate-errors'] : []);
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
  const cameras = await browser.context.newPage();
  await cameras.goto(`${base}/cameras`);
  await check('cameras_ask_for_login', async () => {
    await cameras.waitForFunction(() => /log in/i.test(document.getElementById('fleet-unreachable').textContent),
      null, { timeout: TIMEOUT });
    const said = await text(cameras, '#fleet-unreachable');
    if (/cannot be reached/.test(said)) throw new Error(`a login problem shown as an outage: ${said}`);
    // The refused live feed is the same news, not a second banner.
    await cameras.waitForTimeout(4000);
    if (!(await cameras.locator('#connection').isHidden())) {
      throw new Error(`a second banner: ${await text(cameras, '#connection')}`);
    }
    return { said };
  });
  await check('cameras_show_after_login', async () => {
    await cameras.fill('#password', password);
    await cameras.click('#login-form button[type=submit]');
    await cameras.waitForFunction(() => document.getElementById('fleet-unreachable').hidden
      && document.querySelectorAll('#camera-grid li').length > 0, null, { timeout: TIMEOUT });
    return { grid: await text(cameras, '#camera-grid') };
  });
  await check('shows_itself_after_login', async () => {
    await page.fill('#password', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction((sel) => document.getElementById('connection').hidden
      && /%/.test(document.querySelector(sel).textContent), cpu, { timeout: TIMEOUT });
    return { cpu: await text(page, cpu), who: await text(page, '#who') };
  });
  if (https) {
    await check('session_cookie_is_secure', async () => {
      const cookies = await browser.context.cookies();
      const session = cookies.find((c) => c.name === 'ds_session');
      if (!session || !session.secure || !session.httpOnly) {
        throw new Error(`not a Secure HttpOnly session cookie: ${JSON.stringify(cookies.map((c) => ({ ...c, value: '…' })))}`);
      }
      return { secure: session.secure, sameSite: session.sameSite };
    });
  }
  await check('logs_say_why', async () => {
    // This kiosk's log directory does not exist: the logs panel says so (the server's 503),
    // not a complaint about the page's own request.
    await page.waitForFunction(() => /does not exist/.test(document.getElementById('logs-unreachable').textContent),
      null, { timeout: TIMEOUT });
    return { said: await text(page, '#logs-unreachable') };
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
