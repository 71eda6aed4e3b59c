//! The decoding pool ([`Decoder`]): a few threads off the async runtime that decode the
//! probes' pictures, with a bounded queue and a budget of time ([`Budget`]: a share of one
//! core, spent by the decodes and earned back as time passes). A job that finds the queue full
//! or the budget spent is not decoded ([`DecodeError::Busy`]): its heartbeat is judged at
//! once without pictures (see [`crate::verdict`]), and the scheduler counts it
//! ([`super::budget`]), so a fleet too large to decode every keyframe gets its thumbnails less
//! often instead of costing the machine more.
//!
//! Each thread keeps its GStreamer pipelines from one job to the next, one per kind of input
//! (H.264, H.265, JPEG) and one that encodes thumbnails, built on first use: building a
//! pipeline (elements, pads, a streaming thread, the codec's set-up) costs more than decoding
//! a keyframe at 640×360. The pipelines have no source element: the thread pushes the frames
//! into the decoder's sink pad itself, so every element runs on the calling thread, the
//! pictures are in the appsink when the push returns, and no wait or timeout is needed. After
//! a job the decoder is drained (EOS) and flushed, which resets it for the next camera (a new
//! keyframe with its parameter sets follows; another picture size renegotiates the scaler).
//! A pipeline that failed is dropped and built afresh for the next job.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::budget::Budget;
use super::{Coded, Look, MAX_WIDTH, Pictures, THUMBNAIL_QUALITY, Thumbnail};

/// Why a picture could not be decoded (for the log and the counts; a heartbeat is never
/// failed by it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the GStreamer element `{0}` is missing (install gstreamer1.0-libav and gstreamer1.0-plugins-good)")]
    Missing(&'static str),
    #[error("nothing to decode")]
    Empty,
    #[error("the decoder failed: {0}")]
    Failed(String),
    #[error("the decoding queue is full or its budget spent: this heartbeat goes without a picture")]
    Busy,
    #[error("the decoding threads are gone")]
    Stopped,
}

/// A job for the pool, and where its answer goes.
type Job = (Coded, tokio::sync::oneshot::Sender<Result<Pictures, DecodeError>>);

/// A pool of decoding threads with a bounded queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Decoder {
    queue: SyncSender<Job>,
    /// Kept so that a pool without threads still has a queue (always full, see [`Decoder::new`]).
    _jobs: Arc<Mutex<Receiver<Job>>>,
    budget: Option<Arc<Budget>>,
}

impl Decoder {
    /// Starts `threads` decoding threads that take jobs from a queue of `queue` places, with
    /// no budget of time. The threads end when every clone of the decoder is dropped. With no
    /// threads and no queue every job finds the queue full: a decoder that never keeps up (for
    /// tests).
    pub fn new(threads: usize, queue: usize) -> Decoder {
        Decoder::with_budget(threads, queue, None)
    }

