//! The last hour of the machine's figures (CPU, memory, disk, GPU memory), kept in memory so
//! a page opened just now draws its charts with history instead of starting empty.
//!
//! Fed by the status sampler ([`crate::snapshot`]) with every document it takes; one point is
//! kept per [`STEP`], so the buffer is bounded at [`CAPACITY`] points whatever the sampling
//! rate. Served as `GET /api/status/history`. Restarting the service starts a new hour.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ds_wire::status::DashboardStatus;
use serde::Serialize;

/// How far back the charts reach.
pub const SPAN: Duration = Duration::from_secs(3600);
/// One point per this much time: 360 points for the hour.
pub const STEP: Duration = Duration::from_secs(10);
/// Most points kept.
pub const CAPACITY: usize = (SPAN.as_secs() / STEP.as_secs()) as usize;

/// The machine's figures at one moment; `None` where that part could not be read (the streamer,
/// which measures CPU, memory and disk, was unreachable; no GPU reports its memory).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Seconds since the Unix epoch.
    pub t: i64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub disk_usage_percent: Option<f64>,
    pub gpu_memory_percent: Option<f64>,
}

impl Point {
    /// The figures in an `/api/status` document (its `system` and `gpu` parts) at `t`.
    pub fn from_status(t: i64, status: &DashboardStatus) -> Point {
        let system = status.system.as_ref();
        let (used, total) = status.gpu.iter().fold((0u64, 0u64), |(u, t), c| (u + c.used_bytes, t + c.total_bytes));
        let gpu = (total > 0).then(|| used as f64 / total as f64 * 100.0);
        Point {
            t,
            cpu_percent: system.map(|s| s.cpu_percent),
            memory_percent: system.map(|s| s.memory_percent),
            disk_usage_percent: system.and_then(|s| s.disk_usage_percent),
            gpu_memory_percent: gpu,
        }
    }
}

/// The ring buffer; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct History {
    points: Arc<Mutex<VecDeque<Point>>>,
}

impl History {
    pub fn new() -> History {
        History { points: Arc::new(Mutex::new(VecDeque::with_capacity(CAPACITY))) }
    }

    /// Keeps `point` if at least [`STEP`] passed since the last one kept (or its clock went
    /// back, as after a time correction), dropping the oldest beyond [`CAPACITY`] and anything
    /// older than [`SPAN`]. Whether it was kept.
    pub fn record(&self, point: Point) -> bool {
        let mut points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = points.back()
            && point.t >= last.t
            && point.t - last.t < STEP.as_secs() as i64
        {
            return false;
        }
        if points.back().is_some_and(|last| point.t < last.t) {
            points.clear();
        }
        points.push_back(point);
        let oldest = point.t - SPAN.as_secs() as i64;
        while points.len() > CAPACITY || points.front().is_some_and(|p| p.t < oldest) {
            points.pop_front();
        }
        true
    }

    /// Every point kept, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.points.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(t: i64) -> Point {
        Point {
            t,
            cpu_percent: Some(t as f64),
            memory_percent: None,
            disk_usage_percent: None,
            gpu_memory_percent: None,
        }
    }

    #[test]
    fn keeps_one_point_per_step_and_at_most_an_hour() {
        let h = History::new();
        assert!(h.record(at(1000)));
        assert!(!h.record(at(1005)), "within one step of the last point");
        assert!(h.record(at(1010)));
        for i in 2..=2 * CAPACITY as i64 {
            h.record(at(1000 + i * 10));
        }
        let points = h.points();
        assert_eq!(points.len(), CAPACITY);
        let (first, last) = (points[0].t, points[CAPACITY - 1].t);
        assert_eq!(last, 1000 + 2 * CAPACITY as i64 * 10);
        assert!(last - first < SPAN.as_secs() as i64, "nothing older than an hour: {first}..{last}");
    }

    #[test]
    fn a_gap_drops_points_older_than_the_span_and_a_clock_going_back_starts_over() {
        let h = History::new();
        h.record(at(1000));
        h.record(at(1010));
        h.record(at(1000 + 7200));
        assert_eq!(h.points(), [at(8200)]);
        h.record(at(500));
        assert_eq!(h.points(), [at(500)]);
    }

    #[test]
    fn reads_the_machine_figures_from_a_status_document() {
        let doc = |system, gpu| -> DashboardStatus {
            serde_json::from_value(json!({"service": null, "stream": null, "health": null, "system": system,
                "gpu": gpu, "sampled_at": "2026-12-07T03:00:00Z"}))
            .unwrap()
        };
        let status = doc(
            json!({"cpu_percent": 12.5, "memory_percent": 40.0, "process_memory_mb": 50.0, "disk_usage_percent": null}),
            json!([{"card": "card0", "used_bytes": 1u64 << 30, "total_bytes": 4u64 << 30}]),
        );
        let p = Point::from_status(7, &status);
        assert_eq!((p.cpu_percent, p.memory_percent, p.disk_usage_percent), (Some(12.5), Some(40.0), None));
        assert_eq!(p.gpu_memory_percent, Some(25.0));
        let unreachable = Point::from_status(8, &doc(json!(null), json!([])));
        assert_eq!(
            unreachable,
            Point { t: 8, cpu_percent: None, memory_percent: None, disk_usage_percent: None, gpu_memory_percent: None }
        );
    }
}
