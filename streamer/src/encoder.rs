//! H.264 encoders: the order auto tries them in, their settings from the config, and proof that one really runs.
//!
//! `gst-inspect` only says an element is registered; a VA-API encoder can be registered and
//! still fail on its first frame, and a plugin can be installed without the library it wraps.
//! So an encoder is chosen by encoding a few real frames at the configured caps, and the
//! reasons every other candidate was passed over are kept for the health API.
//!
//! Everything here blocks (a probe takes up to [`PROBE_TIMEOUT`] per candidate); async
//! callers run it in `spawn_blocking`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ds_config::StreamerConfig;
use ds_config::streamer::KNOWN_ENCODERS;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use serde::Serialize;

/// The config value that asks for the first encoder that works.
pub const AUTO: &str = "auto";

/// How long one candidate may take to encode its probe frames.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames encoded to prove a candidate works: enough for the encoder to get past its start-up
/// and emit the first keyframe, few enough to keep start-up fast at 1080p.
pub const PROBE_FRAMES: u32 = 5;

/// How long to wait for the error message that explains a refused state change.
const ERROR_MESSAGE_WAIT: Duration = Duration::from_millis(500);

/// Encoders that need a GPU; `performance.hardware_acceleration: false` skips them.
const HARDWARE_ENCODERS: &[&str] = &["vaapih264enc", "vah264enc"];

pub use ds_wire::health::{EncoderChoice, Setting, SkipReason, SkippedEncoder};

/// A fresh, configured element of the chosen encoder for the real pipeline.
pub fn make_element(choice: &EncoderChoice, config: &StreamerConfig) -> Result<gst::Element, EncoderError> {
    make_encoder(&choice.name, config).map_err(|reason| EncoderError::Build { name: choice.name.clone(), reason })
}

/// Errors of encoder selection.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("cannot initialise GStreamer: {0}")]
    Init(String),
    #[error("{}", no_encoder_message(.tried))]
    NoEncoder { tried: Vec<SkippedEncoder> },
    #[error("cannot create H.264 encoder {name}: {reason}")]
    Build { name: String, reason: SkipReason },
}

fn no_encoder_message(tried: &[SkippedEncoder]) -> String {
    let mut msg = String::from("no H.264 encoder works; tried:");
    for s in tried {
        msg.push_str(&format!("\n  {}: {}", s.name, s.message));
    }
    msg.push_str(
        "\ninstall gstreamer1.0-plugins-ugly for x264enc, gstreamer1.0-plugins-bad (with libopenh264) for \
         openh264enc, or gstreamer1.0-vaapi with a VA-API driver for vaapih264enc; \
         or set `encoder` to another installed H.264 encoder",
    );
    msg
}

/// Initialises GStreamer once per process; safe to call from any thread, any number of times.
pub fn init() -> Result<(), EncoderError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string())).clone().map_err(EncoderError::Init)
}

/// Whether `name` needs a GPU.
pub fn is_hardware(name: &str) -> bool {
    HARDWARE_ENCODERS.contains(&name)
}

/// The encoder's own keyframe distance in frames: `fps` × `keyframe_interval`, plus one.
///
/// The streamer asks the encoder for a keyframe at every segment boundary, by running time
/// ([`crate::segmenter`]). A keyframe the encoder made by itself exactly on the boundary
/// could come a frame before the asked-for one (capture timestamps jitter) and leave a
/// one-frame segment or move the next GOP; one frame later, the asked-for keyframe always
/// comes first and the encoder counts from it.
pub fn keyframe_interval_frames(config: &StreamerConfig) -> u32 {
    config.fps.saturating_mul(config.keyframe_interval).max(1) + 1
}

