//! The live feed from a real worker process: the units the encoder makes reach the streamer's
//! [`Feed`] as they are made, starting with a keyframe, and a keyframe request is served at
//! once but a flood of them is one keyframe.

use std::time::Duration;

use desktop_streamer::encoder::select_encoder;
use desktop_streamer::feed::{AccessUnit, Feed};
use desktop_streamer::h264::is_idr;
use desktop_streamer::mpegts::{TsMuxer, ticks};
use desktop_streamer::pipeline::{self, Sink, Source};
use desktop_streamer::worker::{Request, Worker as _, WorkerProcess, WorkerProcesses, Workers as _};
use ds_config::StreamerConfig;
use serde_json::json;
use tokio::sync::broadcast;

/// Long enough for a loaded machine to start a pipeline; the feed itself is immediate.
const LIMIT: Duration = Duration::from_secs(20);

async fn next(units: &mut broadcast::Receiver<std::sync::Arc<AccessUnit>>) -> std::sync::Arc<AccessUnit> {
    tokio::time::timeout(LIMIT, units.recv()).await.expect("a unit in time").expect("the feed is open")
}

/// A worker on the slate at 320x240, 15 fps (a keyframe every 2 s unless asked: 30 units
/// between keyframes), feeding `feed`.
async fn start_worker(feed: &Feed) -> WorkerProcess {
    let config = StreamerConfig { width: 320, height: 240, fps: 15, ..StreamerConfig::default() };
    let encoder = select_encoder(&config, &[]).expect("an encoder works here");
    let source = Source::Slate { message: "feed test".into() };
    let description = pipeline::describe(&source, &encoder, &config, Sink::Feed);
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_desktop-streamer"));
    let workers = WorkerProcesses::new(exe, feed.clone());
    let request = Request::Run { description, sample_picture: false };
    workers.start(&request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_feeds_every_unit_and_serves_keyframe_requests() {
    let feed = Feed::new();
    let mut units = feed.subscribe();
    let worker = start_worker(&feed).await;

    let first = next(&mut units).await;
    assert!(first.keyframe && is_idr(&first.data), "decoding can start at the first unit");
    assert_eq!(first.run, 1);
    // SPS (7) and PPS (8) travel with the keyframe: a viewer joining here can decode.
    let nal_types: Vec<u8> = first.data.windows(4).filter(|w| w[..3] == [0, 0, 1]).map(|w| w[3] & 0x1f).collect();
    assert!(nal_types.contains(&7) && nal_types.contains(&8), "{nal_types:?}");
    let mut last_pts = first.pts.expect("timestamped");
    for _ in 0..3 {
        let unit = next(&mut units).await;
        let pts = unit.pts.expect("timestamped");
        assert!(pts > last_pts && !unit.keyframe, "{pts:?} after {last_pts:?}");
        last_pts = pts;
    }

    // A flood of requests: one keyframe, well before the 30 units of the GOP.
    assert!(feed.request_keyframe());
    for _ in 0..50 {
        feed.request_keyframe();
    }
    let mut until_keyframe = 0;
    loop {
        let unit = next(&mut units).await;
        until_keyframe += 1;
        if unit.keyframe {
            break;
        }
        assert!(until_keyframe < 15, "a keyframe half a GOP after the request at the latest");
    }
    let mut keyframes = 0;
    for _ in 0..20 {
        keyframes += usize::from(next(&mut units).await.keyframe);
    }
    assert_eq!(keyframes, 0, "the flood was merged into the one keyframe");
    worker.stop().await;
    // The worker's end is the end of its run: the next one starts with run 2 (tested in feed.rs).
}

/// The fed units, muxed here as MPEG-TS (what segments and low-latency parts will hold), are a
/// stream ffprobe reads frame by frame and ffmpeg decodes without a complaint.
#[tokio::test(flavor = "multi_thread")]
async fn fed_units_muxed_as_mpeg_ts_decode_with_ffmpeg() {
    const UNITS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let feed = Feed::new();
    let mut units = feed.subscribe();
    let worker = start_worker(&feed).await;
    let mut muxer = TsMuxer::new();
    let mut ts = Vec::new();
    let mut first_pts = None;
    for _ in 0..UNITS {
        let unit = next(&mut units).await;
        let pts = unit.pts.expect("timestamped");
        let first = *first_pts.get_or_insert(pts);
        // A second ahead, so the PCR (100 ms before the PTS) never goes below zero.
        muxer.write_unit(&mut ts, ticks(pts - first) + 90_000, unit.keyframe, &unit.data);
    }
    worker.stop().await;
    let file = dir.path().join("muxed.ts");
    std::fs::write(&file, &ts).unwrap();

    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts,key_frame"])
        .args(["-show_entries", "stream=codec_name,width,height", "-of", "json"])
        .arg(&file)
        .output()
        .expect("ffprobe runs (tests/deps.sh installs ffmpeg)");
    assert!(probe.status.success() && probe.stderr.is_empty(), "{}", String::from_utf8_lossy(&probe.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &doc["streams"][0];
    assert_eq!(
        (&stream["codec_name"], &stream["width"], &stream["height"]),
        (&json!("h264"), &json!(320), &json!(240))
    );
    let frames = doc["frames"].as_array().unwrap();
    assert_eq!(frames.len(), UNITS, "every unit is a frame");
    assert_eq!(frames[0]["key_frame"], 1);
    let pts: Vec<i64> = frames.iter().map(|f| f["pts"].as_i64().unwrap()).collect();
    assert_eq!(pts[0], 90_000);
    for pair in pts.windows(2) {
        // 15 fps: 6000 ticks of 90 kHz apart (the pipeline's clock may round by a tick).
        assert!((pair[1] - pair[0] - 6000).abs() <= 1, "{pts:?}");
    }
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
}

/// A keyframe asked for at a running time a second ahead (as the HLS segmenter asks for each
/// segment's end) comes on the first frame at that time, not before and not a frame late.
#[tokio::test(flavor = "multi_thread")]
async fn a_keyframe_asked_for_at_a_running_time_comes_on_that_frame() {
    let feed = Feed::new();
    let mut units = feed.subscribe();
    let worker = start_worker(&feed).await;
    let first = next(&mut units).await;
    let at = first.pts.expect("timestamped") + Duration::from_millis(1000);
    feed.request_keyframe_at(at);
    let keyframe = loop {
        let unit = next(&mut units).await;
        if unit.keyframe {
            break unit;
        }
    };
    worker.stop().await;
    let pts = keyframe.pts.expect("timestamped");
    // 15 fps: the frame at the asked time, or the next when capture timestamps jitter.
    assert!(pts >= at && pts < at + Duration::from_millis(67), "asked for {at:?}, came at {pts:?}");
}
