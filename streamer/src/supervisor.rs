//! The supervisor: builds the pipeline, watches its bus and its output, and rebuilds it when
//! anything goes wrong, without a human and without giving up.
//!
//! The escalation ladder: a fault rebuilds the pipeline in process (at once the first time,
//! then backing off exponentially up to `restart_delay`); `max_errors` faults within
//! `error_window` end the process with an error so systemd starts a fresh one. A source that
//! changes (the monitor moved, went away, came back; the X server died or returned) is a
//! planned rebuild, not a fault: the slate covers whatever cannot be captured.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ds_config::StreamerConfig;
use ds_runtime::Shutdown;
use futures_util::StreamExt as _;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::{mpsc, watch};

use crate::encoder::{self, EncoderChoice};
use crate::monitor::MonitorState;
use crate::notify::Notifier;
use crate::pipeline::{self, ENC, SINK, Source};
use crate::playlist::{Playlist, PlaylistSettings, RunLocation};
use crate::status::{RestartReason, State, StatusHandle};
use crate::system::disk_usage_percent;

/// How often the supervisor samples rates, checks for stalls, collects old segments and
/// pets systemd's watchdog.
const TICK: Duration = Duration::from_millis(500);
/// A run that streamed this long was healthy: the failure count starts over.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// First back-off after repeated fast failures; doubles up to `restart_delay`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long stopping a pipeline may take before it is abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait for the monitor watcher's first answer before showing the slate.
const FIRST_MONITOR_WAIT: Duration = Duration::from_secs(3);
/// Longest slate message line.
const SLATE_TEXT_MAX: usize = 90;

/// What others may ask of the supervisor.
#[derive(Debug)]
pub enum Request {
    /// Rebuild the pipeline now (SIGUSR1, the dashboard's "restart stream").
    Restart(String),
}

/// Why the supervisor returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Shutdown,
    /// Too many faults in the error window: a fresh process should take over.
    Escalate(String),
}

/// How a run ended.
#[derive(Debug)]
struct RunEnd {
    reason: Option<RestartReason>,
    detail: String,
    /// Time the run produced segments for.
    streamed: Duration,
}

impl RunEnd {
    fn new(reason: RestartReason, detail: impl Into<String>) -> Self {
        RunEnd { reason: Some(reason), detail: detail.into(), streamed: Duration::ZERO }
    }

    fn shutdown() -> Self {
        RunEnd { reason: None, detail: String::new(), streamed: Duration::ZERO }
    }
}

/// Delay before the next rebuild after `consecutive` failures in a row: none for the first,
/// then doubling from [`FIRST_BACKOFF`] up to `cap`.
pub fn backoff(consecutive: u32, cap: Duration) -> Duration {
    if consecutive <= 1 {
        return Duration::ZERO;
    }
    FIRST_BACKOFF.saturating_mul(1 << (consecutive - 2).min(16)).min(cap)
}

pub struct Supervisor {
    pub config: watch::Receiver<Arc<StreamerConfig>>,
    pub status: StatusHandle,
    pub monitor: watch::Receiver<MonitorState>,
    pub display: String,
    pub requests: mpsc::UnboundedReceiver<Request>,
    pub shutdown: Shutdown,
    pub notifier: Notifier,
    playlist: Playlist,
    encoder: Option<EncoderChoice>,
    excluded: Vec<String>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("display", &self.display).finish_non_exhaustive()
    }
}

/// Where a run stands while it is watched.
struct RunState {
    run: RunLocation,
    started: Instant,
    /// Running time at which hlssink2 opened the current fragment.
    fragment_opened: Option<u64>,
    /// Fragments of this run closed so far: the index of the next one's file name.
    fragments: u32,
    first_segment: Option<Instant>,
    last_segment: Option<Instant>,
    /// Whether the X server was unreachable when the run was built.
    x_unavailable_at_start: bool,
}

