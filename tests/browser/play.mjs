// Plays an HLS URL in headless Chromium (Debian's /usr/bin/chromium) and reports whether the
// video's currentTime advanced. Usage: node play.mjs URL [seconds]
// Prints one JSON line: {"ok": bool, "start": t0, "end": t1, "error": ...}; exit 0 when it played.
import { launch } from './chromium.mjs';

const [url, seconds = '8'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node play.mjs URL [seconds]');
  process.exit(2);
}
const browser = await launch({}, ['--autoplay-policy=no-user-gesture-required']);
let result = { ok: false };
try {
  const page = await browser.context.newPage();
  await page.setContent(`<video id="v" muted autoplay playsinline></video>`);
  result = await page.evaluate(async ({ url, seconds }) => {
    const v = document.getElementById('v');
    const native = v.canPlayType('application/vnd.apple.mpegurl');
    if (!native) return { ok: false, error: 'this browser cannot play HLS natively' };
    v.src = url;
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    await v.play().catch(() => {});
    for (let i = 0; i < 100 && v.currentTime === 0; i++) await wait(100);
    const start = v.currentTime;
    await wait(seconds * 1000);
    const end = v.currentTime;
    const error = v.error ? `media error ${v.error.code}: ${v.error.message}` : null;
    return { ok: end > start + seconds / 2, start, end, native, width: v.videoWidth, height: v.videoHeight, error };
  }, { url, seconds: Number(seconds) });
} catch (e) {
  result = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
