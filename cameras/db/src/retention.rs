//! Keeping the database small without losing the long view: hourly roll-ups of the time
//! each camera spent in each state, then raw heartbeats pruned after `raw_days` and
//! roll-ups after `rollup_days`.
//!
//! Both follow the stored data, never the wall clock: a clock that steps by a year (a board
//! without a real-time clock, corrected by NTP) must not delete a year of history, nor stop
//! the roll-ups until real time catches up.
//!
//! - Roll-ups are made for every hour that ended more than [`ROLLUP_DELAY_MS`] before the
//!   newest stored heartbeat (a heartbeat is written after its probe finished and its batch
//!   committed, so a late one can still land in the hour just ended), continuously, not only
//!   before pruning: long uptime windows then add up at most 720 rows per camera instead of
//!   reading 30 days of raw heartbeats. The writer never stores a heartbeat in an hour
//!   already rolled up.
//! - Retention is counted per camera in hours it has history for, back from its newest:
//!   raw heartbeats are kept for its newest `raw_days × 24` rolled-up hours, roll-ups and
//!   state changes for its newest `rollup_days × 24`. With history in every hour that is
//!   exactly "older than the newest stored heartbeat by the retention period"; a gap (the
//!   clock stepped forward, the service was off) does not count, so data is only ever cut
//!   because newer data took its place.
//! - Raw heartbeats are only cut in hours rolled up for their camera: an hour holding raw
//!   heartbeats but no roll-up (written by an older version after a clock step) is rolled
//!   up first. Pruning keeps each camera's last heartbeat before the cut, whose state may
//!   still hold across it.
//! - When the wall clock is more than [`PLAUSIBLE_CLOCK_SKEW_MS`] from the newest stored
//!   heartbeat, [`Store::prune`] says so in the log and in its report: nothing is cut by
//!   the clock either way.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::Result;
use crate::store::{CameraKey, Store};
use crate::timeline::{self, HOUR_MS, Sample, StateTime, floor_hour};

/// An hour is rolled up only once it ended this long ago.
pub const ROLLUP_DELAY_MS: i64 = 5 * 60 * 1000;
/// How far the wall clock may be from the newest stored heartbeat before [`Store::prune`]
/// reports it (an hour: more than a late batch, less than any real clock step worth noting).
pub const PLAUSIBLE_CLOCK_SKEW_MS: i64 = HOUR_MS;

