// Glass-to-glass latency of the dashboard's live view (tests/benches/live_view.rs runs it):
// headless Chromium opens the dashboard with `?player=PATH`, waits until it plays, then, for
// each change, asks the benchmark to repaint the kiosk's second monitor in a new colour
// (answered with the moment the X server had it, ms since the epoch) and watches the decoded
// picture (requestVideoFrameCallback, the frame's centre read through a canvas) until it shows
// that colour; latency = when that frame was to be displayed − when the screen changed. Both
// times are this machine's CLOCK_REALTIME (the browser's performance.timeOrigin + now).
//
// Usage: node latency.mjs SPEC_JSON
//   SPEC_JSON: {base, paths: ["webrtc", "hlsjs", …], changes: N, timeout_ms}
// Prints one JSON line: {ok, paths: {PATH: {latencies_ms: [...], player_state, error}}}.
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';

const spec = JSON.parse(process.argv[2] || 'null');
if (!spec || !spec.base || !spec.paths || !spec.changes) {
  console.error('usage: node latency.mjs SPEC_JSON');
  process.exit(2);
}
const TIMEOUT = spec.timeout_ms || 30000;
const COLOURS = [0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0xff00ff, 0xffffff, 0x000000];

const browser = await launch({}, ['--autoplay-policy=no-user-gesture-required']);
const out = { ok: true, paths: {} };
try {
  for (const path of spec.paths) {
    const result = { latencies_ms: [] };
    out.paths[path] = result;
    const page = await browser.context.newPage();
    try {
      await page.goto(`${spec.base}/?player=${path}`);
      await page.waitForFunction(() => document.getElementById('player-state').textContent.startsWith('playing'),
        null, { timeout: TIMEOUT });
      // Let the player settle at its steady distance from the live edge.
      await page.waitForFunction(() => document.getElementById('video').currentTime > 3, null, { timeout: TIMEOUT });
      for (let i = 0; i < spec.changes; i++) {
        const colour = COLOURS[i % COLOURS.length];
        const watching = page.evaluate(([want, timeout]) => new Promise((resolve) => {
          const video = document.getElementById('video');
          const canvas = document.createElement('canvas');
          canvas.width = 8;
          canvas.height = 8;
          const g = canvas.getContext('2d', { willReadFrequently: true });
          const close = (a, b) => [16, 8, 0].every((s) => Math.abs(((a >> s) & 255) - ((b >> s) & 255)) < 60);
          const giveUp = setTimeout(() => resolve(null), timeout);
          const look = (now, meta) => {
            g.drawImage(video, video.videoWidth / 2 - 4, video.videoHeight / 2 - 4, 8, 8, 0, 0, 8, 8);
            const [r, gr, b] = g.getImageData(4, 4, 1, 1).data;
            if (close((r << 16) | (gr << 8) | b, want)) {
              clearTimeout(giveUp);
              resolve(performance.timeOrigin + (meta.expectedDisplayTime || now));
            } else {
              video.requestVideoFrameCallback(look);
            }
          };
          video.requestVideoFrameCallback(look);
        }), [colour, TIMEOUT]);
        const { at } = await ask({ ask: 'paint', colour }, TIMEOUT);
        const seen = await watching;
        if (seen === null) throw new Error(`colour ${colour.toString(16)} not seen within ${TIMEOUT} ms`);
        result.latencies_ms.push(Math.round(seen - at));
      }
      result.player_state = await page.locator('#player-state').textContent();
    } catch (e) {
      out.ok = false;
      result.error = String(e && e.message ? e.message : e);
      result.player_state = await page.locator('#player-state').textContent().catch(() => null);
    } finally {
      await page.close();
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
