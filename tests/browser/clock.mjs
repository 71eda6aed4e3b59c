// The dashboard (/) and the cameras page (/cameras) of a desktop-streamer-web whose wall clock
// the test steps (libfaketime, the monotonic clock untouched, as NTP leaves it) while the
// pages are open, in headless Chromium (Debian's /usr/bin/chromium). After each step:
// - the dashboard left open keeps its status fresh (no "as of … ago", no "No update for …"
//   beyond a few seconds, never a year) and its machine charts go on: a new point after the
//   step, every point inside the chart, the newest at "now";
// - `/api/status/history` is the same hour, continuous and in order, ending at the service's
//   clock now, and a dashboard opened afresh draws all of it;
// - the cameras page reads a live camera's last frame as seconds old, whatever the step (the
//   age is measured on monotonic clocks, the service's and the browser's).
// A full-page screenshot of the fresh dashboard and of the cameras page is saved after each
// step.
//
// Usage: node clock.mjs SPEC_JSON
//   SPEC_JSON: {base, camera: ID, steps: [{offset: "+366d", days: 366}, …], screenshots: DIR,
//               clock_synchronized: what systemd-timedated says}
// Asks the test (tests/browser/ask.mjs):
//   {"ask": "step", "offset": "+366d"}   the service's wall clock set to the real time + offset
// Prints one JSON line {"ok", "checks": {name: {ok, ...}}} last; exit 0 when every check passed.
// The checks run in order and later ones rely on earlier ones.
import { join } from 'node:path';
import { ask } from './ask.mjs';
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';

const spec = JSON.parse(process.argv[2] || 'null');
if (!spec || !spec.base || !spec.camera || !spec.steps || !spec.screenshots) {
  console.error('usage: node clock.mjs SPEC_JSON');
  process.exit(2);
}
const { base, camera } = spec;
const DAY_S = 86400;
/** A status arrives every second; a heartbeat every 5 s plus the probe. */
const LIVE_TIMEOUT = 20000;
/** A chart keeps one point per 10 s (the server's STEP): a new one within this. */
const POINT_TIMEOUT = 25000;
/** libfaketime rereads its file every second. */
const CLOCK_TIMEOUT = 10000;
/** The largest status age the dashboard may show on a shared two-core machine. */
const FRESH_S = 15;
/** How far a time the service wrote may be from the real time plus its clock's offset. */
const CLOCK_TOLERANCE_S = 120;
/** The chart's width in its viewBox (web-monitor/ui/charts.js). */
const CHART_WIDTH = 300;
const CPU_CHART = '[data-figure="cpu_percent"] svg';

const browser = await launch({ viewport: { width: 1280, height: 900 } });
const { context } = browser;
const pageErrors = [];

// Runs before the page's own scripts: every text the dashboard's connection banner and its
// panels' age labels ever show, so a stale or absurd age shown for a moment is seen, and every
// point count the CPU chart ever had (within its first hour a chart only gains points: a count
// going down is the hour lost, even if new points make up for it later).
await context.addInitScript((sel) => {
  window.__shown = [];
  window.__counts = [];
  const look = () => {
    for (const n of document.querySelectorAll('#connection, .age')) {
      if (!n.hidden && n.textContent && !window.__shown.includes(n.textContent)) window.__shown.push(n.textContent);
    }
    const svg = document.querySelector(sel);
    const count = svg && svg.dataset.points !== undefined ? Number(svg.dataset.points) : null;
    if (count !== null && count !== window.__counts[window.__counts.length - 1]) window.__counts.push(count);
  };
  new MutationObserver(look).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden', 'data-points'],
  });
}, CPU_CHART);

async function open(path) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  // The pages' own failures (a panel that threw); failed requests are expected here (no
  // streamer, no systemd).
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`${path}: ${m.text()}`);
  });
  await page.goto(base + path);
  return page;
}

const fail = (what, detail) => { throw new Error(`${what}: ${JSON.stringify(detail)}`); };

/** Seconds in a duration as common.js formatDuration writes it ("4.2 s", "12 min", "1 h 5 min",
 * "366 d 0 h"). */
function seconds(text) {
  const unit = { d: DAY_S, h: 3600, min: 60, s: 1 };
  const parts = [...text.matchAll(/(-?\d+(?:\.\d+)?) (d|h|min|s)\b/g)];
  if (!parts.length) return null;
  return parts.reduce((n, [, v, u]) => n + Number(v) * unit[u], 0);
}