    /// The same, spending at most `budget` on decoding.
    pub fn with_budget(threads: usize, queue: usize, budget: Option<Budget>) -> Decoder {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let budget = budget.map(Arc::new);
        for i in 0..threads {
            let (rx, budget) = (Arc::clone(&rx), budget.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("camera-decode-{i}"))
                .spawn(move || work(&rx, budget.as_deref()));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a camera decoding thread");
            }
        }
        Decoder { queue: tx, _jobs: rx, budget }
    }

    /// From now on the decoding threads spend at most `share` of one core (when they have a
    /// budget at all).
    pub fn set_share(&self, share: f64) {
        if let Some(budget) = self.budget.as_ref().filter(|b| (b.share() - share).abs() > f64::EPSILON) {
            tracing::info!(picture_cpu_percent = share * 100.0, "the decoding budget changed");
            budget.set_share(share);
        }
    }

    /// Decodes `coded` on the pool; [`DecodeError::Busy`] at once when the queue is full or
    /// the budget spent (the caller goes on without pictures).
    pub async fn decode(&self, coded: Coded) -> Result<Pictures, DecodeError> {
        if self.budget.as_ref().is_some_and(|b| !b.admits(Instant::now())) {
            return Err(DecodeError::Busy);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.queue.try_send((coded, tx)) {
            Ok(()) => rx.await.map_err(|_| DecodeError::Stopped)?,
            Err(TrySendError::Full(_)) => Err(DecodeError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(DecodeError::Stopped),
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>, budget: Option<&Budget>) {
    let mut pipelines = Pipelines::default();
    loop {
        let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        let Ok((coded, answer)) = job else { return };
        // Nobody waiting any more (the camera's task stopped): skip the work.
        if answer.is_closed() {
            continue;
        }
        let started = thread_cpu_time();
        let decoded = pipelines.decode(&coded);
        if let Some(budget) = budget {
            budget.spend(thread_cpu_time().saturating_sub(started));
        }
        let _ = answer.send(decoded);
    }
}

/// The CPU time of the calling thread: a decode's cost, since every element of the pipelines
/// runs on the thread that pushes into them (and its wall time would also count the time other
/// processes had the core).
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// Decodes `coded` and returns its first and last picture, at most [`MAX_WIDTH`] wide, with
/// pipelines of its own (a decoding thread keeps its pipelines instead).
pub fn decode_blocking(coded: &Coded) -> Result<Pictures, DecodeError> {
    Pipelines::default().decode(coded)
}

/// What a pipeline decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    H264,
    H265,
    Jpeg,
}

impl Input {
    fn of(coded: &Coded) -> Input {
        match coded {
            Coded::H26x { h265: false, .. } => Input::H264,
            Coded::H26x { h265: true, .. } => Input::H265,
            Coded::Jpeg(_) => Input::Jpeg,
        }
    }

    fn decoder(self) -> &'static str {
        match self {
            Input::H264 => "avdec_h264",
            Input::H265 => "avdec_h265",
            Input::Jpeg => "jpegdec",
        }
    }

    fn caps(self) -> gst::Caps {
        let coded = |name: &str| {
            gst::Caps::builder(name).field("stream-format", "byte-stream").field("alignment", "au").build()
        };
        match self {
            Input::H264 => coded("video/x-h264"),
            Input::H265 => coded("video/x-h265"),
            Input::Jpeg => gst::Caps::builder("image/jpeg").build(),
        }
    }
}

/// One thread's pipelines, each built on first use and kept while it works.
#[derive(Default)]
struct Pipelines {
    h264: Option<Pushed>,
    h265: Option<Pushed>,
    jpeg: Option<Pushed>,
    thumbnail: Option<Pushed>,
}

impl Pipelines {
    fn decode(&mut self, coded: &Coded) -> Result<Pictures, DecodeError> {
        let frames: Vec<(Option<Duration>, &[u8])> = match coded {
            Coded::H26x { frames, .. } => frames.iter().map(|(pts, d)| (Some(*pts), d.as_slice())).collect(),
            Coded::Jpeg(jpegs) => jpegs.iter().map(|d| (None, d.as_slice())).collect(),
        };
        if frames.is_empty() {
            return Err(DecodeError::Empty);
        }
        let input = Input::of(coded);
        let slot = match input {
            Input::H264 => &mut self.h264,
            Input::H265 => &mut self.h265,
            Input::Jpeg => &mut self.jpeg,
        };
        let mut samples = reuse(slot, || Pushed::decoding(input), |p| p.run(&frames))?;
        let last_sample = samples.pop().ok_or_else(|| DecodeError::Failed("no picture came out".into()))?;
        let no_size = || DecodeError::Failed("a picture without size".into());
        let last = look(&last_sample).ok_or_else(no_size)?;
        let first = match samples.first() {
            Some(s) => look(s).ok_or_else(no_size)?,
            None => last.clone(),
        };
        let thumbnail = match reuse(&mut self.thumbnail, Pushed::thumbnails, |p| p.thumbnail(&last_sample)) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!(error = %e, "no thumbnail");
                None
            }
        };
        Ok(Pictures { first, last, thumbnail })
    }
}

/// Runs `job` on the pipeline in `slot`, building it first if there is none; a pipeline whose
/// job failed is dropped, so the next job gets a fresh one.
fn reuse<T>(
    slot: &mut Option<Pushed>,
    build: impl FnOnce() -> Result<Pushed, DecodeError>,
    job: impl FnOnce(&mut Pushed) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let pipeline = match slot {
        Some(p) => p,
        None => slot.insert(build()?),
    };
    let done = job(pipeline);
    if done.is_err() {
        *slot = None;
    }
    done
}

/// A pipeline fed through a pad of ours (no source element, no streaming thread of its own)
/// into an appsink; set to Null when dropped.
struct Pushed {
    pipeline: gst::Pipeline,
    input: gst::Pad,
    sink: gst_app::AppSink,
    /// The caps last sent into the pipeline.
    caps: gst::Caps,
}

impl Drop for Pushed {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        let _ = self.input.set_active(false);
    }
}

