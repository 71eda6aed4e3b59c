//! CSV export: a header, UTC and local times, and fields that survive commas, quotes,
//! line breaks and spreadsheet formulas.

mod common;

use common::{HOUR, camera, hb, open, t, write_all};
use ds_camera_db::time::time_zone;
use ds_cameras::{Reason, State};

#[tokio::test]
async fn export_escapes_fields_and_shows_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store
        .sync_cameras(&[camera("gate", "Gate, \"north\"", 30), camera("yard", "=HYPERLINK(\"x\")", 30)], t(0))
        .unwrap();
    let mut down = hb("gate", 30, State::Down);
    down.reason = Some(Reason::AuthFailed);
    down.message = Some("401 after DESCRIBE,\nsaid \"go away\"".to_owned());
    // Recorded before the clock was synchronised: the export says so.
    down.clock_synchronized = Some(false);
    write_all(&store, [hb("gate", 0, State::Up), down, hb("yard", 0, State::Up), hb("yard", 2 * HOUR, State::Up)])
        .await;

    let tz = time_zone("Asia/Kolkata").unwrap();
    let mut out = Vec::new();
    let rows = store.export_csv(&mut out, Some("gate"), t(0), t(HOUR), &tz).unwrap();
    assert_eq!(rows, 2);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "camera_id,camera_name,time_utc,time_local,state,reason,message,latency_ms,codec,width,height,last_frame_utc,last_frame_local,clock_synchronized\n\
         gate,\"Gate, \"\"north\"\"\",2026-01-01T00:00:00.000Z,2026-01-01T05:30:00.000+05:30,UP,,,120,h264,1280,720,\
         2026-01-01T00:00:00.000Z,2026-01-01T05:30:00.000+05:30,true\n\
         gate,\"Gate, \"\"north\"\"\",2026-01-01T00:00:30.000Z,2026-01-01T05:30:30.000+05:30,DOWN,auth_failed,\
         \"401 after DESCRIBE,\nsaid \"\"go away\"\"\",,,,,,,false\n"
    );

    // Every camera, by id; the range leaves out the yard's second heartbeat; a formula
    // for a name is defused.
    let mut out = Vec::new();
    assert_eq!(store.export_csv(&mut out, None, t(0), t(HOUR), &tz).unwrap(), 3);
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("yard,\"'=HYPERLINK(\"\"x\"\")\",2026-01-01T00:00:00.000Z,"), "{last}");
    assert!(store.export_csv(&mut Vec::new(), Some("nope"), t(0), t(HOUR), &tz).is_err());
}

/// The export read in batches of any size gives the same rows in the same order as one read
/// of the whole range (camera by camera, by id, then by time): across a batch that ends just
/// at a camera's last row, a camera without rows in the range, and the range's edges.
#[tokio::test]
async fn batches_of_any_size_give_the_rows_and_order_of_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("cameras.db"));
    store.sync_cameras(&[camera("a", "A", 30), camera("b", "B", 30), camera("c", "C", 30)], t(0)).unwrap();
    let mut heartbeats = Vec::new();
    for i in 0..5 {
        heartbeats.push(hb("c", i * 30, if i % 2 == 0 { State::Up } else { State::Down }));
    }
    for i in 0..7 {
        heartbeats.push(hb("a", i * 30, State::Up));
    }
    // b only outside the range.
    heartbeats.push(hb("b", 2 * HOUR, State::Up));
    // The range's edges: a's first heartbeat is at `from` (in), c's at `to` (out).
    heartbeats.push(hb("c", HOUR, State::Up));
    write_all(&store, heartbeats).await;
    let tz = time_zone("Europe/Berlin").unwrap();
    let (from, to) = (t(0), t(HOUR));

    let mut whole = Vec::new();
    let mut export = store.csv_export(None, from, to, &tz).unwrap();
    assert!(!export.next_batch(&store, &mut whole, usize::MAX).unwrap(), "one batch holds everything");
    assert_eq!(export.rows(), 12);
    let whole = String::from_utf8(whole).unwrap();
    let ids: Vec<&str> = whole.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, [vec!["a"; 7], vec!["c"; 5]].concat());
    let times: Vec<&str> = whole.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert!(times[..7].is_sorted() && times[7..].is_sorted(), "{times:?}");

    for size in [1, 2, 3, 5, 7, 11, 12, 13, 1000] {
        let mut out = Vec::new();
        let mut export = store.csv_export(None, from, to, &tz).unwrap();
        let mut batches = 0;
        loop {
            batches += 1;
            assert!(batches <= 12 / size + 2, "batches of {size}: no end after {batches}");
            let before = out.len();
            let more = export.next_batch(&store, &mut out, size).unwrap();
            let rows = String::from_utf8_lossy(&out[before..]).lines().count() - usize::from(batches == 1);
            assert!(rows <= size, "batches of {size}: one had {rows} rows");
            // Between batches the read connection is free: another read goes through.
            store.latest_all().unwrap();
            if !more {
                break;
            }
        }
        assert_eq!(export.rows(), 12, "batches of {size}");
        assert_eq!(String::from_utf8(out).unwrap(), whole, "batches of {size}");
    }

    // One camera; none in the range is a header alone.
    let mut out = Vec::new();
    let mut export = store.csv_export(Some("c"), from, to, &tz).unwrap();
    while export.next_batch(&store, &mut out, 2).unwrap() {}
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 6);
    let mut out = Vec::new();
    assert_eq!(store.export_csv(&mut out, Some("b"), from, to, &tz).unwrap(), 0);
    assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", ds_camera_db::CSV_HEADER.join(",")));
    assert!(matches!(store.csv_export(Some("nope"), from, to, &tz), Err(ds_camera_db::Error::UnknownCamera(_))));
}
