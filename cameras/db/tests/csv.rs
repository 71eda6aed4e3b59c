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
