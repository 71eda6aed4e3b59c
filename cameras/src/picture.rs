//! What a camera's picture shows, from the frames a probe already has: the keyframe it
//! waited for and the last frame it kept after it (RTSP, decoded together since that frame
//! refers back to the keyframe), or the two JPEGs of an MJPEG probe. They are decoded at a
//! reduced size ([`MAX_WIDTH`]) by GStreamer (`avdec_h264`, `avdec_h265` from
//! gstreamer1.0-libav, `jpegdec`: the Debian packages the preview already needs; no crate
//! decodes H.265, and one C decoder per codec in-process would add what GStreamer has), on a
//! small pool of threads off the async runtime ([`Decoder`]), with a bounded queue: a job
//! that finds the queue full is not decoded (the heartbeat is judged without a picture, see
//! [`crate::verdict`]) rather than waiting.
//!
//! The rules that use the pictures ([`Look`]):
//!
//! - **Within a probe** the first and last picture are a few frames (0.1–1 s) apart from one
//!   encoder session. A live sensor changes between them: motion, or at least its noise (a
//!   quiet room at night). A picture that stands still and is encoded afresh, or whose coded
//!   frame is repeated, does not change. The picture moved when the mean absolute difference
//!   of the luma exceeds [`MOVED_MEAN_LEVELS`].
//! - **Across heartbeats** the keyframes of two sessions are compared when neither probe saw
//!   its picture move: a still picture encoded afresh, or by an encoder that ran on, comes
//!   back with only requantisation noise, which shifts block averages little; another scene
//!   (something moved between the heartbeats, a light went on) shifts them a lot. The scene
//!   is the same while no 8×8 block's mean luma moved by more than [`SAME_SCENE_LEVELS`].
//! - **Black**: the picture is almost uniformly dark when its mean luma is below
//!   [`BLACK_MEAN_LEVELS`] and its standard deviation below [`BLACK_SPREAD_LEVELS`]. A dark
//!   but detailed scene spreads more and is not black.
//!
//! Measured on the test cameras (x264 at 300 kbit/s, 320×240, decoded keyframe against the
//! third frame after it): a still picture, encoded afresh or by an encoder that ran on, 0.00
//! levels apart; a moving ball 0.8–1.4; colour bars under sensor noise of a few levels 3.0.
//! An encoder at such a rate drops most noise from its predicted frames (they copy the
//! keyframe), so the noise shows between the keyframe and the frames after it.
//!
//! Limits. A camera whose encoder spends so few bits that it smooths the sensor noise of a
//! still scene away entirely, keyframes included, sends the same picture as a hung sensor,
//! and is reported frozen after `frozen_seconds` (raising the camera's bit rate, or
//! `frozen_seconds: 0`, helps); a scene that changes only slowly and only by light (dusk)
//! moves the block means slowly, so over heartbeats it may count as the same scene, though
//! within a probe its noise shows.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Widest decoded picture: enough to see a person in a thumbnail, little to compare.
pub const MAX_WIDTH: u32 = 320;
/// The luma of two pictures of one probe differs by more than this on average (levels of
/// 255): the picture moved, or a live sensor's noise changed it.
pub const MOVED_MEAN_LEVELS: f64 = 0.6;
/// Two keyframes of different heartbeats show the same scene while no 8×8 block's mean luma
/// differs by more than this.
pub const SAME_SCENE_LEVELS: f64 = 6.0;
/// Mean luma below this (of 255; video black is 16) …
pub const BLACK_MEAN_LEVELS: f64 = 28.0;
/// … with a standard deviation below this is an almost uniformly dark picture.
pub const BLACK_SPREAD_LEVELS: f64 = 6.0;
/// Side of the blocks whose means [`Look::same_scene`] compares.
const BLOCK: usize = 8;
/// JPEG quality of thumbnails (jpegenc's 0..=100): small files, faces still recognisable.
const THUMBNAIL_QUALITY: i32 = 80;
/// How long one decode may take before it is abandoned.
const DECODE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to decode.
#[derive(Clone, PartialEq, Eq)]
pub enum Coded {
    /// H.264 or H.265 access units in Annex B form, the first a keyframe with its parameter
    /// sets, each with its presentation time.
    H26x { h265: bool, frames: Vec<(Duration, Vec<u8>)> },
    /// Complete JPEG files.
    Jpeg(Vec<Vec<u8>>),
}

