//! Opening databases: a new file, an old schema upgraded with its data, a newer schema
//! refused, a path that cannot exist.

mod common;

use common::{BASE_S, hours, open, t};
use ds_camera_db::{Error, Options, Store, schema};
use ds_cameras::State;

#[test]
fn an_empty_file_gets_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/cameras.db");
    let store = open(&path);
    assert!(path.exists(), "the directory and file are created");
    let conn = schema::connect(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::LATEST);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert!(store.cameras().unwrap().is_empty());
    // Opening again is a no-op.
    drop(store);
    open(&path);
    assert_eq!(schema::version(&schema::connect(&path).unwrap()).unwrap(), schema::LATEST);
}

#[test]
fn a_version_1_database_is_upgraded_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    {
        let mut conn = schema::connect(&path).unwrap();
        schema::upgrade(&mut conn, &path, 1).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO cameras (id, stable_id, name, first_seen) VALUES (1, 'gate', 'Gate', ?1)",
            [BASE_S * 1000],
        )
        .unwrap();
        for (i, state) in ["UP", "DOWN"].iter().enumerate() {
            conn.execute(
                "INSERT INTO heartbeats (camera, at, state, reason) VALUES (1, ?1, ?2, ?3)",
                rusqlite::params![(BASE_S + i as i64 * 30) * 1000, state, (*state == "DOWN").then_some("refused")],
            )
            .unwrap();
        }
    }
    let store = open(&path);
    assert_eq!(schema::version(&schema::connect(&path).unwrap()).unwrap(), schema::LATEST);
    let latest = store.latest("gate").unwrap().unwrap();
    assert_eq!(latest.state, State::Down);
    assert_eq!(latest.at, t(30));
    // The version-2 parts work on the upgraded file: roll-ups (once the data has left the
    // first hour) and uptime.
    assert_eq!(store.rollup().unwrap(), 0, "the newest heartbeat is still in the first hour");
    schema::connect(&path)
        .unwrap()
        .execute("INSERT INTO heartbeats (camera, at, state) VALUES (1, ?1, 'UP')", [(BASE_S + 2 * 3600) * 1000])
        .unwrap();
    assert_eq!(store.rollup().unwrap(), 1, "one camera-hour rolled up");
    let up = store.uptime("gate", t(2 * 3600), &[hours(2)]).unwrap();
    // Default interval 30 s: UP holds 30 s until the DOWN, which holds two intervals.
    assert_eq!((up[0].time.up_ms, up[0].time.down_ms), (30_000, 60_000));
    assert_eq!(up[0].time.unknown_ms, 2 * 3_600_000 - 90_000);
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.db");
    drop(open(&path));
    let conn = schema::connect(&path).unwrap();
    conn.execute("INSERT INTO schema_version (version, applied_at, note) VALUES (99, 0, 'from the future')", [])
        .unwrap();
    drop(conn);
    let err = Store::open(&path, Options::default()).unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { found: 99, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    let known = format!("schema version 99, newer than this program knows ({})", schema::LATEST);
    assert!(text.contains(&known), "{text}");
    assert!(text.contains("run a newer desktop-streamer-web"), "{text}");
}

#[test]
fn a_directory_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let path = file.join("sub/cameras.db");
    let err = Store::open(&path, Options::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
    assert!(text.contains(&file.join("sub").display().to_string()), "{text}");
}
