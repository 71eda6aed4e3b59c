// Whether a web page of another origin may read the kiosk's stream, in headless Chromium
// (Debian's /usr/bin/chromium): a page of an origin the streamer's `cors_origins` names reads
// the playlists and a segment and may offer WHEP; a page of any other origin is refused all of
// them by the browser (no CORS answer for it), as any site a LAN user visits would be.
//
// Usage: node cross_origin.mjs SPEC_JSON
//   SPEC_JSON: {stream: "http://127.0.0.1:PORT", allowed: ORIGIN, refused: ORIGIN}
// Prints one JSON line {"ok", "checks": {name: {ok, ...}}} last; exit 0 when every check passed.
import { check, checks, finish } from './checks.mjs';
import { launch } from './chromium.mjs';

const spec = JSON.parse(process.argv[2] || 'null');
if (!spec || !spec.stream || !spec.allowed || !spec.refused) {
  console.error('usage: node cross_origin.mjs SPEC_JSON');
  process.exit(2);
}
const browser = await launch({});
const pageErrors = [];

/** From a page of `origin`: what each read of the stream gave (status and start, or the error). */
async function readsFrom(origin) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${origin}: ${e.message}`));
  // The origin's own page (whatever it answers): scripts then run in that origin.
  await page.goto(`${origin}/`);
  const result = await page.evaluate(async (stream) => {
    const read = async (path, init) => {
      try {
        const r = await fetch(`${stream}${path}`, init);
        const text = await r.text();
        return { status: r.status, start: text.slice(0, 7), bytes: text.length };
      } catch (e) {
        return { error: String(e) };
      }
    };
    const playlist = await read('/hls/desktop/playlist.m3u8');
    const segment = playlist.start === '#EXTM3U'
      ? (await (await fetch(`${stream}/hls/desktop/playlist.m3u8`)).text()).split('\n').find((l) => l.endsWith('.ts'))
      : null;
    return {
      origin: location.origin,
      playlist,
      low_latency: await read('/hls/desktop/ll.m3u8'),
      segment: segment ? await read(`/hls/desktop/${segment}`) : null,
      // A WHEP offer is a preflighted request (Content-Type application/sdp).
      whep: await read('/whep/desktop', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' }),
    };
  }, spec.stream);
  await page.close();
  return result;
}

try {
  await check('allowed_origin_reads_the_stream', async () => {
    const r = await readsFrom(spec.allowed);
    if (r.origin !== spec.allowed) throw new Error(`the page's origin is ${r.origin}`);
    for (const what of ['playlist', 'low_latency']) {
      if (r[what].status !== 200 || r[what].start !== '#EXTM3U') throw new Error(`${what}: ${JSON.stringify(r)}`);
    }
    if (!r.segment || r.segment.status !== 200 || !(r.segment.bytes > 0)) throw new Error(`segment: ${JSON.stringify(r)}`);
    // The offer reaches the streamer (a bad SDP is its business), the browser lets the answer through.
    if (r.whep.error || !r.whep.status) throw new Error(`whep: ${JSON.stringify(r)}`);
    return r;
  });
  await check('other_origin_is_refused', async () => {
    const r = await readsFrom(spec.refused);
    if (r.origin !== spec.refused) throw new Error(`the page's origin is ${r.origin}`);
    for (const what of ['playlist', 'low_latency', 'whep']) {
      if (!r[what].error) throw new Error(`${what} was readable from ${spec.refused}: ${JSON.stringify(r)}`);
    }
    return r;
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e && e.stack ? e.stack : e) };
} finally {
  await browser.close();
}
finish(pageErrors);
