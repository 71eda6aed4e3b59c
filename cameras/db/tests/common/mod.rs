//! Helpers shared by the store's integration tests: heartbeats at injected times, so no
//! test reads the wall clock or sleeps.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use ds_camera_db::{Batching, CameraInfo, Options, Store};
use ds_cameras::{Heartbeat, Reason, State};
use jiff::{SignedDuration, Timestamp};

/// 2026-01-01T00:00:00Z, the origin of test time.
pub const BASE_S: i64 = 1_767_225_600;

/// `s` seconds after [`BASE_S`].
pub fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE_S + s).unwrap()
}

pub const MIN: i64 = 60;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;

pub fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

pub fn hb(camera: &str, at_s: i64, state: State) -> Heartbeat {
    let up = state == State::Up;
    Heartbeat {
        camera_id: camera.to_owned(),
        at: t(at_s),
        state,
        reason: if up { None } else { Some(Reason::Timeout) },
        message: if up { None } else { Some("no frame within 5 s".to_owned()) },
        latency_ms: up.then_some(120),
        codec: up.then(|| "h264".to_owned()),
        width: up.then_some(1280),
        height: up.then_some(720),
        last_frame_at: up.then(|| t(at_s)),
        clock_synchronized: Some(true),
    }
}

pub fn open(path: &Path) -> Store {
    Store::open(path, Options::default()).unwrap()
}

pub fn camera(id: &str, name: &str, heartbeat_s: u64) -> CameraInfo {
    CameraInfo { id: id.to_owned(), name: name.to_owned(), heartbeat: Duration::from_secs(heartbeat_s) }
}

/// Writes heartbeats through a real writer and waits until they are committed.
pub async fn write_all(store: &Store, heartbeats: impl IntoIterator<Item = Heartbeat>) {
    let writer = store.writer(Batching::default()).unwrap();
    for h in heartbeats {
        writer.record(h).unwrap();
    }
    writer.shutdown().await;
    assert_eq!(writer.stats().dropped, 0);
}
