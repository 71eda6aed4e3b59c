//! The database file: opening it with the settings every connection needs, and its schema
//! as numbered migrations. The version is checked at open: an older file is upgraded in
//! one transaction, a newer one is refused, so that an old binary never scribbles on a
//! layout it does not understand.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};

/// How long a connection waits for another one's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One step of the schema. `version` is the version the database has after it.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub note: &'static str,
    pub sql: &'static str,
}

/// Version 1: cameras, raw heartbeats and state changes.
///
/// States and reasons are stored as their API words (`UP`, `auth_failed`) so the file reads
/// well in `sqlite3`; timestamps are milliseconds since the Unix epoch, UTC. Heartbeats are
/// clustered by (camera, time) (`WITHOUT ROWID`) because every query reads one camera's
/// time range.
const V1: &str = r#"
CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE cameras (
    id INTEGER PRIMARY KEY,
    stable_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    first_seen INTEGER NOT NULL
);
CREATE TABLE heartbeats (
    camera INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('UP', 'PENDING', 'DOWN', 'DEGRADED')),
    reason TEXT,
    message TEXT,
    latency_ms INTEGER,
    codec TEXT,
    width INTEGER,
    height INTEGER,
    last_frame_at INTEGER,
    PRIMARY KEY (camera, at)
) WITHOUT ROWID;
CREATE TABLE state_changes (
    id INTEGER PRIMARY KEY,
    camera INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT,
    message TEXT
);
CREATE INDEX state_changes_camera ON state_changes (camera, id);
"#;

/// Version 2: hourly roll-ups (kept after raw heartbeats are pruned), each camera's
/// heartbeat interval (how long one heartbeat's state may be assumed to hold), and the
/// bookkeeping of roll-up and pruning.
const V2: &str = r#"
ALTER TABLE cameras ADD COLUMN heartbeat_ms INTEGER;
CREATE TABLE hourly (
    camera INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    up_ms INTEGER NOT NULL,
    pending_ms INTEGER NOT NULL,
    down_ms INTEGER NOT NULL,
    degraded_ms INTEGER NOT NULL,
    probes INTEGER NOT NULL,
    latency_min INTEGER,
    latency_max INTEGER,
    latency_sum INTEGER NOT NULL,
    latency_count INTEGER NOT NULL,
    PRIMARY KEY (camera, hour)
) WITHOUT ROWID;
CREATE TABLE rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_until INTEGER NOT NULL,
    raw_kept_from INTEGER NOT NULL
);
"#;

/// Version 3: whether the wall clock was synchronised when a heartbeat was recorded (1 yes,
/// 0 no, NULL unknown, as every heartbeat stored before this version).
const V3: &str = "ALTER TABLE heartbeats ADD COLUMN clock_synchronized INTEGER;";

/// Every migration, in order. Append; never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, note: "cameras, heartbeats, state changes", sql: V1 },
    Migration { version: 2, note: "hourly roll-ups, heartbeat intervals", sql: V2 },
    Migration { version: 3, note: "heartbeats marked with the clock's synchronisation", sql: V3 },
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

const HAS_VERSION_TABLE: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'";
const CURRENT_VERSION: &str = "SELECT max(version) FROM schema_version";
const RECORD_VERSION: &str = "INSERT INTO schema_version (version, applied_at, note) VALUES (?1, ?2, ?3)";

/// Opens (creating if needed) the file with WAL, a busy timeout and foreign keys, without
/// touching the schema.
pub fn connect(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir { dir: dir.to_owned(), source })?;
    }
    let open_err = |source| Error::Open { path: path.to_owned(), source };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal { path: path.to_owned(), mode });
    }
    // NORMAL is durable across application crashes in WAL mode; a power cut may lose the
    // last batch, which the next heartbeat replaces.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The schema version of an open database; 0 for an empty file.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    if conn.query_row(HAS_VERSION_TABLE, [], |_| Ok(())).optional()?.is_none() {
        return Ok(0);
    }
    Ok(conn.query_row(CURRENT_VERSION, [], |r| r.get::<_, Option<u32>>(0))?.unwrap_or(0))
}

/// Brings the database to `target` (normally [`LATEST`]) in one transaction, or refuses a
/// database newer than this build.
pub fn upgrade(conn: &mut Connection, path: &Path, target: u32) -> Result<()> {
    let found = version(conn).map_err(|source| Error::Open { path: path.to_owned(), source })?;
    if found > LATEST {
        return Err(Error::SchemaTooNew { path: path.to_owned(), found, supported: LATEST });
    }
    if found >= target {
        return Ok(());
    }
    let migration_err = |source| Error::Migration { path: path.to_owned(), from: found, to: target, source };
    let tx = conn.transaction().map_err(migration_err)?;
    let now = jiff::Timestamp::now().as_millisecond();
    for m in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
        tx.execute_batch(m.sql).map_err(migration_err)?;
        tx.execute(RECORD_VERSION, params![m.version, now, m.note]).map_err(migration_err)?;
        tracing::info!(path = %path.display(), version = m.version, note = m.note, "camera database upgraded");
    }
    tx.commit().map_err(migration_err)
}
