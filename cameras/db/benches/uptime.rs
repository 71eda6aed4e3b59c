//! How long the fleet queries take: 1000 cameras with 2 h of heartbeats every 15 s
//! (480 000 rows, written through the real batched writer), then 30 days of hourly
//! roll-ups as a service that has run for a month would have.
//!
//! `cargo bench -p ds-camera-db --bench uptime`; `BENCH_CAMERAS` and `BENCH_HOURS` change
//! the size.

use std::time::{Duration, Instant};

use ds_camera_db::{Batching, CameraInfo, Options, STANDARD_WINDOWS, Store, schema};
use ds_cameras::{Heartbeat, Reason, State};
use jiff::{SignedDuration, Timestamp};

const INTERVAL_S: i64 = 15;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!("{what:<58} {:>9.1} ms", start.elapsed().as_secs_f64() * 1000.0);
    out
}

fn main() {
    let cameras = env("BENCH_CAMERAS", 1000);
    let hours = env("BENCH_HOURS", 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    let store = Store::open(&path, Options::default()).unwrap();
    let start = Timestamp::from_second(1_767_225_600).unwrap();
    let ids: Vec<String> = (0..cameras).map(|i| format!("cam-{i:04}")).collect();
    let infos: Vec<CameraInfo> = ids
        .iter()
        .map(|id| CameraInfo { id: id.clone(), name: id.clone(), heartbeat: Duration::from_secs(INTERVAL_S as u64) })
        .collect();
    store.sync_cameras(&infos, start).unwrap();

    let probes = hours * 3600 / INTERVAL_S;
    let rows = probes * cameras;
    println!("{cameras} cameras x {hours} h of {INTERVAL_S} s heartbeats = {rows} rows");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    timed("write through the batched writer (incl. shutdown flush)", || {
        rt.block_on(async {
            let writer = store.writer(Batching::default()).unwrap();
            for p in 0..probes {
                for (c, id) in ids.iter().enumerate() {
                    // Every tenth camera is down for the second quarter of the run.
                    let down = c % 10 == 0 && (probes / 4..probes / 2).contains(&p);
                    let at = start + SignedDuration::from_secs(p * INTERVAL_S + (c as i64 % INTERVAL_S));
                    let mut hb = Heartbeat {
                        camera_id: id.clone(),
                        at,
                        state: if down { State::Down } else { State::Up },
                        reason: down.then_some(Reason::Timeout),
                        message: down.then(|| "no frame within 5 s".to_owned()),
                        latency_ms: (!down).then_some(180),
                        codec: Some("h264".into()),
                        width: Some(1920),
                        height: Some(1080),
                        last_frame_at: Some(at),
                        clock_synchronized: Some(true),
                    };
                    while let Err(ds_camera_db::Error::Backlog) = writer.record(hb.clone()) {
                        // The bench produces far faster than probes would; let the disk catch up.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        hb.at = at;
                    }
                }
            }
            writer.shutdown().await;
            let stats = writer.stats();
            assert_eq!(stats.written, rows as u64, "{stats:?}");
        });
    });
    let now = start + SignedDuration::from_secs(hours * 3600);

    let up = timed("uptime_all, 24 h / 7 d / 30 d, all raw", || store.uptime_all(now, &STANDARD_WINDOWS).unwrap());
    let sample = &up["cam-0000"][0];
    println!("  cam-0000 24 h: {:?} video {:.2} %", sample.time, sample.video_percent.unwrap());
    assert_eq!(up.len() as i64, cameras);
    timed("latest_all", || store.latest_all().unwrap());
    timed("buckets_all, last 30 min in 1 min buckets", || {
        store.buckets_all(now - SignedDuration::from_mins(30), now, SignedDuration::from_mins(1), now).unwrap()
    });
    let rolled = timed("rollup (every ended hour)", || store.rollup().unwrap());
    println!("  {rolled} camera-hours rolled up");
    let again =
        timed("uptime_all, 24 h / 7 d / 30 d, after roll-up", || store.uptime_all(now, &STANDARD_WINDOWS).unwrap());
    assert_eq!(again["cam-0000"][0].time, sample.time, "roll-ups change nothing");

    // A month of history as roll-ups before the raw data.
    let month_hours = 30 * 24;
    timed("insert 30 days of hourly roll-ups (SQL)", || {
        let mut conn = schema::connect(&path).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO hourly (camera, hour, up_ms, pending_ms, down_ms, degraded_ms, probes, latency_min, \
                     latency_max, latency_sum, latency_count) SELECT id, ?1, 3540000, 0, 60000, 0, 240, 150, 300, 43200, 240 \
                     FROM cameras",
                )
                .unwrap();
            for h in 1..=month_hours {
                stmt.execute([start.as_millisecond() - h * 3_600_000]).unwrap();
            }
        }
        tx.commit().unwrap();
    });
    // The rows went in behind the store's back: a roll-up (with nothing new) empties its
    // cache of whole-hour sums, as a real roll-up would.
    store.rollup().unwrap();
    let cold_at = now + SignedDuration::from_secs(20);
    let month = timed("uptime_all, 24 h / 7 d / 30 d, 30 d of roll-ups, cold", || {
        store.uptime_all(cold_at, &STANDARD_WINDOWS).unwrap()
    });
    let m = &month["cam-0001"][2];
    println!("  cam-0001 30 d: video {:.3} %, unknown {} ms", m.video_percent.unwrap(), m.time.unknown_ms);
    let warm = timed("uptime_all 20 s later (whole-hour sums cached)", || {
        store.uptime_all(cold_at + SignedDuration::from_secs(20), &STANDARD_WINDOWS).unwrap()
    });
    assert_eq!(warm.len(), month.len());
    let conn = schema::connect(&path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let pages = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let size = pages("PRAGMA page_count") * pages("PRAGMA page_size");
    println!(
        "database file after checkpoint: {:.1} MB ({} bytes per stored row, indexes included)",
        size as f64 / 1e6,
        size / (rows + 30 * 24 * cameras)
    );
}
