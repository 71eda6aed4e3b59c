// Plays a low-latency HLS playlist with hls.js in its low-latency mode (the dashboard's own
// hls.js, from web-monitor/ui/node_modules) in headless Chromium, and reports what hls.js did.
// Usage: node llhls.mjs URL [seconds]
// Prints one JSON line: {"checks": {"plays": {"ok", "start", "end", "partsLoaded",
// "blockingRequests", "canBlockReload", "partTarget", "latency", "error", "errors" (non-fatal
// ones by kind), "longestPartWaitMs", "samples" ([ms, currentTime, buffered ahead, latency]
// every 250 ms)}}}; exit 0 when it played.
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';
import { fileURLToPath } from 'node:url';

const [url, seconds = '8'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node llhls.mjs URL [seconds]');
  process.exit(2);
}
const hlsjs = fileURLToPath(new URL('../../web-monitor/ui/node_modules/hls.js/dist/hls.min.js', import.meta.url));
const browser = await launch({}, ['--autoplay-policy=no-user-gesture-required']);
await check('plays', async () => {
  const page = await browser.context.newPage();
  await page.setContent(`<video id="v" muted autoplay playsinline></video>`);
  await page.addScriptTag({ path: hlsjs });
  const r = await page.evaluate(async ({ url, seconds }) => {
    const v = document.getElementById('v');
    const wait = (ms) => new Promise((res) => setTimeout(res, ms));
    const seen = { partsLoaded: 0, blockingRequests: 0, canBlockReload: null, partTarget: null, error: null };
    const hls = new window.Hls({
      lowLatencyMode: true,
      enableWorker: false,
      xhrSetup: (_xhr, u) => {
        if (u.includes('_HLS_msn=')) seen.blockingRequests += 1;
      },
    });
    // The longest wait between two parts loaded: a stall with short waits is the player's.
    let lastPart = null;
    seen.longestPartWaitMs = 0;
    hls.on(window.Hls.Events.FRAG_LOADED, (_e, data) => {
      if (!data.part) return;
      seen.partsLoaded += 1;
      const now = performance.now();
      if (lastPart !== null && v.currentTime > 0) seen.longestPartWaitMs = Math.max(seen.longestPartWaitMs, Math.round(now - lastPart));
      lastPart = now;
    });
    hls.on(window.Hls.Events.LEVEL_LOADED, (_e, data) => {
      seen.canBlockReload = data.details.canBlockReload;
      seen.partTarget = data.details.partTarget;
    });
    seen.errors = {};
    hls.on(window.Hls.Events.ERROR, (_e, data) => {
      if (data.fatal) seen.error = `${data.type} ${data.details}`;
      seen.errors[data.details] = (seen.errors[data.details] || 0) + 1;
    });
    hls.loadSource(url);
    hls.attachMedia(v);
    await v.play().catch(() => {});
    for (let i = 0; i < 150 && v.currentTime === 0 && !seen.error; i++) await wait(100);
    const start = v.currentTime;
    seen.samples = [];
    const t0 = performance.now();
    for (let i = 0; i < seconds * 4; i++) {
      await wait(250);
      const b = v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : 0;
      seen.samples.push([Math.round(performance.now() - t0), +v.currentTime.toFixed(2), +b.toFixed(2), +(hls.latency || 0).toFixed(2)]);
    }
    const end = v.currentTime;
    const latency = hls.latency;
    hls.destroy();
    return { start, end, latency, ...seen };
  }, { url, seconds: Number(seconds) });
  if (r.error) throw new Error(`hls.js: ${r.error}`);
  if (!(r.end > r.start + Number(seconds) / 2)) throw new Error(`the video's time went from ${r.start} to ${r.end}`);
  return r;
});
await browser.close();
console.log(JSON.stringify({ checks }));
process.exit(checks.plays.ok ? 0 : 1);
