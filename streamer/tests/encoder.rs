//! Encoder selection against the GStreamer installed here: x264enc and openh264enc work, no
//! VA-API encoder exists (no GPU), so these tests see the fallbacks a GPU-less kiosk sees.

use std::time::Duration;

use desktop_streamer::encoder::{
    self, EncoderError, SkipReason, candidates, keyframe_interval_frames, make_encoder, probe, select_encoder,
};
use ds_config::StreamerConfig;
use gstreamer::prelude::*;

fn config(encoder: &str) -> StreamerConfig {
    StreamerConfig { encoder: encoder.to_owned(), ..StreamerConfig::default() }
}

fn reason_of<'a>(skipped: &'a [encoder::SkippedEncoder], name: &str) -> &'a SkipReason {
    &skipped.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not in skipped: {skipped:?}")).reason
}

#[test]
fn auto_picks_x264_and_says_why_vaapi_was_skipped() {
    let choice = select_encoder(&config("auto"), &[]).expect("an encoder works here");
    assert_eq!(choice.name, "x264enc");
    assert!(!choice.hardware);
    let names: Vec<_> = choice.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["vaapih264enc", "vah264enc"], "hardware first, in the auto order");
    for name in names {
        let SkipReason::Missing { detail } = reason_of(&choice.skipped, name) else {
            panic!("{name}: {:?}", choice.skipped);
        };
        assert!(detail.contains("registered no") || detail.contains("not installed"), "{detail}");
    }
    // The health API gets the reasons as JSON.
    let json = serde_json::to_value(&choice).unwrap();
    assert_eq!(json["name"], "x264enc");
    assert_eq!(json["skipped"][0]["name"], "vaapih264enc");
    assert_eq!(json["skipped"][0]["reason"]["kind"], "missing");
    assert!(json["skipped"][0]["message"].as_str().unwrap().starts_with("element missing: "));
}

#[test]
fn hardware_off_skips_vaapi_without_trying_it() {
    let mut cfg = config("auto");
    cfg.performance.hardware_acceleration = false;
    let choice = select_encoder(&cfg, &[]).unwrap();
    assert_eq!(choice.name, "x264enc");
    assert_eq!(reason_of(&choice.skipped, "vaapih264enc"), &SkipReason::HardwareDisabled);
    assert_eq!(reason_of(&choice.skipped, "vah264enc"), &SkipReason::HardwareDisabled);
}

#[test]
fn unknown_named_encoder_falls_back_and_says_why() {
    for name in ["nvh264enc", "no-such-enc"] {
        let choice = select_encoder(&config(name), &[]).unwrap();
        assert_eq!(choice.name, "x264enc", "{name}");
        assert_eq!(choice.skipped[0].name, name, "the named encoder is tried first");
        let SkipReason::Missing { detail } = &choice.skipped[0].reason else { panic!("{:?}", choice.skipped) };
        assert_eq!(detail, &format!("no GStreamer element named {name} is installed"));
    }
}

#[test]
fn named_encoder_comes_first() {
    let (order, skipped) = candidates(&config("openh264enc"), &[]);
    assert_eq!(order, ["openh264enc", "vaapih264enc", "vah264enc", "x264enc"]);
    assert!(skipped.is_empty());
    let choice = select_encoder(&config("openh264enc"), &[]).unwrap();
    assert_eq!(choice.name, "openh264enc");
    assert!(choice.skipped.is_empty(), "nothing was tried before it: {:?}", choice.skipped);
}

#[test]
fn excluding_x264_yields_openh264() {
    let choice = select_encoder(&config("auto"), &["x264enc".to_owned()]).unwrap();
    assert_eq!(choice.name, "openh264enc");
    assert_eq!(reason_of(&choice.skipped, "x264enc"), &SkipReason::Excluded);
    // The encoder the supervisor excluded stays excluded even when it is the named one.
    let choice = select_encoder(&config("x264enc"), &["x264enc".to_owned()]).unwrap();
    assert_eq!(choice.name, "openh264enc");
}

