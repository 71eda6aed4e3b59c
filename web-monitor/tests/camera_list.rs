//! The camera list (`GET /api/cameras`) as the real scheduler fills it, with a prober that
//! answers from memory (the probes themselves are tested against real servers in ds-cameras):
//! what the decoding budget did with the heartbeats' pictures reaches the page.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use desktop_streamer_web::http::cameras::api;
use desktop_streamer_web::http::cameras::{Cameras, Fleet, Live};
use ds_cameras::picture::Coded;
use ds_cameras::{Decoding, Event, ProbeOutcome, Prober, Proof, Scheduler, SchedulerOptions};
use ds_wire::cameras::PictureCounts;

/// Video arrives at once, with two JPEGs to decode, as from an MJPEG camera.
struct Sending;

impl Prober for Sending {
    async fn probe(&self, _url: &str, _step: Duration, _verify_tls: bool) -> ProbeOutcome {
        Ok(Proof {
            latency: Duration::from_millis(5),
            codec: "jpeg".into(),
            width: Some(640),
            height: Some(360),
            last_frame: tokio::time::Instant::now(),
            last_frame_at: jiff::Timestamp::now(),
            coded: Some(Coded::Jpeg(vec![vec![0xff, 0xd8, 0xff, 0xd9]; 2])),
            span: Duration::from_millis(70),
            packets_lost: None,
        })
    }
}

/// A decoder that never keeps up (no threads, no queue: every job finds the queue full) leaves
/// every heartbeat UP and on the list, counted as skipped for the decoding budget, and the
/// list says that thumbnails are behind, for how many cameras. On the paused clock: the
/// decoder answers at once, so nothing here waits on real time.
#[tokio::test(start_paused = true)]
async fn heartbeats_skipped_for_the_decoding_budget_show_on_the_camera_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cameras.yaml");
    std::fs::write(
        &file,
        "heartbeat_seconds: 5\nstreams:\n  - name: Gate\n    url: http://192.0.2.1/video.mjpg\n  - name: Yard\n    url: \
         http://192.0.2.2/video.mjpg\n",
    )
    .unwrap();
    let fleet = Arc::new(Fleet::open(&file));
    assert_eq!(fleet.current().streams.len(), 2, "the list loads");
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    let stop = tokio_util::sync::CancellationToken::new();
    let busy = SchedulerOptions {
        decoding: Some(Decoding { threads: 0, queue: 0, budgeted: false }),
        ..SchedulerOptions::default()
    };
    let scheduler = Scheduler::spawn_with(Sending, fleet.subscribe(), tx, stop.clone(), busy);
    let live = Arc::new(Live::new(scheduler.statuses(), Default::default()));
    let cameras = Cameras::new(Arc::clone(&fleet), live, None);

    // Two heartbeats of each camera.
    let mut beats = std::collections::HashMap::<String, u32>::new();
    while beats.len() < 2 || beats.values().any(|n| *n < 2) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("a heartbeat").unwrap();
        if let Event::Heartbeat(b) = event {
            *beats.entry(b.heartbeat.camera_id.clone()).or_default() += 1;
        }
    }
    let list = api::list(State(cameras)).await.0;
    for camera in &list.cameras {
        let probed = camera.live.probed().expect("a heartbeat came");
        assert_eq!(probed.state, ds_wire::cameras::State::Up, "{probed:?}");
        let PictureCounts { window_seconds, decoded, skipped } = probed.pictures.expect("pictures counted");
        assert_eq!((window_seconds, decoded), (300, 0), "{probed:?}");
        assert!(skipped >= 2, "every heartbeat skipped: {probed:?}");
    }
    let behind = list.thumbnails_behind.expect("the list says thumbnails are behind");
    assert_eq!((behind.cameras, behind.decoded, behind.refresh_seconds), (2, 0, 300), "{behind:?}");
    assert!(behind.skipped >= 4, "{behind:?}");
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json["thumbnails_behind"]["cameras"], 2, "{json}");
    stop.cancel();
    scheduler.join().await;
}