/// Sizes only: the bytes would flood a log or a failed assertion.
impl std::fmt::Debug for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Coded::H26x { h265, frames } => {
                let sizes: Vec<usize> = frames.iter().map(|(_, d)| d.len()).collect();
                write!(f, "{} frames of {sizes:?} bytes", if *h265 { "H.265" } else { "H.264" })
            }
            Coded::Jpeg(jpegs) => write!(f, "JPEGs of {:?} bytes", jpegs.iter().map(Vec::len).collect::<Vec<_>>()),
        }
    }
}

/// One decoded picture at reduced size: its luma (one byte a pixel, rows without padding).
#[derive(Clone, PartialEq, Eq)]
pub struct Look {
    pub width: u32,
    pub height: u32,
    pub luma: Vec<u8>,
}

impl std::fmt::Debug for Look {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mean, spread) = self.brightness();
        write!(f, "Look({}x{}, mean {mean:.1}, spread {spread:.1})", self.width, self.height)
    }
}

/// The first and last picture of a probe, and the last as a thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pictures {
    pub first: Look,
    pub last: Look,
    /// The last picture in colour, as a JPEG; `None` if it could not be encoded.
    pub thumbnail: Option<Thumbnail>,
}

/// A camera's picture as people see it in the grid: a JPEG at most [`MAX_WIDTH`] wide.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbnail({}x{}, {} bytes of JPEG)", self.width, self.height, self.jpeg.len())
    }
}

impl Pictures {
    /// The picture moved between the first and the last frame of the probe.
    pub fn moved(&self) -> bool {
        self.first.mean_difference(&self.last) > MOVED_MEAN_LEVELS
    }
}

impl Look {
    /// Mean absolute difference of the luma, in levels; pictures of other sizes differ
    /// completely (255).
    pub fn mean_difference(&self, other: &Look) -> f64 {
        if (self.width, self.height) != (other.width, other.height) || self.luma.is_empty() {
            return 255.0;
        }
        let sum: u64 = self.luma.iter().zip(&other.luma).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        sum as f64 / self.luma.len() as f64
    }

    /// The largest difference of the mean luma of any 8×8 block (levels).
    pub fn largest_block_change(&self, other: &Look) -> f64 {
        if (self.width, self.height) != (other.width, other.height) {
            return 255.0;
        }
        let (a, b) = (self.block_means(), other.block_means());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    /// Whether `other` (a keyframe of another heartbeat) shows the same scene.
    pub fn same_scene(&self, other: &Look) -> bool {
        self.largest_block_change(other) <= SAME_SCENE_LEVELS
    }

    /// Mean and standard deviation of the luma.
    pub fn brightness(&self) -> (f64, f64) {
        let n = self.luma.len().max(1) as f64;
        let mean = self.luma.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        let var = self.luma.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// Almost uniformly dark (see the module doc).
    pub fn is_black(&self) -> bool {
        let (mean, spread) = self.brightness();
        mean < BLACK_MEAN_LEVELS && spread < BLACK_SPREAD_LEVELS
    }

    fn block_means(&self) -> Vec<f64> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut means = Vec::with_capacity(w.div_ceil(BLOCK) * h.div_ceil(BLOCK));
        for by in (0..h).step_by(BLOCK) {
            for bx in (0..w).step_by(BLOCK) {
                let (mut sum, mut n) = (0u32, 0u32);
                for y in by..(by + BLOCK).min(h) {
                    for v in &self.luma[y * w + bx..y * w + (bx + BLOCK).min(w)] {
                        sum += u32::from(*v);
                        n += 1;
                    }
                }
                means.push(f64::from(sum) / f64::from(n.max(1)));
            }
        }
        means
    }
}

/// Why a picture could not be decoded (for the log; a heartbeat is never failed by it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the GStreamer element `{0}` is missing (install gstreamer1.0-libav and gstreamer1.0-plugins-good)")]
    Missing(&'static str),
    #[error("nothing to decode")]
    Empty,
    #[error("the decoder failed: {0}")]
    Failed(String),
    #[error("the decoder gave no picture within {0:?}")]
    Timeout(Duration),
}

/// A job for the pool, and where its answer goes.
type Job = (Coded, tokio::sync::oneshot::Sender<Result<Pictures, DecodeError>>);

/// A pool of decoding threads with a bounded queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Decoder {
    queue: SyncSender<Job>,
}

