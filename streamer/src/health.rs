//! The health report: the seed's field names where they still mean something, plus facts
//! measured from the produced stream. `/api/health`, `/api/status`, `/healthz`, `/metrics`
//! and systemd's watchdog all decide from this one report.

use std::time::Instant;

use ds_config::StreamerConfig;
use serde::Serialize;

use crate::encoder::EncoderChoice;
use crate::monitor::Monitor;
use crate::playlist::PlaylistStats;
use crate::status::{RestartEvent, State, StatusHandle};
use ds_runtime::system::SystemSample;

/// Overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Streaming the monitor, segments fresh, picture changing.
    Healthy,
    /// Segments flow but something is off: slate, frozen picture, low frame rate, disk pressure.
    Degraded,
    /// No fresh segments.
    Unhealthy,
}

/// Segments older than this many target durations mean the stream is not live.
pub const STALE_AFTER_TARGET_DURATIONS: f64 = 3.0;

#[derive(Clone, Debug, Serialize)]
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

/// Everything `/api/health/detailed` adds.
#[derive(Clone, Debug, Serialize)]
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
}

/// The settings that shape the stream, as running.
#[derive(Clone, Debug, Serialize)]
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

impl HealthReport {
    pub fn build(status: &StatusHandle, config: &StreamerConfig, system: Option<SystemSample>) -> Self {
        let now = Instant::now();
        let error_window = std::time::Duration::from_secs(config.error_window.into());
        let recent_errors = status.recent_errors(error_window);
        let s = status.lock();
        let newest_segment_age_seconds = s.playlist.as_ref().and_then(|p| {
            let taken = s.playlist_at?;
            Some(p.newest_segment_age_secs? + now.duration_since(taken).as_secs_f64())
        });
        let stale_after = STALE_AFTER_TARGET_DURATIONS * f64::from(config.segment_duration);
        let stream_active = newest_segment_age_seconds.is_some_and(|a| a <= stale_after);
        let rates = status.rates.rates();
        let picture_unchanged_seconds = match s.state {
            State::Streaming => status.flow.last_picture_change().map(|t| now.duration_since(t).as_secs_f64()),
            _ => None,
        };
        let frozen = config.frozen_after_seconds > 0
            && picture_unchanged_seconds.is_some_and(|u| u >= f64::from(config.frozen_after_seconds));
        let slow = config.real_time.enabled
            && matches!((config.real_time.min_fps, rates), (Some(min), Some(r)) if r.fps < f64::from(min));
        let health = if !stream_active {
            Verdict::Unhealthy
        } else if s.state != State::Streaming || frozen || slow || s.disk_pressure.is_some() {
            Verdict::Degraded
        } else {
            Verdict::Healthy
        };
        HealthReport {
            health,
            monitoring_active: s.state != State::Stopping,
            current_state: s.state,
            state_for_seconds: now.duration_since(s.state_since).as_secs_f64(),
            stream_active,
            total_errors: s.total_errors,
            recent_errors,
            restart_count: s.restart_count,
            last_error: s.last_error.clone(),
            uptime_minutes: now.duration_since(status.started).as_secs_f64() / 60.0,
            memory_usage_mb: system.map(|x| x.process_memory_mb),
            system_memory_percent: system.map(|x| x.memory_percent),
            fps: rates.map(|r| r.fps),
            bitrate_kbps: rates.map(|r| r.bitrate_kbps),
            newest_segment_age_seconds,
            encoder: s.encoder.as_ref().map(|e| e.name.clone()),
            monitor: s.monitor.clone(),
            source_problem: s.source_problem.clone(),
            frozen,
            picture_unchanged_seconds,
            disk_pressure: s.disk_pressure.clone(),
            recent_restarts: s.restarts.iter().rev().take(10).cloned().collect(),
        }
    }
}

impl DetailedReport {
    pub fn build(status: &StatusHandle, config: &StreamerConfig, system: Option<SystemSample>) -> Self {
        let health = HealthReport::build(status, config, system);
        let s = status.lock();
        DetailedReport {
            health,
            started_at: status.started_at,
            worker_pid: s.worker_pid,
            encoder_choice: s.encoder.clone(),
            playlist: s.playlist.clone(),
            system,
            config: ConfigSummary {
                width: config.width,
                height: config.height,
                fps: config.fps,
                bitrate_kbps: config.bitrate,
                keyframe_interval: config.keyframe_interval,
                segment_duration: config.segment_duration,
                max_segments: config.live_streaming.max_segments,
                output_dir: config.output_dir.display().to_string(),
            },
        }
    }
}
