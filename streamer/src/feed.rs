//! The encoded picture, shared: every H.264 access unit the one encoder makes (exactly what
//! h264parse hands the HLS muxer) goes from the worker process to the streamer over a pipe,
//! the worker's file descriptor [`FEED_FD`], and from there to every live viewer
//! ([`Feed::subscribe`]) without a second encode.
//!
//! The streamer, not the worker, holds the viewers: a worker that is replaced (a pipeline
//! rebuild, the slate, an X server that went away) only starts a new [`AccessUnit::run`], whose
//! first unit is a keyframe with its parameter sets, and a viewer's connection carries on.
//!
//! # On the pipe
//! Each unit is a 13-byte header, then the unit itself (Annex B byte stream):
//! payload length (u32, little endian), presentation time in nanoseconds (u64, little endian;
//! `u64::MAX` when the buffer had none), flags (u8; bit 0: an IDR picture). The worker never
//! blocks its streaming thread on the pipe: when the streamer reads too slowly, it drops units
//! up to the next keyframe (a viewer never gets a picture whose references are missing).
//!
//! # Keyframe requests
//! A viewer that joins or lost a packet asks for a keyframe ([`Feed::request_keyframe`]). The
//! requests reach the encoder at most once per [`KEYFRAME_MIN_INTERVAL`], so HLS segments keep
//! their length and no client can make the encoder send only keyframes.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::{broadcast, watch};

/// The worker's file descriptor the units are written to.
pub const FEED_FD: i32 = 3;
/// Bytes before each unit.
pub const HEADER_LEN: usize = 13;
/// The largest unit accepted (a 4K keyframe at a high bitrate is a few MiB).
pub const MAX_UNIT: usize = 32 << 20;
/// Units buffered per viewer before it is told it lagged.
pub const VIEWER_BACKLOG: usize = 256;
/// Keyframe requests closer together than this are merged into one.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(1000);

const NO_PTS: u64 = u64::MAX;
const FLAG_IDR: u8 = 1;

/// One encoded picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    /// Which worker made it: a new number starts with each worker (timestamps start afresh).
    pub run: u64,
    /// Presentation time in the worker's pipeline (running time).
    pub pts: Option<Duration>,
    /// An IDR picture: decoding can start here (its SPS and PPS are in front of it).
    pub keyframe: bool,
    /// Annex B byte stream.
    pub data: Vec<u8>,
}

/// Writes one unit in the pipe's format.
pub fn write_unit(out: &mut impl Write, pts_ns: Option<u64>, keyframe: bool, data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| io::Error::other("access unit larger than 4 GiB"))?;
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..12].copy_from_slice(&pts_ns.unwrap_or(NO_PTS).to_le_bytes());
    header[12] = if keyframe { FLAG_IDR } else { 0 };
    out.write_all(&header)?;
    out.write_all(data)
}

/// Reads one unit; `None` at the end of the pipe (the worker ended).
pub async fn read_unit(input: &mut (impl AsyncRead + Unpin), run: u64) -> io::Result<Option<AccessUnit>> {
    let mut header = [0u8; HEADER_LEN];
    match input.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as usize;
    if len > MAX_UNIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an access unit of {len} bytes is more than the {MAX_UNIT} accepted"),
        ));
    }
    let pts = u64::from_le_bytes(header[4..12].try_into().unwrap_or_default());
    let mut data = vec![0u8; len];
    input.read_exact(&mut data).await?;
    Ok(Some(AccessUnit {
        run,
        pts: (pts != NO_PTS).then(|| Duration::from_nanos(pts)),
        keyframe: header[12] & FLAG_IDR != 0,
        data,
    }))
}

/// Counters of the feed, for the health API and `/metrics`.
#[derive(Debug, Default)]
pub struct FeedCounters {
    pub units: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub keyframes_forced: AtomicU64,
}

