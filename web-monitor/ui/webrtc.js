// The live view over WebRTC (WHEP): the page sends an SDP offer to /whep/desktop (the streamer's
// endpoint, same-origin through the dashboard), plays the track it gets, and ends the session
// with DELETE when it leaves. The streamer is an ICE-lite server whose answer carries its
// candidates, so the offer goes out at once, without waiting for this browser's candidates.
//
// Self-healing: the streamer keeps a viewer's session across a worker restart (a rebuild, a
// crash, the slate, the X server back), so the picture only pauses; the player watches every
// decoded frame, says when none came for a while and, when they come again, that it plays
// again and after how long. A session that is lost (the streamer restarted, the network went)
// is replaced by a new POST after a pause that grows from 1 s to 5 s, without a reload.
//
// When WebRTC cannot connect here at all (refused with 503 or 404, or two sessions in a row
// that never showed a picture: UDP blocked, the streamer's addresses unreachable), `onGiveUp`
// is called so the page can play HLS instead.
//
// STUN/TURN servers: the streamer names those of its config (`webrtc_ice_servers`) in `Link`
// headers (rel="ice-server", as the WHEP draft describes) of its 201 answer. A page that
// learns of them there while its connection was made without them starts a new one with them
// (and keeps them for every later one).

const WHEP_URL = '/whep/desktop';
/** How long a new session may take to connect (ICE and DTLS: well under a second where the
 * streamer can be reached) and to show a picture, before it counts as failed. */
const ICE_MS = 3000;
const CONNECT_MS = 6000;
/** Pause before a new session after one failed; doubles up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 5000;
/** Sessions in a row that never played before the page gives WebRTC up. */
const GIVE_UP_AFTER = 2;
/** How often the latency estimate is refreshed. */
const STATS_MS = 2000;
/** How often the player looks for new pictures. */
const TICK_MS = 250;
/** No new picture for this long is said on the page (15 fps: 20 pictures missed). */
const STALL_MS = 1500;
/** A connection "disconnected" for this long is given up and replaced. */
const DISCONNECTED_MS = 2000;
/** How long "playing again after …" stays before the usual line. */
const RESUMED_NOTE_MS = 15000;

/** The ICE servers of `Link` headers (RFC 8288; rel="ice-server", the WHEP draft's form). */
export function iceServersOf(link) {
  if (!link) return [];
  const servers = [];
  // <url>; param="value"; param=value, <url>; ...  (values may hold escaped quotes)
  const re = /<([^>]*)>((?:\s*;\s*[a-zA-Z-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,]*))*)/g;
  for (const m of link.matchAll(re)) {
    const params = {};
    for (const p of m[2].matchAll(/;\s*([a-zA-Z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,]*))/g)) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3].trim();
    }
    if (params.rel !== 'ice-server') continue;
    const server = { urls: m[1] };
    if (params.username !== undefined) server.username = params.username;
    if (params.credential !== undefined) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}

export class WhepPlayer {
  /** `onState(text, isError)` hears what the player does; `onGiveUp(why)` that WebRTC cannot
   * connect here (never called when `onGiveUp` is null: the player keeps trying); `story()`
   * may tell what is happening to the stream (shown beside the player's line);
   * `gone(since)` may tell (a reason) that a session opened at `since` (performance.now())
   * cannot be there any more, such as when the streamer process restarted since: then a
   * stalled picture is not waited for until ICE notices, a new session is opened at once. */
  constructor(video, { onState = () => {}, onGiveUp = null, story = () => '', gone = () => '' } = {}) {
    this.video = video;
    this.onState = onState;
    this.onGiveUp = onGiveUp;
    this.story = story;
    this.gone = gone;
    this.pc = null;
    this.session = null;
    this.iceServers = [];
    this.retryMs = RETRY_MIN_MS;
    this.failedInARow = 0;
    /** Sessions in a row that were answered (201) but never showed a picture. */
    this.silentInARow = 0;
    this.timers = [];
    this.stopped = false;
    this.latency = null;
    this.lastJitter = null;
    /** Whether a session ever showed a picture on this page. */
    this.played = false;
    /** performance.now() of the newest decoded picture; pictures shown in all. */
    this.frameAt = 0;
    this.frames = 0;
    this.stalledSince = 0;
    /** The line that says the picture came back, and until when it stays. */
    this.note = '';
    this.noteUntil = 0;
    /** Why the last session was replaced, said when the next one plays. */
    this.lostBecause = '';
    video.dataset.player = 'webrtc';
    video.dataset.sessions = '0';
    video.dataset.pauses = '0';
    addEventListener('pagehide', () => this.stop());
    this.watchFrames();
    this.tick = setInterval(() => this.check(), TICK_MS);
  }

