// The dashboard's live view heals itself, in headless Chromium (Debian's): the page `/` plays
// WebRTC by default (with the STUN server of the streamer's config, learnt from the WHEP
// answer's Link headers through the dashboard); the test then breaks the stream in each way a
// kiosk meets (a pipeline rebuild, the capture worker killed, the X server gone and back, the
// streamer process restarted) and the page must show the new picture without a reload, still
// over WebRTC, and say what happened under the video.
//
// Questions to the test (tests/tests/webrtc_dashboard.rs answers them):
// {"ask":"paint","rgb":"RRGGBB"} → {"painted_at"}: paints the second monitor;
// {"ask":"event","event":NAME,"rgb":"RRGGBB"|null} → {"first_at", "painted_at"}: does NAME (rebuild,
//   kill_worker, x_gone, x_back, restart_streamer), waits until the streamer's new worker run
//   (or new process) sends its first picture (`first_at`, ms since the epoch), then paints
//   `rgb` (unless null: X is gone).
// Usage: node heal.mjs BASE_URL RRGGBB (the colour the monitor shows now) SCREENSHOT_DIR
// Prints one JSON line: {"ok": bool, "checks": {...}}.
import { join } from 'node:path';
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';
import { check, checks, finish } from './checks.mjs';
import { installPicture } from './picture.mjs';

const [base, initial, shots] = process.argv.slice(2);
if (!base || !initial || !shots) {
  console.error('usage: node heal.mjs BASE_URL RRGGBB SCREENSHOT_DIR');
  process.exit(2);
}
/** Colours painted in turn, far from each other, from black and from the initial one. */
const COLOURS = ['2040d0', '20c040', 'd0d020', 'c020c0', '20c0c0', 'd06020'];
/** How long a colour may take to reach the picture before the check fails (a backstop). */
const SEE_LIMIT_MS = 30000;
/** How long an event (a restart and its first picture) may take. */
const EVENT_LIMIT_MS = 60000;
/** The page says so when no picture came for this long (web-monitor/ui/webrtc.js STALL_MS). */
const STALL_MS = 1500;

const browser = await launch({ viewport: { width: 1280, height: 900 } },
  ['--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection']);
