//! The supervisor's public state: what it is doing, why it last restarted, which encoder and
//! monitor are in use, and the error history the escalation ladder counts. The HTTP API,
//! `/metrics` and systemd's STATUS= line all read this one record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use ds_wire::health::{RestartEvent, RestartReason, State};

use crate::encoder::EncoderChoice;
use crate::flow::{FlowCounters, RateMeter};
use crate::monitor::Monitor;
use crate::playlist::PlaylistStats;

/// The mutable record.
#[derive(Debug)]
pub struct Status {
    pub state: State,
    pub state_since: Instant,
    pub encoder: Option<EncoderChoice>,
    pub monitor: Option<Monitor>,
    /// Why the monitor is not captured (slate), if it is not.
    pub source_problem: Option<String>,
    pub restart_count: u64,
    pub restarts: VecDeque<RestartEvent>,
    /// Fault times within the error window, for the escalation ladder.
    pub fault_times: VecDeque<Instant>,
    pub total_errors: u64,
    pub last_error: Option<String>,
    /// Failed runs in a row, counting from the last run that listed a segment.
    pub consecutive_failures: u32,
    /// A reason the stream is under disk pressure, if it is.
    pub disk_pressure: Option<String>,
    /// Process id of the running capture worker.
    pub worker_pid: Option<u32>,
    /// The playlist as last written (`None` until it was opened).
    pub playlist: Option<PlaylistStats>,
    /// When `playlist` was taken, to age its newest segment.
    pub playlist_at: Option<Instant>,
    history_size: usize,
}

/// Cheap to clone; shared by the supervisor, the probes and the HTTP server.
#[derive(Clone, Debug)]
pub struct StatusHandle {
    inner: Arc<Mutex<Status>>,
    pub flow: Arc<FlowCounters>,
    pub rates: Arc<RateMeter>,
    pub started: Instant,
    pub started_at: jiff::Timestamp,
}

/// Window over which fps and bitrate are averaged.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

impl StatusHandle {
    pub fn new(history_size: usize) -> Self {
        let now = Instant::now();
        StatusHandle {
            inner: Arc::new(Mutex::new(Status {
                state: State::Starting,
                state_since: now,
                encoder: None,
                monitor: None,
                source_problem: None,
                restart_count: 0,
                restarts: VecDeque::new(),
                fault_times: VecDeque::new(),
                total_errors: 0,
                last_error: None,
                consecutive_failures: 0,
                disk_pressure: None,
                worker_pid: None,
                playlist: None,
                playlist_at: None,
                history_size: history_size.max(1),
            })),
            flow: Arc::new(FlowCounters::default()),
            rates: Arc::new(RateMeter::new(RATE_WINDOW)),
            started: now,
            started_at: jiff::Timestamp::now(),
        }
    }

    /// Locks the record; a panic elsewhere never makes the status unreadable.
    pub fn lock(&self) -> MutexGuard<'_, Status> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_state(&self, state: State) {
        let mut s = self.lock();
        if s.state != state {
            tracing::info!(from = s.state.as_str(), to = state.as_str(), "state");
            s.state = state;
            s.state_since = Instant::now();
        }
    }

    /// Records a rebuild; faults also count against the error window.
    pub fn record_restart(&self, reason: RestartReason, detail: &str, error_window: Duration) {
        let now = Instant::now();
        let mut s = self.lock();
        s.restart_count += 1;
        if s.restarts.len() == s.history_size {
            s.restarts.pop_front();
        }
        s.restarts.push_back(RestartEvent { at: jiff::Timestamp::now(), reason, detail: detail.to_owned() });
        if reason.is_fault() {
            s.total_errors += 1;
            s.last_error = Some(format!("{}: {detail}", reason.as_str()));
            s.fault_times.push_back(now);
        }
        while s.fault_times.front().is_some_and(|t| now.duration_since(*t) > error_window) {
            s.fault_times.pop_front();
        }
    }

    /// Faults within the error window.
    pub fn recent_errors(&self, error_window: Duration) -> usize {
        let now = Instant::now();
        self.lock().fault_times.iter().filter(|t| now.duration_since(**t) <= error_window).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_count_planned_rebuilds_do_not_and_history_is_bounded() {
        let h = StatusHandle::new(3);
        let window = Duration::from_secs(600);
        h.record_restart(RestartReason::PipelineError, "x264enc0: internal data stream error", window);
        h.record_restart(RestartReason::MonitorChanged, "DUMMY1 moved", window);
        h.record_restart(RestartReason::Stall, "no buffer for 4 s", window);
        h.record_restart(RestartReason::Requested, "SIGUSR1", window);
        let s = h.lock();
        assert_eq!(s.restart_count, 4);
        assert_eq!(s.total_errors, 2);
        assert_eq!(s.restarts.len(), 3, "history keeps the newest entries only");
        assert_eq!(s.restarts[0].reason, RestartReason::MonitorChanged);
        assert_eq!(s.last_error.as_deref(), Some("stall: no buffer for 4 s"));
        drop(s);
        assert_eq!(h.recent_errors(window), 2);
    }
}
