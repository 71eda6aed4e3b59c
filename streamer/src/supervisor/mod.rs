//! The supervisor: builds the pipeline, watches its bus and its output, and rebuilds it when
//! anything goes wrong, without a human and without giving up.
//!
//! Its rules (when to rebuild, how long to back off, when to give up, what a stall is) are in
//! [`crate::ladder`], its response to a filling disk in [`crate::pressure`]; this module runs
//! them. A source that changes (the monitor moved, went away, came back; the X server died or
//! returned) is a planned rebuild, not a fault: the slate covers whatever cannot be captured.
//!
//! The supervisor also cuts the HLS stream: every access unit of the current worker's
//! [feed](crate::feed) goes through the [`Segmenter`]; parts are published at once to the
//! low-latency state ([`LiveHls`]), each finished segment is written whole under the name the
//! [`Playlist`] hands out and listed, and when a segment is due the encoder is asked for a
//! keyframe. A run that ends lists what it had cut, so parts already announced stay true.
//!
//! The supervisor keeps its time on tokio's clock and starts workers through
//! [`Workers`], so its loop is tested under paused time with scripted workers.

use std::sync::Arc;
use std::time::Duration;

use ds_config::StreamerConfig;
use ds_runtime::Shutdown;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::encoder::EncoderChoice;
use crate::feed::{AccessUnit, Feed};
use crate::ladder::{self, Limits, Step};
use crate::live::{LiveHls, Upcoming};
use crate::monitor::{self, MonitorState, Selection};
use crate::notify::Notifier;
use crate::pipeline::{self, Sink, Source};
use crate::playlist::{Playlist, PlaylistSettings, RunLocation};
use crate::pressure;
use crate::segmenter::{Output, Segmenter, SegmenterSettings};
use crate::status::{RestartReason, State, StatusHandle};
use crate::worker::{self, Event, Worker as _, Workers};

#[cfg(test)]
mod tests;

/// How often the supervisor samples rates, checks for stalls, collects old segments and
/// pets systemd's watchdog.
const TICK: Duration = Duration::from_millis(500);
/// How long a new worker may take to report its pipeline playing.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// When a failed worker's display is changing (an X server that died takes its capture
/// process with it a moment before the watcher sees it), how long to let the watcher catch up.
const SOURCE_SETTLE: Duration = Duration::from_millis(2500);
/// Longest look at the display after a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for the monitor watcher's first answer before showing the slate.
const FIRST_MONITOR_WAIT: Duration = Duration::from_secs(3);
/// Longest slate message line.
const SLATE_TEXT_MAX: usize = 90;

/// What others may ask of the supervisor.
#[derive(Debug)]
pub enum Request {
    /// Rebuild the pipeline now (SIGUSR1, the dashboard's "restart stream").
    Restart(String),
    /// Delete every segment outside the playlist window now (SIGUSR2, the dashboard's
    /// "clean up"); the playlist stays valid.
    Cleanup,
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
    /// Whether the run listed a segment: a pipeline that worked, whatever ended it later.
    produced: bool,
}

impl RunEnd {
    fn new(reason: RestartReason, detail: impl Into<String>) -> Self {
        RunEnd { reason: Some(reason), detail: detail.into(), produced: false }
    }

    fn shutdown() -> Self {
        RunEnd { reason: None, detail: String::new(), produced: false }
    }
}

/// Whether a watcher state asks for something else than `current` shows.
fn differs(state: &MonitorState, current: &Source) -> bool {
    match (state, current) {
        (MonitorState::Available(m), Source::Screen { monitor, .. }) => m != monitor,
        (MonitorState::Available(_), Source::Slate { .. }) => true,
        (MonitorState::Missing { .. } | MonitorState::XUnavailable { .. }, Source::Screen { .. }) => true,
        (MonitorState::Missing { .. } | MonitorState::XUnavailable { .. }, Source::Slate { .. }) => false,
        (MonitorState::Starting, _) => false,
    }
}