const pageErrors = [];
try {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${base}/`);
  await installPicture(page);
  await page.evaluate(() => {
    window.notReloaded = true;
    window.captions = [];
    const caption = document.getElementById('player-state');
    new MutationObserver(() => window.captions.push(caption.textContent))
      .observe(caption, { childList: true, characterData: true, subtree: true });
  });
  const see = (rgb, away = false) => page.evaluate(([c, l, a]) => window.see('video', c, l, a), [rgb, SEE_LIMIT_MS, away]);
  const player = () => page.evaluate(() => {
    const v = document.getElementById('video');
    return {
      player: v.dataset.player, sessions: Number(v.dataset.sessions), pauses: Number(v.dataset.pauses),
      fellBack: v.dataset.fellBack || null, iceServers: Number(v.dataset.iceServers), caption: document.getElementById('player-state').textContent,
      notReloaded: window.notReloaded === true,
    };
  });
  let colour = initial;
  let next = 0;

  await check('plays_webrtc', async () => {
    const seen = await see(colour);
    await page.evaluate(() => window.watchGaps('video'));
    // The latency estimate comes from WebRTC's statistics every 2 s.
    await page.waitForFunction(() => /s from the streamer/.test(document.getElementById('player-state').textContent),
      null, { timeout: 15000 });
    const p = await player();
    await page.screenshot({ path: join(shots, 'webrtc-desktop.png') });
    if (p.player !== 'webrtc' || p.fellBack) throw new Error(`player ${JSON.stringify(p)}`);
    // The streamer's STUN server reached the page through the dashboard (Link headers).
    if (p.iceServers !== 1) throw new Error(`ICE servers ${JSON.stringify(p)}`);
    if (seen.width !== 1280 || seen.height !== 720) throw new Error(`${seen.width}x${seen.height}`);
    return { ...p, latency: await page.evaluate(() => Number(document.getElementById('video').dataset.latency)) };
  });

  // One event: the test does it and paints a new colour once the new worker run sends its
  // first picture; the page must show that colour within 2 s of that first picture (plus the
  // screen-to-page latency), over WebRTC, without a reload.
  // `says`: what the caption must say of it (a regular expression), at once or soon after (the
  // status feed comes once a second).
  const heals = async (event, says, { paint = true, newSession = false } = {}) => {
    const before = await player();
    await page.evaluate(() => { window.captions = []; window.gaps('video'); });
    const rgb = paint ? COLOURS[next++ % COLOURS.length] : null;
    const { first_at, painted_at } = await ask({ ask: 'event', event, rgb }, EVENT_LIMIT_MS);
    // X gone: the slate, anything but the colour shown before.
    const seen = rgb ? await see(rgb) : await see(colour, true);
    if (rgb) colour = rgb;
    const gap = await page.evaluate(() => window.gaps('video'));
    // The caption catches up with the picture (the "playing again" line follows the frame).
    if (gap >= STALL_MS + 500) {
      await page.waitForFunction(() => window.captions.some((c) => c.includes('playing again')), null, { timeout: 5000 });
    }
    await page.waitForFunction((re) => window.captions.some((c) => new RegExp(re).test(c)), says, { timeout: 10000 })
      .catch(() => {});
    const after = await player();
    const captions = await page.evaluate(() => [...new Set(window.captions)]);
    const r = {
      after_first_picture_ms: seen.at - first_at, painted_to_seen_ms: painted_at ? seen.at - painted_at : null,
      longest_gap_ms: gap, captions, ...after, sessions: [before.sessions, after.sessions],
    };
    if (!after.notReloaded) throw new Error(`the page reloaded: ${JSON.stringify(r)}`);
    if (after.player !== 'webrtc' || after.fellBack) throw new Error(`not WebRTC any more: ${JSON.stringify(r)}`);
    if (newSession !== (after.sessions > before.sessions)) throw new Error(`sessions: ${JSON.stringify(r)}`);
    if (!captions.some((c) => new RegExp(says).test(c))) throw new Error(`the caption never said /${says}/: ${JSON.stringify(r)}`);
    // A pause long enough to notice is said while it lasts, then that the picture is back.
    if (gap >= STALL_MS + 500) {
      if (!captions.some((c) => c.includes('no new picture') || c.includes('connecting again'))) {
        throw new Error(`the pause was not said: ${JSON.stringify(r)}`);
      }
      if (!captions.some((c) => c.includes('playing again'))) throw new Error(`the return was not said: ${JSON.stringify(r)}`);
    }
    return r;
  };

  await check('rebuild', () => heals('rebuild', 'the stream restarted: requested'));
  await check('kill_worker', () => heals('kill_worker', 'the stream restarted: pipeline error'));
  await check('x_gone', () => heals('x_gone', 'the stream shows the slate', { paint: false }));
  await check('x_back', () => heals('x_back', 'the stream restarted: display changed'));
  await check('restart_streamer', () => heals('restart_streamer', 'over a new connection \\(the streamer process restarted',
    { newSession: true }));
  await check('still_live', async () => {
    const rgb = COLOURS[next++ % COLOURS.length];
    const { painted_at } = await ask({ ask: 'paint', rgb });
    const seen = await see(rgb);
    const latency_ms = seen.at - painted_at;
    // WebRTC, not HLS seconds: the reconnected session is as live as the first.
    if (latency_ms > 1500) throw new Error(`${latency_ms} ms behind the screen`);
    await page.screenshot({ path: join(shots, 'webrtc-after-restarts.png') });
    return { latency_ms, ...(await player()) };
  });
} catch (e) {
  checks.script = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
// Uncaught errors only: requests failing while the streamer restarts are expected.
finish(pageErrors);