impl Decoder {
    /// Starts `threads` decoding threads that take jobs from a queue of `queue` places. The
    /// threads end when every clone of the decoder is dropped.
    pub fn new(threads: usize, queue: usize) -> Decoder {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new().name(format!("camera-decode-{i}")).spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a camera decoding thread");
            }
        }
        Decoder { queue: tx }
    }

    /// Decodes `coded` on the pool; `None` when the queue is full (the budget is spent: the
    /// caller goes on without pictures) or the pool is gone.
    pub async fn decode(&self, coded: Coded) -> Option<Result<Pictures, DecodeError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.queue.try_send((coded, tx)) {
            Ok(()) => rx.await.ok(),
            Err(TrySendError::Full(_)) => {
                tracing::debug!("camera decoding queue full; this heartbeat goes without a picture");
                None
            }
            Err(TrySendError::Disconnected(_)) => None,
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        let Ok((coded, answer)) = job else { return };
        // Nobody waiting any more (the camera's task stopped): skip the work.
        if answer.is_closed() {
            continue;
        }
        let _ = answer.send(decode_blocking(&coded));
    }
}

/// Decodes `coded` and returns its first and last picture, at most [`MAX_WIDTH`] wide.
pub fn decode_blocking(coded: &Coded) -> Result<Pictures, DecodeError> {
    let (mut all, last_sample) = decode_all(coded)?;
    let last = all.pop().ok_or_else(|| DecodeError::Failed("no picture came out".into()))?;
    let first = if all.is_empty() { last.clone() } else { all.swap_remove(0) };
    let thumbnail = last_sample.as_ref().and_then(|s| match thumbnail(s) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::debug!(error = %e, "no thumbnail");
            None
        }
    });
    Ok(Pictures { first, last, thumbnail })
}

/// Encodes a decoded picture (I420) as a JPEG.
fn thumbnail(sample: &gst::Sample) -> Result<Thumbnail, DecodeError> {
    let failed = |e: &dyn std::fmt::Display| DecodeError::Failed(format!("thumbnail: {e}"));
    let caps = sample.caps().ok_or_else(|| failed(&"a picture without caps"))?;
    let s = caps.structure(0).ok_or_else(|| failed(&"empty caps"))?;
    let (width, height) =
        (s.get::<i32>("width").map_err(|e| failed(&e))?, s.get::<i32>("height").map_err(|e| failed(&e))?);
    let src = gst_app::AppSrc::builder().caps(&caps.to_owned()).format(gst::Format::Time).build();
    let enc = gst::ElementFactory::make("jpegenc")
        .property("quality", THUMBNAIL_QUALITY)
        .build()
        .map_err(|_| DecodeError::Missing("jpegenc"))?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    let pipeline = gst::Pipeline::new();
    pipeline.add_many([src.upcast_ref(), &enc, sink.upcast_ref()]).map_err(|e| failed(&e))?;
    gst::Element::link_many([src.upcast_ref(), &enc, sink.upcast_ref()]).map_err(|e| failed(&e))?;
    let _stop = Stop(pipeline.clone());
    pipeline.set_state(gst::State::Playing).map_err(|e| failed(&e))?;
    let buffer = sample.buffer_owned().ok_or_else(|| failed(&"a picture without data"))?;
    src.push_buffer(buffer).map_err(|e| failed(&e))?;
    let _ = src.end_of_stream();
    let jpeg = sink
        .try_pull_sample(gst::ClockTime::from_nseconds(DECODE_TIMEOUT.as_nanos() as u64))
        .ok_or(DecodeError::Timeout(DECODE_TIMEOUT))?;
    let map = jpeg.buffer().ok_or_else(|| failed(&"no JPEG"))?.map_readable().map_err(|e| failed(&e))?;
    Ok(Thumbnail { jpeg: map.as_slice().to_vec(), width: width as u32, height: height as u32 })
}