impl Pushed {
    /// `input`'s decoder, then conversion to I420 scaled to at most [`MAX_WIDTH`] wide.
    fn decoding(input: Input) -> Result<Pushed, DecodeError> {
        let dec = make(input.decoder())?;
        if dec.find_property("max-threads").is_some() {
            // One thread a decode, the calling one: the pool is the parallelism.
            dec.set_property("max-threads", 1i32);
        }
        let filter = make("capsfilter")?;
        // Scale to MAX_WIDTH once the decoder knows the size (again when another camera's
        // picture has another size).
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
        let raw = gst::Caps::builder("video/x-raw").field("format", "I420").build();
        let elements = [dec, make("videoconvert")?, make("videoscale")?, filter];
        Pushed::start(&elements, Some(raw), input.caps())
    }

    /// A JPEG encoder for thumbnails; its input caps are set by each picture. It is given RGB,
    /// which libjpeg turns into JPEG's full-range YCbCr: the decoder's video-range I420 given
    /// as it is would be stored as if it were full range (black as 16, colours washed out).
    fn thumbnails() -> Result<Pushed, DecodeError> {
        let rgb = make("capsfilter")?;
        rgb.set_property("caps", gst::Caps::builder("video/x-raw").field("format", "RGB").build());
        let enc = make("jpegenc")?;
        enc.set_property("quality", THUMBNAIL_QUALITY);
        Pushed::start(&[make("videoconvert")?, rgb, enc], None, gst::Caps::new_empty())
    }

    /// Links `elements` into an appsink (of `sink_caps`), sets them playing, and links a pad
    /// of ours to the first; sends `caps` (unless empty) after the stream's start.
    fn start(elements: &[gst::Element], sink_caps: Option<gst::Caps>, caps: gst::Caps) -> Result<Pushed, DecodeError> {
        let failed = |e: &dyn std::fmt::Display| DecodeError::Failed(e.to_string());
        let mut sink = gst_app::AppSink::builder().sync(false).max_buffers(0);
        if let Some(c) = &sink_caps {
            sink = sink.caps(c);
        }
        let sink = sink.build();
        // No preroll: the pipeline is playing at once, and takes pictures as they come; the
        // end of a job's stream waits for nobody (its pictures are taken after it).
        sink.set_property("async", false);
        sink.set_property("wait-on-eos", false);
        let pipeline = gst::Pipeline::new();
        let chain: Vec<&gst::Element> = elements.iter().chain([sink.upcast_ref()]).collect();
        pipeline.add_many(chain.iter().copied()).map_err(|e| failed(&e))?;
        gst::Element::link_many(chain.iter().copied()).map_err(|e| failed(&e))?;
        let input = gst::Pad::builder(gst::PadDirection::Src).name("coded").build();
        let mut pushed = Pushed { pipeline, input, sink, caps: gst::Caps::new_empty() };
        let first = elements.first().expect("a pipeline has elements");
        let sink_pad = first.static_pad("sink").expect("the first element has a sink pad");
        pushed.input.link(&sink_pad).map_err(|e| failed(&e))?;
        pushed.pipeline.set_state(gst::State::Playing).map_err(|e| failed(&e))?;
        pushed.input.set_active(true).map_err(|e| failed(&e))?;
        pushed.event(gst::event::StreamStart::new("camera-pictures"))?;
        if !caps.is_empty() {
            pushed.set_caps(caps)?;
        }
        Ok(pushed)
    }

    /// Sends `caps` into the pipeline if they are not those it has.
    fn set_caps(&mut self, caps: gst::Caps) -> Result<(), DecodeError> {
        if caps != self.caps {
            self.event(gst::event::Caps::new(&caps))?;
            self.caps = caps;
        }
        Ok(())
    }

