//! Uptime over windows (24 h, 7 d, 30 d) for the whole fleet in one call.
//!
//! A window is added up from hourly roll-ups for the hours already rolled up and from raw
//! heartbeats after that (about the last hour), so a 30-day window costs at most 720 small
//! rows per camera, summed inside SQLite. A window that starts in the middle of a rolled-up
//! hour takes that hour's part from raw heartbeats while they are kept, and otherwise a
//! share of the hour proportional to the overlap. An hour before `rolled_until` without a
//! roll-up for the camera is read from its raw heartbeats ([`unrolled_spans`]): a database
//! written by an older version after a clock step has such hours, and they are not unknown.
//!
//! Windows end at [`Store::data_now`], not at the wall clock: after the clock stepped back,
//! the history stored ahead of it (see the writer) is what the last 24 hours are.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::retention::{Marks, raw_samples, read_marks};
use crate::store::{CameraKey, Store, camera_key, ts};
use crate::timeline::{HOUR_MS, Sample, StateTime, floor_hour, state_time};

/// The windows the grid shows.
pub const STANDARD_WINDOWS: [SignedDuration; 3] =
    [SignedDuration::from_hours(24), SignedDuration::from_hours(24 * 7), SignedDuration::from_hours(24 * 30)];

/// A camera's time in each state over one window ending now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Uptime {
    /// Length of the window in seconds (86400 for 24 h).
    pub window_s: i64,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Milliseconds per state, and unknown (no heartbeat covered it).
    pub time: StateTime,
    /// UP time over known time, percent; `None` when nothing is known.
    pub up_percent: Option<f64>,
    /// UP + DEGRADED (video arrived) over known time, percent: the camera's "uptime".
    pub video_percent: Option<f64>,
}

const SUM_HOURS: &str = "SELECT coalesce(sum(up_ms), 0), coalesce(sum(pending_ms), 0), coalesce(sum(down_ms), 0), \
     coalesce(sum(degraded_ms), 0) FROM hourly WHERE camera = ?1 AND hour >= ?2 AND hour < ?3";

impl Store {
    /// Uptime of every camera the store knows over each of `windows` ending at
    /// [`Store::data_now`]`(clock)`, by camera id; each list is in the order of `windows`.
    pub fn uptime_all(&self, clock: Timestamp, windows: &[SignedDuration]) -> Result<BTreeMap<String, Vec<Uptime>>> {
        check_windows(windows)?;
        let now = self.data_now(clock)?;
        let conn = self.conn();
        let marks = marks_or_all_raw(&conn)?;
        let mut out = BTreeMap::new();
        for cam in self.camera_keys(&conn)? {
            let list = camera_uptime(self, &conn, &cam, marks, now, windows)?;
            out.insert(cam.stable_id, list);
        }
        Ok(out)
    }

    /// Uptime of one camera over each of `windows` ending at [`Store::data_now`]`(clock)`.
    pub fn uptime(&self, camera_id: &str, clock: Timestamp, windows: &[SignedDuration]) -> Result<Vec<Uptime>> {
        check_windows(windows)?;
        let now = self.data_now(clock)?;
        let conn = self.conn();
        let cam = camera_key(&conn, camera_id, self.default_cap_ms())?
            .ok_or_else(|| Error::UnknownCamera(camera_id.to_owned()))?;
        let marks = marks_or_all_raw(&conn)?;
        camera_uptime(self, &conn, &cam, marks, now, windows)
    }
}

fn check_windows(windows: &[SignedDuration]) -> Result<()> {
    match windows.iter().find(|w| w.as_millis() <= 0) {
        Some(w) => {
            Err(Error::Argument { what: "an uptime window", allowed: "longer than zero", got: format!("{w:#}") })
        }
        None => Ok(()),
    }
}

pub(crate) fn marks_or_all_raw(conn: &Connection) -> Result<Marks> {
    Ok(read_marks(conn)?.unwrap_or(Marks { rolled_until: i64::MIN, raw_kept_from: i64::MIN }))
}

/// Entries of the hour-sum cache before it is emptied (it refills within a call).
const MAX_CACHED_SUMS: usize = 200_000;