/// Decodes `coded`: every picture's luma, at most [`MAX_WIDTH`] wide, and the last picture
/// as it came (I420).
pub fn decode_all(coded: &Coded) -> Result<(Vec<Look>, Option<gst::Sample>), DecodeError> {
    gst::init().map_err(|e| DecodeError::Failed(format!("GStreamer cannot start: {e}")))?;
    let (caps, decoder, buffers): (gst::Caps, &'static str, Vec<Timed<'_>>) = match coded {
        Coded::H26x { h265, frames } => {
            let (name, decoder) = if *h265 { ("video/x-h265", "avdec_h265") } else { ("video/x-h264", "avdec_h264") };
            let caps = gst::Caps::builder(name).field("stream-format", "byte-stream").field("alignment", "au").build();
            (caps, decoder, frames.iter().map(|(pts, d)| (Some(*pts), d.as_slice())).collect())
        }
        Coded::Jpeg(jpegs) => (
            gst::Caps::builder("image/jpeg").build(),
            "jpegdec",
            jpegs.iter().enumerate().map(|(i, d)| (Some(Duration::from_millis(i as u64 * 40)), d.as_slice())).collect(),
        ),
    };
    if buffers.is_empty() {
        return Err(DecodeError::Empty);
    }
    let make = |name: &'static str| gst::ElementFactory::make(name).build().map_err(|_| DecodeError::Missing(name));
    let src = gst_app::AppSrc::builder().caps(&caps).format(gst::Format::Time).build();
    let dec = make(decoder)?;
    if dec.find_property("max-threads").is_some() {
        // One thread a decode: the pool is the parallelism, and a thread per core each would
        // only add frame delay.
        dec.set_property("max-threads", 1i32);
    }
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let filter = make("capsfilter")?;
    let sink = gst_app::AppSink::builder()
        .caps(&gst::Caps::builder("video/x-raw").field("format", "I420").build())
        .sync(false)
        .max_buffers(0)
        .build();
    let pipeline = gst::Pipeline::new();
    let failed = |e: &dyn std::fmt::Display| DecodeError::Failed(e.to_string());
    pipeline
        .add_many([src.upcast_ref(), &dec, &convert, &scale, &filter, sink.upcast_ref()])
        .map_err(|e| failed(&e))?;
    gst::Element::link_many([src.upcast_ref(), &dec, &convert, &scale, &filter, sink.upcast_ref()])
        .map_err(|e| failed(&e))?;
    // Scale to MAX_WIDTH once the decoder knows the size.
    let filter_weak = filter.downgrade();
    dec.static_pad("src").expect("a decoder has a src pad").add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data
                && let gst::EventView::Caps(c) = e.view()
                && let Some(s) = c.caps().structure(0)
                && let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height"))
                && let Some(filter) = filter_weak.upgrade()
            {
                let (w, h) = reduced_size(w, h);
                filter.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw").field("width", w).field("height", h).build(),
                );
            }
            gst::PadProbeReturn::Ok
        },
    );
    let stop = Stop(pipeline.clone());
    pipeline.set_state(gst::State::Playing).map_err(|e| failed(&e))?;
    for (pts, data) in buffers {
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts.map(|d| gst::ClockTime::from_nseconds(d.as_nanos() as u64)));
        }
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let deadline = std::time::Instant::now() + DECODE_TIMEOUT;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut all = Vec::new();
    let mut last_sample = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(DecodeError::Timeout(DECODE_TIMEOUT));
        }
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(20)) {
            all.push(look(&sample).ok_or_else(|| DecodeError::Failed("a picture without size".into()))?);
            last_sample = Some(sample);
            continue;
        }
        if sink.is_eos() {
            break;
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            return Err(DecodeError::Failed(format!("{} ({})", e.error(), e.debug().unwrap_or_default())));
        }
    }
    drop(stop);
    Ok((all, last_sample))
}

/// A coded frame and its presentation time.
type Timed<'a> = (Option<Duration>, &'a [u8]);