  /** Notes every decoded picture (requestVideoFrameCallback; the playback-quality counter
   * where that is missing). */
  watchFrames() {
    const v = this.video;
    if (typeof v.requestVideoFrameCallback === 'function') {
      const onFrame = () => {
        this.framed();
        v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
    } else {
      this.qualityFrames = 0;
      this.pollFrames = () => {
        const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
        if (q !== this.qualityFrames) {
          this.qualityFrames = q;
          this.framed();
        }
      };
    }
  }

  /** A new picture: after a pause, say that it plays again and after how long. */
  framed() {
    // Between sessions the element may still present a frame of the closed one.
    if (!this.pc) return;
    const now = performance.now();
    const gap = (now - this.frameAt) / 1000;
    this.frames += 1;
    this.frameAt = now;
    if (!this.pc.played) {
      this.firstPicture(this.pc, gap);
    } else if (this.stalledSince) {
      this.stalledSince = 0;
      this.resumed(`playing again after a ${gap.toFixed(1)} s pause`);
    }
  }

  /** Says, for a while, that the picture came back (`how`). */
  resumed(how) {
    this.video.dataset.pauses = String(Number(this.video.dataset.pauses) + 1);
    this.note = how;
    this.noteUntil = performance.now() + RESUMED_NOTE_MS;
    this.showPlaying();
  }

  /** Every TICK_MS: a picture that stopped coming is said, with what the page knows of why;
   * a session known to be gone is replaced at once. */
  check() {
    if (this.pollFrames) this.pollFrames();
    const now = performance.now();
    if (!this.pc || !this.pc.played || this.stopped) return;
    if (now - this.frameAt >= STALL_MS) {
      if (!this.stalledSince) this.stalledSince = this.frameAt + STALL_MS;
      const gone = this.gone(this.pc.openedAt);
      if (gone) {
        this.fail(gone);
        return;
      }
      const secs = Math.round((now - this.frameAt) / 1000);
      const story = this.story();
      this.onState(`no new picture for ${secs} s${story ? `: ${story}` : ''}; waiting for it over WebRTC…`, true);
    } else {
      if (this.note && now >= this.noteUntil) this.note = '';
      this.showPlaying();
    }
  }

  async start() {
    if (this.stopped) return;
    if (!this.played) this.onState('connecting over WebRTC…', false);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.video.dataset.iceServers = String(this.iceServers.length);
    pc.played = false;
    pc.openedAt = performance.now();
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      if (this.pc !== pc) return;
      this.video.srcObject = e.streams[0] || new MediaStream([e.track]);
      const p = this.video.play();
      if (p && p.catch) p.catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.fail(`WebRTC ${pc.connectionState}`);
      if (pc.connectionState === 'disconnected') this.later(() => {
        if (this.pc === pc && pc.connectionState === 'disconnected') this.fail('the WebRTC connection was lost');
      }, DISCONNECTED_MS);
    };
    this.later(() => {
      if (this.pc === pc && !pc.played && pc.connectionState !== 'connected') {
        this.fail(`WebRTC could not reach the streamer within ${ICE_MS / 1000} s (UDP blocked or its addresses unreachable?)`);
      }
    }, ICE_MS);
    this.later(() => {
      if (this.pc === pc && !pc.played) this.fail(`no picture over WebRTC within ${CONNECT_MS / 1000} s`);
    }, CONNECT_MS);
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      let r;
      try {
        r = await fetch(WHEP_URL, {
          method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer.sdp, credentials: 'same-origin',
        });
      } catch (e) {
        this.fail(`the stream's WebRTC endpoint cannot be reached (${e.message})`);
        return;
      }
      if (this.pc !== pc) return;
      if (r.status !== 201) {
        const text = await r.text();
        let why = text;
        try { why = JSON.parse(text).error || text; } catch { /* plain text */ }
        // No endpoint or no room: another session would fare no better, unless WebRTC played
        // here before (then the streamer is restarting, or our old session still holds a slot).
        this.fail(`WebRTC refused (${r.status}): ${why}`, r.status === 404 || r.status === 503);
        return;
      }
      this.session = r.headers.get('Location');
      pc.answered = true;
      const servers = iceServersOf(r.headers.get('Link'));
      if (servers.length && JSON.stringify(servers) !== JSON.stringify(this.iceServers)) {
        // Its candidates were gathered without them: again, with them.
        this.iceServers = servers;
        this.close();
        this.start();
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    } catch (e) {
      if (this.pc === pc) this.fail(`WebRTC: ${e.message}`);
    }
  }

