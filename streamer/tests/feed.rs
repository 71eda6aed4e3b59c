//! The live feed from a real worker process: the units the encoder makes reach the streamer's
//! [`Feed`] as they are made, starting with a keyframe, and a keyframe request is served at
//! once but a flood of them is one keyframe.

use std::time::Duration;

use desktop_streamer::encoder::select_encoder;
use desktop_streamer::feed::{AccessUnit, Feed, is_idr};
use desktop_streamer::pipeline::{self, Source, Splits};
use desktop_streamer::worker::{Request, Worker as _, WorkerProcesses, Workers as _};
use ds_config::StreamerConfig;
use tokio::sync::broadcast;

/// Long enough for a loaded machine to start a pipeline; the feed itself is immediate.
const LIMIT: Duration = Duration::from_secs(20);

async fn next(units: &mut broadcast::Receiver<std::sync::Arc<AccessUnit>>) -> std::sync::Arc<AccessUnit> {
    tokio::time::timeout(LIMIT, units.recv()).await.expect("a unit in time").expect("the feed is open")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_feeds_every_unit_and_serves_keyframe_requests() {
    let dir = tempfile::tempdir().unwrap();
    // 15 fps, a keyframe every 2 s unless asked: 30 units between keyframes.
    let config = StreamerConfig { width: 320, height: 240, fps: 15, ..StreamerConfig::default() };
    let encoder = select_encoder(&config, &[]).expect("an encoder works here");
    let source = Source::Slate { message: "feed test".into() };
    let location = dir.path().join("segment-%05d.ts");
    let description = pipeline::describe(&source, &encoder, &config, &location, Splits::Streamer);
    let feed = Feed::new();
    let mut units = feed.subscribe();
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_desktop-streamer"));
    let workers = WorkerProcesses::new(exe, feed.clone());
    let request = Request::Run { description, sample_picture: false, segment_secs: 60, feed: true };
    let worker = workers.start(&request).await.unwrap();

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
