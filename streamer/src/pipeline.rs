//! The GStreamer pipeline: capture (or the slate) → scale → encode → h264parse, whose every
//! access unit the worker copies to the streamer ([`crate::feed`]); the streamer cuts the HLS
//! segments and parts itself ([`crate::segmenter`]).
//!
//! The pipeline is written as one `gst-launch-1.0` description, so the pipeline that runs is
//! exactly the one `desktop-streamer print-pipeline` shows. For running it on its own (the
//! benchmark compares against a bare `gst-launch-1.0`), the description can end in `hlssink2`
//! instead ([`Sink::Hlssink2`]): the same capture and encoder writing 2 s segments. Elements
//! that the supervisor needs are named: `src`, `raw` (the scaled raw video), `enc` (the
//! encoder), `parse` (h264parse) and `sink`.

use std::path::Path;
use std::sync::Arc;

use ds_config::StreamerConfig;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::encoder::EncoderChoice;
use crate::flow::FlowCounters;
use crate::monitor::Monitor;

/// Where the picture comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A monitor of an X display.
    Screen { display: String, monitor: Monitor },
    /// A generated picture saying why the monitor cannot be shown.
    Slate { message: String },
}

impl Source {
    pub fn is_slate(&self) -> bool {
        matches!(self, Source::Slate { .. })
    }
}

/// hlssink2 insists on writing a playlist of its own; under [`Sink::Hlssink2`] it goes here,
/// beside the segments.
pub const SCRATCH_PLAYLIST: &str = ".hlssink2-scratch.m3u8";

/// Element names the supervisor looks for.
pub const SRC: &str = "src";
pub const RAW: &str = "raw";
pub const ENC: &str = "enc";
pub const PARSE: &str = "parse";
pub const SINK: &str = "sink";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot build the pipeline `{description}`: {source}")]
    Parse { description: String, source: gst::glib::Error },
    #[error("the pipeline has no element named {0}")]
    MissingElement(&'static str),
}

/// Where the encoded video goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink<'a> {
    /// Nowhere in the pipeline: the worker copies each access unit leaving h264parse to the
    /// streamer (H.264 byte stream, parameter sets in front of every keyframe).
    Feed,
    /// hlssink2 writing segments at `location` (a printf pattern), cut every
    /// `segment_duration`: for running the description under gst-launch-1.0.
    Hlssink2 { location: &'a Path },
}

/// The `gst-launch-1.0` description of the pipeline.
pub fn describe(source: &Source, encoder: &EncoderChoice, config: &StreamerConfig, sink: Sink<'_>) -> String {
    let (w, h, fps) = (config.width, config.height, config.fps);
    let format = encoder.input_format.as_deref().unwrap_or("I420");
    let head = match source {
        Source::Screen { display, monitor } => format!(
            "ximagesrc name={SRC} display-name={display} startx={x} starty={y} endx={ex} endy={ey} \
             use-damage=false show-pointer=true ! video/x-raw,framerate={fps}/1 ! videoscale add-borders=true ! videoconvert",
            display = quote(display),
            x = monitor.x.max(0),
            y = monitor.y.max(0),
            ex = monitor.x.max(0) + i32::try_from(monitor.width).unwrap_or(i32::MAX) - 1,
            ey = monitor.y.max(0) + i32::try_from(monitor.height).unwrap_or(i32::MAX) - 1,
        ),
        Source::Slate { message } => format!(
            "videotestsrc name={SRC} is-live=true pattern=solid-color foreground-color=0xff202020 \
             ! video/x-raw,width={w},height={h},framerate={fps}/1 \
             ! textoverlay text={text} valignment=center halignment=center font-desc=\"Sans 24\" ! videoconvert",
            text = quote(message),
        ),
    };
    let queue = if config.real_time.enabled {
        let leaky = if config.real_time.drop_frames { "downstream" } else { "no" };
        let ns = (config.real_time.buffer_size * 1e9) as u64;
        format!(" ! queue leaky={leaky} max-size-buffers=0 max-size-bytes=0 max-size-time={ns}")
    } else {
        String::new()
    };
    let settings: String = encoder.settings.iter().map(|s| format!(" {}={}", s.property, quote(&s.value))).collect();
    let tail = match sink {
        // Byte stream with the parameter sets in front of every keyframe: any keyframe starts
        // a segment, a part or a viewer's picture on its own.
        Sink::Feed => format!(
            "h264parse name={PARSE} config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au \
             ! fakesink name={SINK} sync=false async=false"
        ),
        Sink::Hlssink2 { location } => format!(
            "h264parse name={PARSE} ! hlssink2 name={SINK} location={location} playlist-location={scratch} \
             target-duration={target} max-files=0 playlist-length=1 send-keyframe-requests=true",
            location = quote(&location.display().to_string()),
            scratch = quote(&location.parent().unwrap_or(Path::new(".")).join(SCRATCH_PLAYLIST).display().to_string()),
            target = config.segment_duration,
        ),
    };
    format!(
        "{head} ! capsfilter name={RAW} caps=\"video/x-raw,format={format},width={w},height={h},pixel-aspect-ratio=1/1\"{queue} \
         ! {enc} name={ENC}{settings} ! {tail}",
        enc = encoder.name,
    )
}

