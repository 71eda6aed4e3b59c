//! The store handle: opening the database, the camera registry (stable id → current name),
//! and the plain reads of heartbeats and state changes.
//!
//! Every method is blocking (SQLite); async code calls them through
//! `tokio::task::spawn_blocking`. `Store` is cheap to clone; clones share one read
//! connection. Writes of heartbeats go through [`crate::Writer`], which has its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ds_cameras::{Heartbeat, Reason, State};
use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::options::Options;
use crate::schema;
use crate::timeline::StateTime;

/// Most rows one call of [`Store::heartbeats`] returns.
pub const MAX_HEARTBEATS_PER_QUERY: usize = 100_000;

/// A camera as the configuration knows it, for [`Store::sync_cameras`].
#[derive(Clone, Debug, PartialEq)]
pub struct CameraInfo {
    /// `Camera::stable_id()`.
    pub id: String,
    /// The name shown to people now.
    pub name: String,
    /// The camera's heartbeat interval (its override or the file's `heartbeat_seconds`).
    pub heartbeat: Duration,
}

/// A camera the store has heard of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraRecord {
    pub id: String,
    pub name: String,
    pub first_seen: Timestamp,
    /// Interval used for the hold rule; `None` until the configuration registered it.
    pub heartbeat_ms: Option<i64>,
}

/// A change of a camera's state, derived by the writer from consecutive heartbeats.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateChange {
    /// Increasing with time; the paging cursor.
    pub id: i64,
    pub camera_id: String,
    pub at: Timestamp,
    /// `None` for the first heartbeat ever stored for the camera.
    pub from: Option<State>,
    pub to: State,
    pub reason: Option<Reason>,
    pub message: Option<String>,
}

/// One page of state changes, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangePage {
    pub changes: Vec<StateChange>,
    /// Pass as `before` to get the next (older) page; `None` when this was the last.
    pub next_before: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) options: Options,
    conn: Mutex<Connection>,
    /// Sums of whole rolled-up hours, by (camera key, first hour, end): a window's whole
    /// hours change only when the roll-up advances, which clears this.
    pub(crate) hour_sums: Mutex<HashMap<(i64, i64, i64), StateTime>>,
}

/// The camera heartbeat database. Open one per file and process, and clone it: clones
/// share the connection and the cache of roll-up sums.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

const UPSERT_CAMERA: &str = "INSERT INTO cameras (stable_id, name, first_seen, heartbeat_ms) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (stable_id) DO UPDATE SET name = excluded.name, heartbeat_ms = excluded.heartbeat_ms";
const LIST_CAMERAS: &str = "SELECT stable_id, name, first_seen, heartbeat_ms FROM cameras ORDER BY stable_id";
const CAMERA_KEYS: &str = "SELECT id, stable_id, heartbeat_ms FROM cameras ORDER BY stable_id";
const CAMERA_KEY: &str = "SELECT id, heartbeat_ms FROM cameras WHERE stable_id = ?1";
const DELETE_CAMERA: &str = "DELETE FROM cameras WHERE stable_id = ?1";
const LATEST_ALL: &str = "SELECT c.stable_id, h.at, h.state, h.reason, h.message, h.latency_ms, h.codec, h.width, \
     h.height, h.last_frame_at, h.clock_synchronized FROM cameras c JOIN heartbeats h ON h.camera = c.id \
     AND h.at = (SELECT max(at) FROM heartbeats WHERE camera = c.id) ORDER BY c.stable_id";
const LATEST_ONE: &str = "SELECT c.stable_id, h.at, h.state, h.reason, h.message, h.latency_ms, h.codec, h.width, \
     h.height, h.last_frame_at, h.clock_synchronized FROM cameras c JOIN heartbeats h ON h.camera = c.id \
     WHERE c.stable_id = ?1 ORDER BY h.at DESC LIMIT 1";
const HEARTBEATS_RANGE: &str = "SELECT c.stable_id, h.at, h.state, h.reason, h.message, h.latency_ms, h.codec, \
     h.width, h.height, h.last_frame_at, h.clock_synchronized FROM heartbeats h JOIN cameras c ON c.id = h.camera \
     WHERE h.camera = ?1 AND h.at >= ?2 AND h.at < ?3 ORDER BY h.at LIMIT ?4";
