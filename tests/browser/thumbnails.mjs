// The grid's pictures in headless Chromium (Debian's /usr/bin/chromium): an RTSP camera whose
// picture is one known colour shows that colour in its card (the <img> drawn on a canvas and
// its pixels read back), a black camera's card says DEGRADED with the reason `black` under the
// state, readable, and after the service restarts every card shows the picture kept on disk at
// once, before the camera's first heartbeat of the new run.
//
// Usage: node thumbnails.mjs SPEC_JSON
//   SPEC_JSON: {base, colour: [r, g, b], tolerance, cameras: {blue, covered: {id, name}}}
// Asks the test (a JSON line on stdout, the answer a JSON line on stdin):
//   {"ask": "restart"}   the service restarted on the same files with a heartbeat of a day;
//                        the answer is {"base": URL} of the new run
// Prints one JSON line {"ok", "checks": {name: {ok, ...}}} last; exit 0 when every check passed.
// The checks run in order and later ones rely on earlier ones.
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';

const spec = JSON.parse(process.argv[2] || 'null');
if (!spec || !spec.base) {
  console.error('usage: node thumbnails.mjs SPEC_JSON');
  process.exit(2);
}
const { cameras: cams } = spec;
/** Two heartbeats (5 s) and a probe: the black camera is DEGRADED after its second. */
const STATE_TIMEOUT = 25000;
/** "At once" after a restart: the list and the pictures from disk, no probe. */
const AT_ONCE_MS = 5000;
/** The service's restart: SIGTERM, a clean stop, a new start. */
const RESTART_TIMEOUT = 60000;

const browser = await launch({ viewport: { width: 1280, height: 900 } });
browser.context.setDefaultTimeout(10000);
const consoleErrors = [];

function fail(message, detail) {
  throw new Error(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
}

async function open(base) {
  const page = await browser.context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push({ base, text: m.text() }); });
  page.on('pageerror', (e) => consoleErrors.push({ base, text: `uncaught: ${e.message}` }));
  await page.goto(`${base}/cameras`);
  return page;
}

/** Waits until the card of `id` shows its picture (loaded, shown). */
function waitForPicture(page, id, timeout) {
  return page.waitForFunction((i) => {
    const img = document.querySelector(`#camera-grid li[data-id="${CSS.escape(i)}"] img.thumb`);
    return img && !img.hidden && img.complete && img.naturalWidth > 0;
  }, id, { timeout });
}

/** The card's picture read back from a canvas: size, mean colour, the largest distance of a
 * pixel's channel from the mean; the card's state and where the picture is. */
function picture(page, id) {
  return page.evaluate((i) => {
    const li = document.querySelector(`#camera-grid li[data-id="${CSS.escape(i)}"]`);
    const img = li.querySelector('img.thumb');
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const n = px.length / 4;
    const sum = [0, 0, 0];
    for (let p = 0; p < px.length; p += 4) for (let c = 0; c < 3; c++) sum[c] += px[p + c];
    const mean = sum.map((s) => s / n);
    let spread = 0;
    for (let p = 0; p < px.length; p += 4) {
      for (let c = 0; c < 3; c++) spread = Math.max(spread, Math.abs(px[p + c] - mean[c]));
    }
    const box = img.getBoundingClientRect();
    const name = li.querySelector('h3').getBoundingClientRect();
    return {
      size: [img.naturalWidth, img.naturalHeight],
      mean: mean.map(Math.round),
      spread: Math.round(spread),
      state: li.querySelector('.badge').dataset.state,
      src: img.getAttribute('src'),
      pictureAboveName: box.bottom <= name.top + 0.5,
    };
  }, id);
}

/** The picture is the camera's colour: every channel's mean within the tolerance (JPEG and
 * YUV round the colour), and no pixel far from it (one colour, not a picture that averages to it). */
function isTheColour(r) {
  const off = r.mean.map((m, c) => Math.abs(m - spec.colour[c]));
  if (Math.max(...off) > spec.tolerance || r.spread > 3 * spec.tolerance) {
    fail(`not the camera's colour rgb(${spec.colour.join(', ')}) within ${spec.tolerance}`, r);
  }
  return off;
}