/// Quotes a property value for a launch description when it needs it.
fn quote(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:%+".contains(c)) {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Builds the pipeline and fits the probes that measure it.
pub fn build(
    description: &str,
    flow: &Arc<FlowCounters>,
    sample_picture: bool,
) -> Result<gst::Pipeline, PipelineError> {
    let element = gst::parse::launch(description)
        .map_err(|source| PipelineError::Parse { description: description.to_owned(), source })?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| PipelineError::MissingElement("pipeline (the description made a single element)"))?;
    let enc = pipeline.by_name(ENC).ok_or(PipelineError::MissingElement(ENC))?;
    let enc_src = enc.static_pad("src").ok_or(PipelineError::MissingElement("enc.src"))?;
    let counters = Arc::clone(flow);
    enc_src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            counters.record_buffer(buffer.size());
        }
        gst::PadProbeReturn::Ok
    });
    if sample_picture {
        let raw = pipeline.by_name(RAW).ok_or(PipelineError::MissingElement(RAW))?;
        let raw_src = raw.static_pad("src").ok_or(PipelineError::MissingElement("raw.src"))?;
        let counters = Arc::clone(flow);
        raw_src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if counters.picture_sample_due()
                && let Some(buffer) = info.buffer()
                && let Some(caps) = pad.current_caps()
                && let Ok(vinfo) = gst_video::VideoInfo::from_caps(&caps)
                && let Ok(map) = buffer.map_readable()
            {
                // Plane 0 (luma for I420 and NV12) shows every visible change.
                let stride = usize::try_from(vinfo.stride()[0]).unwrap_or(0);
                counters.record_picture(map.as_slice(), stride, vinfo.height() as usize);
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.by_name(PARSE).ok_or(PipelineError::MissingElement(PARSE))?;
    Ok(pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{EncoderChoice, Setting};

    fn x264() -> EncoderChoice {
        EncoderChoice {
            name: "x264enc".into(),
            hardware: false,
            input_format: Some("I420".into()),
            settings: vec![Setting { property: "bitrate".into(), value: "2000".into() }],
            skipped: Vec::new(),
        }
    }

    #[test]
    fn screen_capture_covers_exactly_the_monitor() {
        let m =
            Monitor { name: "DUMMY1".into(), x: 1920, y: 0, width: 1280, height: 720, primary: false, outputs: vec![] };
        let d = describe(
            &Source::Screen { display: ":51".into(), monitor: m },
            &x264(),
            &StreamerConfig::default(),
            Sink::Feed,
        );
        assert!(d.contains("startx=1920 starty=0 endx=3199 endy=719"), "{d}");
        assert!(d.contains("use-damage=false"), "{d}");
        assert!(d.contains("x264enc name=enc bitrate=2000"), "{d}");
        assert!(
            d.ends_with(
                "h264parse name=parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au \
                 ! fakesink name=sink sync=false async=false"
            ),
            "the streamer cuts segments from the feed: {d}"
        );
    }

    #[test]
    fn slate_text_is_quoted() {
        let d = describe(
            &Source::Slate { message: "Display :0 unavailable: \"refused\"".into() },
            &x264(),
            &StreamerConfig::default(),
            Sink::Hlssink2 { location: Path::new("/hls dir/run1-seg%05d.ts") },
        );
        assert!(d.contains(r#"text="Display :0 unavailable: \"refused\"""#), "{d}");
        assert!(d.contains(r#"location="/hls dir/run1-seg%05d.ts""#), "{d}");
        assert!(d.contains("target-duration=2"), "hlssink2 cuts segments itself under gst-launch: {d}");
    }
}
