//! The health report: the seed's field names where they still mean something, plus facts
//! measured from the produced stream. `/api/health`, `/api/status`, `/healthz`, `/metrics`
//! and systemd's watchdog all decide from this one report.

use std::time::Instant;

use ds_config::StreamerConfig;
pub use ds_wire::health::{ConfigSummary, DetailedReport, HealthReport, Verdict};

use crate::status::{State, StatusHandle};
use ds_runtime::system::SystemSample;

/// Segments older than this many target durations mean the stream is not live.
pub const STALE_AFTER_TARGET_DURATIONS: f64 = 3.0;

/// The report as of now.
pub fn build(status: &StatusHandle, config: &StreamerConfig, system: Option<SystemSample>) -> HealthReport {
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

/// The detailed report as of now.
pub fn build_detailed(status: &StatusHandle, config: &StreamerConfig, system: Option<SystemSample>) -> DetailedReport {
    let health = build(status, config, system);
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
        // Filled in by the HTTP layer, which holds the viewers.
        webrtc: Default::default(),
    }
}
