//! Facts measured from the stream itself: encoded buffers and bytes leaving the encoder (for
//! fps, bitrate and stall detection) and whether the captured picture still changes (frozen
//! content). In the worker, pad probes on GStreamer's streaming threads write these
//! lock-free; the worker reports them, and the supervisor's copy absorbs the reports for the
//! HTTP API.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters shared between pad probes and readers. Times are milliseconds since `epoch`.
#[derive(Debug)]
pub struct FlowCounters {
    epoch: Instant,
    buffers: AtomicU64,
    bytes: AtomicU64,
    /// Last encoded buffer, ms since epoch + 1 (0 = none yet).
    last_buffer_ms: AtomicU64,
    /// Last time the sampled picture differed from the one before, ms since epoch + 1.
    last_picture_change_ms: AtomicU64,
    /// Hash of the last sampled picture.
    last_picture_hash: AtomicU64,
    /// Last time a picture was sampled, ms since epoch + 1.
    last_picture_sample_ms: AtomicU64,
}

/// How often a raw frame is sampled for frozen-content detection.
pub const PICTURE_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Rows skipped between the rows hashed in a sample: enough to see any real change in a
/// kiosk application, cheap enough to cost nothing measurable.
const PICTURE_ROW_STEP: usize = 4;

impl Default for FlowCounters {
    fn default() -> Self {
        FlowCounters {
            epoch: Instant::now(),
            buffers: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_buffer_ms: AtomicU64::new(0),
            last_picture_change_ms: AtomicU64::new(0),
            last_picture_hash: AtomicU64::new(0),
            last_picture_sample_ms: AtomicU64::new(0),
        }
    }
}

impl FlowCounters {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn instant(&self, ms: u64) -> Option<Instant> {
        (ms > 0).then(|| self.epoch + Duration::from_millis(ms - 1))
    }

    /// Called for every encoded buffer.
    pub fn record_buffer(&self, size: usize) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        self.last_buffer_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether a raw frame should be sampled now (at most once per interval).
    pub fn picture_sample_due(&self) -> bool {
        let now = self.now_ms();
        let last = self.last_picture_sample_ms.load(Ordering::Relaxed);
        last == 0 || now.saturating_sub(last) >= PICTURE_SAMPLE_INTERVAL.as_millis() as u64
    }

    /// Records a sampled raw frame given as rows of bytes (plane data and stride).
    pub fn record_picture(&self, data: &[u8], stride: usize, rows: usize) {
        let now = self.now_ms();
        self.last_picture_sample_ms.store(now, Ordering::Relaxed);
        let hash = hash_rows(data, stride, rows);
        if self.last_picture_hash.swap(hash, Ordering::Relaxed) != hash
            || self.last_picture_change_ms.load(Ordering::Relaxed) == 0
        {
            self.last_picture_change_ms.store(now, Ordering::Relaxed);
        }
    }

    pub fn totals(&self) -> (u64, u64) {
        (self.buffers.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }

    pub fn last_buffer(&self) -> Option<Instant> {
        self.instant(self.last_buffer_ms.load(Ordering::Relaxed))
    }

    pub fn last_picture_change(&self) -> Option<Instant> {
        self.instant(self.last_picture_change_ms.load(Ordering::Relaxed))
    }

    /// Takes in a worker's report: new buffers and bytes since its last report, and how long
    /// ago (as the worker saw it) the last buffer and the last picture change were.
    pub fn absorb(
        &self,
        buffers: u64,
        bytes: u64,
        since_buffer: Option<Duration>,
        since_picture_change: Option<Duration>,
    ) {
        self.buffers.fetch_add(buffers, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let now = self.now_ms();
        let at = |ago: Duration| now.saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX)).max(1);
        if let Some(ago) = since_buffer {
            self.last_buffer_ms.store(at(ago), Ordering::Relaxed);
        }
        if let Some(ago) = since_picture_change {
            self.last_picture_change_ms.store(at(ago), Ordering::Relaxed);
        }
    }

    /// Forgets the picture history (a new source starts: no frozen verdict carries over).
    pub fn reset_picture(&self) {
        self.last_picture_change_ms.store(0, Ordering::Relaxed);
        self.last_picture_sample_ms.store(0, Ordering::Relaxed);
    }
}

/// FNV-1a over every `PICTURE_ROW_STEP`th row.
fn hash_rows(data: &[u8], stride: usize, rows: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for row in (0..rows).step_by(PICTURE_ROW_STEP) {
        let Some(line) = data.get(row * stride..(row + 1) * stride) else { break };
        for chunk in line.chunks_exact(8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            h = (h ^ word).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Frame rate and bitrate over a sliding window of samples of the counters.
#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

/// Measured output rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub fps: f64,
    pub bitrate_kbps: f64,
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        RateMeter { window, samples: Mutex::new(VecDeque::new()) }
    }

    /// Adds a sample of the counters taken at `now`.
    pub fn sample(&self, now: Instant, counters: &FlowCounters) {
        let (buffers, bytes) = counters.totals();
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((now, buffers, bytes));
        while s.len() > 2 && s.front().is_some_and(|(t, ..)| now.duration_since(*t) > self.window) {
            s.pop_front();
        }
    }

    /// Rates over the window, `None` until two samples at least half a second apart exist.
    pub fn rates(&self) -> Option<Rates> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (&(t0, b0, y0), &(t1, b1, y1)) = (s.front()?, s.back()?);
        let dt = t1.duration_since(t0).as_secs_f64();
        (dt >= 0.5).then(|| Rates { fps: (b1 - b0) as f64 / dt, bitrate_kbps: (y1 - y0) as f64 * 8.0 / 1000.0 / dt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_counted_buffers_and_bytes() {
        let c = FlowCounters::default();
        let m = RateMeter::new(Duration::from_secs(5));
        let t0 = Instant::now();
        m.sample(t0, &c);
        assert_eq!(m.rates(), None);
        for _ in 0..30 {
            c.record_buffer(2500);
        }
        m.sample(t0 + Duration::from_secs(2), &c);
        let r = m.rates().unwrap();
        assert!((r.fps - 15.0).abs() < 1e-9, "{r:?}");
        assert!((r.bitrate_kbps - 300.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn a_changed_picture_moves_the_change_time_an_unchanged_one_does_not() {
        let c = FlowCounters::default();
        let a = vec![1u8; 64 * 16];
        let mut b = a.clone();
        c.record_picture(&a, 64, 16);
        let first = c.last_picture_change().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        c.record_picture(&a, 64, 16);
        assert_eq!(c.last_picture_change(), Some(first), "same picture: no change");
        b[8 * 64 + 3] = 9; // a sampled row (every 4th)
        std::thread::sleep(Duration::from_millis(5));
        c.record_picture(&b, 64, 16);
        assert!(c.last_picture_change().unwrap() > first, "changed picture is seen");
    }
}