/// A direct look at the display: which state the selected monitor is in now.
type LookAtDisplay = fn(&str, &Selection) -> MonitorState;

/// Asks the X server for its monitors and resolves the selection among them.
fn look_at_display(display: &str, selection: &Selection) -> MonitorState {
    match monitor::list_monitors(display) {
        Ok(monitors) => selection.resolve(display, &monitors),
        Err(e) => MonitorState::XUnavailable { reason: e.to_string() },
    }
}

/// The playlist's clock: monotonic (segment lifetimes must not follow a step of the wall clock),
/// and tokio's, so a paused test clock drives it too.
fn playlist_now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Opens the playlist of the configured output directory.
pub fn open_playlist(config: &StreamerConfig) -> Result<Playlist, crate::playlist::PlaylistError> {
    let settings = PlaylistSettings {
        target_duration_secs: config.segment_duration,
        max_segments: config.live_streaming.max_segments as usize,
    };
    Playlist::open(&config.output_dir, settings, playlist_now())
}

pub struct Supervisor<W: Workers> {
    pub config: watch::Receiver<Arc<StreamerConfig>>,
    pub status: StatusHandle,
    pub monitor: watch::Receiver<MonitorState>,
    pub display: String,
    pub requests: mpsc::UnboundedReceiver<Request>,
    pub shutdown: Shutdown,
    pub notifier: Notifier,
    /// Starts a worker for every pipeline run and for choosing the encoder.
    workers: W,
    look: LookAtDisplay,
    playlist: Playlist,
    encoder: Option<EncoderChoice>,
    excluded: Vec<String>,
    feed: Feed,
    units: broadcast::Receiver<Arc<AccessUnit>>,
    segmenter: Segmenter,
    live: LiveHls,
}

impl<W: Workers> std::fmt::Debug for Supervisor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("display", &self.display).finish_non_exhaustive()
    }
}

/// Where a run stands while it is watched.
struct RunState {
    run: RunLocation,
    started: Instant,
    first_segment: Option<Instant>,
    last_segment: Option<Instant>,
    /// Whether the X server was unreachable when the run was built.
    x_unavailable_at_start: bool,
    /// The worker's counters at its previous report.
    reported: (u64, u64),
    /// The last encoded buffer the worker reported.
    last_buffer: Option<Instant>,
    /// Feed units of runs up to this one came from earlier workers.
    feed_floor: u64,
    /// The index of the run's next segment.
    next_index: u32,
}

impl RunState {
    fn next_path(&self) -> std::path::PathBuf {
        self.run.segment_path(self.next_index)
    }
}

