// The stream's player: hls.js (from the npm registry, served from /assets) on the low-latency
// playlist wherever the browser has MediaSource (every desktop browser, iOS 17.1+ with
// ManagedMediaSource), a second or two behind the live edge; the browser's own HLS on the plain
// playlist otherwise (older iPhones), three segments behind. (Chromium 156+ has an HLS player of
// its own too, but it plays no parts.) A player that fails for good
// (a fatal hls.js error, a media error) is torn down and recreated after a pause, so a stream
// that comes back after a restart plays again without a reload.
// `?player=hlsjs` or `?player=native` in the page's URL forces one path (tests use it).

/** Pause before recreating a failed player; doubles up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 30000;
const HLS_MIME = 'application/vnd.apple.mpegurl';
/** What hls.js hands MediaSource: the stream's H.264 in fragmented MP4. */
const H264_MP4 = 'video/mp4; codecs="avc1.42E01E"';
/** A playing video whose time stands still this long is recreated (a live stream that went
 * away and came back can leave the browser waiting for ever). */
const STALL_MS = 20000;

export class Player {
  /** `onState(text, isError)` hears what the player is doing; hls.js plays `lowLatencyUrl`
   * (a low-latency playlist) in its low-latency mode when one is given. */
  constructor(video, url, onState = () => {}, { lowLatencyUrl = null } = {}) {
    this.video = video;
    this.url = url;
    this.lowLatencyUrl = lowLatencyUrl;
    this.onState = onState;
    this.hls = null;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
    this.recreated = 0;
    const forced = new URLSearchParams(location.search).get('player');
    const source = window.ManagedMediaSource || window.MediaSource;
    const mediaSource = Boolean(source && source.isTypeSupported(H264_MP4));
    const native = Boolean(video.canPlayType(HLS_MIME));
    this.mode = forced === 'hlsjs' || forced === 'native' ? forced : mediaSource || !native ? 'hlsjs' : 'native';
    video.dataset.player = this.mode;
    video.addEventListener('playing', () => {
      this.retryMs = RETRY_MIN_MS;
      this.onState(`playing (${this.mode === 'native' ? "browser's own HLS" : 'hls.js'})`, false);
    });
    video.addEventListener('error', () => {
      if (this.mode === 'native' && video.error) this.fail(`media error ${video.error.code}`);
    });
    let lastTime = -1;
    let lastMove = Date.now();
    setInterval(() => {
      if (video.currentTime !== lastTime || video.paused) {
        lastTime = video.currentTime;
        lastMove = Date.now();
      } else if (Date.now() - lastMove > STALL_MS && !this.retryTimer) {
        lastMove = Date.now();
        this.fail('the video stalled');
      }
    }, 5000);
  }

  async start() {
    clearTimeout(this.retryTimer);
    this.onState('loading the stream…', false);
    if (this.mode === 'native') {
      this.video.src = this.url;
      this.video.load();
      this.play();
      return;
    }
    let Hls;
    try {
      ({ default: Hls } = await import('/assets/hls.min.mjs'));
    } catch (e) {
      this.onState(`cannot load hls.js: ${e.message}`, true);
      return;
    }
    if (!Hls.isSupported()) {
      this.onState('this browser can play neither HLS nor MediaSource video', true);
      return;
    }
    const lowLatency = Boolean(this.lowLatencyUrl);
    // Low latency: hls.js keeps PART-HOLD-BACK from the edge, as the playlist says; a
    // liveSyncDuration(Count) given here would override it (three segments behind again).
    const hls = new Hls(lowLatency
      ? { workerPath: '/assets/hls.worker.js', lowLatencyMode: true }
      : { workerPath: '/assets/hls.worker.js', liveSyncDurationCount: 3, lowLatencyMode: false });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal && this.hls === hls) this.fail(`hls.js: ${data.type} ${data.details}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => this.play());
    hls.loadSource(lowLatency ? this.lowLatencyUrl : this.url);
    hls.attachMedia(this.video);
  }

  play() {
    const p = this.video.play();
    if (p && p.catch) p.catch(() => {});
  }

  /** Tears the player down and recreates it after a pause. */
  fail(why) {
    if (this.retryTimer) return;
    this.onState(`${why}; retrying in ${Math.round(this.retryMs / 1000)} s`, true);
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.video.removeAttribute('src');
    this.video.load();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.recreated += 1;
      this.video.dataset.recreated = String(this.recreated);
      this.start();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