const pages = [];
try {
  const page = await open(spec.base);
  pages.push(page);

  await check('rtsp_thumbnail_is_its_colour', async () => {
    await waitForPicture(page, cams.blue.id, STATE_TIMEOUT);
    const r = await picture(page, cams.blue.id);
    const off = isTheColour(r);
    if (r.state !== 'UP') fail('the camera is UP', r);
    if (!r.pictureAboveName) fail('the picture is on top of the card', r);
    return { ...r, off };
  });

  await check('black_camera_reads_degraded_black', async () => {
    await page.waitForFunction((i) => {
      const li = document.querySelector(`#camera-grid li[data-id="${CSS.escape(i)}"]`);
      return li && li.querySelector('.badge').dataset.state === 'DEGRADED'
        && li.querySelector('.verdict .reason').textContent === 'black';
    }, cams.covered.id, { timeout: STATE_TIMEOUT });
    await waitForPicture(page, cams.covered.id, STATE_TIMEOUT);
    const r = await page.evaluate((i) => {
      const li = document.querySelector(`#camera-grid li[data-id="${CSS.escape(i)}"]`);
      const badge = li.querySelector('.badge');
      const reason = li.querySelector('.verdict .reason');
      const [b, w, card] = [badge, reason, li].map((e) => e.getBoundingClientRect());
      const lineHeight = parseFloat(getComputedStyle(reason).lineHeight) || 1.5 * parseFloat(getComputedStyle(reason).fontSize);
      return {
        badge: badge.textContent,
        reason: reason.textContent,
        facts: li.querySelector('.facts').textContent,
        // The reason on its own line under the state, inside the card, not cut, one line.
        reasonUnderState: w.top >= b.bottom - 0.5,
        insideCard: [b, w].every((x) => x.left >= card.left && x.right <= card.right),
        notCut: [badge, reason].every((e) => e.scrollWidth <= e.clientWidth + 0.5 || getComputedStyle(e).display === 'inline'),
        oneLine: w.height < 1.5 * lineHeight,
        visible: getComputedStyle(reason).visibility === 'visible' && w.width > 0 && w.height > 0,
      };
    }, cams.covered.id);
    if (r.badge !== 'DEGRADED' || r.reason !== 'black') fail('DEGRADED with the reason black', r);
    if (!r.reasonUnderState) fail('the reason is under the state', r);
    if (!r.insideCard || !r.notCut || !r.oneLine || !r.visible) fail('the verdict is readable', r);
    if (!/dark/.test(r.facts)) fail('the card says why', r);
    const p = await picture(page, cams.covered.id);
    if (Math.max(...p.mean) > 30) fail('a black picture', p);
    return { ...r, picture: p };
  });

  let base = null;
  await check('restart', async () => {
    // The page of the old run would only see its feed fail.
    await page.close();
    const answer = await ask({ ask: 'restart' }, RESTART_TIMEOUT);
    base = answer.base;
    if (!base) fail('the test says where the new run listens', answer);
    return answer;
  });

  await check('pictures_from_disk_at_once_after_a_restart', async () => {
    if (!base) fail('no restart');
    const started = Date.now();
    const p = await open(base);
    pages.push(p);
    await Promise.all([waitForPicture(p, cams.blue.id, AT_ONCE_MS), waitForPicture(p, cams.covered.id, AT_ONCE_MS)]);
    const shownAfterMs = Date.now() - started;
    const blue = await picture(p, cams.blue.id);
    const covered = await picture(p, cams.covered.id);
    // No probe has run in this run: the service says so, and the cards wait for a heartbeat.
    const listed = await p.evaluate(async () => (await (await fetch('/api/cameras')).json()).cameras
      .map((c) => ({ id: c.id, state: c.state, last_heartbeat_at: c.last_heartbeat_at ?? null, thumbnail: c.thumbnail })));
    const off = isTheColour(blue);
    if (Math.max(...covered.mean) > 30) fail('the black camera\'s picture', covered);
    if (blue.state !== 'unknown' || covered.state !== 'unknown') fail('the cards wait for the first heartbeat', { blue, covered });
    for (const c of listed) {
      if (c.state !== null || c.last_heartbeat_at !== null) fail(`${c.id} had a heartbeat in the new run`, listed);
      if (!c.thumbnail || !c.thumbnail.taken_at) fail(`${c.id} lists no thumbnail`, listed);
    }
    return { shownAfterMs, off, blue, covered, listed };
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e && e.stack ? e.stack : e) };
} finally {
  await browser.close();
  checks.page_errors = { ok: consoleErrors.length === 0, errors: consoleErrors };
}
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
