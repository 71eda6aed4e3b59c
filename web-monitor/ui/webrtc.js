// The live view over WebRTC (WHEP): the page sends an SDP offer to /whep/desktop (the streamer's
// endpoint, same-origin through the dashboard), plays the track it gets, and ends the session
// with DELETE when it leaves. The streamer is an ICE-lite server whose answer carries its
// candidates, so the offer goes out at once, without waiting for this browser's candidates.
//
// A session that fails (ICE lost, the streamer restarted) is replaced after a pause, without a
// reload. When WebRTC cannot connect at all (UDP blocked, an endpoint missing), `onGiveUp` is
// called so the page can play HLS instead.

const WHEP_URL = '/whep/desktop';
/** How long a new session may take to show a picture before it counts as failed. */
const CONNECT_MS = 6000;
/** Pause before a new session after one failed; doubles up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
/** Sessions in a row that never played before the page gives WebRTC up. */
const GIVE_UP_AFTER = 2;
/** How often the latency estimate is refreshed. */
const STATS_MS = 2000;

export class WhepPlayer {
  /** `onState(text, isError)` hears what the player does; `onGiveUp(why)` that WebRTC cannot
   * connect here (never called when `onGiveUp` is null: the player keeps trying). */
  constructor(video, onState = () => {}, onGiveUp = null) {
    this.video = video;
    this.onState = onState;
    this.onGiveUp = onGiveUp;
    this.pc = null;
    this.session = null;
    this.retryMs = RETRY_MIN_MS;
    this.failedInARow = 0;
    this.timers = [];
    this.stopped = false;
    this.latency = null;
    video.dataset.player = 'webrtc';
    addEventListener('pagehide', () => this.stop());
  }

  async start() {
    if (this.stopped) return;
    this.onState('connecting over WebRTC…', false);
    const pc = new RTCPeerConnection({ iceServers: [] });
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
        if (this.pc === pc && pc.connectionState === 'disconnected') this.fail('WebRTC disconnected');
      }, 2000);
    };
    const playing = () => {
      if (this.pc !== pc) return;
      this.failedInARow = 0;
      this.retryMs = RETRY_MIN_MS;
      this.showPlaying();
    };
    this.video.addEventListener('playing', playing, { once: true });
    this.later(() => {
      if (this.pc === pc && (this.video.readyState < 2 || pc.connectionState !== 'connected')) {
        this.fail(`no picture over WebRTC within ${CONNECT_MS / 1000} s`);
      }
    }, CONNECT_MS);
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const r = await fetch(WHEP_URL, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer.sdp, credentials: 'same-origin',
      });
      if (r.status !== 201) {
        const text = await r.text();
        let why = text;
        try { why = JSON.parse(text).error || text; } catch { /* plain text */ }
        // No endpoint or no room: another session would fare no better.
        this.fail(`WebRTC refused (${r.status}): ${why}`, r.status === 404 || r.status === 503);
        return;
      }
      this.session = r.headers.get('Location');
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    } catch (e) {
      this.fail(`WebRTC: ${e.message}`);
    }
  }

  later(f, ms) {
    this.timers.push(setTimeout(f, ms));
  }

  showPlaying() {
    const estimate = this.latency === null ? '' : `, about ${this.latency.toFixed(2)} s behind the screen`;
    this.onState(`playing (WebRTC${estimate})`, false);
    this.video.dataset.latency = this.latency === null ? '' : String(this.latency);
  }

  /** The delay the browser adds (jitter buffer) plus half the round trip: what WebRTC's own
   * statistics tell of how far behind the screen the picture is (encoding not counted). */
  async measure() {
    const pc = this.pc;
    if (!pc) return;
    const stats = await pc.getStats();
    let buffer = null;
    let rtt = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.jitterBufferEmittedCount > 0) {
        buffer = s.jitterBufferDelay / s.jitterBufferEmittedCount;
      }
      if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') {
        rtt = s.currentRoundTripTime;
      }
    });
    if (buffer !== null) {
      this.latency = buffer + (rtt || 0) / 2;
      if (this.video.readyState >= 2) this.showPlaying();
    }
  }

  /** Ends this session and, unless WebRTC is to be given up, starts another after a pause. */
  fail(why, hopeless = false) {
    if (!this.pc || this.stopped) return;
    this.close();
    this.failedInARow += 1;
    if (this.onGiveUp && (hopeless || this.failedInARow >= GIVE_UP_AFTER)) {
      this.stopped = true;
      this.onGiveUp(why);
      return;
    }
    this.onState(`${why}; trying again in ${Math.round(this.retryMs / 1000)} s`, true);
    this.later(() => this.start(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

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
    this.video.srcObject = null;
  }

  stop() {
    this.stopped = true;
    this.close();
  }

  /** Keeps the latency estimate current while the page is open. */
  watchStats() {
    setInterval(() => { this.measure().catch(() => {}); }, STATS_MS);
  }
}