#[test]
fn nothing_left_names_every_candidate_and_what_to_install() {
    let all: Vec<String> = ["x264enc", "openh264enc", "vaapih264enc", "vah264enc"].map(String::from).into();
    let err = select_encoder(&config("auto"), &all).unwrap_err();
    let EncoderError::NoEncoder { tried } = &err else { panic!("{err:?}") };
    assert_eq!(tried.len(), 4);
    let text = err.to_string();
    for line in [
        "no H.264 encoder works; tried:",
        "  vaapih264enc: excluded after it failed in the running pipeline",
        "  x264enc: excluded",
        "  openh264enc: excluded",
        "gstreamer1.0-plugins-ugly for x264enc",
        "gstreamer1.0-plugins-bad (with libopenh264) for openh264enc",
        "gstreamer1.0-vaapi",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn settings_use_each_encoders_units() {
    let mut cfg = config("auto");
    cfg.bitrate = 1500;
    cfg.fps = 10;
    cfg.keyframe_interval = 3;
    cfg.performance.thread_count = 1;
    let x264 = make_encoder("x264enc", &cfg).unwrap();
    assert_eq!(x264.property::<u32>("bitrate"), 1500, "kbit/s");
    assert_eq!(x264.property::<u32>("key-int-max"), 31, "fps × interval + 1 (see keyframe_interval_frames)");
    assert_eq!(x264.property::<u32>("bframes"), 0);
    assert_eq!(x264.property::<u32>("threads"), 1);
    // GStreamer serialises flags by their long names.
    assert_eq!(x264.property_value("tune").serialize().unwrap(), "Zero latency");
    let oh264 = make_encoder("openh264enc", &cfg).unwrap();
    assert_eq!(oh264.property::<u32>("bitrate"), 1_500_000, "bit/s");
    assert_eq!(oh264.property::<u32>("gop-size"), 31);
    assert_eq!(oh264.property::<u32>("multi-thread"), 1);

    cfg.performance.low_latency_mode = false;
    let x264 = make_encoder("x264enc", &cfg).unwrap();
    assert!(!x264.property_value("tune").serialize().unwrap().contains("latency"));
    assert_eq!(x264.property_value("speed-preset").serialize().unwrap(), "ultrafast");
}

/// Keyframe positions over `frames` frames from the configured encoder.
fn keyframes(cfg: &StreamerConfig, name: &str, frames: u32) -> Vec<usize> {
    let report = probe(name, cfg, frames, Duration::from_secs(60)).unwrap_or_else(|r| panic!("{name}: {r}"));
    assert_eq!(report.frames.len(), frames as usize, "{name}: one buffer per frame");
    let caps = report.caps.expect("negotiated caps");
    assert!(caps.starts_with("video/x-h264"), "{caps}");
    assert!(caps.contains("stream-format=(string)byte-stream") && caps.contains("alignment=(string)au"), "{caps}");
    report.frames.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i).collect()
}

#[test]
fn configured_encoders_produce_h264_at_the_keyframe_interval() {
    let mut cfg = config("auto");
    cfg.width = 640;
    cfg.height = 360;
    cfg.fps = 15;
    cfg.keyframe_interval = 2;
    // One frame more than fps × interval, so the streamer's keyframe requests at segment
    // boundaries come first (see keyframe_interval_frames).
    assert_eq!(keyframe_interval_frames(&cfg), 31);
    for name in ["x264enc", "openh264enc"] {
        assert_eq!(keyframes(&cfg, name, 95), [0, 31, 62, 93], "{name}");
    }
    cfg.keyframe_interval = 1;
    cfg.fps = 10;
    assert_eq!(keyframes(&cfg, "x264enc", 35), [0, 11, 22, 33]);
}

#[test]
fn probe_rejects_an_element_that_does_not_encode_h264() {
    // identity is a real element without an encoder's properties: it passes raw video
    // through, so the probe must reject it for its output, not for its name.
    let err = probe("identity", &config("identity"), 3, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, SkipReason::StartFailed { .. }), "{err:?}");
}
