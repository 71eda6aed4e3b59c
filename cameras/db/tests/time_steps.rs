//! A wall clock that steps (a board without a real-time clock, corrected by NTP; an operator
//! setting it back): the history is kept, the stored timeline never goes backwards, and the
//! readers still read it. Every time is explicit: the heartbeats' times are what the stepped
//! clock said, `record_at` gives the monotonic instants, and `prune`/`uptime_all` get the
//! stepped clock.

mod common;

use std::time::{Duration, Instant};

use common::{DAY, HOUR, MIN, camera, hb, hours, open, t};
use ds_camera_db::{Batching, STANDARD_WINDOWS, Store, schema};
use ds_cameras::State;
use jiff::SignedDuration;

const YEAR: i64 = 366 * DAY;

/// Writes `(clock seconds, state)` heartbeats of `gate` through one writer session, each
/// recorded `spacing` after the one before on the monotonic clock.
async fn session(store: &Store, beats: impl IntoIterator<Item = (i64, State)>, spacing: Duration) {
    let writer = store.writer(Batching::default()).unwrap();
    let start = Instant::now();
    for (i, (at, state)) in beats.into_iter().enumerate() {
        writer.record_at(hb("gate", at, state), start + spacing * i as u32).unwrap();
    }
    writer.shutdown().await;
    assert_eq!(writer.stats().dropped, 0);
}

/// Two days of one heartbeat a minute, DOWN for the first 10 minutes of the second day.
fn two_days() -> Vec<(i64, State)> {
    (0..2 * 1440)
        .map(|k| k * MIN)
        .map(|at| (at, if (DAY..DAY + 10 * MIN).contains(&at) { State::Down } else { State::Up }))
        .collect()
}

const MINUTE: Duration = Duration::from_secs(60);

/// A new store holding [`two_days`] of Gate (interval a minute), in a directory that lives
/// as long as the result.
async fn two_days_stored() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store.sync_cameras(&[camera("gate", "Gate", 60)], t(0)).unwrap();
    session(&store, two_days(), MINUTE).await;
    (dir, store)
}

#[tokio::test]
async fn a_forward_step_of_a_year_deletes_no_history() {
    let (_dir, store) = two_days_stored().await;
    let last = 2 * DAY - MIN;
    let changes = store.state_changes("gate", None, 100).unwrap().changes;
    assert_eq!(changes.len(), 3, "{changes:?}");

    // The clock steps a year forward; the prune at start-up sees no heartbeat at the new
    // time yet: it says how far the clock is from the data and cuts nothing by the clock.
    let report = store.prune(t(last + YEAR)).unwrap();
    assert_eq!(report.clock_skew_ms, Some(YEAR * 1000), "{report:?}");
    assert_eq!((report.heartbeats_deleted, report.rollups_deleted, report.state_changes_deleted), (0, 0, 0));

    // Heartbeats at the new time for two hours, then the next prunes.
    session(&store, (0..120).map(|k| (last + YEAR + (k + 1) * MIN, State::Up)), MINUTE).await;
    let report = store.prune(t(last + YEAR + 2 * HOUR)).unwrap();
    assert_eq!(report.clock_skew_ms, None, "{report:?}");
    assert_eq!((report.heartbeats_deleted, report.rollups_deleted, report.state_changes_deleted), (0, 0, 0));
    assert_eq!(store.prune(t(last + YEAR + 2 * HOUR)).unwrap().heartbeats_deleted, 0);

    // All of it is still there: the raw heartbeats before the step, the state changes, and
    // the history of the day with the DOWN.
    assert_eq!(store.heartbeats("gate", t(0), t(2 * DAY), 100_000).unwrap().len(), 2 * 1440);
    assert_eq!(&store.state_changes("gate", None, 100).unwrap().changes[..3], &changes[..]);
    let day2 = store.buckets("gate", t(DAY), t(DAY + 2 * HOUR), hours(1), t(last + YEAR + 2 * HOUR)).unwrap();
    assert_eq!(day2[0].time.down_ms, 10 * MIN * 1000, "{day2:?}");
    assert_eq!(day2[1].worst, Some(State::Up));
}

