//! The last hour of the machine's figures (CPU, memory, disk, GPU memory), kept in memory so
//! a page opened just now draws its charts with history instead of starting empty.
//!
//! Fed by the status sampler ([`crate::snapshot`]) with every document it takes; one point is
//! kept per [`STEP`], so the buffer is bounded at [`CAPACITY`] points whatever the sampling
//! rate. Served as `GET /api/status/history`. Restarting the service starts a new hour.
//!
//! Time is monotonic here. Each point keeps the [`Instant`] it was sampled at; the thinning to
//! one point per [`STEP`] and the cut at [`SPAN`] compare those instants, and only serving
//! turns them into wall-clock times: every point is placed at
//! `wall_now − (mono_now − sampled)`, the server's wall clock as it reads at that moment minus
//! how long ago the point was sampled. So a step of the wall clock (NTP setting a board
//! without a real-time clock a year forward, an operator setting it a day back) neither
//! reorders the hour, nor leaves it a year away from "now", nor empties it: the whole hour
//! moves with the clock, continuous. Each served point also carries that age
//! (`age_seconds`), for a reader whose own clock is not the server's (the page places points
//! on the browser's monotonic clock with it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub disk_usage_percent: Option<f64>,
    pub gpu_memory_percent: Option<f64>,
}

impl Figures {
    /// The figures in an `/api/status` document (its `system` and `gpu` parts).
    pub fn from_status(status: &DashboardStatus) -> Figures {
        let system = status.system.as_ref();
        let (used, total) = status.gpu.iter().fold((0u64, 0u64), |(u, t), c| (u + c.used_bytes, t + c.total_bytes));
        let gpu = (total > 0).then(|| used as f64 / total as f64 * 100.0);
        Figures {
            cpu_percent: system.map(|s| s.cpu_percent),
            memory_percent: system.map(|s| s.memory_percent),
            disk_usage_percent: system.and_then(|s| s.disk_usage_percent),
            gpu_memory_percent: gpu,
        }
    }
}

/// A point as served: its figures, placed on the server's wall clock as it reads now.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Seconds since the Unix epoch: the wall clock now minus `age_seconds` (rounded down).
    pub t: i64,
    /// How long before it was served the point was sampled, on the monotonic clock.
    pub age_seconds: f64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A point as kept: when it was sampled, on the monotonic clock.
#[derive(Clone, Copy, Debug)]
struct Kept {
    sampled: Instant,
    figures: Figures,
}

/// The ring buffer; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct History {
    points: Arc<Mutex<VecDeque<Kept>>>,
}

impl History {
    pub fn new() -> History {
        History { points: Arc::new(Mutex::new(VecDeque::with_capacity(CAPACITY))) }
    }

    /// Keeps `figures` sampled at `sampled` if at least [`STEP`] passed since the last point
    /// kept, dropping the oldest beyond [`CAPACITY`] and anything more than [`SPAN`] older.
    /// Whether it was kept.
    pub fn record(&self, sampled: Instant, figures: Figures) -> bool {
        let mut points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        // An instant before the last one (no caller has one) reads as no time passed.
        if points.back().is_some_and(|last| sampled.saturating_duration_since(last.sampled) < STEP) {
            return false;
        }
        points.push_back(Kept { sampled, figures });
        while points.len() > CAPACITY || points.front().is_some_and(|p| sampled.duration_since(p.sampled) > SPAN) {
            points.pop_front();
        }
        true
    }

    /// Every point of the last [`SPAN`], oldest first, placed on the wall clock now.
    pub fn points(&self) -> Vec<Point> {
        self.points_at(jiff::Timestamp::now(), Instant::now())
    }

