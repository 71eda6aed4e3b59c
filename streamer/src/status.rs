//! The supervisor's public state: what it is doing, why it last restarted, which encoder and
//! monitor are in use, and the escalation ladder whose fault window the health API's
//! `recent_errors` reads (one count, on the supervisor's monotonic clock: a step of the wall
//! clock neither forgets nor invents faults). The HTTP API, `/metrics` and systemd's STATUS=
//! line all read this one record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use ds_wire::health::{RestartEvent, RestartReason, State};

use crate::encoder::EncoderChoice;
use crate::flow::{FlowCounters, RateMeter};
use crate::ladder::Ladder;
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
    /// The escalation ladder: the supervisor steps it, the health API counts its fault window.
    pub ladder: Ladder,
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
                ladder: Ladder::default(),
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

    /// Records a rebuild in the public history; the ladder counts faults (see [`Ladder::step`]).
    pub fn record_restart(&self, reason: RestartReason, detail: &str) {
        let mut s = self.lock();
        s.restart_count += 1;
        if s.restarts.len() == s.history_size {
            s.restarts.pop_front();
        }
        s.restarts.push_back(RestartEvent { at: jiff::Timestamp::now(), reason, detail: detail.to_owned() });
        if reason.is_fault() {
            s.total_errors += 1;
            s.last_error = Some(format!("{}: {detail}", reason.as_str()));
        }
    }

    /// Faults within the error window, as the ladder counts them, on its clock.
    pub fn recent_errors(&self, error_window: Duration) -> usize {
        self.lock().ladder.recent_faults(tokio::time::Instant::now(), error_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_count_planned_rebuilds_do_not_and_history_is_bounded() {
        let h = StatusHandle::new(3);
        h.record_restart(RestartReason::PipelineError, "x264enc0: internal data stream error");
        h.record_restart(RestartReason::MonitorChanged, "DUMMY1 moved");
        h.record_restart(RestartReason::Stall, "no buffer for 4 s");
        h.record_restart(RestartReason::Requested, "SIGUSR1");
        let s = h.lock();
        assert_eq!(s.restart_count, 4);
        assert_eq!(s.total_errors, 2);
        assert_eq!(s.restarts.len(), 3, "history keeps the newest entries only");
        assert_eq!(s.restarts[0].reason, RestartReason::MonitorChanged);
        assert_eq!(s.last_error.as_deref(), Some("stall: no buffer for 4 s"));
    }

    /// The health API's `recent_errors` is the ladder's count on the supervisor's monotonic
    /// clock (here tokio's paused clock): faults leave it when the ladder's window passes them,
    /// whatever the wall clock does. It used to keep a second window of its own.
    #[tokio::test(start_paused = true)]
    async fn recent_errors_is_the_ladders_fault_window_on_its_clock() {
        use tokio::time::{Instant, advance};
        let h = StatusHandle::new(10);
        let limits = crate::ladder::Limits {
            max_errors: 10,
            error_window: Duration::from_secs(60),
            max_restarts: 3,
            restart_delay: Duration::from_secs(10),
        };
        for reason in [RestartReason::PipelineError, RestartReason::Requested, RestartReason::Stall] {
            h.record_restart(reason, "x");
            h.lock().ladder.step(Instant::now(), reason, false, &limits);
            advance(Duration::from_secs(20)).await;
        }
        assert_eq!(h.recent_errors(limits.error_window), 2, "two faults within the last 60 s");
        advance(Duration::from_secs(21)).await;
        assert_eq!(h.recent_errors(limits.error_window), 1, "the first fault left the window after 61 s");
        advance(Duration::from_secs(60)).await;
        assert_eq!(h.recent_errors(limits.error_window), 0);
    }
}
