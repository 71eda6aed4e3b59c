//! The streamer's health API on :8888: `/api/health` ([`HealthReport`]),
//! `/api/health/detailed` ([`DetailedReport`]) and the seed's `/api/status`
//! ([`StreamerStatus`]). The streamer writes them; the watchdog, the dashboard and the CLI
//! read them. The seed's field names (`monitoring_active`, `current_state`, `stream_active`,
//! `restart_count`, …) are a documented contract.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::system::SystemSample;

/// Overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Streaming the monitor, segments fresh, picture changing.
    Healthy,
    /// Segments flow but something is off: slate, frozen picture, low frame rate, disk pressure.
    Degraded,
    /// No fresh segments.
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// What the streamer is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Building the first pipeline; no segment yet.
    Starting,
    /// Capturing the monitor.
    Streaming,
    /// The monitor or X server is unavailable: a generated picture keeps the stream alive.
    Slate,
    /// A pipeline failed and is being rebuilt.
    Restarting,
    /// `max_restarts` rebuilds in a row failed; still retrying at the back-off cap.
    Failing,
    /// Shutting down.
    Stopping,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Streaming => "streaming",
            State::Slate => "slate",
            State::Restarting => "restarting",
            State::Failing => "failing",
            State::Stopping => "stopping",
        }
    }
}

/// Why a pipeline was rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartReason {
    PipelineError,
    EndOfStream,
    UnexpectedStateChange,
    /// No encoded buffer within the stall timeout.
    Stall,
    /// The monitor moved, changed size, disappeared or came back.
    MonitorChanged,
    /// The X server went away or came back.
    DisplayChanged,
    /// The encoder failed while running and was replaced by the next candidate.
    EncoderFailed,
    /// SIGUSR1 or the dashboard asked for it.
    Requested,
    /// SIGHUP loaded a new configuration.
    ConfigReloaded,
}

impl RestartReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::PipelineError => "pipeline_error",
            RestartReason::EndOfStream => "end_of_stream",
            RestartReason::UnexpectedStateChange => "unexpected_state_change",
            RestartReason::Stall => "stall",
            RestartReason::MonitorChanged => "monitor_changed",
            RestartReason::DisplayChanged => "display_changed",
            RestartReason::EncoderFailed => "encoder_failed",
            RestartReason::Requested => "requested",
            RestartReason::ConfigReloaded => "config_reloaded",
        }
    }

    /// Whether this reason is a fault (counted against `max_errors`) rather than a planned
    /// rebuild.
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            RestartReason::PipelineError
                | RestartReason::EndOfStream
                | RestartReason::UnexpectedStateChange
                | RestartReason::Stall
                | RestartReason::EncoderFailed
        )
    }
}

/// One rebuild, as shown in the health API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartEvent {
    pub at: jiff::Timestamp,
    pub reason: RestartReason,
    pub detail: String,
}

/// One RandR 1.5 monitor: an area of the root window that a person sees as one screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// The monitor's name; for monitors RandR makes from outputs this is the output name
    /// (`HDMI-1`, `DUMMY1`).
    pub name: String,
    /// Left edge in root window pixels.
    pub x: i32,
    /// Top edge in root window pixels.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether RandR marks it as the primary monitor.
    pub primary: bool,
    /// Names of the outputs (connectors) showing it.
    pub outputs: Vec<String>,
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}x{}{:+}{:+}", self.name, self.width, self.height, self.x, self.y)
    }
}

