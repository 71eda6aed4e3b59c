//! Uptime from time spent in each state, across raw heartbeats and roll-ups, before and
//! after retention; and the history buckets behind charts and heartbeat bars.

mod common;

use common::{DAY, HOUR, MIN, camera, hb, hours, open, t, write_all};
use ds_camera_db::{Options, Retention, StateTime, Store};
use ds_cameras::State;
use jiff::SignedDuration;

#[tokio::test]
async fn uptime_follows_time_not_sample_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    // An interval of an hour: a DOWN heartbeat may hold for the whole hour. The camera was
    // probed ten times while up for one minute and once while down for an hour; counting
    // samples would say 10 / 11 = 91 % up.
    store.sync_cameras(&[camera("irr", "Irregular", 3600)], t(0)).unwrap();
    let mut beats: Vec<_> = (0..10).map(|i| hb("irr", i * 6, State::Up)).collect();
    beats.push(hb("irr", MIN, State::Down));
    write_all(&store, beats).await;

    let up = &store.uptime("irr", t(MIN + HOUR), &[hours(24)]).unwrap()[0];
    assert_eq!(up.time.up_ms, 60_000);
    assert_eq!(up.time.down_ms, 3_600_000);
    assert_eq!(up.time.unknown_ms, 24 * 3_600_000 - 3_660_000);
    let pct = up.video_percent.unwrap();
    println!("uptime of the irregularly sampled camera: {pct:.3} %");
    assert!((pct - 100.0 * 60.0 / 3660.0).abs() < 1e-9, "{pct}");
}

/// Ten days of one heartbeat a minute: DOWN for 2 h on day 2, DEGRADED for 30 min on day
/// 8, and the prober stopped for 3 h on day 9.
fn ten_days() -> Vec<ds_cameras::Heartbeat> {
    (0..10 * 1440)
        .map(|k| k * MIN)
        .filter(|at| !(9 * DAY + 2 * HOUR..9 * DAY + 5 * HOUR).contains(at))
        .map(|at| {
            let state = if (2 * DAY + 3 * HOUR..2 * DAY + 5 * HOUR).contains(&at) {
                State::Down
            } else if (8 * DAY + HOUR..8 * DAY + HOUR + 30 * MIN).contains(&at) {
                State::Degraded
            } else {
                State::Up
            };
            hb("gate", at, state)
        })
        .collect()
}

/// The last heartbeat is at 14399 min; "now" is 17 s later, hours not aligned.
const NOW: i64 = (10 * 1440 - 1) * MIN + 17;
/// The 3-hour stop, less the minute the last heartbeat before it may hold beyond its own.
const GAP_MS: i64 = (3 * HOUR - MIN) * 1000;

fn windows() -> Vec<SignedDuration> {
    [24, 7 * 24, 8 * 24, 30 * 24].into_iter().map(hours).collect()
}

fn expected() -> Vec<StateTime> {
    let s = |up: i64, down: i64, degraded: i64, span: i64| StateTime {
        up_ms: up * 1000 - GAP_MS - (down + degraded) * 1000,
        down_ms: down * 1000,
        degraded_ms: degraded * 1000,
        pending_ms: 0,
        unknown_ms: span * 1000 - (up * 1000 - GAP_MS),
    };
    vec![
        // 24 h: the gap only.
        s(DAY, 0, 0, DAY),
        // 7 d: the degraded half hour too.
        s(7 * DAY, 0, 30 * MIN, 7 * DAY),
        // 8 d: also the 2 h down, and starts 43 s before an hour that is only in roll-ups
        // after pruning.
        s(8 * DAY, 2 * HOUR, 30 * MIN, 8 * DAY),
        // 30 d: everything since the first heartbeat; the rest is unknown.
        s(NOW, 2 * HOUR, 30 * MIN, 30 * DAY),
    ]
}

fn times(store: &Store) -> Vec<StateTime> {
    store.uptime_all(t(NOW), &windows()).unwrap()["gate"].iter().map(|u| u.time).collect()
}

