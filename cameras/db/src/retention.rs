//! Keeping the database small without losing the long view: hourly roll-ups of the time
//! each camera spent in each state, then raw heartbeats pruned after `raw_days` and
//! roll-ups after `rollup_days`.
//!
//! Roll-ups are made continuously for every hour that ended more than [`ROLLUP_DELAY`]
//! ago (a heartbeat is written after its probe finished and its batch committed, so a
//! late one can still land in the hour just ended), not only before pruning: long uptime
//! windows then add up at most 720 rows per camera instead of reading 30 days of raw
//! heartbeats. Pruning keeps each camera's last heartbeat before the cut, whose state may
//! still hold across it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::Result;
use crate::store::{CameraKey, Store};
use crate::timeline::{self, HOUR_MS, Sample, StateTime, floor_hour};

/// An hour is rolled up only once it ended this long ago.
pub const ROLLUP_DELAY_MS: i64 = 5 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What one [`Store::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub hours_rolled_up: u64,
    pub heartbeats_deleted: u64,
    pub rollups_deleted: u64,
    pub state_changes_deleted: u64,
}

/// Where roll-up and pruning stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marks {
    /// Hours before this are in `hourly`; raw heartbeats are read from here on.
    pub(crate) rolled_until: i64,
    /// Raw heartbeats are complete from here on (older ones were pruned).
    pub(crate) raw_kept_from: i64,
}

const READ_MARKS: &str = "SELECT rolled_until, raw_kept_from FROM rollup_state WHERE id = 1";
const WRITE_MARKS: &str = "INSERT INTO rollup_state (id, rolled_until, raw_kept_from) VALUES (1, ?1, ?2) \
     ON CONFLICT (id) DO UPDATE SET rolled_until = excluded.rolled_until, raw_kept_from = excluded.raw_kept_from";
const FIRST_HEARTBEAT: &str = "SELECT min(at) FROM heartbeats WHERE camera = ?1";
pub(crate) const LAST_BEFORE: &str = "SELECT at, state, latency_ms FROM heartbeats WHERE camera = ?1 AND at < ?2 \
     ORDER BY at DESC LIMIT 1";
pub(crate) const RANGE_SAMPLES: &str =
    "SELECT at, state, latency_ms FROM heartbeats WHERE camera = ?1 AND at >= ?2 AND at < ?3 ORDER BY at";
const UPSERT_HOUR: &str = "INSERT OR REPLACE INTO hourly (camera, hour, up_ms, pending_ms, down_ms, degraded_ms, \
     probes, latency_min, latency_max, latency_sum, latency_count) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const PRUNE_RAW: &str = "DELETE FROM heartbeats WHERE camera = ?1 AND at < ?2 \
     AND at < (SELECT max(at) FROM heartbeats WHERE camera = ?1 AND at < ?2)";
const PRUNE_HOURLY: &str = "DELETE FROM hourly WHERE camera = ?1 AND hour < ?2";
const PRUNE_CHANGES: &str = "DELETE FROM state_changes WHERE at < ?1";

/// A heartbeat with what roll-ups need of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSample {
    pub(crate) sample: Sample,
    pub(crate) latency_ms: Option<i64>,
}

/// One camera's raw samples covering `[from, to)`: the last one before `from`, then all in
/// the range.
pub(crate) fn raw_samples(conn: &Connection, camera: i64, from: i64, to: i64) -> rusqlite::Result<Vec<RawSample>> {
    let read = |r: &rusqlite::Row<'_>| {
        Ok(RawSample { sample: Sample { at: r.get(0)?, state: crate::store::word(r, 1)? }, latency_ms: r.get(2)? })
    };
    let mut out = Vec::new();
    if let Some(first) = conn.prepare_cached(LAST_BEFORE)?.query_row(params![camera, from], read).optional()? {
        out.push(first);
    }
    let mut stmt = conn.prepare_cached(RANGE_SAMPLES)?;
    for s in stmt.query_map(params![camera, from, to], read)? {
        out.push(s?);
    }
    Ok(out)
}

pub(crate) fn read_marks(conn: &Connection) -> rusqlite::Result<Option<Marks>> {
    conn.prepare_cached(READ_MARKS)?
        .query_row([], |r| Ok(Marks { rolled_until: r.get(0)?, raw_kept_from: r.get(1)? }))
        .optional()
}

/// One hour of one camera being added up.
#[derive(Debug, Default)]
struct HourAcc {
    time: StateTime,
    probes: i64,
    latency_min: Option<i64>,
    latency_max: Option<i64>,
    latency_sum: i64,
    latency_count: i64,
}

impl Store {
    /// Rolls up every hour that ended at least [`ROLLUP_DELAY_MS`] before `now` and is not
    /// rolled up yet. Returns the number of camera-hours written. [`Store::prune`] calls it;
    /// call it alone to keep uptime queries fast between prunes.
    pub fn rollup(&self, now: Timestamp) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = self.rollup_in(&tx, now.as_millisecond())?;
        tx.commit()?;
        self.clear_hour_sums();
        Ok(n)
    }

    fn rollup_in(&self, conn: &Connection, now: i64) -> Result<u64> {
        let target = floor_hour(now - ROLLUP_DELAY_MS);
        let cameras = self.camera_keys(conn)?;
        let marks = match read_marks(conn)? {
            Some(m) => m,
            None => {
                // First roll-up: start at the oldest heartbeat; raw data is complete.
                let mut first = None::<i64>;
                for cam in &cameras {
                    let at: Option<i64> = conn.prepare_cached(FIRST_HEARTBEAT)?.query_row([cam.key], |r| r.get(0))?;
                    first = match (first, at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                let start = first.map_or(target, floor_hour).min(target);
                Marks { rolled_until: start, raw_kept_from: start }
            }
        };
        let from = marks.rolled_until;
        let mut written = 0;
        if target > from {
            let mut upsert = conn.prepare_cached(UPSERT_HOUR)?;
            for cam in &cameras {
                for (hour, acc) in roll_camera(conn, cam, from, target)? {
                    upsert.execute(params![
                        cam.key,
                        hour,
                        acc.time.up_ms,
                        acc.time.pending_ms,
                        acc.time.down_ms,
                        acc.time.degraded_ms,
                        acc.probes,
                        acc.latency_min,
                        acc.latency_max,
                        acc.latency_sum,
                        acc.latency_count,
                    ])?;
                    written += 1;
                }
            }
        }
        let rolled_until = target.max(from);
        conn.prepare_cached(WRITE_MARKS)?.execute(params![rolled_until, marks.raw_kept_from])?;
        Ok(written)
    }

    /// Rolls up (see [`Store::rollup`]), then deletes raw heartbeats older than
    /// `raw_days` (only hours already rolled up), roll-ups older than `rollup_days`, and
    /// state changes older than `rollup_days`. Run it periodically (every few minutes to
    /// an hour) from a blocking task.
    pub fn prune(&self, now: Timestamp) -> Result<PruneReport> {
        let retention = self.inner.options.retention;
        let now = now.as_millisecond();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut report = PruneReport { hours_rolled_up: self.rollup_in(&tx, now)?, ..PruneReport::default() };
        let marks = read_marks(&tx)?.unwrap_or(Marks { rolled_until: i64::MIN, raw_kept_from: i64::MIN });
        let raw_cut = floor_hour(now - i64::from(retention.raw_days) * DAY_MS).min(marks.rolled_until);
        let rollup_cut = floor_hour(now - i64::from(retention.rollup_days) * DAY_MS);
        let cameras = self.camera_keys(&tx)?;
        {
            let mut prune_raw = tx.prepare_cached(PRUNE_RAW)?;
            let mut prune_hourly = tx.prepare_cached(PRUNE_HOURLY)?;
            for cam in &cameras {
                if raw_cut > marks.raw_kept_from {
                    report.heartbeats_deleted += prune_raw.execute(params![cam.key, raw_cut])? as u64;
                }
                report.rollups_deleted += prune_hourly.execute(params![cam.key, rollup_cut])? as u64;
            }
        }
        report.state_changes_deleted = tx.prepare_cached(PRUNE_CHANGES)?.execute([rollup_cut])? as u64;
        if raw_cut > marks.raw_kept_from {
            tx.prepare_cached(WRITE_MARKS)?.execute(params![marks.rolled_until, raw_cut])?;
        }
        tx.commit()?;
        self.clear_hour_sums();
        tracing::debug!(?report, "camera database pruned");
        Ok(report)
    }
}

/// One camera's hours in `[from, to)` (hour-aligned), from its raw heartbeats.
fn roll_camera(conn: &Connection, cam: &CameraKey, from: i64, to: i64) -> rusqlite::Result<BTreeMap<i64, HourAcc>> {
    let raw = raw_samples(conn, cam.key, from, to)?;
    let samples: Vec<Sample> = raw.iter().map(|r| r.sample).collect();
    let mut hours: BTreeMap<i64, HourAcc> = BTreeMap::new();
    // Every hour before `to` has ended at least ROLLUP_DELAY ago, so "now" does not bound
    // a hold here except at `to` itself.
    timeline::holds(&samples, cam.cap_ms, from, to, to, |s, e, state| {
        timeline::split(s, e, 0, HOUR_MS, |idx, ps, pe| {
            hours.entry(idx * HOUR_MS).or_default().time.add(state, pe - ps);
        });
    });
    for r in raw.iter().filter(|r| r.sample.at >= from) {
        let acc = hours.entry(floor_hour(r.sample.at)).or_default();
        acc.probes += 1;
        if let Some(l) = r.latency_ms {
            acc.latency_min = Some(acc.latency_min.map_or(l, |m| m.min(l)));
            acc.latency_max = Some(acc.latency_max.map_or(l, |m| m.max(l)));
            acc.latency_sum += l;
            acc.latency_count += 1;
        }
    }
    Ok(hours)
}