fn camera_uptime(
    store: &Store,
    conn: &Connection,
    cam: &CameraKey,
    marks: Marks,
    now: Timestamp,
    windows: &[SignedDuration],
) -> Result<Vec<Uptime>> {
    let to = now.as_millisecond();
    let spans: Vec<(i64, i64)> = windows
        .iter()
        .map(|w| {
            let from = to.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
            (from, from.max(marks.rolled_until).min(to))
        })
        .collect();
    // One read of the raw heartbeats serves every window.
    let earliest_raw = spans.iter().map(|s| s.1).min().unwrap_or(to);
    let samples: Vec<Sample> = if earliest_raw < to {
        raw_samples(conn, cam.key, earliest_raw, to)?.into_iter().map(|r| r.sample).collect()
    } else {
        Vec::new()
    };
    let mut list = Vec::with_capacity(windows.len());
    for (w, (from, raw_from)) in windows.iter().zip(spans) {
        let mut time =
            if raw_from < to { state_time(&samples, cam.cap_ms, raw_from, to, to) } else { StateTime::default() };
        if from < raw_from {
            time.merge(&rolled_time(store, conn, cam, marks, from, raw_from, to)?);
            for (s, e) in unrolled_spans(conn, cam.key, from, raw_from)? {
                time.merge(&raw_time(conn, cam, s, e, to)?);
            }
        }
        time.unknown_ms = (to - from) - time.known_ms();
        list.push(Uptime {
            window_s: w.as_secs(),
            from: ts(from),
            to: now,
            up_percent: time.up_percent(),
            video_percent: time.video_percent(),
            time,
        });
    }
    Ok(list)
}

/// Time per state in `[from, to)` from raw heartbeats.
pub(crate) fn raw_time(conn: &Connection, cam: &CameraKey, from: i64, to: i64, now: i64) -> Result<StateTime> {
    if from >= to {
        return Ok(StateTime::default());
    }
    let samples: Vec<Sample> = raw_samples(conn, cam.key, from, to)?.into_iter().map(|r| r.sample).collect();
    Ok(state_time(&samples, cam.cap_ms, from, to, now))
}

/// Time per state in `[from, to)`, a span before `rolled_until`, from roll-ups.
fn rolled_time(
    store: &Store,
    conn: &Connection,
    cam: &CameraKey,
    marks: Marks,
    from: i64,
    to: i64,
    now: i64,
) -> Result<StateTime> {
    let mut time = StateTime::default();
    let mut whole_from = from;
    if from % HOUR_MS != 0 {
        let hour = floor_hour(from);
        let part_end = (hour + HOUR_MS).min(to);
        if from >= marks.raw_kept_from {
            time.merge(&raw_time(conn, cam, from, part_end, now)?);
        } else {
            let h = sum_hours(conn, cam.key, hour, hour + HOUR_MS)?;
            let share = (part_end - from) as f64 / HOUR_MS as f64;
            for s in ds_cameras::State::ALL {
                time.add(s, (h.get(s) as f64 * share).round() as i64);
            }
        }
        whole_from = part_end;
    }
    if whole_from < to {
        let key = (cam.key, whole_from, to);
        let cached = store.inner.hour_sums.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        let sum = match cached {
            Some(sum) => sum,
            None => {
                let sum = sum_hours(conn, cam.key, whole_from, to)?;
                let mut cache = store.inner.hour_sums.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED_SUMS {
                    cache.clear();
                }
                cache.insert(key, sum);
                sum
            }
        };
        time.merge(&sum);
    }
    Ok(time)
}

const ROLLED_HOURS: &str = "SELECT hour FROM hourly WHERE camera = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour";

/// The parts of `[from, to)` (a span before `rolled_until`) in hours without a roll-up for
/// the camera, merged: where its raw heartbeats, if any, are read instead.
pub(crate) fn unrolled_spans(conn: &Connection, camera: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
    let mut spans = Vec::new();
    let mut next = floor_hour(from);
    let push = |s: i64, e: i64, spans: &mut Vec<(i64, i64)>| {
        let (s, e) = (s.max(from), e.min(to));
        if s < e {
            spans.push((s, e));
        }
    };
    let mut stmt = conn.prepare_cached(ROLLED_HOURS)?;
    for hour in stmt.query_map(params![camera, floor_hour(from), to], |r| r.get::<_, i64>(0))? {
        let hour = hour?;
        push(next, hour, &mut spans);
        next = hour + HOUR_MS;
    }
    push(next, to, &mut spans);
    Ok(spans)
}

fn sum_hours(conn: &Connection, camera: i64, from: i64, to: i64) -> Result<StateTime> {
    Ok(conn.prepare_cached(SUM_HOURS)?.query_row(params![camera, from, to], |r| {
        Ok(StateTime {
            up_ms: r.get(0)?,
            pending_ms: r.get(1)?,
            down_ms: r.get(2)?,
            degraded_ms: r.get(3)?,
            unknown_ms: 0,
        })
    })?)
}