    /// The points of the [`SPAN`] before `mono_now`, oldest first, each placed at
    /// `wall_now − (mono_now − sampled)`.
    fn points_at(&self, wall_now: jiff::Timestamp, mono_now: Instant) -> Vec<Point> {
        let wall_ms = wall_now.as_millisecond();
        let points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        points
            .iter()
            .filter_map(|p| {
                let age = mono_now.saturating_duration_since(p.sampled);
                (age <= SPAN).then(|| Point {
                    t: (wall_ms - age.as_millis() as i64).div_euclid(1000),
                    age_seconds: age.as_millis() as f64 / 1000.0,
                    figures: p.figures,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn figures(cpu: f64) -> Figures {
        Figures { cpu_percent: Some(cpu), ..Figures::default() }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const WALL: &str = "2026-12-07T03:00:00Z";

    fn wall(offset_s: i64) -> jiff::Timestamp {
        WALL.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_secs(offset_s)
    }

    /// (t, age, cpu) of every point served at `wall_now`, `mono_now`.
    fn served(h: &History, wall_now: jiff::Timestamp, mono_now: Instant) -> Vec<(i64, f64, f64)> {
        h.points_at(wall_now, mono_now).iter().map(|p| (p.t, p.age_seconds, p.figures.cpu_percent.unwrap())).collect()
    }

    #[test]
    fn keeps_one_point_per_step_and_at_most_an_hour() {
        let h = History::new();
        let base = Instant::now();
        assert!(h.record(base, figures(0.0)));
        assert!(!h.record(base + secs(5), figures(5.0)), "within one step of the last point");
        assert!(h.record(base + secs(10), figures(10.0)));
        for i in 2..=2 * CAPACITY as u64 {
            h.record(base + secs(i * 10), figures(i as f64));
        }
        let now = base + secs(2 * CAPACITY as u64 * 10);
        let points = served(&h, wall(0), now);
        assert_eq!(points.len(), CAPACITY);
        let (first, last) = (points[0], points[CAPACITY - 1]);
        assert_eq!(last, (wall(0).as_second(), 0.0, 2.0 * CAPACITY as f64));
        assert!(first.1 < SPAN.as_secs_f64(), "nothing older than an hour: {first:?}");
        assert!(points.windows(2).all(|w| w[1].0 - w[0].0 == 10), "one point per step: {points:?}");
    }

    #[test]
    fn points_are_placed_on_the_wall_clock_as_it_reads_when_served() {
        let h = History::new();
        let base = Instant::now();
        for i in 0..3 {
            h.record(base + secs(i * 10), figures(i as f64));
        }
        let now = base + secs(25);
        let w = wall(0).as_second();
        assert_eq!(served(&h, wall(0), now), [(w - 25, 25.0, 0.0), (w - 15, 15.0, 1.0), (w - 5, 5.0, 2.0)]);
        // A wall clock stepped a year forward, then a day back, between the samples and the
        // serving: the same hour, as continuous and in order, ending at "now".
        for step in [366 * 86_400, -86_400] {
            let w = wall(step).as_second();
            assert_eq!(served(&h, wall(step), now), [(w - 25, 25.0, 0.0), (w - 15, 15.0, 1.0), (w - 5, 5.0, 2.0)]);
        }
        // Sub-second ages: placed to the millisecond, then rounded down to the second.
        let points = served(&h, wall(0), base + Duration::from_millis(20_400));
        assert_eq!(points[2], (w - 1, 0.4, 2.0));
    }

    #[test]
    fn the_step_and_the_span_run_on_the_monotonic_clock() {
        let h = History::new();
        let base = Instant::now();
        h.record(base, figures(0.0));
        h.record(base + secs(10), figures(1.0));
        // Whatever the wall clock did meanwhile, 5 s of monotonic time is within the step.
        assert!(!h.record(base + secs(15), figures(2.0)));
        // A gap longer than the span: only the new point is left.
        h.record(base + secs(10) + SPAN + secs(1), figures(3.0));
        let now = base + secs(10) + SPAN + secs(1);
        assert_eq!(served(&h, wall(0), now), [(wall(0).as_second(), 0.0, 3.0)]);
        // Served more than an hour after the last sample (the sampler stalled): nothing.
        assert_eq!(served(&h, wall(0), now + SPAN + secs(1)), []);
    }

    #[test]
    fn serves_the_figures_under_their_names() {
        let h = History::new();
        let base = Instant::now();
        h.record(base, Figures { cpu_percent: Some(12.5), gpu_memory_percent: Some(25.0), ..Figures::default() });
        let json = serde_json::to_value(h.points_at(wall(0), base + secs(3))).unwrap();
        assert_eq!(
            json,
            json!([{"t": wall(-3).as_second(), "age_seconds": 3.0, "cpu_percent": 12.5, "memory_percent": null,
                "disk_usage_percent": null, "gpu_memory_percent": 25.0}])
        );
    }

    #[test]
    fn reads_the_machine_figures_from_a_status_document() {
        let doc = |system, gpu| -> DashboardStatus {
            serde_json::from_value(json!({"service": null, "stream": null, "health": null, "system": system,
                "gpu": gpu, "sampled_at": WALL}))
            .unwrap()
        };
        let status = doc(
            json!({"cpu_percent": 12.5, "memory_percent": 40.0, "process_memory_mb": 50.0, "disk_usage_percent": null}),
            json!([{"card": "card0", "used_bytes": 1u64 << 30, "total_bytes": 4u64 << 30}]),
        );
        let f = Figures::from_status(&status);
        assert_eq!((f.cpu_percent, f.memory_percent, f.disk_usage_percent), (Some(12.5), Some(40.0), None));
        assert_eq!(f.gpu_memory_percent, Some(25.0));
        assert_eq!(Figures::from_status(&doc(json!(null), json!([]))), Figures::default());
    }
}