#[tokio::test]
async fn retention_rolls_up_then_deletes_and_uptime_stays_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    let store = open(&path);
    store.sync_cameras(&[camera("gate", "Gate", 60)], t(0)).unwrap();
    write_all(&store, ten_days()).await;

    // All raw.
    assert_eq!(times(&store), expected());
    // Rolled up, nothing deleted.
    let hours_rolled = store.rollup().unwrap();
    // Hours 0..239 ended 5 min before now; of the 3 h stop, the first hour still holds the
    // last heartbeat's second minute.
    assert_eq!(hours_rolled, 239 - 2);
    assert_eq!(times(&store), expected());

    // Pruned: raw heartbeats before the camera's newest 7 × 24 rolled-up hours are gone
    // (but the last of them, whose minute reaches past the cut). The newest rolled-up hour
    // is 238; the two hours of the stop without any history do not count.
    let report = store.prune(t(NOW)).unwrap();
    let cut = (238 - 2 - (7 * 24 - 1)) * HOUR;
    assert_eq!(report.heartbeats_deleted as i64, cut / MIN - 1, "{report:?}");
    assert_eq!((report.rollups_deleted, report.state_changes_deleted), (0, 0));
    assert_eq!(store.heartbeats("gate", t(0), t(NOW), 100_000).unwrap().first().unwrap().at, t(cut - MIN));
    assert_eq!(times(&store), expected(), "windows over raw and rolled-up data");
    let up = &store.uptime_all(t(NOW), &windows()).unwrap()["gate"];
    assert!((up[3].video_percent.unwrap() - 100.0 * (1.0 - 7200.0 / (NOW as f64 - 10_740.0))).abs() < 1e-9);
    assert!(up[3].up_percent.unwrap() < up[3].video_percent.unwrap(), "DEGRADED is video, not UP");
    // Pruning again changes nothing.
    assert_eq!(store.prune(t(NOW)).unwrap(), Default::default());

    // Hourly history of day 2 now comes from roll-ups: the DOWN hours are still there.
    let bar = store.buckets("gate", t(2 * DAY), t(2 * DAY + 6 * HOUR), hours(1), t(NOW)).unwrap();
    let worst: Vec<_> = bar.iter().map(|b| b.worst).collect();
    let (up, down) = (Some(State::Up), Some(State::Down));
    assert_eq!(worst, [up, up, up, down, down, up]);
    assert_eq!(bar[3].probes, 60);
    assert_eq!(bar[0].latency_avg_ms, Some(120.0));

    // Roll-ups expire too: keep 9 days of them.
    drop(store);
    let store =
        Store::open(&path, Options { retention: Retention { raw_days: 7, rollup_days: 9 }, ..Options::default() })
            .unwrap();
    let report = store.prune(t(NOW)).unwrap();
    let rollup_cut = (238 - 2 - (9 * 24 - 1)) * HOUR;
    assert_eq!(report.rollups_deleted as i64, rollup_cut / HOUR);
    assert_eq!(report.state_changes_deleted, 1, "the first UP, at 0");
    let mut shorter = expected();
    shorter[3].up_ms -= rollup_cut * 1000;
    shorter[3].unknown_ms += rollup_cut * 1000;
    assert_eq!(times(&store), shorter);
}

#[tokio::test]
async fn heartbeat_bar_shows_the_worst_state_of_each_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store.sync_cameras(&[camera("gate", "Gate", 15)], t(0)).unwrap();
    write_all(&store, (0..40).map(|i| hb("gate", i * 15, if i == 20 { State::Down } else { State::Up }))).await;

    let now = t(605);
    let bar = store.buckets("gate", t(0), t(12 * MIN), SignedDuration::from_mins(1), now).unwrap();
    assert_eq!(bar.len(), 12);
    let worst: Vec<_> = bar.iter().map(|b| b.worst.map(|s| s.as_str())).collect();
    let mut want = vec![Some("UP"); 10];
    want[5] = Some("DOWN");
    want.extend([Some("UP"), None]);
    assert_eq!(worst, want);
    assert_eq!(bar[5].time.down_ms, 15_000);
    assert_eq!((bar[4].probes, bar[4].latency_avg_ms), (4, Some(120.0)));
    assert_eq!((bar[5].latency_min_ms, bar[5].latency_max_ms), (Some(120), Some(120)));
    // The last heartbeat (9:45) holds until now (10:05): 5 s of the eleventh minute.
    assert_eq!((bar[10].time.up_ms, bar[10].time.unknown_ms), (5_000, 55_000));
    assert_eq!(bar[11].time.unknown_ms, 60_000);

    let all = store.buckets_all(t(0), t(12 * MIN), SignedDuration::from_mins(1), now).unwrap();
    assert_eq!(all["gate"], bar);
    let err = store.buckets("gate", t(0), t(DAY), SignedDuration::from_secs(1), now).unwrap_err().to_string();
    assert!(err.contains("at most 10000"), "{err}");
}