/// Candidates in the order they are tried, and the ones ruled out before probing.
///
/// A named encoder comes first, even a hardware one with hardware acceleration off (the
/// user asked for it by name); then the auto order, without hardware encoders if hardware
/// acceleration is off. Names in `exclude` are ruled out.
pub fn candidates(config: &StreamerConfig, exclude: &[String]) -> (Vec<String>, Vec<SkippedEncoder>) {
    let named = config.encoder.trim();
    let mut order: Vec<(&str, bool)> = Vec::new();
    if !named.is_empty() && named != AUTO {
        order.push((named, true));
    }
    for &name in KNOWN_ENCODERS {
        if !order.iter().any(|(n, _)| *n == name) {
            order.push((name, false));
        }
    }
    let mut tryable = Vec::new();
    let mut skipped = Vec::new();
    for (name, named) in order {
        if exclude.iter().any(|e| e == name) {
            skipped.push(SkippedEncoder::new(name, SkipReason::Excluded));
        } else if !named && is_hardware(name) && !config.performance.hardware_acceleration {
            skipped.push(SkippedEncoder::new(name, SkipReason::HardwareDisabled));
        } else {
            tryable.push(name.to_owned());
        }
    }
    (tryable, skipped)
}

/// Widest frame encoders are proven on. The probe shows that the element works at all, cheaply;
/// the real pipeline then proves the configured size, and an encoder that fails there is
/// replaced by the next candidate.
const PROBE_WIDTH: u32 = 320;

/// The config with the frame size scaled down to [`PROBE_WIDTH`] (aspect kept, sizes even).
fn probe_config(config: &StreamerConfig) -> StreamerConfig {
    let mut c = config.clone();
    if c.width > PROBE_WIDTH {
        c.height = (u64::from(c.height) * u64::from(PROBE_WIDTH) / u64::from(c.width)).max(16) as u32 & !1;
        c.width = PROBE_WIDTH;
    }
    c
}

/// Chooses the first candidate that really encodes, skipping those in `exclude`.
///
/// The supervisor calls it again with the failed encoder added to `exclude` when an encoder
/// breaks in the running pipeline.
pub fn select_encoder(config: &StreamerConfig, exclude: &[String]) -> Result<EncoderChoice, EncoderError> {
    init()?;
    let (tryable, mut skipped) = candidates(config, exclude);
    for name in tryable {
        match probe(&name, &probe_config(config), PROBE_FRAMES, PROBE_TIMEOUT) {
            Ok(_) => {
                tracing::info!(encoder = %name, skipped = skipped.len(), "H.264 encoder chosen");
                let settings = settings_for(&name, config);
                if settings.is_empty() {
                    tracing::warn!(encoder = %name, "unknown encoder runs with its own defaults for bitrate and keyframes");
                }
                return Ok(EncoderChoice {
                    hardware: is_hardware(&name),
                    input_format: input_format(&name).map(str::to_owned),
                    settings,
                    name,
                    skipped,
                });
            }
            Err(reason) => {
                tracing::warn!(encoder = %name, reason = %reason, "H.264 encoder skipped");
                skipped.push(SkippedEncoder::new(name, reason));
            }
        }
    }
    Err(EncoderError::NoEncoder { tried: skipped })
}

/// The raw format each known encoder takes natively.
pub fn input_format(name: &str) -> Option<&'static str> {
    match name {
        "x264enc" | "openh264enc" => Some("I420"),
        "vaapih264enc" | "vah264enc" => Some("NV12"),
        _ => None,
    }
}