#[tokio::test]
async fn retention_counts_the_hours_with_history_not_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    {
        let store = open(&path);
        store.sync_cameras(&[camera("gate", "Gate", 60)], t(0)).unwrap();
        session(&store, two_days(), MINUTE).await;
        session(&store, (1..=3 * 60).map(|k| (2 * DAY + YEAR + k * MIN, State::Up)), MINUTE).await;
    }
    // One day of raw heartbeats and three of roll-ups: the three hours after the step are
    // not a year's worth of history.
    let options = ds_camera_db::Options {
        retention: ds_camera_db::Retention { raw_days: 1, rollup_days: 3 },
        ..ds_camera_db::Options::default()
    };
    let store = Store::open(&path, options).unwrap();
    let report = store.prune(t(2 * DAY + YEAR + 3 * HOUR)).unwrap();
    // Rolled up: the 49 hours before the step (the last heartbeat's hold reaches into the
    // 49th) and 2 after it (the third is too recent). Raw heartbeats are kept for the newest
    // 24 of them: the 2 after the step, and 22 before it, from hour 27 on.
    let raw = store.heartbeats("gate", t(0), t(3 * DAY), 100_000).unwrap();
    assert_eq!(raw.first().unwrap().at, t(27 * HOUR - MIN), "the last one before the cut is kept");
    assert_eq!(report.heartbeats_deleted as i64, 27 * 60 - 1, "{report:?}");
    // Roll-ups and state changes: all 51 hours are within three days of history.
    assert_eq!((report.rollups_deleted, report.state_changes_deleted), (0, 0), "{report:?}");
}

#[tokio::test]
async fn a_backward_step_stores_after_the_newest_heartbeat_and_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store.sync_cameras(&[camera("gate", "Gate", 5)], t(0)).unwrap();
    let writer = store.writer(Batching::default()).unwrap();
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_secs(s);
    writer.record_at(hb("gate", 1000, State::Up), at(0)).unwrap();
    writer.record_at(hb("gate", 1005, State::Up), at(5)).unwrap();
    // The clock steps back a day: the next heartbeats continue the camera's timeline at the
    // monotonic clock's pace, and the camera going DOWN and UP again is recorded.
    writer.record_at(hb("gate", 1010 - DAY, State::Down), at(10)).unwrap();
    writer.record_at(hb("gate", 1015 - DAY, State::Up), at(15)).unwrap();
    // A heartbeat at the very time of a stored one replaces nothing.
    writer.record_at(hb("gate", 1005, State::Up), at(20)).unwrap();
    writer.shutdown().await;

    let stored: Vec<_> =
        store.heartbeats("gate", t(-2 * DAY), t(2 * DAY), 100).unwrap().into_iter().map(|h| (h.at, h.state)).collect();
    let want = [(1000, State::Up), (1005, State::Up), (1010, State::Down), (1015, State::Up), (1020, State::Up)];
    assert_eq!(stored, want.map(|(s, state)| (t(s), state)));
    let changes: Vec<_> =
        store.state_changes("gate", None, 10).unwrap().changes.into_iter().map(|c| (c.from, c.to, c.at)).collect();
    assert_eq!(
        changes,
        [(Some(State::Down), State::Up, t(1015)), (Some(State::Up), State::Down, t(1010)), (None, State::Up, t(1000))]
    );

    // After a restart under the stepped clock the newest state is the one stored last, and
    // the next heartbeat goes after it (1 ms: the writer does not know the pause).
    let writer = store.writer(Batching::default()).unwrap();
    writer.record_at(hb("gate", 1020 - DAY, State::Down), Instant::now()).unwrap();
    writer.shutdown().await;
    let latest = store.latest("gate").unwrap().unwrap();
    assert_eq!((latest.at, latest.state), (t(1020) + SignedDuration::from_millis(1), State::Down));
    assert_eq!(store.state_changes("gate", None, 1).unwrap().changes[0].from, Some(State::Up));
}