/** The service's wall clock against the real time (this machine's, the browser's), in s. */
async function serviceOffset() {
  const status = await (await fetch(`${base}/api/status`)).json();
  return Date.parse(status.sampled_at) / 1000 - Date.now() / 1000;
}

/** Until the service's clock reads `days` from the real time. */
async function waitClock(days) {
  const until = Date.now() + CLOCK_TIMEOUT;
  let offset = await serviceOffset();
  while (Math.abs(offset - days * DAY_S) > CLOCK_TOLERANCE_S) {
    if (Date.now() > until) fail(`the service's clock never read ${days} d from the real time`, { offset });
    await new Promise((r) => setTimeout(r, 200));
    offset = await serviceOffset();
  }
  return offset;
}

async function history() {
  return (await fetch(`${base}/api/status/history`)).json();
}

/** The CPU chart as drawn: how many points it says it has and each drawn point's x. */
function chart(page) {
  return page.evaluate((sel) => {
    const svg = document.querySelector(sel);
    const xs = [];
    for (const n of svg.querySelectorAll('polyline, circle')) {
      if (n.tagName === 'circle') xs.push(Number(n.getAttribute('cx')));
      else for (const pair of n.getAttribute('points').split(' ')) xs.push(Number(pair.split(',')[0]));
    }
    return { count: Number(svg.dataset.points || 0), xs };
  }, CPU_CHART);
}

/** Every point inside the chart, in order, the newest at its right edge (now). */
function assertDrawn(drawn, what) {
  const { xs } = drawn;
  if (!xs.length) fail(`${what}: nothing drawn`, drawn);
  if (xs.some((x) => !(x >= 0 && x <= CHART_WIDTH))) fail(`${what}: a point outside the chart`, drawn);
  if (xs.some((x, i) => i > 0 && !(x > xs[i - 1]))) fail(`${what}: points out of order`, drawn);
  // Within two live points' spacing of now (10 s of the hour is 0.83 of the width).
  if (xs[xs.length - 1] < CHART_WIDTH - 2) fail(`${what}: the newest point is not at now`, drawn);
}

/** What the dashboard has shown as its status age (banner, panel labels) since it opened;
 * fails on any age not small and non-negative. */
async function assertFresh(page, what) {
  const shown = await page.evaluate(() => window.__shown);
  for (const text of shown) {
    if (text === 'Connecting to the dashboard…') continue;
    const s = seconds(text);
    if (s === null || !(s >= 0 && s <= FRESH_S)) fail(`${what}: the dashboard showed "${text}"`, shown);
  }
  const labels = await page.locator('.age:visible').allTextContents();
  if (labels.length) fail(`${what}: stale panels`, labels);
  return shown;
}

/** The cameras page's age of `camera`'s last frame, once its newest heartbeat is one taken
 * with the service's clock `days` from the real time. */
async function cameraAge(page, days) {
  const card = `.camera-card[data-id="${camera}"]`;
  await page.waitForFunction(([s, d, tol]) => {
    const n = document.querySelector(s);
    return n && Math.abs(Date.parse(n.dataset.heartbeatAt) / 1000 - Date.now() / 1000 - d * 86400) < tol;
  }, [card, days, CLOCK_TOLERANCE_S], { timeout: LIVE_TIMEOUT });
  return page.locator(`${card} .ago`).textContent();
}