  /** The first picture of a session (`gap`: seconds since the picture before it). */
  firstPicture(pc, gap) {
    pc.played = true;
    this.failedInARow = 0;
    this.silentInARow = 0;
    this.retryMs = RETRY_MIN_MS;
    this.stalledSince = 0;
    this.video.dataset.sessions = String(Number(this.video.dataset.sessions) + 1);
    if (this.played) {
      this.resumed(`playing again after a ${gap.toFixed(1)} s pause, over a new connection (${this.lostBecause})`);
    } else {
      this.played = true;
      this.showPlaying();
    }
  }

  later(f, ms) {
    this.timers.push(setTimeout(f, ms));
  }

  /** The player's line: WebRTC, its latency estimate, what happened lately. */
  showPlaying() {
    const estimate = this.latency === null ? '' : `, about ${this.latency.toFixed(2)} s from the streamer`;
    const story = this.story();
    const line = [`playing (WebRTC${estimate})`, this.note, story].filter(Boolean).join(' · ');
    this.onState(line, false);
    this.video.dataset.latency = this.latency === null ? '' : String(this.latency);
  }

  /** The delay the browser adds to each frame over the last interval (from its first packet
   * to decoded: `totalProcessingDelay`; the jitter buffer's delay where that is missing) plus
   * half the round trip: how long a frame takes from the streamer to this page. Capture and
   * encoding on the kiosk are not seen here, so the caption says "from the streamer". */
  async measure() {
    const pc = this.pc;
    if (!pc || !pc.played) return;
    const stats = await pc.getStats();
    let jitter = null;
    let rtt = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0
          && typeof s.totalProcessingDelay === 'number') {
        jitter = { pc, delay: s.totalProcessingDelay, count: s.framesDecoded };
      } else if (s.type === 'inbound-rtp' && s.kind === 'video' && s.jitterBufferEmittedCount > 0) {
        jitter = { pc, delay: s.jitterBufferDelay, count: s.jitterBufferEmittedCount };
      }
      if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') {
        rtt = s.currentRoundTripTime;
      }
    });
    if (jitter === null) return;
    const last = this.lastJitter && this.lastJitter.pc === pc ? this.lastJitter : { delay: 0, count: 0 };
    this.lastJitter = jitter;
    if (jitter.count > last.count) {
      this.latency = (jitter.delay - last.delay) / (jitter.count - last.count) + (rtt || 0) / 2;
      if (!this.stalledSince) this.showPlaying();
    }
  }

  /** Ends this session and, unless WebRTC is to be given up, starts another after a pause.
   * Before anything played here, WebRTC is given up after a refusal (`hopeless`) or
   * GIVE_UP_AFTER sessions without a picture; once it played, only when sessions that were
   * answered keep showing nothing (the network changed), never while the endpoint cannot be
   * reached (the streamer restarting). */
  fail(why, hopeless = false) {
    const pc = this.pc;
    if (!pc || this.stopped) return;
    this.close();
    this.lostBecause = why;
    if (!pc.played) {
      this.failedInARow += 1;
      if (pc.answered) this.silentInARow = this.silentInARow + 1;
    } else {
      this.silentInARow = 0;
    }
    const givingUp = this.played
      ? this.silentInARow > GIVE_UP_AFTER
      : hopeless || this.failedInARow >= GIVE_UP_AFTER;
    if (this.onGiveUp && givingUp) {
      this.stopped = true;
      clearInterval(this.tick);
      this.video.srcObject = null;
      this.onGiveUp(why);
      return;
    }
    const attempt = this.failedInARow + 1;
    this.onState(`${why}; connecting again in ${Math.round(this.retryMs / 1000)} s (attempt ${attempt})…`, true);
    this.later(() => this.start(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** Ends the session; the last picture stays on the page until a new one comes. */
  close() {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    if (this.session) {
      // Frees the viewer's slot at once instead of after the ICE timeout.
      fetch(this.session, { method: 'DELETE', credentials: 'same-origin', keepalive: true }).catch(() => {});
      this.session = null;
    }
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
  }

  stop() {
    this.stopped = true;
    clearInterval(this.tick);
    this.close();
    this.video.srcObject = null;
  }

  /** Keeps the latency estimate current while the page is open. */
  watchStats() {
    setInterval(() => { this.measure().catch(() => {}); }, STATS_MS);
  }
}
