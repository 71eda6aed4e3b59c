// Drives the dashboard of a running kiosk in headless Chromium (Debian's /usr/bin/chromium):
// the live status, both player paths (hls.js recreated after a fatal error), a refused action, login, restarting the stream with
// the change and its log line arriving without a reload, cleaning up segments, the phone layout, a part shown as
// unreachable, and the lost-connection banner when the web service goes away.
//
// Usage: node dashboard.mjs BASE_URL PASSWORD WEB_PID
// Prints one JSON line {"checks": {name: {ok, ...}}}; exit 0 when every check passed.
// The checks run in this order and later ones rely on earlier ones (logged in, then the
// streamer is stopped from the page, then the web service itself is stopped).
import { join } from 'node:path';
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';

const [base, password, webPid] = process.argv.slice(2);
if (!base || !password || !webPid) {
  console.error('usage: node dashboard.mjs BASE_URL PASSWORD WEB_PID');
  process.exit(2);
}
const LIVE_TIMEOUT = 30000;
const browser = await launch({ viewport: { width: 1280, height: 900 } });
const { context } = browser;
const consoleErrors = [];


async function open(path, viewport) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${path}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
  if (viewport) await page.setViewportSize(viewport);
  await page.goto(base + path);
  return page;
}

/** Whether the page's video plays: its currentTime advances by at least 2 s within 5 s. */
async function plays(page) {
  await page.waitForFunction(() => document.getElementById('video').currentTime > 0, null, { timeout: LIVE_TIMEOUT });
  const start = await page.evaluate(() => document.getElementById('video').currentTime);
  await page.waitForTimeout(5000);
  const v = await page.evaluate(() => {
    const video = document.getElementById('video');
    return { end: video.currentTime, player: video.dataset.player, width: video.videoWidth, height: video.videoHeight };
  });
  if (!(v.end >= start + 2)) throw new Error(`currentTime went from ${start} to ${v.end} in 5 s`);
  return { start, ...v };
}