async function screenshot(page, name) {
  const path = join(spec.screenshots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const screenshots = [];
try {
  const dashboard = await open('/');
  const cameras = await open('/cameras');

  await check('before_the_step', async () => {
    await dashboard.waitForFunction(() => /%/.test(document.querySelector('[data-figure="cpu_percent"] .figure-value')
      .textContent), null, { timeout: LIVE_TIMEOUT });
    // Two points in the hour, so that a gap or a reordering after the step would show.
    await dashboard.waitForFunction((sel) => Number(document.querySelector(sel).dataset.points) >= 2, CPU_CHART,
      { timeout: POINT_TIMEOUT });
    const age = await cameraAge(cameras, 0);
    if (!/^(just now|\d+(\.\d)? s ago)$/.test(age)) fail('the camera\'s age at the real time', age);
    const drawn = await chart(dashboard);
    assertDrawn(drawn, 'before the step');
    return { offset: await serviceOffset(), drawn, cameraAge: age, points: (await history()).points.length };
  });

  for (const { offset, days } of spec.steps) {
    const before = { drawn: await chart(dashboard), history: await history(), at: performance.now() / 1000 };
    await ask({ ask: 'step', offset });
    const clock = await waitClock(days);

    await check(`chart_goes_on_${offset}`, async () => {
      // The page left open: a new point after the step, the hour still in the chart.
      await dashboard.waitForFunction(([sel, n]) => Number(document.querySelector(sel).dataset.points) > n,
        [CPU_CHART, before.drawn.count], { timeout: POINT_TIMEOUT });
      const drawn = await chart(dashboard);
      assertDrawn(drawn, 'the page left open');
      const counts = await dashboard.evaluate(() => window.__counts);
      if (counts.some((n, i) => i > 0 && n < counts[i - 1])) fail('the chart lost points', counts);
      return { before: before.drawn.count, after: drawn.count, counts, xs: drawn.xs };
    });

    await check(`status_fresh_${offset}`, async () => ({ shown: await assertFresh(dashboard, 'the page left open') }));

    await check(`history_continuous_${offset}`, async () => {
      const h = await history();
      const ts = h.points.map((p) => p.t);
      if (h.points.length < before.history.points.length) {
        fail('points lost in the step', { before: before.history.points.length, after: ts });
      }
      // One point per step, none missing (a sample may come a few seconds late on a busy
      // machine), in order.
      const gaps = ts.slice(1).map((t, i) => t - ts[i]);
      if (gaps.some((g) => g < h.step_seconds || g > h.step_seconds + 5)) fail('not one point per step', ts);
      const newest = ts[ts.length - 1] - Date.now() / 1000 - days * DAY_S;
      if (newest > 1 || newest < -(h.step_seconds + 5)) fail('the newest point is not at the service\'s now', { newest, ts });
      const ages = h.points.map((p) => p.age_seconds);
      if (ages.some((a, i) => !(a >= 0) || (i > 0 && a >= ages[i - 1]))) fail('ages not decreasing from the oldest', ages);
      // The hour before the step is kept: the oldest point is the same one, older by the
      // (monotonic) time since, and every point is placed at the service's clock now minus
      // its age.
      const since = performance.now() / 1000 - before.at;
      const oldest = before.history.points[0].age_seconds + since;
      if (Math.abs(ages[0] - oldest) > 2) fail('the oldest point is not the one before the step', { oldest, ages });
      const now = Date.now() / 1000 + days * DAY_S;
      if (h.points.some((p) => Math.abs(p.t - (now - p.age_seconds)) > 2)) fail('not placed at now − age', { now, ts, ages });
      return { points: ts.length, oldestAge: ages[0], clock };
    });

    await check(`fresh_dashboard_${offset}`, async () => {
      // A dashboard opened after the step draws the whole hour from the history.
      const h = await history();
      const page = await open('/');
      await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel).dataset.points) >= n,
        [CPU_CHART, h.points.length], { timeout: LIVE_TIMEOUT });
      await page.waitForFunction(() => document.getElementById('connection').hidden, null, { timeout: LIVE_TIMEOUT });
      const drawn = await chart(page);
      assertDrawn(drawn, 'a fresh page');
      const shown = await assertFresh(page, 'a fresh page');
      // The machine panel says whether the clock is synchronised, as systemd-timedated does.
      const said = spec.clock_synchronized ? 'synchronised' : 'not synchronised';
      await page.waitForFunction((s) => document.getElementById('clock-sync').textContent === s, said,
        { timeout: LIVE_TIMEOUT });
      screenshots.push(await screenshot(page, `dashboard-after-${offset}`));
      await page.close();
      return { served: h.points.length, drawn: drawn.count, shown };
    });

    await check(`camera_age_${offset}`, async () => {
      const age = await cameraAge(cameras, days);
      screenshots.push(await screenshot(cameras, `cameras-after-${offset}`));
      // The service measures the frame's age on its monotonic clock and the page counts on
      // from it on the browser's: the age of a live camera's last frame is seconds whatever
      // either wall clock did.
      if (!/^(just now|\d+(\.\d)? s ago)$/.test(age)) fail('the camera\'s age after the step', age);
      return { age };
    });
  }
} catch (e) {
  checks.harness = { ok: false, error: String(e && e.stack ? e.stack : e) };
} finally {
  await browser.close();
  checks.page_errors = { ok: !pageErrors.length, errors: pageErrors };
  checks.screenshots = { ok: true, paths: screenshots };
}
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
