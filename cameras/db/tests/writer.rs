//! The batched writer and what it derives: nothing lost at shutdown, state changes from
//! consecutive heartbeats, history kept across renames.

mod common;

use std::time::Duration;

use common::{HOUR, MIN, camera, hb, open, t, write_all};
use ds_camera_db::{Batching, Error};
use ds_cameras::State;

#[tokio::test]
async fn shutdown_commits_every_queued_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    // Batches of 1000 and a delay no test reaches: the last 500 are committed only by
    // the shutdown.
    let writer =
        store.writer(Batching { max_records: 1000, max_delay: Duration::from_secs(3600), queue: 10_000 }).unwrap();
    let cameras: Vec<String> = (0..10).map(|i| format!("cam-{i}")).collect();
    for i in 0..250 {
        for c in &cameras {
            writer.record(hb(c, i * 15, State::Up)).unwrap();
        }
    }
    writer.shutdown().await;
    let stats = writer.stats();
    assert_eq!((stats.written, stats.batches, stats.dropped), (2500, 3, 0), "{stats:?}");
    for c in &cameras {
        assert_eq!(store.heartbeats(c, t(0), t(2 * HOUR), 10_000).unwrap().len(), 250, "{c}");
    }
    assert!(matches!(writer.record(hb("cam-0", 9999, State::Up)), Err(Error::WriterStopped)));
    // A second shutdown returns at once.
    writer.shutdown().await;
}

#[tokio::test]
async fn flush_makes_recorded_heartbeats_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    let writer = store.writer(Batching { max_delay: Duration::from_secs(3600), ..Batching::default() }).unwrap();
    writer.record(hb("gate", 0, State::Up)).unwrap();
    assert!(store.latest("gate").unwrap().is_none(), "still batched");
    writer.flush().await.unwrap();
    assert_eq!(store.latest("gate").unwrap().unwrap(), hb("gate", 0, State::Up));
    writer.shutdown().await;
}

#[tokio::test]
async fn state_changes_are_derived_and_paged_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    let states = [State::Up, State::Up, State::Pending, State::Down, State::Down, State::Up, State::Degraded];
    // Written in two sessions: the second writer must know the last state of the first.
    write_all(&store, states[..4].iter().enumerate().map(|(i, s)| hb("gate", i as i64 * 30, *s))).await;
    write_all(&store, states[4..].iter().enumerate().map(|(i, s)| hb("gate", (i as i64 + 4) * 30, *s))).await;
    // A heartbeat the clock put before the newest one (it stepped back) is stored after it
    // (1 ms after, in a new session), and its change is one.
    write_all(&store, [hb("gate", 45, State::Down)]).await;
    let after = t(180) + jiff::SignedDuration::from_millis(1);

    let page = store.state_changes("gate", None, 3).unwrap();
    let seen: Vec<_> = page.changes.iter().map(|c| (c.from, c.to, c.at)).collect();
    assert_eq!(
        seen,
        [
            (Some(State::Degraded), State::Down, after),
            (Some(State::Up), State::Degraded, t(180)),
            (Some(State::Down), State::Up, t(150)),
        ]
    );
    let page2 = store.state_changes("gate", page.next_before, 3).unwrap();
    let seen: Vec<_> = page2.changes.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(seen, [(Some(State::Pending), State::Down), (Some(State::Up), State::Pending), (None, State::Up)]);
    let page3 = store.state_changes("gate", page2.next_before, 3).unwrap();
    assert_eq!((page3.changes.len(), page3.next_before), (0, None));
    assert_eq!(page2.changes[0].reason, Some(ds_cameras::Reason::Timeout));
    assert_eq!(store.changes_after(page2.changes[0].id, 100).unwrap().len(), 3);
    assert!(matches!(store.state_changes("nope", None, 10), Err(Error::UnknownCamera(_))));
}

#[tokio::test]
async fn renaming_a_camera_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store.sync_cameras(&[camera("c7", "Gate", 15)], t(0)).unwrap();
    write_all(&store, (0..4).map(|i| hb("c7", i * 15, State::Up))).await;
    store.sync_cameras(&[camera("c7", "Front gate", 15)], t(MIN)).unwrap();
    write_all(&store, (4..8).map(|i| hb("c7", i * 15, State::Up))).await;

    let cams = store.cameras().unwrap();
    assert_eq!(cams.len(), 1);
    assert_eq!((cams[0].name.as_str(), cams[0].first_seen, cams[0].heartbeat_ms), ("Front gate", t(0), Some(15_000)));
    assert_eq!(store.heartbeats("c7", t(0), t(HOUR), 100).unwrap().len(), 8);
    let up = store.uptime("c7", t(120), &[common::hours(1)]).unwrap();
    assert_eq!(up[0].time.up_ms, 120_000);

    // A camera heard of before the configuration named it is named by its id.
    write_all(&store, [hb("new-cam", 0, State::Down)]).await;
    assert_eq!(store.cameras().unwrap()[1].name, "new-cam");
    assert!(store.forget_camera("new-cam").unwrap());
    assert!(store.latest("new-cam").unwrap().is_none());
}