/// What one [`Store::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub hours_rolled_up: u64,
    pub heartbeats_deleted: u64,
    pub rollups_deleted: u64,
    pub state_changes_deleted: u64,
    /// How far the wall clock was from the newest stored heartbeat (positive: the clock was
    /// ahead), in milliseconds, when that was more than [`PLAUSIBLE_CLOCK_SKEW_MS`]: pruning
    /// went by the stored data.
    pub clock_skew_ms: Option<i64>,
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
const PRUNE_CHANGES: &str = "DELETE FROM state_changes WHERE camera = ?1 AND at < ?2";
pub(crate) const NEWEST_OF: &str = "SELECT max(at) FROM heartbeats WHERE camera = ?1";
/// The camera's `?2`-th newest rolled-up hour (0 the newest).
const NTH_NEWEST_HOUR: &str = "SELECT hour FROM hourly WHERE camera = ?1 ORDER BY hour DESC LIMIT 1 OFFSET ?2";
/// Hours before `?2` that hold raw heartbeats of the camera but no roll-up.
const UNROLLED_HOURS: &str = "SELECT DISTINCT h.at - (h.at % 3600000) AS hr FROM heartbeats h \
     WHERE h.camera = ?1 AND h.at >= 0 AND h.at < ?2 \
     AND NOT EXISTS (SELECT 1 FROM hourly r WHERE r.camera = ?1 AND r.hour = h.at - (h.at % 3600000)) ORDER BY hr";

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
    /// Rolls up every hour that ended at least [`ROLLUP_DELAY_MS`] before the newest stored
    /// heartbeat and is not rolled up yet (the wall clock plays no part). Returns the number
    /// of camera-hours written. [`Store::prune`] calls it; call it alone to keep uptime
    /// queries fast between prunes.
    pub fn rollup(&self) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = self.rollup_in(&tx)?;
        tx.commit()?;
        self.clear_hour_sums();
        Ok(n)
    }

    fn rollup_in(&self, conn: &Connection) -> Result<u64> {
        let cameras = self.camera_keys(conn)?;
        let Some(newest) = newest_heartbeat(conn, &cameras)? else { return Ok(0) };
        let target = floor_hour(newest - ROLLUP_DELAY_MS);
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
            for cam in &cameras {
                for (hour, acc) in roll_camera(conn, cam, from, target)? {
                    upsert_hour(conn, cam.key, hour, &acc)?;
                    written += 1;
                }
            }
        }
        let rolled_until = target.max(from);
        conn.prepare_cached(WRITE_MARKS)?.execute(params![rolled_until, marks.raw_kept_from])?;
        Ok(written)
    }

    /// Rolls up (see [`Store::rollup`]), then deletes what retention lets go (see the
    /// module doc): per camera, raw heartbeats before its newest `raw_days × 24` rolled-up
    /// hours (only hours rolled up), and roll-ups and state changes before its newest
    /// `rollup_days × 24`. `clock` is the wall clock, only compared with the stored data
    /// (see [`PruneReport::clock_skew_ms`]). Run it periodically (every few minutes to an
    /// hour) from a blocking task.
    pub fn prune(&self, clock: Timestamp) -> Result<PruneReport> {
        let retention = self.inner.options.retention;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut report = PruneReport { hours_rolled_up: self.rollup_in(&tx)?, ..PruneReport::default() };
        let cameras = self.camera_keys(&tx)?;
        if let Some(newest) = newest_heartbeat(&tx, &cameras)? {
            let skew = clock.as_millisecond().saturating_sub(newest);
            if skew.abs() > PLAUSIBLE_CLOCK_SKEW_MS {
                report.clock_skew_ms = Some(skew);
                tracing::warn!(
                    clock = %clock,
                    newest_heartbeat = %crate::store::ts(newest),
                    "the wall clock is {} the newest stored heartbeat; roll-up and pruning follow the stored \
                     history, not the clock (has the clock stepped? is it synchronised?)",
                    describe_skew(skew)
                );
            }
        }
        let marks = read_marks(&tx)?.unwrap_or(Marks { rolled_until: i64::MIN, raw_kept_from: i64::MIN });
        let raw_hours = i64::from(retention.raw_days) * 24;
        let rollup_hours = i64::from(retention.rollup_days) * 24;
        let mut raw_kept_from = marks.raw_kept_from;
        for cam in &cameras {
            let nth = |n: i64| -> rusqlite::Result<Option<i64>> {
                if n <= 0 {
                    return Ok(None);
                }
                tx.prepare_cached(NTH_NEWEST_HOUR)?.query_row(params![cam.key, n - 1], |r| r.get(0)).optional()
            };
            if let Some(raw_cut) = nth(raw_hours)?.map(|c| c.min(marks.rolled_until)) {
                report.hours_rolled_up += roll_missing(&tx, cam, raw_cut)?;
                report.heartbeats_deleted += tx.prepare_cached(PRUNE_RAW)?.execute(params![cam.key, raw_cut])? as u64;
                raw_kept_from = raw_kept_from.max(raw_cut);
            }
            if let Some(rollup_cut) = nth(rollup_hours)? {
                report.rollups_deleted +=
                    tx.prepare_cached(PRUNE_HOURLY)?.execute(params![cam.key, rollup_cut])? as u64;
                report.state_changes_deleted +=
                    tx.prepare_cached(PRUNE_CHANGES)?.execute(params![cam.key, rollup_cut])? as u64;
            }
        }
        if raw_kept_from > marks.raw_kept_from {
            tx.prepare_cached(WRITE_MARKS)?.execute(params![marks.rolled_until, raw_kept_from])?;
        }
        tx.commit()?;
        self.clear_hour_sums();
        tracing::debug!(?report, "camera database pruned");
        Ok(report)
    }

    /// The wall clock, or the newest stored heartbeat when that is later: "now" on the
    /// stored timeline, which never goes backwards (see the writer). Readers end their
    /// windows here, so that after a backward step of the clock the history stored ahead
    /// of it is still shown.
    pub fn data_now(&self, clock: Timestamp) -> Result<Timestamp> {
        let conn = self.conn();
        let cameras = self.camera_keys(&conn)?;
        Ok(match newest_heartbeat(&conn, &cameras)? {
            Some(newest) if newest > clock.as_millisecond() => crate::store::ts(newest),
            _ => clock,
        })
    }
}

/// The newest stored heartbeat of any of `cameras`.
pub(crate) fn newest_heartbeat(conn: &Connection, cameras: &[CameraKey]) -> rusqlite::Result<Option<i64>> {
    let mut newest = None::<i64>;
    let mut stmt = conn.prepare_cached(NEWEST_OF)?;
    for cam in cameras {
        let at: Option<i64> = stmt.query_row([cam.key], |r| r.get(0))?;
        newest = newest.max(at);
    }
    Ok(newest)
}

/// "366 d ahead of", "2 h behind".
fn describe_skew(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    let amount = if s >= 2 * 86_400 { format!("{} d", s / 86_400) } else { format!("{} h", s / 3600) };
    format!("{amount} {}", if ms > 0 { "ahead of" } else { "behind" })
}

/// Rolls up the camera's hours before `cut` that hold raw heartbeats but no roll-up, so that
/// pruning never cuts what is not rolled up. Returns the hours written.
fn roll_missing(conn: &Connection, cam: &CameraKey, cut: i64) -> Result<u64> {
    let hours: Vec<i64> = conn
        .prepare_cached(UNROLLED_HOURS)?
        .query_map(params![cam.key, cut], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut written = 0;
    for hour in hours {
        for (h, acc) in roll_camera(conn, cam, hour, hour + HOUR_MS)? {
            upsert_hour(conn, cam.key, h, &acc)?;
            written += 1;
        }
    }
    Ok(written)
}

fn upsert_hour(conn: &Connection, camera: i64, hour: i64, acc: &HourAcc) -> rusqlite::Result<()> {
    conn.prepare_cached(UPSERT_HOUR)?.execute(params![
        camera,
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
    Ok(())
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
