//! The escalation ladder as plain rules over an injected clock, so that every rung is tested
//! without a pipeline and without waiting.
//!
//! A fault rebuilds the pipeline in process, at once if the run had been working (it listed a
//! segment); runs that fail before producing anything back off exponentially up to
//! `restart_delay`; `max_errors` faults within `error_window` end the process so that systemd
//! starts a fresh one. A run whose encoder sends nothing for the stall timeout is a fault too.
//! Planned rebuilds (the source changed, a reload, a request) are no faults: they rebuild at
//! once and count against nothing.

use std::collections::VecDeque;
use std::time::Duration;

use ds_config::StreamerConfig;
use tokio::time::Instant;

use crate::status::{RestartReason, State};

/// First back-off after repeated fast failures; doubles up to `restart_delay`.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Delay before the next rebuild after `consecutive` failures in a row: none for the first,
/// then doubling from [`FIRST_BACKOFF`] up to `cap`.
pub fn backoff(consecutive: u32, cap: Duration) -> Duration {
    if consecutive <= 1 {
        return Duration::ZERO;
    }
    FIRST_BACKOFF.saturating_mul(1 << (consecutive - 2).min(16)).min(cap)
}

/// The ladder's settings, from the streamer config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Faults within `error_window` that end the process.
    pub max_errors: u32,
    pub error_window: Duration,
    /// Failed rebuilds in a row after which the state says `failing`.
    pub max_restarts: u32,
    /// The longest back-off.
    pub restart_delay: Duration,
}

impl Limits {
    pub fn from_config(config: &StreamerConfig) -> Self {
        Limits {
            max_errors: config.max_errors,
            error_window: Duration::from_secs(config.error_window.into()),
            max_restarts: config.max_restarts,
            restart_delay: Duration::from_secs(config.restart_delay.into()),
        }
    }
}

/// What to do after a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Rebuild after `delay`, showing `state` meanwhile.
    Rebuild { delay: Duration, state: State },
    /// `recent` faults within the error window: end the process.
    GiveUp { recent: usize },
}

/// The ladder's memory: fault times within the window and failed runs in a row.
#[derive(Debug, Default)]
pub struct Ladder {
    faults: VecDeque<Instant>,
    consecutive: u32,
}

impl Ladder {
    /// A run ended at `now` for `reason`; `produced` says whether it listed a segment.
    pub fn step(&mut self, now: Instant, reason: RestartReason, produced: bool, limits: &Limits) -> Step {
        if !reason.is_fault() {
            return Step::Rebuild { delay: Duration::ZERO, state: State::Restarting };
        }
        self.faults.push_back(now);
        while self.faults.front().is_some_and(|t| now.duration_since(*t) > limits.error_window) {
            self.faults.pop_front();
        }
        let recent = self.faults.len();
        if recent >= limits.max_errors as usize {
            return Step::GiveUp { recent };
        }
        self.consecutive = if produced { 1 } else { self.consecutive.saturating_add(1) };
        let failing = self.consecutive >= limits.max_restarts.max(1);
        Step::Rebuild {
            delay: backoff(self.consecutive, limits.restart_delay),
            state: if failing { State::Failing } else { State::Restarting },
        }
    }

    /// Faults within `window` before `now`: what the health API reports as `recent_errors`.
    pub fn recent_faults(&self, now: Instant, window: Duration) -> usize {
        self.faults.iter().filter(|t| now.saturating_duration_since(**t) <= window).count()
    }

    /// Failed runs in a row, counting from the last run that listed a segment.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }
}

/// How long the encoder has been silent at `now`, if that is longer than `timeout`: a stall.
/// Buffers from before the run `started` do not count.
pub fn stalled(now: Instant, started: Instant, last_buffer: Option<Instant>, timeout: Duration) -> Option<Duration> {
    let since = last_buffer.filter(|t| *t >= started).unwrap_or(started);
    let silent = now.duration_since(since);
    (silent > timeout).then_some(silent)
}