    /// Pushes `frames` through, drains the decoder, and returns every picture that came out;
    /// the pipeline is flushed for the next job.
    fn run(&self, frames: &[(Option<Duration>, &[u8])]) -> Result<Vec<gst::Sample>, DecodeError> {
        self.event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()))?;
        let last = frames.len().saturating_sub(1);
        for (i, (pts, data)) in frames.iter().enumerate() {
            let mut buffer = gst::Buffer::from_slice(data.to_vec());
            if let Some(b) = buffer.get_mut() {
                b.set_pts(pts.map(|d| gst::ClockTime::from_nseconds(d.as_nanos() as u64)));
                // Only the first and the last picture are looked at: the frames between are
                // decoded (the last refers to them) but neither converted, scaled nor kept.
                if i != 0 && i != last {
                    b.set_flags(gst::BufferFlags::DECODE_ONLY);
                }
            }
            if let Err(flow) = self.input.push(buffer) {
                return Err(self.failure(flow));
            }
        }
        self.event(gst::event::Eos::new())?;
        let samples = std::iter::from_fn(|| self.sink.try_pull_sample(gst::ClockTime::ZERO)).collect();
        self.event(gst::event::FlushStart::new())?;
        self.event(gst::event::FlushStop::new(true))?;
        self.clear_bus()?;
        Ok(samples)
    }

    /// Encodes a decoded picture as a JPEG.
    fn thumbnail(&mut self, sample: &gst::Sample) -> Result<Thumbnail, DecodeError> {
        let failed = |what: &str| DecodeError::Failed(format!("thumbnail: {what}"));
        let caps = sample.caps().ok_or_else(|| failed("a picture without caps"))?.to_owned();
        let s = caps.structure(0).ok_or_else(|| failed("empty caps"))?;
        let (width, height) = match (s.get::<i32>("width"), s.get::<i32>("height")) {
            (Ok(w), Ok(h)) => (w as u32, h as u32),
            _ => return Err(failed("a picture without size")),
        };
        let first = self.caps.is_empty();
        self.set_caps(caps)?;
        if first {
            self.event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()))?;
        }
        let mut buffer = sample.buffer_owned().ok_or_else(|| failed("a picture without data"))?;
        // The encoder sees pictures of many cameras, each with its own times: it needs none.
        buffer.make_mut().set_pts(gst::ClockTime::NONE);
        if let Err(flow) = self.input.push(buffer) {
            return Err(self.failure(flow));
        }
        let jpeg = self.sink.try_pull_sample(gst::ClockTime::ZERO).ok_or_else(|| failed("no JPEG came out"))?;
        self.clear_bus()?;
        let map = jpeg.buffer().ok_or_else(|| failed("no JPEG"))?.map_readable().map_err(|e| failed(&e.to_string()))?;
        Ok(Thumbnail { jpeg: map.as_slice().to_vec(), width, height })
    }

    fn event(&self, event: gst::Event) -> Result<(), DecodeError> {
        let kind = event.type_();
        if self.input.push_event(event) {
            Ok(())
        } else {
            Err(self.bus_error().unwrap_or_else(|| DecodeError::Failed(format!("the pipeline refused {kind:?}"))))
        }
    }

    /// The error a failed push left on the bus, or the flow it returned.
    fn failure(&self, flow: gst::FlowError) -> DecodeError {
        self.bus_error().unwrap_or_else(|| DecodeError::Failed(format!("the pipeline returned {flow:?}")))
    }

    fn bus_error(&self) -> Option<DecodeError> {
        let bus = self.pipeline.bus()?;
        let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(e) => Some(DecodeError::Failed(format!(
                "{} ({}): {}",
                e.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                e.error(),
                e.debug().unwrap_or_default()
            ))),
            _ => None,
        }
    }

    /// Fails on an error the job left on the bus; drops the other messages, which nobody
    /// reads, so that they do not pile up.
    fn clear_bus(&self) -> Result<(), DecodeError> {
        if let Some(e) = self.bus_error() {
            return Err(e);
        }
        if let Some(bus) = self.pipeline.bus() {
            while bus.pop().is_some() {}
        }
        Ok(())
    }
}

fn make(name: &'static str) -> Result<gst::Element, DecodeError> {
    gst::init().map_err(|e| DecodeError::Failed(format!("GStreamer cannot start: {e}")))?;
    gst::ElementFactory::make(name).build().map_err(|_| DecodeError::Missing(name))
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

/// The luma of a decoded picture (I420).
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

    #[test]
    fn sizes_are_reduced_to_even_sizes_at_most_max_width() {
        assert_eq!(reduced_size(1920, 1080), (320, 180));
        assert_eq!(reduced_size(640, 480), (320, 240));
        assert_eq!(reduced_size(160, 121), (160, 120));
    }

    #[tokio::test]
    async fn a_decoder_without_threads_or_queue_is_always_busy() {
        let decoder = Decoder::new(0, 0);
        let jpeg = Coded::Jpeg(vec![vec![0xff, 0xd8, 0xff, 0xd9]]);
        assert_eq!(decoder.decode(jpeg.clone()).await, Err(DecodeError::Busy));
        assert_eq!(decoder.decode(jpeg).await, Err(DecodeError::Busy));
    }
}