/// Properties for `name` from the config, with each encoder's own units.
///
/// B-frames are always off: they add a frame of latency and nothing a screen needs.
/// Unknown encoders get no settings, since their property names and units cannot be guessed.
pub fn settings_for(name: &str, config: &StreamerConfig) -> Vec<Setting> {
    let kbps = config.bitrate;
    let gop = keyframe_interval_frames(config);
    let threads = config.performance.thread_count;
    let low_latency = config.performance.low_latency_mode;
    let s = |property: &str, value: String| Setting { property: property.to_owned(), value };
    match name {
        "x264enc" => {
            let mut v = vec![
                s("pass", "cbr".into()),
                s("bitrate", kbps.to_string()),
                s("key-int-max", gop.to_string()),
                s("bframes", "0".into()),
                s("b-adapt", "false".into()),
                // ultrafast even without low latency: the kiosk's CPU quota is small.
                s("speed-preset", "ultrafast".into()),
                s("threads", threads.to_string()),
            ];
            if low_latency {
                v.push(s("tune", "zerolatency".into()));
            }
            v
        }
        // bit/s, not kbit/s; openh264 has no B-frames (constrained baseline).
        "openh264enc" => vec![
            s("rate-control", "bitrate".into()),
            s("bitrate", (u64::from(kbps) * 1000).min(u64::from(u32::MAX)).to_string()),
            s("gop-size", gop.to_string()),
            s("complexity", if low_latency { "low" } else { "medium" }.into()),
            s("multi-thread", threads.to_string()),
        ],
        "vaapih264enc" => vec![
            s("rate-control", "cbr".into()),
            s("bitrate", kbps.to_string()),
            s("keyframe-period", gop.to_string()),
            s("max-bframes", "0".into()),
        ],
        "vah264enc" => vec![
            s("rate-control", "cbr".into()),
            s("bitrate", kbps.to_string()),
            s("key-int-max", gop.to_string()),
            s("b-frames", "0".into()),
        ],
        _ => Vec::new(),
    }
}

/// Creates the element `name` and applies [`settings_for`] it.
pub fn make_encoder(name: &str, config: &StreamerConfig) -> Result<gst::Element, SkipReason> {
    init().map_err(|e| SkipReason::Missing { detail: e.to_string() })?;
    let element =
        gst::ElementFactory::make(name).build().map_err(|_| SkipReason::Missing { detail: why_missing(name) })?;
    for Setting { property, value } in settings_for(name, config) {
        let fail =
            |detail: String| SkipReason::Configure { property: property.to_owned(), value: value.clone(), detail };
        let pspec = element.find_property(&property).ok_or_else(|| fail("the element has no such property".into()))?;
        let v = glib_value(&value, &pspec).map_err(|e| fail(e.to_string()))?;
        element.set_property_from_value(&property, &v);
    }
    Ok(element)
}

fn glib_value(s: &str, pspec: &gst::glib::ParamSpec) -> Result<gst::glib::Value, gst::glib::BoolError> {
    <gst::glib::Value as GstValueExt>::deserialize_with_pspec(s, pspec)
}

/// Tells a plugin that is not installed from one that registered no element (VA-API plugins
/// register nothing when they find no usable device).
fn why_missing(name: &str) -> String {
    let (plugin, package) = match name {
        "x264enc" => ("x264", "gstreamer1.0-plugins-ugly"),
        "openh264enc" => ("openh264", "gstreamer1.0-plugins-bad and libopenh264"),
        "vaapih264enc" => ("vaapi", "gstreamer1.0-vaapi and a VA-API driver"),
        "vah264enc" => ("va", "gstreamer1.0-plugins-bad (1.22+) and a VA-API driver"),
        _ => return format!("no GStreamer element named {name} is installed"),
    };
    if gst::Registry::get().find_plugin(plugin).is_some() {
        format!("the {plugin} plugin is installed but registered no {name} (no usable device or library)")
    } else {
        format!("the {plugin} plugin is not installed (install {package})")
    }
}

/// One encoded buffer from a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EncodedFrame {
    pub pts: Option<u64>,
    pub keyframe: bool,
    pub size: usize,
}

/// What a probe saw: every encoded buffer in order, and the negotiated output caps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub frames: Vec<EncodedFrame>,
    pub caps: Option<String>,
}