/// Whether segments still come often enough to pet systemd's watchdog: the last one is at
/// most two segment durations and two seconds old.
pub fn segments_fresh(now: Instant, last_segment: Option<Instant>, segment_secs: u32) -> bool {
    let fresh = Duration::from_secs(u64::from(segment_secs) * 2 + 2);
    last_segment.is_some_and(|t| now.duration_since(t) <= fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_errors: 4,
            error_window: Duration::from_secs(60),
            max_restarts: 3,
            restart_delay: Duration::from_secs(10),
        }
    }

    #[test]
    fn first_failure_rebuilds_at_once_then_backs_off_to_the_cap() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, cap), Duration::ZERO);
        assert_eq!(backoff(2, cap), Duration::from_millis(500));
        assert_eq!(backoff(3, cap), Duration::from_secs(1));
        assert_eq!(backoff(5, cap), Duration::from_secs(4));
        assert_eq!(backoff(9, cap), Duration::from_secs(60));
        assert_eq!(backoff(1000, cap), Duration::from_secs(60));
        assert_eq!(backoff(4, Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[test]
    fn failures_before_any_segment_back_off_and_turn_failing_after_max_restarts() {
        let (mut l, t0, lim) = (Ladder::default(), Instant::now(), Limits { max_errors: 100, ..limits() });
        let steps: Vec<Step> =
            (0..3).map(|i| l.step(t0 + Duration::from_secs(i), RestartReason::PipelineError, false, &lim)).collect();
        assert_eq!(
            steps,
            [
                Step::Rebuild { delay: Duration::ZERO, state: State::Restarting },
                Step::Rebuild { delay: Duration::from_millis(500), state: State::Restarting },
                Step::Rebuild { delay: Duration::from_secs(1), state: State::Failing },
            ]
        );
        assert_eq!(l.consecutive_failures(), 3);
    }

    #[test]
    fn a_run_that_listed_a_segment_rebuilds_at_once_and_restarts_the_count() {
        let (mut l, t0, lim) = (Ladder::default(), Instant::now(), Limits { max_errors: 100, ..limits() });
        for i in 0..3 {
            l.step(t0 + Duration::from_secs(i), RestartReason::PipelineError, false, &lim);
        }
        let after_working_run = l.step(t0 + Duration::from_secs(10), RestartReason::Stall, true, &lim);
        assert_eq!(after_working_run, Step::Rebuild { delay: Duration::ZERO, state: State::Restarting });
        assert_eq!(l.consecutive_failures(), 1);
    }

    #[test]
    fn planned_rebuilds_are_immediate_and_count_nothing() {
        let (mut l, t0) = (Ladder::default(), Instant::now());
        for reason in [RestartReason::MonitorChanged, RestartReason::DisplayChanged, RestartReason::ConfigReloaded] {
            for _ in 0..10 {
                let step = l.step(t0, reason, false, &limits());
                assert_eq!(step, Step::Rebuild { delay: Duration::ZERO, state: State::Restarting }, "{reason:?}");
            }
        }
        assert_eq!(l.consecutive_failures(), 0);
        assert_eq!(
            l.step(t0, RestartReason::EndOfStream, false, &limits()),
            Step::Rebuild { delay: Duration::ZERO, state: State::Restarting }
        );
    }

    #[test]
    fn max_errors_within_the_window_give_up_and_older_faults_do_not_count() {
        let (mut l, t0, lim) = (Ladder::default(), Instant::now(), limits());
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Three faults, then the fourth comes 61 s after the first: only three in the window.
        for s in [0, 20, 40] {
            assert!(matches!(l.step(at(s), RestartReason::PipelineError, true, &lim), Step::Rebuild { .. }));
        }
        assert!(matches!(l.step(at(61), RestartReason::Stall, true, &lim), Step::Rebuild { .. }));
        // The fourth within 60 s of the oldest one kept (20 s).
        assert_eq!(l.step(at(80), RestartReason::EncoderFailed, true, &lim), Step::GiveUp { recent: 4 });
    }

    #[test]
    fn a_stall_is_silence_longer_than_the_timeout_since_the_last_buffer_of_this_run() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(4);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(stalled(at(4000), t0, None, timeout), None, "exactly the timeout is no stall yet");
        assert_eq!(stalled(at(4001), t0, None, timeout), Some(Duration::from_millis(4001)), "no buffer since start");
        assert_eq!(stalled(at(6000), t0, Some(at(3000)), timeout), None);
        assert_eq!(stalled(at(7500), t0, Some(at(3000)), timeout), Some(Duration::from_millis(4500)));
        let earlier_run = t0.checked_sub(Duration::from_secs(1)).unwrap();
        assert_eq!(
            stalled(at(4500), t0, Some(earlier_run), timeout),
            Some(Duration::from_millis(4500)),
            "a buffer of the run before counts from this run's start"
        );
    }

    #[test]
    fn the_watchdog_is_petted_only_while_segments_are_fresh() {
        let t0 = Instant::now();
        assert!(!segments_fresh(t0, None, 2));
        assert!(segments_fresh(t0 + Duration::from_secs(6), Some(t0), 2));
        assert!(!segments_fresh(t0 + Duration::from_millis(6001), Some(t0), 2));
    }
}