const CHANGES_PAGE: &str = "SELECT s.id, c.stable_id, s.at, s.from_state, s.to_state, s.reason, s.message \
     FROM state_changes s JOIN cameras c ON c.id = s.camera WHERE s.camera = ?1 AND s.id < ?2 \
     ORDER BY s.id DESC LIMIT ?3";
const CHANGES_AFTER: &str = "SELECT s.id, c.stable_id, s.at, s.from_state, s.to_state, s.reason, s.message \
     FROM state_changes s JOIN cameras c ON c.id = s.camera WHERE s.id > ?1 ORDER BY s.id LIMIT ?2";

/// A camera's row key and the longest time one of its heartbeats holds.
#[derive(Clone, Debug)]
pub(crate) struct CameraKey {
    pub(crate) key: i64,
    pub(crate) stable_id: String,
    pub(crate) cap_ms: i64,
}

impl Store {
    /// Opens the database at `path`, creating the file and its directory if needed and
    /// upgrading an older schema; refuses a schema newer than this build.
    ///
    /// ```no_run
    /// let store = ds_camera_db::Store::open("/var/lib/desktop-streamer/cameras.db".as_ref(), Default::default())?;
    /// # Ok::<(), ds_camera_db::Error>(())
    /// ```
    pub fn open(path: &Path, options: Options) -> Result<Store> {
        let mut conn = schema::connect(path)?;
        schema::upgrade(&mut conn, path, schema::LATEST)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                options,
                conn: Mutex::new(conn),
                hour_sums: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves nothing half-done (SQLite rolls back
        // an open transaction when the guard's statement drops), so poisoning is ignored.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the configured cameras: new ones are added, known ones take their current
    /// name and interval. History is keyed by the stable id, so a rename keeps it. Cameras
    /// missing from `cameras` keep their history (see [`Store::forget_camera`]).
    pub fn sync_cameras(&self, cameras: &[CameraInfo], now: Timestamp) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(UPSERT_CAMERA)?;
            for c in cameras {
                let ms = i64::try_from(c.heartbeat.as_millis()).unwrap_or(i64::MAX);
                stmt.execute(params![c.id, c.name, now.as_millisecond(), ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every camera the store has heard of, by id.
    pub fn cameras(&self) -> Result<Vec<CameraRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(LIST_CAMERAS)?;
        let rows = stmt.query_map([], |r| {
            Ok(CameraRecord { id: r.get(0)?, name: r.get(1)?, first_seen: ts(r.get(2)?), heartbeat_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a camera and all its history. Returns whether it existed.
    pub fn forget_camera(&self, camera_id: &str) -> Result<bool> {
        let deleted = self.conn().prepare_cached(DELETE_CAMERA)?.execute([camera_id])? > 0;
        self.clear_hour_sums();
        Ok(deleted)
    }

    pub(crate) fn clear_hour_sums(&self) {
        self.inner.hour_sums.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The newest heartbeat of every camera that has one, by camera id.
    pub fn latest_all(&self) -> Result<Vec<Heartbeat>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(LATEST_ALL)?;
        let rows = stmt.query_map([], heartbeat_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest heartbeat of one camera.
    pub fn latest(&self, camera_id: &str) -> Result<Option<Heartbeat>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(LATEST_ONE)?;
        Ok(stmt.query_row([camera_id], heartbeat_from_row).optional()?)
    }

    /// A camera's raw heartbeats in `[from, to)`, oldest first, at most `limit` (capped at
    /// [`MAX_HEARTBEATS_PER_QUERY`]). Raw heartbeats exist for the retention's `raw_days`;
    /// use [`Store::buckets`] for older spans.
    pub fn heartbeats(&self, camera_id: &str, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Heartbeat>> {
        let conn = self.conn();
        let Some(cam) = camera_key(&conn, camera_id, self.default_cap_ms())? else {
            return Err(Error::UnknownCamera(camera_id.to_owned()));
        };
        let limit = limit.min(MAX_HEARTBEATS_PER_QUERY) as i64;
        let mut stmt = conn.prepare_cached(HEARTBEATS_RANGE)?;
        let rows =
            stmt.query_map(params![cam.key, from.as_millisecond(), to.as_millisecond(), limit], heartbeat_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A camera's state changes, newest first, `limit` per page; `before` is the previous
    /// page's `next_before`.
    pub fn state_changes(&self, camera_id: &str, before: Option<i64>, limit: usize) -> Result<ChangePage> {
        let conn = self.conn();
        let Some(cam) = camera_key(&conn, camera_id, self.default_cap_ms())? else {
            return Err(Error::UnknownCamera(camera_id.to_owned()));
        };
        let limit = limit.clamp(1, 10_000);
        let mut stmt = conn.prepare_cached(CHANGES_PAGE)?;
        let rows = stmt.query_map(params![cam.key, before.unwrap_or(i64::MAX), limit as i64], change_from_row)?;
        let changes: Vec<StateChange> = rows.collect::<rusqlite::Result<_>>()?;
        let next_before = if changes.len() == limit { changes.last().map(|c| c.id) } else { None };
        Ok(ChangePage { changes, next_before })
    }

    /// State changes of all cameras with an id above `after`, oldest first: lets a
    /// follower (the watchdog, an event stream) poll for what is new.
    pub fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<StateChange>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(CHANGES_AFTER)?;
        let rows = stmt.query_map(params![after, limit.clamp(1, 10_000) as i64], change_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(crate) fn default_cap_ms(&self) -> i64 {
        cap_ms(None, self.inner.options.default_heartbeat)
    }

    pub(crate) fn camera_keys(&self, conn: &Connection) -> Result<Vec<CameraKey>> {
        let default = self.inner.options.default_heartbeat;
        let mut stmt = conn.prepare_cached(CAMERA_KEYS)?;
        let rows = stmt.query_map([], |r| {
            Ok(CameraKey { key: r.get(0)?, stable_id: r.get(1)?, cap_ms: cap_ms(r.get(2)?, default) })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The longest a heartbeat holds for a camera with this interval.
fn cap_ms(heartbeat_ms: Option<i64>, default: Duration) -> i64 {
    let interval = heartbeat_ms.unwrap_or_else(|| i64::try_from(default.as_millis()).unwrap_or(i64::MAX));
    interval.saturating_mul(crate::timeline::HOLD_INTERVALS)
}

pub(crate) fn camera_key(conn: &Connection, stable_id: &str, default_cap: i64) -> Result<Option<CameraKey>> {
    let mut stmt = conn.prepare_cached(CAMERA_KEY)?;
    let row = stmt.query_row([stable_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))).optional()?;
    Ok(row.map(|(key, hb)| CameraKey {
        key,
        stable_id: stable_id.to_owned(),
        cap_ms: hb.map_or(default_cap, |ms| ms.saturating_mul(crate::timeline::HOLD_INTERVALS)),
    }))
}

/// Milliseconds since the epoch as a timestamp, clamped to jiff's range.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

pub(crate) fn word<T: std::str::FromStr<Err = ds_cameras::state::UnknownWord>>(
    r: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    text.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(crate) fn opt_word<T: std::str::FromStr<Err = ds_cameras::state::UnknownWord>>(
    r: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(text) => {
            text.parse().map(Some).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
        }
    }
}

/// Reads a row whose first eleven columns are a heartbeat (stable id, at, state, …).
pub(crate) fn heartbeat_from_row(r: &Row<'_>) -> rusqlite::Result<Heartbeat> {
    Ok(Heartbeat {
        camera_id: r.get(0)?,
        at: ts(r.get(1)?),
        state: word(r, 2)?,
        reason: opt_word(r, 3)?,
        message: r.get(4)?,
        latency_ms: r.get(5)?,
        codec: r.get(6)?,
        width: r.get(7)?,
        height: r.get(8)?,
        last_frame_at: r.get::<_, Option<i64>>(9)?.map(ts),
        clock_synchronized: r.get(10)?,
    })
}

fn change_from_row(r: &Row<'_>) -> rusqlite::Result<StateChange> {
    Ok(StateChange {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        at: ts(r.get(2)?),
        from: opt_word(r, 3)?,
        to: word(r, 4)?,
        reason: opt_word(r, 5)?,
        message: r.get(6)?,
    })
}