/// Why a candidate encoder was not chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// The caller excluded it, normally because it failed in the running pipeline.
    Excluded,
    /// A hardware encoder while `performance.hardware_acceleration` is false.
    HardwareDisabled,
    /// No element factory of that name is registered.
    Missing { detail: String },
    /// The element exists but does not accept a setting the config needs.
    Configure { property: String, value: String, detail: String },
    /// The probe pipeline could not be built or did not reach PLAYING.
    StartFailed { detail: String },
    /// The probe pipeline posted an error while encoding.
    Failed { detail: String },
    /// The probe frames were not all encoded in time.
    Timeout { timeout_ms: u64, buffers: usize },
    /// The encoder finished without producing a keyframe.
    NoKeyframe { buffers: usize },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Excluded => f.write_str("excluded after it failed in the running pipeline"),
            SkipReason::HardwareDisabled => {
                f.write_str("hardware encoder skipped because performance.hardware_acceleration is false")
            }
            SkipReason::Missing { detail } => write!(f, "element missing: {detail}"),
            SkipReason::Configure { property, value, detail } => {
                write!(f, "cannot set {property}={value}: {detail}")
            }
            SkipReason::StartFailed { detail } => write!(f, "failed to reach PLAYING: {detail}"),
            SkipReason::Failed { detail } => write!(f, "failed while encoding test frames: {detail}"),
            SkipReason::Timeout { timeout_ms, buffers } => {
                write!(f, "no end of the test frames within {timeout_ms} ms ({buffers} encoded buffers)")
            }
            SkipReason::NoKeyframe { buffers } => {
                write!(f, "encoded {buffers} buffers but no keyframe")
            }
        }
    }
}

/// A candidate that was not chosen, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEncoder {
    pub name: String,
    pub reason: SkipReason,
    /// `reason` as a sentence, for people reading the health API.
    pub message: String,
}

impl SkippedEncoder {
    pub fn new(name: impl Into<String>, reason: SkipReason) -> Self {
        let message = reason.to_string();
        SkippedEncoder { name: name.into(), reason, message }
    }
}

/// One property an encoder is configured with, in `gst-launch` syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub property: String,
    pub value: String,
}

/// The encoder that was proven to work, its settings, and every candidate passed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderChoice {
    /// GStreamer element name, e.g. `x264enc`.
    pub name: String,
    pub hardware: bool,
    /// Raw format the encoder takes without conversion inside it; `None` for encoders the
    /// streamer does not know.
    pub input_format: Option<String>,
    /// Properties set on the element; empty for an encoder the streamer does not know, which
    /// then runs with its own defaults.
    pub settings: Vec<Setting>,
    pub skipped: Vec<SkippedEncoder>,
}

/// What the health API reports about the playlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistStats {
    pub target_duration_secs: u32,
    /// EXT-X-MEDIA-SEQUENCE: the sequence number of the first listed segment.
    pub media_sequence: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuity tags that have left the window.
    pub discontinuity_sequence: u64,
    pub segment_count: usize,
    pub window_duration_secs: f64,
    /// Bytes of the listed segment files, as measured when each was added.
    pub window_bytes: u64,
    /// Seconds since the newest segment was added; `None` while the window is empty.
    pub newest_segment_age_secs: Option<f64>,
    /// Segments since open whose EXTINF rounds above the target duration (listed anyway).
    pub overlong_segments: u64,
    /// Segment files that left the playlist and wait out their lifetime before deletion.
    pub pending_deletions: usize,
}

/// `/api/health`: the seed's field names where they still mean something, plus facts
/// measured from the produced stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub health: Verdict,
    /// Seed field: the supervisor is running (false only while stopping).
    pub monitoring_active: bool,
    /// Seed field: `starting`, `streaming`, `slate`, `restarting`, `failing` or `stopping`.
    pub current_state: State,
    pub state_for_seconds: f64,
    /// Seed field: a segment newer than three target durations exists.
    pub stream_active: bool,
    pub total_errors: u64,
    /// Faults within `error_window`.
    pub recent_errors: usize,
    pub restart_count: u64,
    pub last_error: Option<String>,
    pub uptime_minutes: f64,
    /// Resident memory of this process.
    pub memory_usage_mb: Option<f64>,
    pub system_memory_percent: Option<f64>,
    /// Encoded frames per second over the last few seconds.
    pub fps: Option<f64>,
    /// Encoded bits per second over the last few seconds, in kbit/s.
    pub bitrate_kbps: Option<f64>,
    pub newest_segment_age_seconds: Option<f64>,
    pub encoder: Option<String>,
    pub monitor: Option<Monitor>,
    /// Why the monitor is not being captured, when the slate is shown.
    pub source_problem: Option<String>,
    /// The captured picture has not changed for `frozen_after_seconds`: the kiosk
    /// application may have hung while the stream itself is fine.
    pub frozen: bool,
    pub picture_unchanged_seconds: Option<f64>,
    pub disk_pressure: Option<String>,
    pub recent_restarts: Vec<RestartEvent>,
}

