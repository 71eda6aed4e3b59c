//! A camera's history in buckets: the chart on its page and the heartbeat bar of the grid
//! (the last N buckets, each coloured by the worst state it saw).
//!
//! Buckets are laid from `from` in steps of `bucket`. Where raw heartbeats are kept they
//! give exact time per state and probe statistics; before that, each hourly roll-up falls
//! whole into the bucket holding its hour's start (exact when buckets are whole hours
//! aligned to UTC hours); an hour without a roll-up is read from raw heartbeats, if any.
//! Callers lay the range back from [`Store::data_now`], not from the wall clock.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::retention::raw_samples;
use crate::store::{CameraKey, Store, camera_key, ts};
use crate::timeline::{self, Sample, StateTime};
use crate::uptime::{marks_or_all_raw, unrolled_spans};

/// Most buckets one call returns.
pub const MAX_BUCKETS: i64 = 10_000;

/// One slice of a camera's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub start: Timestamp,
    /// Milliseconds per state in the bucket (unknown: not covered, or in the future).
    pub time: StateTime,
    /// The worst state with any time in the bucket (DOWN, PENDING, DEGRADED, UP); `None`
    /// when nothing is known.
    pub worst: Option<ds_cameras::State>,
    /// Heartbeats taken in the bucket.
    pub probes: i64,
    pub latency_min_ms: Option<i64>,
    pub latency_avg_ms: Option<f64>,
    pub latency_max_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Acc {
    time: StateTime,
    probes: i64,
    min: Option<i64>,
    max: Option<i64>,
    sum: i64,
    count: i64,
}

impl Acc {
    fn latency(&mut self, min: Option<i64>, max: Option<i64>, sum: i64, count: i64) {
        self.min = match (self.min, min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sum += sum;
        self.count += count;
    }
}

const HOURS_RANGE: &str = "SELECT hour, up_ms, pending_ms, down_ms, degraded_ms, probes, latency_min, latency_max, \
     latency_sum, latency_count FROM hourly WHERE camera = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour";

impl Store {
    /// A camera's history in `[from, to)` cut into buckets of `bucket`, oldest first; time
    /// after `now` is unknown. For a heartbeat bar of the last 30 minutes in 1-minute steps:
    /// `buckets(id, now - 30 min, now, 1 min, now)`.
    pub fn buckets(
        &self,
        camera_id: &str,
        from: Timestamp,
        to: Timestamp,
        bucket: SignedDuration,
        now: Timestamp,
    ) -> Result<Vec<Bucket>> {
        let conn = self.conn();
        let cam = camera_key(&conn, camera_id, self.default_cap_ms())?
            .ok_or_else(|| Error::UnknownCamera(camera_id.to_owned()))?;
        buckets_of(&conn, &cam, from, to, bucket, now)
    }

    /// [`Store::buckets`] for every camera, by camera id (the grid's heartbeat bars).
    pub fn buckets_all(
        &self,
        from: Timestamp,
        to: Timestamp,
        bucket: SignedDuration,
        now: Timestamp,
    ) -> Result<BTreeMap<String, Vec<Bucket>>> {
        let conn = self.conn();
        let mut out = BTreeMap::new();
        for cam in self.camera_keys(&conn)? {
            let list = buckets_of(&conn, &cam, from, to, bucket, now)?;
            out.insert(cam.stable_id, list);
        }
        Ok(out)
    }
}

fn buckets_of(
    conn: &Connection,
    cam: &CameraKey,
    from: Timestamp,
    to: Timestamp,
    bucket: SignedDuration,
    now: Timestamp,
) -> Result<Vec<Bucket>> {
    let (from, to, now) = (from.as_millisecond(), to.as_millisecond(), now.as_millisecond());
    let len = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
    if len < 1000 {
        return Err(Error::Argument {
            what: "the bucket size",
            allowed: "at least one second",
            got: format!("{bucket:#}"),
        });
    }
    if to <= from {
        return Ok(Vec::new());
    }
    let count = (to - from + len - 1) / len;
    if count > MAX_BUCKETS {
        return Err(Error::Argument {
            what: "the number of buckets",
            allowed: "at most 10000 (use larger buckets or a shorter range)",
            got: count.to_string(),
        });
    }
    let mut accs: Vec<Acc> = (0..count).map(|_| Acc::default()).collect();
    let marks = marks_or_all_raw(conn)?;
    let raw_from = from.max(marks.raw_kept_from).min(to);

    // Before raw heartbeats: roll-ups.
    if from < raw_from {
        let mut stmt = conn.prepare_cached(HOURS_RANGE)?;
        let rows = stmt.query_map(params![cam.key, timeline::floor_hour(from), raw_from], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                StateTime {
                    up_ms: r.get(1)?,
                    pending_ms: r.get(2)?,
                    down_ms: r.get(3)?,
                    degraded_ms: r.get(4)?,
                    unknown_ms: 0,
                },
                r.get::<_, i64>(5)?,
                (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?, r.get::<_, i64>(8)?, r.get::<_, i64>(9)?),
            ))
        })?;
        for row in rows {
            let (hour, time, probes, (min, max, sum, n)) = row?;
            let idx = (hour.max(from) - from) / len;
            if let Some(acc) = accs.get_mut(idx as usize) {
                acc.time.merge(&time);
                acc.probes += probes;
                acc.latency(min, max, sum, n);
            }
        }
    }

    // Raw heartbeats: after the roll-ups, and in hours before them that have none.
    let mut spans = if from < raw_from { unrolled_spans(conn, cam.key, from, raw_from)? } else { Vec::new() };
    spans.push((raw_from, to));
    for (span_from, span_to) in spans {
        let raw = raw_samples(conn, cam.key, span_from, span_to)?;
        let samples: Vec<Sample> = raw.iter().map(|r| r.sample).collect();
        timeline::holds(&samples, cam.cap_ms, span_from, span_to, now, |s, e, state| {
            timeline::split(s, e, from, len, |idx, ps, pe| {
                if let Some(acc) = accs.get_mut(idx as usize) {
                    acc.time.add(state, pe - ps);
                }
            });
        });
        for r in raw.iter().filter(|r| r.sample.at >= span_from) {
            if let Some(acc) = accs.get_mut(((r.sample.at - from) / len) as usize) {
                acc.probes += 1;
                if let Some(l) = r.latency_ms {
                    acc.latency(Some(l), Some(l), l, 1);
                }
            }
        }
    }

    Ok(accs
        .into_iter()
        .enumerate()
        .map(|(i, mut acc)| {
            let start = from + i as i64 * len;
            let span = (start + len).min(to) - start;
            acc.time.unknown_ms = (span - acc.time.known_ms()).max(0);
            Bucket {
                start: ts(start),
                worst: acc.time.worst(),
                probes: acc.probes,
                latency_min_ms: acc.min,
                latency_avg_ms: (acc.count > 0).then(|| acc.sum as f64 / acc.count as f64),
                latency_max_ms: acc.max,
                time: acc.time,
            }
        })
        .collect())
}
