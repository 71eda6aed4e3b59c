// WebRTC through WHEP in headless Chromium (Debian's): the page posts its offer to the
// streamer's /whep/desktop from another origin (so CORS and the preflight are exercised), plays
// the answer's video and reads the decoded picture's colour from a canvas at each new frame
// (requestVideoFrameCallback). The test paints the second monitor when asked
// ({"ask":"paint","rgb":"RRGGBB"} → {"painted_at": ms since the epoch}) and shows the streamer's
// health ({"ask":"health"} → its `webrtc` object).
// Usage: node whep.mjs BASE_URL RRGGBB (the colour the monitor shows now)
// Prints one JSON line: {"ok": bool, "checks": {...}}.
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';
import { check, checks, finish } from './checks.mjs';
import { installPicture } from './picture.mjs';

const [base, initial] = process.argv.slice(2);
if (!base || !initial) {
  console.error('usage: node whep.mjs BASE_URL RRGGBB');
  process.exit(2);
}
/** Colours painted in turn, far from each other and from the initial one. */
const COLOURS = ['2040d0', '20c040', 'd0d020', 'c020c0', '20c0c0', 'd06020'];
/** How long a colour may take to reach the picture before the check fails. */
const SEE_LIMIT_MS = 15000;

const browser = await launch({}, ['--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection']);
let page;
try {
  page = await browser.context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.setContent(`<video id="a" muted autoplay playsinline></video><video id="b" muted autoplay playsinline></video>`);
  await page.evaluate((base) => {
    window.base = base;
    window.viewers = {};
    window.offer = async () => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      return pc;
    };
    window.post = async (body, type = 'application/sdp') => {
      const res = await fetch(`${base}/whep/desktop`, { method: 'POST', headers: { 'Content-Type': type }, body });
      return { status: res.status, location: res.headers.get('Location'), type: res.headers.get('Content-Type'), text: await res.text() };
    };
    // Negotiates a viewer into <video id=name>; its session's location.
    // `keep(candidateLine)`: which of the answer's candidates this browser gets to see.
    window.play = async (name, keep = () => true) => {
      const pc = await window.offer();
      const v = document.getElementById(name);
      pc.ontrack = (e) => { v.srcObject = new MediaStream([e.track]); };
      const res = await window.post(pc.localDescription.sdp);
      if (res.status !== 201) throw new Error(`POST answered ${res.status}: ${res.text}`);
      const sdp = res.text.split('\r\n').filter((l) => !l.startsWith('a=candidate:') || keep(l)).join('\r\n');
      await pc.setRemoteDescription({ type: 'answer', sdp });
      window.viewers[name] = { pc, location: res.location };
      return { status: res.status, location: res.location, type: res.type };
    };
  }, base);
  await installPicture(page);

  const see = (name, rgb) => page.evaluate(([n, c, l]) => window.see(n, c, l), [name, rgb, SEE_LIMIT_MS]);
  let colour = initial;
  let next = 0;
  // Paints the next colour and returns how long the viewer `name` took to show it.
  const change = async (name) => {
    colour = COLOURS[next++ % COLOURS.length];
    const { painted_at } = await ask({ ask: 'paint', rgb: colour });
    const seen = await see(name, colour);
    return seen.at - painted_at;
  };

  await check('plays', async () => {
    const joined = Date.now();
    const res = await page.evaluate(() => window.play('a'));
    const seen = await see('a', colour);
    return { ...res, ...seen, first_picture_ms: seen.at - joined };
  });
  await check('latency', async () => {
    const latencies_ms = [];
    for (let i = 0; i < 6; i++) latencies_ms.push(await change('a'));
    const sorted = [...latencies_ms].sort((x, y) => x - y);
    return { latencies_ms, median_ms: (sorted[2] + sorted[3]) / 2, max_ms: sorted[5] };
  });
  await check('wrong_type_415', async () => page.evaluate(async () => {
    const pc = await window.offer();
    const res = await window.post(pc.localDescription.sdp, 'text/plain');
    pc.close();
    return { status: res.status, text: res.text };
  }));
  await check('garbage_400', async () => page.evaluate(() => window.post('v=0\r\nthis is not an offer\r\n')
    .then(({ status, text }) => ({ status, text }))));
  await check('no_video_400', async () => page.evaluate(async () => {
    // A real offer, with audio only.
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await window.post(pc.localDescription.sdp);
    pc.close();
    return { status: res.status, text: res.text };
  }));
  await check('huge_413', async () => page.evaluate(() => window.post('a'.repeat(65 * 1024))
    .then(({ status, text }) => ({ status, text }))));
  await check('second_viewer', async () => {
    const res = await page.evaluate(() => window.play('b'));
    const seen = await see('b', colour);
    return { ...res, colour: seen.colour };
  });
  await check('full_503', async () => page.evaluate(async () => {
    const pc = await window.offer();
    const res = await window.post(pc.localDescription.sdp);
    pc.close();
    return { status: res.status, text: res.text };
  }));
  await check('health', async () => ({ webrtc: await ask({ ask: 'health' }) }));
  await check('delete_frees', async () => page.evaluate(async () => {
    const b = window.viewers.b;
    const del = await fetch(`${window.base}${b.location}`, { method: 'DELETE' });
    b.pc.close();
    const again = await fetch(`${window.base}${b.location}`, { method: 'DELETE' });
    // The freed slot takes a new viewer.
    const pc = await window.offer();
    const res = await window.post(pc.localDescription.sdp);
    pc.close();
    const cleanup = res.location ? (await fetch(`${window.base}${res.location}`, { method: 'DELETE' })).status : null;
    return { deleted: del.status, deleted_again: again.status, new_viewer: res.status, cleanup };
  }));
  await check('tcp_only', async () => {
    // UDP unreachable (the answer's UDP candidates withheld): the media goes over ICE-TCP.
    const res = await page.evaluate(() => window.play('b', (line) => / tcp /i.test(line)));
    const seen = await see('b', colour);
    const r = await page.evaluate(async () => {
      const b = window.viewers.b;
      const stats = await b.pc.getStats();
      let pair = null;
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
      const local = pair && stats.get(pair.localCandidateId);
      const remote = pair && stats.get(pair.remoteCandidateId);
      const del = await fetch(`${window.base}${b.location}`, { method: 'DELETE' });
      b.pc.close();
      return { local: local && local.protocol, remote: remote && `${remote.protocol} ${remote.address}:${remote.port} ${remote.tcpType}`, deleted: del.status };
    });
    if (r.local !== 'tcp') throw new Error(`the media went over ${JSON.stringify(r)}`);
    return { ...res, ...r, colour: seen.colour };
  });
  await check('first_still_plays', async () => ({ latency_ms: await change('a') }));
  await check('closed_without_delete', async () => {
    // A viewer that connects, then closes its peer connection without DELETE (a closed tab).
    const res = await page.evaluate(() => window.play('b'));
    await see('b', colour);
    await page.evaluate(() => window.viewers.b.pc.close());
    return { location: res.location };
  });
  await check('page_errors', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('; '));
    return {};
  });
} catch (e) {
  checks.script = { ok: false, error: String(e) };
} finally {
  await browser.close();
}
finish();
