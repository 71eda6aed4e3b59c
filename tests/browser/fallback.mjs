// The dashboard falls back to HLS by itself when WebRTC cannot connect, in headless Chromium
// (Debian's) on a phone-sized viewport: first with the streamer's media address unreachable
// (its answer, on its way to the page, names 198.51.100.1, a documentation address no packet
// reaches: a firewall dropping UDP, as ICE sees it), then with WebRTC turned off on
// the streamer (max_webrtc_viewers 0: 503). Each time the page plays HLS, says which player
// plays, why WebRTC is not used, and how far behind the live edge the picture is; the player
// fits the phone's screen and is usable (screenshots saved).
//
// Questions to the test: {"ask":"webrtc_off"} → {}: sets max_webrtc_viewers to 0 and reloads
// the streamer's config (SIGHUP), answering once its health says so.
// Usage: node fallback.mjs BASE_URL SCREENSHOT_DIR
// Prints one JSON line: {"ok": bool, "checks": {...}}.
import { join } from 'node:path';
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';
import { check, checks, finish } from './checks.mjs';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node fallback.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
const PHONE = { width: 390, height: 844 };
/** Two WebRTC sessions of 3 s each, a pause between them, and HLS's first segments. */
/** hls.js in low-latency mode plays within this of the live edge (seconds). */
const LOW_LATENCY_S = 3;
const FALLBACK_LIMIT_MS = 40000;

const browser = await launch({ viewport: PHONE }, [
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
]);
/** Where the media of the unreachable streamer is said to be (TEST-NET-2, RFC 5737). */
const UNREACHABLE = '198.51.100.1';
const pageErrors = [];

/** Opens the dashboard and waits until it plays HLS after WebRTC gave up; what it shows. */
async function fallsBack(name, { unreachable = false } = {}) {
  const page = await browser.context.newPage();
  if (unreachable) {
    await page.route('**/whep/desktop', async (route) => {
      const res = await route.fetch();
      const body = (await res.text()).replace(/^(a=candidate:\S+ \d+ \S+ \d+ )\S+/gm, `$1${UNREACHABLE}`);
      await route.fulfill({ response: res, body });
    });
  }
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e}`));
  const opened = Date.now();
  await page.goto(`${base}/`);
  const state = () => page.evaluate(() => {
    const v = document.getElementById('video');
    const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
    return JSON.stringify({ ...v.dataset, currentTime: v.currentTime, paused: v.paused, duration: v.duration,
      seekable: ranges(v.seekable), buffered: ranges(v.buffered),
      caption: document.getElementById('player-state').textContent });
  });
  const waitFor = (what, fn, arg, timeout) => page.waitForFunction(fn, arg, { timeout })
    .catch(async (e) => { throw new Error(`${what}: ${e.message}; ${await state()}`); });
  await waitFor('HLS after WebRTC gave up', () => {
    const v = document.getElementById('video');
    return v.dataset.fellBack && v.dataset.player !== 'webrtc' && v.currentTime > 0;
  }, null, FALLBACK_LIMIT_MS);
  const fellBackMs = Date.now() - opened;
  // It plays: the video's time moves on, and the caption gets its latency estimate.
  const start = await page.evaluate(() => document.getElementById('video').currentTime);
  await waitFor('the video playing on', (t) => document.getElementById('video').currentTime > t + 1, start, 20000);
  await waitFor('the latency estimate', () => /behind the live edge/.test(document.getElementById('player-state').textContent),
    null, 15000);
  await page.screenshot({ path: join(shots, `phone-${name}.png`), fullPage: false });
  const shown = await page.evaluate(() => {
    const v = document.getElementById('video');
    const caption = document.getElementById('player-state');
    const box = (n) => { const b = n.getBoundingClientRect(); return { left: b.left, right: b.right, top: b.top, width: b.width, height: b.height }; };
    return {
      player: v.dataset.player, fellBack: v.dataset.fellBack, caption: caption.textContent,
      video: box(v), captionBox: box(caption), controls: v.controls, paused: v.paused,
      innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
      latency: Number(v.dataset.latency),
    };
  });
  await page.close();
  const r = { fell_back_ms: fellBackMs, ...shown };
  // Chromium has MediaSource: hls.js on the low-latency playlist, near its live edge (PART-HOLD-BACK
  // is about 1.1 s; three segments would be over 6 s).
  if (r.player !== 'hlsjs') throw new Error(`player ${JSON.stringify(r)}`);
  if (!(r.latency < LOW_LATENCY_S)) throw new Error(`hls.js plays too far behind the live edge: ${JSON.stringify(r)}`);
  if (!r.caption.includes('HLS, as WebRTC could not connect')) throw new Error(`caption ${JSON.stringify(r)}`);
  // Usable on the phone: the whole video is on the screen, wide enough, with its controls and
  // the caption under it, and the page does not scroll sideways.
  const v = r.video;
  if (v.left < 0 || v.right > r.innerWidth || v.width < 300 || v.height < 150) throw new Error(`video box ${JSON.stringify(r)}`);
  if (!r.controls || r.paused || r.captionBox.height === 0) throw new Error(`player ${JSON.stringify(r)}`);
  if (r.scrollWidth > r.innerWidth) throw new Error(`scrolls sideways: ${JSON.stringify(r)}`);
  if (!(r.latency >= 0)) throw new Error(`no latency estimate: ${JSON.stringify(r)}`);
  return r;
}

try {
  await check('udp_blocked', async () => {
    const r = await fallsBack('udp-blocked', { unreachable: true });
    if (!/could not reach the streamer/.test(r.fellBack)) throw new Error(`why: ${JSON.stringify(r)}`);
    return r;
  });
  await check('webrtc_off_503', async () => {
    await ask({ ask: 'webrtc_off' }, 30000);
    const r = await fallsBack('webrtc-off');
    if (!r.fellBack.includes('503') || !r.fellBack.includes('max_webrtc_viewers')) throw new Error(`why: ${JSON.stringify(r)}`);
    return r;
  });
} catch (e) {
  checks.script = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
finish(pageErrors);