/// `/api/health/detailed`: everything [`HealthReport`] says and what the streamer runs with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailedReport {
    #[serde(flatten)]
    pub health: HealthReport,
    pub started_at: jiff::Timestamp,
    /// Process id of the capture worker running the pipeline now.
    pub worker_pid: Option<u32>,
    pub encoder_choice: Option<EncoderChoice>,
    pub playlist: Option<PlaylistStats>,
    pub system: Option<SystemSample>,
    pub config: ConfigSummary,
    /// WebRTC (WHEP) viewers; absent from streamers older than WHEP.
    #[serde(default)]
    pub webrtc: WebrtcReport,
}

/// The WebRTC (WHEP) viewers of `/whep/desktop`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebrtcReport {
    /// `max_webrtc_viewers` as running.
    pub max_viewers: u32,
    /// The UDP port all WebRTC media goes through (0 when WHEP could not start).
    pub udp_port: u16,
    pub viewers: Vec<WebrtcViewer>,
}

/// One WebRTC viewer, from its session and the RTCP its browser sends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebrtcViewer {
    /// The session's id, as in its `Location` (`/whep/desktop/<id>`).
    pub id: String,
    pub state: WebrtcViewerState,
    /// The browser's address, once ICE chose it.
    pub peer: Option<String>,
    /// Sent over the last second (media and control), kbit/s.
    pub bitrate_kbps: f64,
    /// Round-trip time from RTCP, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets lost on the way to the browser, as its receiver reports say, percent.
    pub loss_percent: Option<f64>,
    pub bytes_sent: u64,
    /// Pictures (access units) sent.
    pub frames_sent: u64,
    /// Pictures skipped because the viewer fell behind (it then waits for a keyframe).
    pub frames_skipped: u64,
    /// Keyframe requests (PLI, FIR) from the browser.
    pub keyframe_requests: u64,
    /// Retransmission requests (NACK) from the browser.
    pub nacks: u64,
}

/// Where a WebRTC viewer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebrtcViewerState {
    /// Answered; ICE and DTLS under way.
    #[default]
    Connecting,
    /// Connected; its first picture goes out with the next keyframe.
    WaitingForKeyframe,
    /// Pictures flowing.
    Playing,
}

impl WebrtcViewerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WebrtcViewerState::Connecting => "connecting",
            WebrtcViewerState::WaitingForKeyframe => "waiting_for_keyframe",
            WebrtcViewerState::Playing => "playing",
        }
    }
}

/// The settings that shape the stream, as running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval: u32,
    pub segment_duration: u32,
    pub max_segments: u32,
    pub output_dir: String,
}

/// The streamer's `/api/status`, in the seed's shape: service, stream, health, system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamerStatus {
    pub service: ServiceReport,
    pub stream: StreamReport,
    pub health: HealthReport,
    pub system: SystemReport,
}

/// Seed shape: `service{active,details{ActiveState,SubState}}`. The streamer adds
/// `managed_by_systemd`; the dashboard, which asks systemd itself, leaves it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub active: bool,
    pub details: ServiceDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by_systemd: Option<bool>,
}

/// systemd's words for a unit's state, as the seed spelled the keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDetails {
    #[serde(rename = "ActiveState")]
    pub active_state: String,
    #[serde(rename = "SubState")]
    pub sub_state: String,
}

/// Seed shape: `stream{playlist_exists,segment_count,total_size_mb,stream_active}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub playlist_exists: bool,
    pub segment_count: usize,
    pub total_size_mb: f64,
    pub stream_active: bool,
}

/// Seed shape: `system{cpu_percent,memory_percent,disk_usage_percent}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemReport {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub disk_usage_percent: Option<f64>,
}