/// Sets the pipeline to Null however the decode ends.
struct Stop(gst::Pipeline);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// `w`×`h` scaled to at most [`MAX_WIDTH`] wide, aspect kept, even sizes.
fn reduced_size(w: i32, h: i32) -> (i32, i32) {
    let max = MAX_WIDTH as i32;
    if w <= max || w <= 0 || h <= 0 {
        return (w.max(2) & !1, h.max(2) & !1);
    }
    let scaled = (i64::from(h) * i64::from(max) + i64::from(w) / 2) / i64::from(w);
    (max, (scaled as i32).max(2) & !1)
}

fn look(sample: &gst::Sample) -> Option<Look> {
    let s = sample.caps()?.structure(0)?;
    let (w, h) = (s.get::<i32>("width").ok()? as usize, s.get::<i32>("height").ok()? as usize);
    let map = sample.buffer()?.map_readable().ok()?;
    // The luma plane comes first; its rows are padded to 4 bytes.
    let stride = (w + 3) & !3;
    let data = map.as_slice();
    let mut luma = Vec::with_capacity(w * h);
    for y in 0..h {
        luma.extend_from_slice(data.get(y * stride..y * stride + w)?);
    }
    Some(Look { width: w as u32, height: h as u32, luma })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Look {
        let luma = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        Look { width: w, height: h, luma }
    }

    /// A fixed pseudo-random sequence, so the tests do not depend on chance.
    fn noise(seed: u32) -> impl Fn(u32, u32) -> i32 {
        move |x, y| {
            let mut v = x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed.wrapping_mul(83_492_791);
            v ^= v >> 13;
            v = v.wrapping_mul(0x5bd1_e995);
            v ^= v >> 15;
            (v % 7) as i32 - 3
        }
    }

    #[test]
    fn motion_and_sensor_noise_move_the_picture_and_a_repeat_does_not() {
        let scene = |x: u32, y: u32| ((x * 3 + y * 5) % 200) as u8 + 20;
        let still = look(160, 90, scene);
        let same = Pictures { first: still.clone(), last: still.clone(), thumbnail: None };
        assert!(!same.moved());
        // A ball of 10×10 moved by 10 pixels on 160×90: 200 pixels changed by ~100 levels.
        let ball = |at: u32| {
            move |x: u32, y: u32| if (at..at + 10).contains(&x) && (40..50).contains(&y) { 250 } else { scene(x, y) }
        };
        let moving = Pictures { first: look(160, 90, ball(20)), last: look(160, 90, ball(30)), thumbnail: None };
        assert!(moving.moved(), "{}", moving.first.mean_difference(&moving.last));
        // Sensor noise of ±3 levels changes every pixel a little.
        let (n1, n2) = (noise(1), noise(2));
        let noisy = Pictures {
            first: look(160, 90, |x, y| (i32::from(scene(x, y)) + n1(x, y)) as u8),
            last: look(160, 90, |x, y| (i32::from(scene(x, y)) + n2(x, y)) as u8),
            thumbnail: None,
        };
        assert!(noisy.moved(), "{}", noisy.first.mean_difference(&noisy.last));
        // ... but leaves the scene the same across heartbeats, which a moved ball does not.
        assert!(noisy.first.same_scene(&noisy.last));
        assert!(!moving.first.same_scene(&moving.last));
        assert!(!still.same_scene(&look(80, 45, scene)), "another size is another scene");
    }

    #[test]
    fn only_a_dark_and_flat_picture_is_black() {
        assert!(look(64, 36, |_, _| 16).is_black(), "video black");
        let n = noise(3);
        assert!(look(64, 36, |x, y| (18 + n(x, y)) as u8).is_black(), "black with a little noise");
        assert!(!look(64, 36, |_, _| 128).is_black(), "grey");
        // A dark scene with detail: a dim room with a lit doorway.
        assert!(!look(64, 36, |x, _| if (30..36).contains(&x) { 90 } else { 14 }).is_black());
    }

    #[test]
    fn sizes_are_reduced_to_even_sizes_at_most_max_width() {
        assert_eq!(reduced_size(1920, 1080), (320, 180));
        assert_eq!(reduced_size(640, 480), (320, 240));
        assert_eq!(reduced_size(160, 121), (160, 120));
    }
}