impl Supervisor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: watch::Receiver<Arc<StreamerConfig>>,
        status: StatusHandle,
        monitor: watch::Receiver<MonitorState>,
        display: String,
        requests: mpsc::UnboundedReceiver<Request>,
        shutdown: Shutdown,
        playlist: Playlist,
    ) -> Self {
        Supervisor {
            config,
            status,
            monitor,
            display,
            requests,
            shutdown,
            notifier: Notifier::default(),
            playlist,
            encoder: None,
            excluded: Vec::new(),
        }
    }

    /// Opens the playlist of the configured output directory.
    pub fn open_playlist(config: &StreamerConfig) -> Result<Playlist, crate::playlist::PlaylistError> {
        let settings = PlaylistSettings {
            target_duration_secs: config.segment_duration,
            max_segments: config.live_streaming.max_segments as usize,
        };
        Playlist::open(&config.output_dir, settings, SystemTime::now())
    }

    pub async fn run(mut self) -> Exit {
        let exit = self.supervise().await;
        self.status.set_state(State::Stopping);
        self.notifier.stopping();
        exit
    }

    async fn supervise(&mut self) -> Exit {
        let _ =
            tokio::time::timeout(FIRST_MONITOR_WAIT, self.monitor.wait_for(|m| !matches!(m, MonitorState::Starting)))
                .await;
        loop {
            if self.shutdown.is_triggered() {
                return Exit::Shutdown;
            }
            let config = self.config.borrow_and_update().clone();
            let source = self.source();
            {
                let mut s = self.status.lock();
                s.monitor = match &source {
                    Source::Screen { monitor, .. } => Some(monitor.clone()),
                    Source::Slate { .. } => None,
                };
                s.source_problem = match &source {
                    Source::Slate { message } => Some(message.clone()),
                    Source::Screen { .. } => None,
                };
            }
            let end = match self.start_run(&config, &source).await {
                Ok((pipeline, run)) => {
                    let end = self.watch_run(&config, &pipeline, &source, run).await;
                    stop(pipeline).await;
                    end
                }
                Err(end) => end,
            };
            let Some(reason) = end.reason else { return Exit::Shutdown };
            let window = Duration::from_secs(config.error_window.into());
            self.status.record_restart(reason, &end.detail, window);
            let delay = if reason.is_fault() {
                tracing::warn!(reason = reason.as_str(), detail = %end.detail, "pipeline failed; rebuilding");
                let recent = self.status.recent_errors(window);
                if recent >= config.max_errors as usize {
                    return Exit::Escalate(format!(
                        "{recent} pipeline faults within {} s (max_errors {}); the last: {}",
                        config.error_window, config.max_errors, end.detail
                    ));
                }
                let consecutive = {
                    let mut s = self.status.lock();
                    s.consecutive_failures =
                        if end.streamed >= STABLE_AFTER { 1 } else { s.consecutive_failures.saturating_add(1) };
                    s.consecutive_failures
                };
                let failing = consecutive >= config.max_restarts.max(1);
                self.status.set_state(if failing { State::Failing } else { State::Restarting });
                backoff(consecutive, Duration::from_secs(config.restart_delay.into()))
            } else {
                tracing::info!(reason = reason.as_str(), detail = %end.detail, "rebuilding the pipeline");
                self.status.set_state(State::Restarting);
                Duration::ZERO
            };
            self.update_systemd_status(&config);
            if !delay.is_zero() && !self.shutdown.sleep(delay).await {
                return Exit::Shutdown;
            }
        }
    }

    /// What to show: the selected monitor if it is there, else the slate saying why.
    fn source(&self) -> Source {
        let slate = |why: &str| {
            let mut message = format!("Display unavailable: {why}");
            if message.chars().count() > SLATE_TEXT_MAX {
                message = message.chars().take(SLATE_TEXT_MAX - 1).chain(['…']).collect();
            }
            Source::Slate { message }
        };
        match &*self.monitor.borrow() {
            MonitorState::Available(m) => Source::Screen { display: self.display.clone(), monitor: m.clone() },
            MonitorState::Missing { reason } | MonitorState::XUnavailable { reason } => slate(reason),
            MonitorState::Starting => slate("connecting to the X display"),
        }
    }

    async fn choose_encoder(&mut self, config: &Arc<StreamerConfig>) -> Result<EncoderChoice, RunEnd> {
        if let Some(e) = &self.encoder {
            return Ok(e.clone());
        }
        let (cfg, excluded) = (Arc::clone(config), self.excluded.clone());
        let chosen = tokio::task::spawn_blocking(move || encoder::select_encoder(&cfg, &excluded)).await;
        match chosen {
            Ok(Ok(choice)) => {
                self.status.lock().encoder = Some(choice.clone());
                self.encoder = Some(choice.clone());
                Ok(choice)
            }
            Ok(Err(e)) => {
                // Never give up for good: the next attempt tries every encoder again.
                self.excluded.clear();
                Err(RunEnd::new(RestartReason::EncoderFailed, e.to_string()))
            }
            Err(e) => Err(RunEnd::new(RestartReason::PipelineError, format!("encoder selection panicked: {e}"))),
        }
    }

    async fn start_run(
        &mut self,
        config: &Arc<StreamerConfig>,
        source: &Source,
    ) -> Result<(gst::Pipeline, RunState), RunEnd> {
        let encoder = self.choose_encoder(config).await?;
        let run = self
            .playlist
            .begin_run(SystemTime::now())
            .map_err(|e| RunEnd::new(RestartReason::PipelineError, e.to_string()))?;
        let description = pipeline::describe(source, &encoder, config, &run.location);
        tracing::debug!(pipeline = %description, "building");
        let pipeline = pipeline::build(&description, &self.status.flow, !source.is_slate())
            .map_err(|e| RunEnd::new(RestartReason::PipelineError, e.to_string()))?;
        self.status.flow.reset_picture();
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let detail = first_error(&pipeline).unwrap_or_else(|| (false, e.to_string()));
            stop(pipeline).await;
            return Err(self.classify_error(detail.0, detail.1));
        }
        tracing::info!(
            source = %match source { Source::Screen { monitor, .. } => monitor.to_string(), Source::Slate { message } => message.clone() },
            encoder = %encoder.name,
            run = run.run,
            "pipeline started"
        );
        let x_unavailable_at_start = matches!(*self.monitor.borrow(), MonitorState::XUnavailable { .. });
        Ok((
            pipeline,
            RunState {
                run,
                started: Instant::now(),
                fragment_opened: None,
                fragments: 0,
                first_segment: None,
                last_segment: None,
                x_unavailable_at_start,
            },
        ))
    }

    /// An error from the encoder takes the encoder out of the running for this process.
    fn classify_error(&mut self, from_encoder: bool, detail: String) -> RunEnd {
        if from_encoder && let Some(e) = self.encoder.take() {
            tracing::warn!(encoder = %e.name, "encoder failed while running; the next candidate takes over");
            self.excluded.push(e.name);
            return RunEnd::new(RestartReason::EncoderFailed, detail);
        }
        RunEnd::new(RestartReason::PipelineError, detail)
    }

    async fn watch_run(
        &mut self,
        config: &Arc<StreamerConfig>,
        pipeline: &gst::Pipeline,
        source: &Source,
        mut run: RunState,
    ) -> RunEnd {
        enum Event {
            Bus(Option<gst::Message>),
            Tick,
            Monitor,
            Config,
            Request(Option<Request>),
            Shutdown,
        }
        let Some(bus) = pipeline.bus() else {
            return RunEnd::new(RestartReason::PipelineError, "the pipeline has no bus");
        };
        let mut messages = bus.stream();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stall_timeout = config.stall_timeout();
        loop {
            let event = tokio::select! {
                m = messages.next() => Event::Bus(m),
                _ = tick.tick() => Event::Tick,
                Ok(()) = self.monitor.changed() => Event::Monitor,
                Ok(()) = self.config.changed() => Event::Config,
                r = self.requests.recv() => Event::Request(r),
                () = self.shutdown.wait() => Event::Shutdown,
            };
            let end = match event {
                Event::Bus(None) => Some(RunEnd::new(RestartReason::PipelineError, "the pipeline's bus closed")),
                Event::Bus(Some(msg)) => self.on_message(&msg, pipeline, source, &mut run),
                Event::Tick => self.on_tick(config, &run, stall_timeout, source),
                Event::Monitor => {
                    let next = self.source();
                    (next != *source).then(|| {
                        // The X server going or coming back is a display change; anything
                        // else (moved, resized, unplugged, back) a monitor change.
                        let x_gone = matches!(*self.monitor.borrow(), MonitorState::XUnavailable { .. });
                        let reason = if x_gone || run.x_unavailable_at_start {
                            RestartReason::DisplayChanged
                        } else {
                            RestartReason::MonitorChanged
                        };
                        let detail = match &next {
                            Source::Screen { monitor, .. } => format!("capturing {monitor}"),
                            Source::Slate { message } => message.clone(),
                        };
                        RunEnd::new(reason, detail)
                    })
                }
                Event::Config => {
                    self.encoder = None;
                    self.excluded.clear();
                    Some(RunEnd::new(RestartReason::ConfigReloaded, "configuration reloaded"))
                }
                Event::Request(Some(Request::Restart(why))) => Some(RunEnd::new(RestartReason::Requested, why)),
                Event::Request(None) => None,
                Event::Shutdown => Some(RunEnd::shutdown()),
            };
            if let Some(mut end) = end {
                end.streamed = run.last_segment.zip(run.first_segment).map_or(Duration::ZERO, |(l, f)| l - f);
                return end;
            }
        }
    }

    fn on_message(
        &mut self,
        msg: &gst::Message,
        pipeline: &gst::Pipeline,
        source: &Source,
        run: &mut RunState,
    ) -> Option<RunEnd> {
        use gst::MessageView;
        match msg.view() {
            MessageView::Error(err) => {
                let (from_encoder, detail) = describe_error(err);
                tracing::warn!(error = %detail, "pipeline error");
                Some(self.classify_error(from_encoder, detail))
            }
            MessageView::Eos(_) => Some(RunEnd::new(RestartReason::EndOfStream, "the pipeline ended its stream")),
            MessageView::StateChanged(sc) if msg.src() == Some(pipeline.upcast_ref()) => {
                let unexpected = sc.old() == gst::State::Playing && sc.current() < gst::State::Playing;
                unexpected.then(|| {
                    RunEnd::new(
                        RestartReason::UnexpectedStateChange,
                        format!("pipeline went from PLAYING to {:?}", sc.current()),
                    )
                })
            }
            MessageView::Warning(w) => {
                tracing::warn!(element = %msg.src().map(|s| s.path_string()).unwrap_or_default(), warning = %w.error(), "pipeline warning");
                None
            }
            MessageView::Element(e) => {
                let s = e.structure()?;
                let running_time = s.get::<u64>("running-time").ok();
                match s.name().as_str() {
                    "splitmuxsink-fragment-opened" => run.fragment_opened = running_time,
                    "splitmuxsink-fragment-closed" => self.on_fragment_closed(run, running_time, source),
                    _ => {}
                }
                None
            }
            _ => None,
        }
    }

    /// hlssink2 closed a segment: list it. Its file name follows from the run's location
    /// pattern and the fragment count (hlssink2 in GStreamer 1.22 reports no location).
    fn on_fragment_closed(&mut self, run: &mut RunState, closed_at: Option<u64>, source: &Source) {
        let path = run.run.segment_path(run.fragments);
        run.fragments += 1;
        let duration = match (run.fragment_opened.take(), closed_at) {
            (Some(open), Some(close)) if close > open => (close - open) as f64 / 1e9,
            _ => {
                tracing::warn!(path = %path.display(), "segment without timing; not listed");
                return;
            }
        };
        let now = SystemTime::now();
        if let Err(e) = self.playlist.add_segment(&path, duration, now) {
            tracing::warn!(error = %e, "segment not listed");
            return;
        }
        let at = Instant::now();
        run.first_segment.get_or_insert(at);
        run.last_segment = Some(at);
        self.status.set_state(if source.is_slate() { State::Slate } else { State::Streaming });
        let config = self.config.borrow().clone();
        self.relieve_disk_pressure(&config, now);
        {
            let mut s = self.status.lock();
            s.first_segment_at.get_or_insert(at);
            s.playlist = Some(self.playlist.stats(now));
            s.playlist_at = Some(at);
        }
        self.notifier.ready();
        self.notifier.watchdog();
        self.update_systemd_status(&config);
    }

    /// Past `cleanup_threshold_percent`, files outside the window go at once; past the
    /// emergency threshold the window shrinks to `emergency_segments` too.
    fn relieve_disk_pressure(&mut self, config: &StreamerConfig, now: SystemTime) {
        let Some(used) = disk_usage_percent(&config.output_dir) else { return };
        let ls = &config.live_streaming;
        let pressure = if used >= f64::from(ls.emergency_cleanup_threshold_percent) {
            let _ = self.playlist.set_window(ls.emergency_segments as usize, now);
            Some(format!(
                "emergency: output filesystem {used:.0}% full (>= {}%); window shrunk to {} segments",
                ls.emergency_cleanup_threshold_percent, ls.emergency_segments
            ))
        } else if used >= f64::from(ls.cleanup_threshold_percent) {
            let _ = self.playlist.set_window(ls.max_segments as usize, now);
            Some(format!("cleanup: output filesystem {used:.0}% full (>= {}%)", ls.cleanup_threshold_percent))
        } else {
            None
        };
        if pressure.is_some() {
            match self.playlist.emergency_cleanup(now) {
                Ok(freed) if freed > 0 => tracing::warn!(
                    bytes = freed,
                    used_percent = used,
                    "disk pressure: removed segments outside the window"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "disk pressure cleanup failed"),
            }
        } else if self.status.lock().disk_pressure.is_some() {
            let _ = self.playlist.set_window(ls.max_segments as usize, now);
        }
        self.status.lock().disk_pressure = pressure;
    }

    fn on_tick(
        &mut self,
        config: &StreamerConfig,
        run: &RunState,
        stall_timeout: Duration,
        _source: &Source,
    ) -> Option<RunEnd> {
        let now = Instant::now();
        self.status.rates.sample(now, &self.status.flow);
        if let Err(e) = self.playlist.collect_garbage(SystemTime::now()) {
            tracing::warn!(error = %e, "cannot delete expired segments");
        }
        // Segments keep coming: tell systemd's watchdog.
        let fresh = Duration::from_secs(u64::from(config.segment_duration) * 2 + 2);
        if run.last_segment.is_some_and(|t| now.duration_since(t) <= fresh) {
            self.notifier.watchdog();
        }
        let last_buffer = self.status.flow.last_buffer().filter(|t| *t >= run.started).unwrap_or(run.started);
        let silent = now.duration_since(last_buffer);
        (silent > stall_timeout).then(|| {
            RunEnd::new(
                RestartReason::Stall,
                format!(
                    "no encoded video for {:.1} s (stall timeout {} s)",
                    silent.as_secs_f64(),
                    stall_timeout.as_secs()
                ),
            )
        })
    }

    fn update_systemd_status(&mut self, config: &StreamerConfig) {
        let line = {
            let s = self.status.lock();
            let what = match (&s.monitor, &s.source_problem) {
                (Some(m), _) => m.to_string(),
                (None, Some(p)) => p.clone(),
                (None, None) => String::new(),
            };
            let enc = s.encoder.as_ref().map_or("no encoder", |e| e.name.as_str());
            format!(
                "{}: {what} via {enc} at {}x{} {} fps; {} restarts",
                s.state.as_str(),
                config.width,
                config.height,
                config.fps,
                s.restart_count
            )
        };
        self.notifier.status(&line);
    }
}