impl<W: Workers> Supervisor<W> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: watch::Receiver<Arc<StreamerConfig>>,
        status: StatusHandle,
        monitor: watch::Receiver<MonitorState>,
        display: String,
        requests: mpsc::UnboundedReceiver<Request>,
        shutdown: Shutdown,
        playlist: Playlist,
        workers: W,
        feed: Feed,
        live: LiveHls,
    ) -> Self {
        let settings = SegmenterSettings {
            segment: Duration::from_secs(config.borrow().segment_duration.into()),
            part: live.timing().nominal,
            part_max: live.timing().target,
        };
        live.update(playlist.window(), None);
        Supervisor {
            config,
            status,
            monitor,
            display,
            requests,
            shutdown,
            notifier: Notifier::default(),
            workers,
            look: look_at_display,
            playlist,
            encoder: None,
            excluded: Vec::new(),
            units: feed.subscribe(),
            feed,
            segmenter: Segmenter::new(settings),
            live,
        }
    }

    /// Looks at the display with `look` instead of asking the X server (for tests).
    #[cfg(test)]
    fn looking_with(mut self, look: LookAtDisplay) -> Self {
        self.look = look;
        self
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
                Ok((worker, run)) => self.watch_run(&config, worker, &source, run).await,
                Err(end) => {
                    self.publish_live(None);
                    end
                }
            };
            let Some(reason) = end.reason else { return Exit::Shutdown };
            let limits = Limits::from_config(&config);
            // The status keeps the public record (history) and the ladder, which decides on the
            // supervisor's clock and whose fault window the health API reports.
            self.status.record_restart(reason, &end.detail);
            if reason.is_fault() {
                tracing::warn!(reason = reason.as_str(), detail = %end.detail, "pipeline failed; rebuilding");
            } else {
                tracing::info!(reason = reason.as_str(), detail = %end.detail, "rebuilding the pipeline");
            }
            let step = self.status.lock().ladder.step(Instant::now(), reason, end.produced, &limits);
            let delay = match step {
                Step::GiveUp { recent } => {
                    return Exit::Escalate(format!(
                        "{recent} pipeline faults within {} s (max_errors {}); the last: {}",
                        config.error_window, config.max_errors, end.detail
                    ));
                }
                Step::Rebuild { delay, state } => {
                    let mut s = self.status.lock();
                    s.consecutive_failures = s.ladder.consecutive_failures();
                    drop(s);
                    self.status.set_state(state);
                    delay
                }
            };
            self.update_systemd_status(&config);
            if !delay.is_zero() && !self.shutdown.sleep(delay).await {
                return Exit::Shutdown;
            }
        }
    }

    /// What to show: the selected monitor if it is there, else the slate saying why.
    fn source(&self) -> Source {
        self.source_for(&self.monitor.borrow())
    }

    fn source_for(&self, state: &MonitorState) -> Source {
        let slate = |why: &str| {
            let mut message = format!("Display unavailable: {why}");
            if message.chars().count() > SLATE_TEXT_MAX {
                message = message.chars().take(SLATE_TEXT_MAX - 1).chain(['…']).collect();
            }
            Source::Slate { message }
        };
        match state {
            MonitorState::Available(m) => Source::Screen { display: self.display.clone(), monitor: m.clone() },
            MonitorState::Missing { reason } | MonitorState::XUnavailable { reason } => slate(reason),
            MonitorState::Starting => slate("connecting to the X display"),
        }
    }

    /// A worker failed: if the display is changing under it (monitor unplugged, X server
    /// gone), that is a source change, not a fault. The watcher may lag a moment behind, so
    /// look at the display directly and wait for the watcher only when it is changing.
    async fn explain_failure(
        &mut self,
        config: &StreamerConfig,
        source: &Source,
        run: &RunState,
        fault: RunEnd,
    ) -> RunEnd {
        if let Some(change) = self.source_change(source, run) {
            return change;
        }
        let (display, selection, look) = (self.display.clone(), Selection::from_config(config), self.look);
        let look = tokio::task::spawn_blocking(move || look(&display, &selection));
        let now = match tokio::time::timeout(PROBE_TIMEOUT, look).await {
            Ok(Ok(state)) => state,
            // No answer in time: a hung X server.
            _ => MonitorState::XUnavailable { reason: "the X server does not answer".into() },
        };
        if self.source_for(&now) == *source {
            return fault;
        }
        let _ = tokio::time::timeout(SOURCE_SETTLE, self.monitor.wait_for(|s| differs(s, source))).await;
        self.source_change(source, run).unwrap_or(fault)
    }

    async fn choose_encoder(&mut self, config: &Arc<StreamerConfig>) -> Result<EncoderChoice, RunEnd> {
        if let Some(e) = &self.encoder {
            return Ok(e.clone());
        }
        match self.workers.select_encoder(config, &self.excluded).await {
            Ok(choice) => {
                self.status.lock().encoder = Some(choice.clone());
                self.encoder = Some(choice.clone());
                Ok(choice)
            }
            Err(e) => {
                // Never give up for good: the next attempt tries every encoder again.
                self.excluded.clear();
                Err(RunEnd::new(RestartReason::EncoderFailed, e))
            }
        }
    }

    async fn start_run(
        &mut self,
        config: &Arc<StreamerConfig>,
        source: &Source,
    ) -> Result<(W::Worker, RunState), RunEnd> {
        let encoder = self.choose_encoder(config).await?;
        let run = self
            .playlist
            .begin_run(playlist_now())
            .map_err(|e| RunEnd::new(RestartReason::PipelineError, e.to_string()))?;
        let description = pipeline::describe(source, &encoder, config, Sink::Feed);
        tracing::debug!(pipeline = %description, "starting");
        let request = worker::Request::Run { description, sample_picture: !source.is_slate() };
        let feed_floor = self.feed.runs_started();
        self.publish_live(Some((&run, 0)));
        let mut worker =
            self.workers.start(&request).await.map_err(|e| {
                RunEnd::new(RestartReason::PipelineError, format!("cannot start the capture process: {e}"))
            })?;
        self.status.flow.reset_picture();
        self.status.lock().worker_pid = worker.pid();
        match tokio::time::timeout(START_TIMEOUT, worker.next()).await {
            Ok(Some(Event::Playing)) => {}
            Ok(Some(Event::Error { from_encoder, detail })) => {
                worker.stop().await;
                return Err(self.classify_error(from_encoder, detail));
            }
            Ok(Some(other)) => {
                worker.stop().await;
                return Err(RunEnd::new(RestartReason::PipelineError, format!("unexpected first report {other:?}")));
            }
            Ok(None) => {
                let detail = worker.end_detail().await;
                return Err(RunEnd::new(RestartReason::PipelineError, detail));
            }
            Err(_) => {
                worker.stop().await;
                return Err(RunEnd::new(
                    RestartReason::PipelineError,
                    format!("the pipeline did not start within {} s", START_TIMEOUT.as_secs()),
                ));
            }
        }
        tracing::info!(
            source = %match source { Source::Screen { monitor, .. } => monitor.to_string(), Source::Slate { message } => message.clone() },
            encoder = %encoder.name,
            run = run.run,
            pid = worker.pid(),
            "pipeline started"
        );
        let x_unavailable_at_start = matches!(*self.monitor.borrow(), MonitorState::XUnavailable { .. });
        let now = Instant::now();
        Ok((
            worker,
            RunState {
                run,
                started: now,
                first_segment: None,
                last_segment: None,
                x_unavailable_at_start,
                reported: (0, 0),
                last_buffer: None,
                feed_floor,
                next_index: 0,
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
        mut worker: W::Worker,
        source: &Source,
        mut run: RunState,
    ) -> RunEnd {
        enum Wake {
            Worker(Option<Event>),
            Unit(Result<Arc<AccessUnit>, broadcast::error::RecvError>),
            Tick,
            Monitor,
            Config,
            Request(Option<Request>),
            Shutdown,
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stall_timeout = config.stall_timeout();
        let mut end = loop {
            let wake = tokio::select! {
                e = worker.next() => Wake::Worker(e),
                u = self.units.recv() => Wake::Unit(u),
                _ = tick.tick() => Wake::Tick,
                Ok(()) = self.monitor.changed() => Wake::Monitor,
                Ok(()) = self.config.changed() => Wake::Config,
                r = self.requests.recv() => Wake::Request(r),
                () = self.shutdown.wait() => Wake::Shutdown,
            };
            let end = match wake {
                Wake::Worker(None) => {
                    let detail = worker.end_detail().await;
                    let fault = RunEnd::new(RestartReason::PipelineError, detail);
                    Some(self.explain_failure(config, source, &run, fault).await)
                }
                Wake::Worker(Some(event)) => match self.on_event(event, &mut run) {
                    Some(end) if end.reason.is_some_and(RestartReason::is_fault) => {
                        Some(self.explain_failure(config, source, &run, end).await)
                    }
                    other => other,
                },
                Wake::Unit(Ok(unit)) => {
                    if unit.run > run.feed_floor {
                        self.on_unit(&unit, source, &mut run);
                    }
                    None
                }
                Wake::Unit(Err(broadcast::error::RecvError::Lagged(lost))) => {
                    // A hole in the stream: end the segment before it, resume at a keyframe.
                    tracing::warn!(lost, "the segmenter fell behind the feed; the stream resumes at the next keyframe");
                    self.flush_segment(source, &mut run);
                    self.playlist.mark_discontinuity();
                    None
                }
                Wake::Unit(Err(broadcast::error::RecvError::Closed)) => None,
                Wake::Tick => self.on_tick(config, &run, stall_timeout),
                Wake::Monitor => self.source_change(source, &run),
                Wake::Config => {
                    self.encoder = None;
                    self.excluded.clear();
                    Some(RunEnd::new(RestartReason::ConfigReloaded, "configuration reloaded"))
                }
                Wake::Request(Some(Request::Restart(why))) => Some(RunEnd::new(RestartReason::Requested, why)),
                Wake::Request(Some(Request::Cleanup)) => {
                    let now = playlist_now();
                    match self.playlist.emergency_cleanup(now) {
                        Ok(freed) => {
                            tracing::info!(bytes = freed, "cleanup: removed segments outside the playlist window");
                        }
                        Err(e) => tracing::warn!(error = %e, "cleanup failed"),
                    }
                    let mut s = self.status.lock();
                    s.playlist = Some(self.playlist.stats(now));
                    s.playlist_at = Some(std::time::Instant::now());
                    drop(s);
                    self.publish_live(Some((&run.run, run.next_index)));
                    None
                }
                Wake::Request(None) => None,
                Wake::Shutdown => Some(RunEnd::shutdown()),
            };
            if let Some(end) = end {
                break end;
            }
        };
        worker.stop().await;
        self.status.lock().worker_pid = None;
        end.produced = run.first_segment.is_some();
        // What the worker sent before it stopped is listed: the parts already announced
        // belong to a segment that exists.
        while let Ok(unit) = self.units.try_recv() {
            if unit.run > run.feed_floor {
                self.on_unit(&unit, source, &mut run);
            }
        }
        self.flush_segment(source, &mut run);
        self.publish_live(None);
        end
    }

    /// One access unit of the current worker through the segmenter.
    fn on_unit(&mut self, unit: &AccessUnit, source: &Source, run: &mut RunState) {
        let outputs = self.segmenter.push(unit);
        self.on_outputs(outputs, source, run);
    }

    /// Ends the segment being built with what it has.
    fn flush_segment(&mut self, source: &Source, run: &mut RunState) {
        let outputs = self.segmenter.flush();
        self.on_outputs(outputs, source, run);
    }

    fn on_outputs(&mut self, outputs: Vec<Output>, source: &Source, run: &mut RunState) {
        for output in outputs {
            match output {
                Output::WantKeyframe => self.feed.request_segment_keyframe(),
                Output::KeyframeAt(pts) => self.feed.request_keyframe_at(pts),
                Output::Part { index, part, data } => self.live.add_part(index, part, &data),
                Output::Segment { bytes, duration, .. } => self.on_segment(run, &bytes, duration, source),
            }
        }
    }

    /// Tells the low-latency state the playlist's window and which segment comes next: that of
    /// index `next` of `run`, or none while no worker runs.
    fn publish_live(&self, next: Option<(&RunLocation, u32)>) {
        let window = self.playlist.window();
        let upcoming = next.and_then(|(run, index)| {
            let path = run.segment_path(index);
            Some(Upcoming {
                msn: window.next_sequence(),
                name: path.file_name()?.to_str()?.to_owned(),
                discontinuity: window.discontinuity_pending,
            })
        });
        self.live.update(window, upcoming);
    }

    /// A rebuild if what should be shown is no longer what this run shows.
    fn source_change(&self, source: &Source, run: &RunState) -> Option<RunEnd> {
        let next = self.source();
        if next == *source {
            return None;
        }
        // The X server going or coming back is a display change; anything else (moved,
        // resized, unplugged, back) a monitor change.
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
        Some(RunEnd::new(reason, detail))
    }

    fn on_event(&mut self, event: Event, run: &mut RunState) -> Option<RunEnd> {
        match event {
            Event::Playing => None,
            Event::Flow { buffers, bytes, since_buffer_ms, since_picture_change_ms } => {
                let (b0, y0) = run.reported;
                run.reported = (buffers, bytes);
                if let Some(ago) = since_buffer_ms {
                    let now = Instant::now();
                    run.last_buffer = Some(now.checked_sub(Duration::from_millis(ago)).unwrap_or(now));
                }
                self.status.flow.absorb(
                    buffers.saturating_sub(b0),
                    bytes.saturating_sub(y0),
                    since_buffer_ms.map(Duration::from_millis),
                    since_picture_change_ms.map(Duration::from_millis),
                );
                None
            }
            Event::Error { from_encoder, detail } => {
                tracing::warn!(error = %detail, "pipeline error");
                Some(self.classify_error(from_encoder, detail))
            }
            Event::EndOfStream => Some(RunEnd::new(RestartReason::EndOfStream, "the pipeline ended its stream")),
            Event::StateChanged { detail } => Some(RunEnd::new(RestartReason::UnexpectedStateChange, detail)),
        }
    }

    /// The segmenter finished a segment: write it under the run's next name and list it.
    fn on_segment(&mut self, run: &mut RunState, bytes: &[u8], duration: f64, source: &Source) {
        let path = run.next_path();
        run.next_index += 1;
        let now = playlist_now();
        if let Err(e) = self.playlist.store_segment(&path, bytes, duration, now) {
            tracing::warn!(error = %e, "segment not listed");
            // A full disk is the likeliest cause: make room for the next one.
            let config = self.config.borrow().clone();
            self.relieve_disk_pressure(&config, now);
            self.publish_live(Some((&run.run, run.next_index)));
            return;
        }
        let at = Instant::now();
        run.first_segment.get_or_insert(at);
        run.last_segment = Some(at);
        self.status.set_state(if source.is_slate() { State::Slate } else { State::Streaming });
        let config = self.config.borrow().clone();
        self.relieve_disk_pressure(&config, now);
        self.publish_live(Some((&run.run, run.next_index)));
        {
            let mut s = self.status.lock();
            s.playlist = Some(self.playlist.stats(now));
            s.playlist_at = Some(std::time::Instant::now());
        }
        self.notifier.ready();
        self.notifier.watchdog();
        self.update_systemd_status(&config);
    }

    /// Reads how full the output filesystem is and applies [`pressure::relieve`].
    fn relieve_disk_pressure(&mut self, config: &StreamerConfig, now: std::time::Instant) {
        let Some(used) = ds_runtime::disk::usage_percent(&config.output_dir) else { return };
        let under_pressure = self.status.lock().disk_pressure.is_some();
        let pressure = pressure::relieve(&mut self.playlist, used, &config.live_streaming, under_pressure, now);
        self.status.lock().disk_pressure = pressure;
    }

    fn on_tick(&mut self, config: &StreamerConfig, run: &RunState, stall_timeout: Duration) -> Option<RunEnd> {
        let now = Instant::now();
        self.status.rates.sample(std::time::Instant::now(), &self.status.flow);
        if let Err(e) = self.playlist.collect_garbage(playlist_now()) {
            tracing::warn!(error = %e, "cannot delete expired segments");
        }
        self.publish_live(Some((&run.run, run.next_index)));
        // Segments keep coming: tell systemd's watchdog.
        if ladder::segments_fresh(now, run.last_segment, config.segment_duration) {
            self.notifier.watchdog();
        }
        ladder::stalled(now, run.started, run.last_buffer, stall_timeout).map(|silent| {
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