const text = (page, selector) => page.locator(selector).textContent();
/** With DS_SCREENSHOT_DIR set, full-page screenshots go there (for looking at the layout). */
async function screenshot(page, name) {
  if (process.env.DS_SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.DS_SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

try {
  // The browser's own HLS, forced: WebRTC, the default, and hls.js, HLS's default where the
  // browser has MediaSource, have tests of their own.
  const page = await open('/?player=native');

  await check('status_live', async () => {
    await page.waitForFunction(() => document.getElementById('stream-state').textContent === 'streaming',
      null, { timeout: LIVE_TIMEOUT });
    const units = await page.locator('#service-list li').count();
    const fps = await text(page, '#fps');
    const cpu = await text(page, '[data-figure="cpu_percent"] .figure-value');
    if (units !== 3) throw new Error(`${units} units listed`);
    if (!/fps/.test(fps) || !/%/.test(cpu)) throw new Error(`fps ${fps}, cpu ${cpu}`);
    const chartPoints = await page.locator('[data-figure="cpu_percent"] svg').getAttribute('data-points');
    await page.waitForTimeout(1500);
    await screenshot(page, 'desktop');
    return { units, fps, cpu, chartPoints };
  });

  await check('alerts_shown', async () => {
    // The history the test wrote: newest first, a held-back alert and a repeated one said so.
    await page.waitForFunction(() => document.querySelectorAll('#alert-list li.alert').length === 2,
      null, { timeout: LIVE_TIMEOUT });
    const items = await page.locator('#alert-list li.alert').allTextContents();
    if (!items[0].includes('cpu high') || !items[0].includes('Not sent: held back: 2 alerts were sent within 300 s')) {
      throw new Error(`held-back alert shown as ${items[0]}`);
    }
    if (!items[1].includes('stream stale') || !items[1].includes('came again 2× within its cooldown')
      || !items[1].includes('delivered')) {
      throw new Error(`repeated alert shown as ${items[1]}`);
    }
    return { items };
  });

  await check('native_plays', async () => {
    const r = await plays(page);
    if (r.player !== 'native') throw new Error(`player ${r.player}`);
    return r;
  });

  await check('refused_without_login', async () => {
    await page.click('#restart-stream');
    await page.waitForFunction(() => document.getElementById('tool-result').textContent.includes('refused'));
    const message = await text(page, '#tool-result');
    if (!message.includes('needs authentication')) throw new Error(message);
    return { message };
  });

  await check('login', async () => {
    await page.fill('#password', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('who').textContent.startsWith('Logged in as admin'));
    const formHidden = !(await page.locator('#login-form').isVisible());
    const logoutVisible = await page.locator('#logout').isVisible();
    if (!formHidden || !logoutVisible) throw new Error(`login form hidden ${formHidden}, logout shown ${logoutVisible}`);
    return { who: await text(page, '#who'), formHidden, logoutVisible };
  });

  await check('restart_live', async () => {
    const before = await page.evaluate(() => {
      window.notReloaded = true;
      window.seenStates = [];
      const state = document.getElementById('stream-state');
      new MutationObserver(() => window.seenStates.push(state.textContent))
        .observe(state, { childList: true, characterData: true, subtree: true });
      return Number(document.getElementById('restarts').textContent);
    });
    await page.click('#restart-stream');
    await page.waitForFunction(() => document.getElementById('tool-result').textContent.includes('rebuilding'));
    await page.waitForFunction((n) => Number(document.getElementById('restarts').textContent) > n
      && [...document.querySelectorAll('#log-lines li')].some((li) => li.textContent.includes('SIGUSR1')),
    before, { timeout: LIVE_TIMEOUT });
    // The new pipeline streams again once its first segment is written.
    await page.waitForFunction(() => document.getElementById('stream-state').textContent === 'streaming',
      null, { timeout: LIVE_TIMEOUT });
    const r = await page.evaluate(() => ({
      notReloaded: window.notReloaded === true,
      states: window.seenStates,
      after: Number(document.getElementById('restarts').textContent),
      restartList: document.getElementById('restart-list').textContent,
      logLine: [...document.querySelectorAll('#log-lines li')].find((li) => li.textContent.includes('SIGUSR1')).textContent,
    }));
    if (!r.notReloaded) throw new Error('the page reloaded');
    if (!r.restartList.includes('requested')) throw new Error(`restart list: ${r.restartList}`);
    // The state went through the restart and back, as the page showed it.
    const restarting = r.states.indexOf('restarting');
    if (restarting < 0 || r.states.lastIndexOf('streaming') < restarting) {
      throw new Error(`states shown: ${JSON.stringify(r.states)}`);
    }
    return { before, ...r };
  });

  await check('cleanup_live', async () => {
    await page.click('#cleanup');
    await page.waitForFunction(() => document.getElementById('tool-result').textContent.includes('deleting segments'));
    await page.waitForFunction(() => [...document.querySelectorAll('#log-lines li')]
      .some((li) => li.textContent.includes('cleanup: removed segments outside the playlist window')),
    null, { timeout: LIVE_TIMEOUT });
    return { result: await text(page, '#tool-result') };
  });

  await check('log_filter', async () => {
    // The cleanup above logged a warning ("deleted every segment outside the playlist window"):
    // the filtered list has it, and nothing below warn.
    await page.selectOption('#log-level', 'warn');
    await page.waitForFunction(() => {
      const lines = [...document.querySelectorAll('#log-lines li')];
      return lines.length > 0 && lines.every((li) => li.dataset.level === 'warn' || li.dataset.level === 'error');
    }, null, { timeout: 10000 });
    await page.waitForTimeout(1000);
    const levels = await page.evaluate(() => [...document.querySelectorAll('#log-lines li')].map((li) => li.dataset.level));
    if (levels.length === 0 || levels.some((l) => l !== 'warn' && l !== 'error')) throw new Error(`levels ${levels}`);
    const warned = await page.evaluate(() => [...document.querySelectorAll('#log-lines li')]
      .some((li) => li.textContent.includes('deleted every segment outside the playlist window')));
    if (!warned) throw new Error('the cleanup\'s warning is not in the filtered list');
    await page.selectOption('#log-level', '');
    await page.fill('#log-text', 'SIGUSR1');
    await page.waitForFunction(() => {
      const lines = [...document.querySelectorAll('#log-lines li')];
      return lines.length > 0 && lines.every((li) => li.textContent.includes('SIGUSR1'));
    }, null, { timeout: 10000 });
    const matching = await page.locator('#log-lines li').count();
    await page.fill('#log-text', '');
    return { warnLines: levels.length, matching };
  });

  await check('hlsjs_plays', async () => {
    const p = await open('/?player=hlsjs');
    const r = await plays(p);
    await p.close();
    if (r.player !== 'hlsjs') throw new Error(`player ${r.player}`);
    return r;
  });

  await check('hlsjs_recreated', async () => {
    // The stream goes away under a playing hls.js (every /hls/ request answers 404, as after a
    // streamer restart that took the old segments with it): hls.js gives up with a fatal
    // error, the page says so and recreates the player, and once the stream is back it plays
    // again without a reload.
    const p = await open('/?player=hlsjs');
    await plays(p);
    const gone = (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'gone' });
    await p.route('**/hls/**', gone);
    await p.waitForFunction(() => /hls\.js: .*retrying/.test(document.getElementById('player-state').textContent),
      null, { timeout: LIVE_TIMEOUT });
    const failed = await text(p, '#player-state');
    await p.waitForFunction(() => Number(document.getElementById('video').dataset.recreated || 0) >= 1,
      null, { timeout: LIVE_TIMEOUT });
    await p.unroute('**/hls/**', gone);
    await p.waitForFunction(() => document.getElementById('player-state').textContent.startsWith('playing'),
      null, { timeout: 60000 });
    const r = await plays(p);
    const recreated = await p.evaluate(() => Number(document.getElementById('video').dataset.recreated));
    await p.close();
    if (r.player !== 'hlsjs') throw new Error(`player ${r.player}`);
    return { failed, recreated, ...r };
  });

  await check('phone_fits', async () => {
    const p = await open('/', { width: 390, height: 844 });
    await p.waitForFunction(() => document.getElementById('stream-state').textContent === 'streaming',
      null, { timeout: LIVE_TIMEOUT });
    await p.waitForTimeout(1500);
    await screenshot(p, 'phone');
    const r = await p.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      panels: [...document.querySelectorAll('main > section')].map((s) => {
        const b = s.getBoundingClientRect();
        return { id: s.id, left: Math.round(b.left), right: Math.round(b.right), height: Math.round(b.height) };
      }),
    }));
    await p.close();
    if (r.scrollWidth > r.innerWidth) throw new Error(`scrolls sideways: ${r.scrollWidth} > ${r.innerWidth}`);
    const outside = r.panels.filter((s) => s.left < 0 || s.right > r.innerWidth || s.height === 0);
    if (r.panels.length !== 6 || outside.length) throw new Error(`panels ${JSON.stringify(r.panels)}`);
    return r;
  });

  await check('unreachable_shown', async () => {
    await page.click('li[data-unit="desktop-streamer.service"] button[data-action="stop"]');
    await page.waitForFunction(() => {
      const note = document.getElementById('stream-unreachable');
      return !note.hidden && note.textContent.includes('cannot be reached');
    }, null, { timeout: LIVE_TIMEOUT });
    await screenshot(page, 'unreachable');
    return {
      note: await text(page, '#stream-unreachable'),
      state: await text(page, '#stream-state'),
      unit: await text(page, 'li[data-unit="desktop-streamer.service"] .badge'),
      result: await text(page, '#service-result'),
      fps: await text(page, '#fps'),
    };
  });

  await check('connection_lost_shown', async () => {
    process.kill(Number(webPid), 'SIGTERM');
    await page.waitForFunction(() => {
      const banner = document.getElementById('connection');
      return !banner.hidden && banner.textContent.includes('connection lost');
    }, null, { timeout: 15000 });
    await page.waitForFunction(() => document.getElementById('stream').classList.contains('stale'),
      null, { timeout: 10000 });
    return { banner: await text(page, '#connection'), age: await text(page, '#stream .age') };
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
// Errors the page logged: failed requests after the service stopped are expected, but nothing
// the Content-Security-Policy refused (an inline script or style would be).
const refused = consoleErrors.filter((e) => /Content.Security.Policy|Refused to/i.test(e));
checks.page_errors = { ok: refused.length === 0, refused, errors: consoleErrors };
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