/// Sets the pipeline to Null however the probe ends.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Encodes `frames` test frames at the configured size and rate with encoder `name`,
/// configured as the real pipeline will be, into H.264 byte-stream with AU alignment (what
/// the worker's `h264parse` hands the streamer). Succeeds when all frames came through
/// within `timeout` and at least one was a keyframe.
pub fn probe(name: &str, config: &StreamerConfig, frames: u32, timeout: Duration) -> Result<ProbeReport, SkipReason> {
    let encoder = make_encoder(name, config)?;
    let start_failed = |detail: String| SkipReason::StartFailed { detail };
    let make = |factory: &str| {
        gst::ElementFactory::make(factory).build().map_err(|e| start_failed(format!("cannot create {factory}: {e}")))
    };

    let src = make("videotestsrc")?;
    src.set_property("num-buffers", i32::try_from(frames).unwrap_or(i32::MAX));
    src.set_property_from_str("pattern", "ball");
    let convert = make("videoconvert")?;
    let mut raw = gst_video::VideoCapsBuilder::new()
        .width(i32::try_from(config.width).unwrap_or(i32::MAX))
        .height(i32::try_from(config.height).unwrap_or(i32::MAX))
        .framerate(gst::Fraction::new(i32::try_from(config.fps).unwrap_or(i32::MAX), 1));
    if let Some(format) = input_format(name).and_then(|f| f.parse::<gst_video::VideoFormat>().ok()) {
        raw = raw.format(format);
    }
    let capsfilter = make("capsfilter")?;
    capsfilter.set_property("caps", raw.build());
    let h264 =
        gst::Caps::builder("video/x-h264").field("stream-format", "byte-stream").field("alignment", "au").build();
    let seen: Arc<Mutex<Vec<EncodedFrame>>> = Arc::default();
    let seen_in_sink = Arc::clone(&seen);
    let sink = gst_app::AppSink::builder()
        .caps(&h264)
        .sync(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer() {
                        let frame = EncodedFrame {
                            pts: buffer.pts().map(gst::ClockTime::nseconds),
                            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                            size: buffer.size(),
                        };
                        seen_in_sink.lock().unwrap_or_else(|p| p.into_inner()).push(frame);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build();

    let pipeline = gst::Pipeline::with_name(&format!("encoder-probe-{name}"));
    let guard = NullOnDrop(pipeline.clone());
    let elements = [&src, &convert, &capsfilter, &encoder, sink.upcast_ref()];
    pipeline.add_many(elements).map_err(|e| start_failed(e.to_string()))?;
    gst::Element::link_many(elements).map_err(|e| start_failed(format!("cannot link the probe pipeline: {e}")))?;

    let bus = pipeline.bus().ok_or_else(|| start_failed("the pipeline has no bus".into()))?;
    if pipeline.set_state(gst::State::Playing).is_err() {
        let detail = bus
            .timed_pop_filtered(gst::ClockTime::from_nseconds(nanos(ERROR_MESSAGE_WAIT)), &[gst::MessageType::Error])
            .map(|m| error_text(&m))
            .unwrap_or_else(|| "state change refused without an error message".into());
        return Err(start_failed(detail));
    }

    let deadline = Instant::now() + timeout;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(nanos(left)),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            break None;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Some(Ok(())),
            gst::MessageView::Error(_) => break Some(Err(error_text(&msg))),
            _ => {}
        }
    };
    let caps = sink.static_pad("sink").and_then(|p| p.current_caps()).map(|c| c.to_string());
    drop(guard);
    let frames = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    match outcome {
        None => Err(SkipReason::Timeout {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            buffers: frames.len(),
        }),
        Some(Err(detail)) => Err(SkipReason::Failed { detail }),
        Some(Ok(())) if !frames.iter().any(|f| f.keyframe) => Err(SkipReason::NoKeyframe { buffers: frames.len() }),
        Some(Ok(())) => Ok(ProbeReport { frames, caps }),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// "element path: message (debug)" of an Error message.
fn error_text(msg: &gst::Message) -> String {
    let gst::MessageView::Error(err) = msg.view() else {
        return format!("{msg:?}");
    };
    let path = msg.src().map(|s| s.path_string().to_string()).unwrap_or_else(|| "?".into());
    match err.debug() {
        Some(debug) => format!("{path}: {} ({debug})", err.error()),
        None => format!("{path}: {}", err.error()),
    }
}