#[tokio::test]
async fn after_a_forward_excursion_and_its_correction_uptime_and_bars_read_the_history() {
    let (_dir, store) = two_days_stored().await;
    let last = 2 * DAY - MIN;
    // Half an hour a year ahead, pruned there.
    session(&store, (1..=30).map(|k| (last + YEAR + k * MIN, State::Up)), MINUTE).await;
    store.prune(t(last + YEAR + 30 * MIN)).unwrap();
    // The clock is corrected to a day behind the real time; two hours of heartbeats, the
    // camera DOWN for the first of them.
    let clock = |k: i64| last - DAY + k * MIN;
    session(&store, (1..=120).map(|k| (clock(k), if k <= 60 { State::Down } else { State::Up })), MINUTE).await;
    // Roll-up and pruning go on: the hours after the correction are rolled up.
    let report = store.prune(t(clock(120))).unwrap();
    assert!(report.hours_rolled_up >= 1, "{report:?}");
    assert!(report.clock_skew_ms.is_some_and(|s| s < -YEAR * 1000), "{report:?}");

    // The readers end their windows on the stored timeline: the last 24 h hold the
    // excursion and the two hours after the correction, the DOWN hour among them.
    let now = store.data_now(t(clock(120))).unwrap();
    assert!(now > t(last + YEAR + 2 * HOUR), "{now}");
    let up = &store.uptime_all(t(clock(120)), &STANDARD_WINDOWS).unwrap()["gate"];
    for w in up {
        assert!(w.video_percent.is_some(), "{w:?}");
        assert!((w.time.down_ms - HOUR * 1000).abs() <= 1000, "the DOWN hour: {w:?}");
    }
    // The heartbeat bar of the last hour: the end of the DOWN hour, then UP.
    let bar =
        store.buckets("gate", now - SignedDuration::from_hours(1), now, SignedDuration::from_mins(2), now).unwrap();
    assert_eq!(bar.len(), 30);
    assert_eq!(bar[0].worst, Some(State::Down), "{bar:?}");
    assert!(bar[1..].iter().all(|b| b.worst == Some(State::Up)), "{bar:?}");
    let changes = store.state_changes("gate", None, 2).unwrap().changes;
    let seen: Vec<_> = changes.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(seen, [(Some(State::Down), State::Up), (Some(State::Up), State::Down)]);
}

#[tokio::test]
async fn hours_without_roll_ups_are_read_raw_and_rolled_up_before_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    let store = open(&path);
    store.sync_cameras(&[camera("gate", "Gate", 60), camera("yard", "Yard", 60)], t(0)).unwrap();
    session(&store, two_days(), MINUTE).await;
    store.rollup().unwrap();
    // What an older version left after a clock step: heartbeats of Yard in hours already
    // rolled up (day 1), which no roll-up will ever see, and Gate's first two hours without
    // their roll-ups.
    {
        let conn = schema::connect(&path).unwrap();
        conn.execute(
            "DELETE FROM hourly WHERE hour < ?1 AND camera = (SELECT id FROM cameras WHERE stable_id = 'gate')",
            [(common::BASE_S + 2 * HOUR) * 1000],
        )
        .unwrap();
        for k in 0..60 {
            conn.execute(
                "INSERT INTO heartbeats (camera, at, state) SELECT id, ?1, 'DOWN' FROM cameras WHERE stable_id = 'yard'",
                [(common::BASE_S + 10 * HOUR + k * MIN) * 1000],
            )
            .unwrap();
        }
    }
    let now = t(2 * DAY);
    let up = &store.uptime("yard", now, &[hours(48)]).unwrap()[0];
    assert_eq!(up.time.down_ms, HOUR * 1000 + 60_000, "the hour, and the last heartbeat's hold: {up:?}");
    let bar = store.buckets("yard", t(9 * HOUR), t(12 * HOUR), hours(1), now).unwrap();
    let worst: Vec<_> = bar.iter().map(|b| b.worst).collect();
    assert_eq!(worst, [None, Some(State::Down), Some(State::Down)]);
    assert_eq!(bar[1].probes, 60);
    let gate = store.buckets("gate", t(0), t(2 * HOUR), hours(1), now).unwrap();
    assert_eq!((gate[0].probes, gate[1].time.up_ms), (60, HOUR * 1000), "read raw: {gate:?}");

    // A prune that cuts there rolls those hours up first: the DOWN hour stays.
    drop(store);
    let options = ds_camera_db::Options {
        retention: ds_camera_db::Retention { raw_days: 1, rollup_days: 365 },
        ..ds_camera_db::Options::default()
    };
    let store = Store::open(&path, options).unwrap();
    let report = store.prune(now).unwrap();
    assert_eq!(report.hours_rolled_up, 2, "gate's two hours: {report:?}");
    assert_eq!(store.heartbeats("yard", t(0), t(DAY), 100).unwrap().len(), 60, "yard has one day of history: kept");
    // Gate's newest 24 rolled-up hours are 23..=46: the hours before are cut, but their
    // last heartbeat.
    let gate_raw = store.heartbeats("gate", t(0), t(23 * HOUR), 10_000).unwrap();
    assert_eq!(gate_raw.len(), 1, "{:?}", gate_raw.first());
    let bar = store.buckets("gate", t(0), t(2 * HOUR), hours(1), now).unwrap();
    assert_eq!(bar[0].probes, 60, "rolled up before the cut: {bar:?}");
}
