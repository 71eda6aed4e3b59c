// WebRTC viewers for the live_view benchmark's cost figures (tests/benches/live_view.rs runs
// it): headless Chromium opens WHEP sessions on the streamer, each played in its own <video>,
// and for each count asked for, once that many viewers decode frames, asks the benchmark to
// measure ({"ask":"measure","viewers":N}, answered when the measurement is done). Every session
// is ended with DELETE at the end.
//
// Usage: node viewers.mjs STREAMER_URL COUNTS_JSON   (e.g. [1,5], ascending)
// Prints one JSON line: {ok, counts: {N: {decoding: frames per viewer when measured}}, error}.
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';

const [base, countsJson] = process.argv.slice(2);
const counts = JSON.parse(countsJson || 'null');
if (!base || !Array.isArray(counts)) {
  console.error('usage: node viewers.mjs STREAMER_URL COUNTS_JSON');
  process.exit(2);
}
/** How long a viewer may take to decode its first frames. */
const PLAY_LIMIT_MS = 30000;
/** How long one measurement may take. */
const MEASURE_LIMIT_MS = 600000;

const browser = await launch({}, ['--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection']);
const out = { ok: true, counts: {} };
try {
  const page = await browser.context.newPage();
  await page.setContent('<body></body>');
  await page.evaluate((base) => {
    window.viewers = [];
    // Opens one viewer and resolves once its <video> has decoded a few frames.
    window.open1 = async (limit) => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver('video', { direction: 'recvonly' });
      const v = document.createElement('video');
      Object.assign(v, { muted: true, autoplay: true, playsInline: true, width: 160 });
      document.body.appendChild(v);
      pc.ontrack = (e) => { v.srcObject = new MediaStream([e.track]); };
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`${base}/whep/desktop`, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST answered ${res.status}: ${text}`);
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      const location = res.headers.get('Location');
      const viewer = { pc, v, location, frames: 0 };
      window.viewers.push(viewer);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`viewer ${location} decoded no frame in ${limit} ms`)), limit);
        const step = () => {
          viewer.frames++;
          if (viewer.frames === 5) { clearTimeout(timer); resolve(); }
          v.requestVideoFrameCallback(step);
        };
        v.requestVideoFrameCallback(step);
      });
    };
    window.frames = () => window.viewers.map((x) => x.frames);
    window.closeAll = async () => {
      for (const x of window.viewers) {
        x.pc.close();
        await fetch(`${base}${x.location}`, { method: 'DELETE' });
      }
    };
  }, base);
  for (const n of counts) {
    while ((await page.evaluate(() => window.viewers.length)) < n) {
      await page.evaluate((limit) => window.open1(limit), PLAY_LIMIT_MS);
    }
    const before = await page.evaluate(() => window.frames());
    await ask({ ask: 'measure', viewers: n }, MEASURE_LIMIT_MS);
    const after = await page.evaluate(() => window.frames());
    out.counts[n] = { decoding: after.map((f, i) => f - before[i]) };
  }
  await page.evaluate(() => window.closeAll());
} catch (e) {
  out.ok = false;
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