/// The hub: units in from the current worker, out to every viewer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Feed {
    units: broadcast::Sender<Arc<AccessUnit>>,
    /// Bumped once per keyframe request let through; the worker's control task watches it.
    keyframes: watch::Sender<u64>,
    /// The newest request for a keyframe at a presentation time (a segment's end).
    keyframe_at: watch::Sender<Option<Duration>>,
    last_forced: Arc<Mutex<Option<Instant>>>,
    runs: Arc<AtomicU64>,
    pub counters: Arc<FeedCounters>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            units: broadcast::channel(VIEWER_BACKLOG).0,
            keyframes: watch::channel(0).0,
            keyframe_at: watch::channel(None).0,
            last_forced: Arc::default(),
            runs: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// Every unit from now on. A receiver that falls [`VIEWER_BACKLOG`] units behind is told it
    /// lagged; it should wait for the next keyframe.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AccessUnit>> {
        self.units.subscribe()
    }

    /// Asks the encoder for a keyframe. Merged with others within [`KEYFRAME_MIN_INTERVAL`];
    /// whether this one was passed on.
    pub fn request_keyframe(&self) -> bool {
        self.counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last_forced.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < KEYFRAME_MIN_INTERVAL) {
            return false;
        }
        *last = Some(now);
        self.counters.keyframes_forced.fetch_add(1, Ordering::Relaxed);
        self.keyframes.send_modify(|n| *n += 1);
        true
    }

    /// Asks the encoder for a keyframe now, whatever was asked before: the HLS segmenter's
    /// request at a segment's end (at most one per segment, so never a flood). Requests from
    /// viewers within [`KEYFRAME_MIN_INTERVAL`] after it are merged into it.
    pub fn request_segment_keyframe(&self) {
        let mut last = self.last_forced.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(Instant::now());
        self.counters.keyframes_forced.fetch_add(1, Ordering::Relaxed);
        self.keyframes.send_modify(|n| *n += 1);
    }

    /// Asks the encoder for a keyframe on its first frame at or after presentation time `pts`
    /// (the current worker's running time, as [`AccessUnit::pts`]): the HLS segmenter's
    /// request for the end of the segment it just began, sent ahead so it lands on time.
    pub fn request_keyframe_at(&self, pts: Duration) {
        self.keyframe_at.send_replace(Some(pts));
    }

    /// The timed keyframe requests, for the task that passes them to the worker.
    pub fn timed_keyframe_requests(&self) -> watch::Receiver<Option<Duration>> {
        self.keyframe_at.subscribe()
    }

    /// How many runs (workers' pipes) have started; a unit whose `run` is at most this number,
    /// read before a worker starts, came from an earlier worker.
    pub fn runs_started(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// The keyframe requests let through, for the task that passes them to the worker.
    pub fn keyframe_requests(&self) -> watch::Receiver<u64> {
        self.keyframes.subscribe()
    }

    /// Starts a run: the number its units carry.
    pub fn begin_run(&self) -> u64 {
        self.runs.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Passes one unit to every receiver.
    pub fn publish(&self, unit: AccessUnit) {
        self.counters.units.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(unit.data.len() as u64, Ordering::Relaxed);
        // Nobody watching is fine.
        let _ = self.units.send(Arc::new(unit));
    }

    /// Reads a worker's units until its pipe ends, passing each to the viewers. The run begins
    /// when this is called, not when the future first runs.
    pub fn pump(
        &self,
        mut pipe: impl AsyncRead + Unpin + Send + 'static,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let run = self.begin_run();
        let feed = self.clone();
        async move {
            while let Some(unit) = read_unit(&mut pipe, run).await? {
                feed.publish(unit);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn units_cross_the_pipe_as_written() {
        let mut bytes = Vec::new();
        write_unit(&mut bytes, Some(40_000_000), true, &[0, 0, 0, 1, 0x65, 1, 2]).unwrap();
        write_unit(&mut bytes, None, false, &[0, 0, 1, 0x41, 9]).unwrap();
        let mut input = bytes.as_slice();
        let first = read_unit(&mut input, 7).await.unwrap().unwrap();
        assert_eq!(
            first,
            AccessUnit {
                run: 7,
                pts: Some(Duration::from_millis(40)),
                keyframe: true,
                data: vec![0, 0, 0, 1, 0x65, 1, 2]
            }
        );
        let second = read_unit(&mut input, 7).await.unwrap().unwrap();
        assert_eq!((second.pts, second.keyframe, second.data.len()), (None, false, 5));
        assert_eq!(read_unit(&mut input, 7).await.unwrap(), None, "the end of the pipe");
    }

    #[tokio::test]
    async fn a_length_beyond_the_limit_is_refused_not_allocated() {
        let mut header = Vec::new();
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&[0; 9]);
        let e = read_unit(&mut header.as_slice(), 1).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("more than the"), "{e}");
    }

    #[test]
    fn keyframe_requests_are_merged_within_the_interval() {
        let feed = Feed::new();
        let requests = feed.keyframe_requests();
        assert!(feed.request_keyframe());
        for _ in 0..100 {
            assert!(!feed.request_keyframe(), "a flood of requests is one keyframe");
        }
        assert_eq!(*requests.borrow(), 1);
        assert_eq!(feed.counters.keyframe_requests.load(Ordering::Relaxed), 101);
        assert_eq!(feed.counters.keyframes_forced.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn each_worker_is_a_new_run_and_every_viewer_gets_every_unit() {
        let feed = Feed::new();
        let (mut a, mut b) = (feed.subscribe(), feed.subscribe());
        for _ in 0..2 {
            let mut bytes = Vec::new();
            write_unit(&mut bytes, Some(0), true, &[0, 0, 1, 0x65]).unwrap();
            feed.pump(io::Cursor::new(bytes)).await.unwrap();
        }
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.unwrap().run, 1);
            assert_eq!(rx.recv().await.unwrap().run, 2);
        }
    }
}