/// The text of an error message with the element path; whether the encoder sent it.
fn describe_error(err: &gst::message::Error) -> (bool, String) {
    let src = err.src();
    let path = src.map(|s| s.path_string().to_string()).unwrap_or_default();
    let from_encoder = src.is_some_and(|s| s.name() == ENC || s.path_string().contains(&format!("/{ENC}")));
    let debug = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
    let from_sink = src.is_some_and(|s| s.path_string().contains(&format!("/{SINK}")));
    let hint = if from_sink { "; is the output directory there and writable?" } else { "" };
    (from_encoder, format!("{path}: {}{debug}{hint}", err.error()))
}

/// The first error waiting on a pipeline's bus, if any (after a failed state change).
fn first_error(pipeline: &gst::Pipeline) -> Option<(bool, String)> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(describe_error(e));
        }
    }
    None
}

/// Stops a pipeline (to NULL) off the async threads, abandoning it if it hangs.
async fn stop(pipeline: gst::Pipeline) {
    let stopping = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null));
    match tokio::time::timeout(STOP_TIMEOUT, stopping).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "pipeline did not stop cleanly"),
        Ok(Err(e)) => tracing::warn!(error = %e, "stopping the pipeline panicked"),
        Err(_) => tracing::error!(timeout_s = STOP_TIMEOUT.as_secs(), "pipeline did not stop in time; abandoned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
