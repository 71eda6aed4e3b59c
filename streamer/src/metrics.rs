//! `/metrics` in Prometheus' text format, rendered from the health report.

use std::fmt::Write as _;

use crate::health::{DetailedReport, Verdict};
use crate::status::State;

const STATES: &[State] =
    &[State::Starting, State::Streaming, State::Slate, State::Restarting, State::Failing, State::Stopping];

/// Renders every series; absent measurements are left out rather than reported as 0.
pub fn render(r: &DetailedReport) -> String {
    let h = &r.health;
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
    };
    gauge(
        "desktop_streamer_stream_active",
        "1 while a segment newer than three target durations exists",
        Some(b(h.stream_active)),
    );
    gauge(
        "desktop_streamer_healthy",
        "1 healthy, 0.5 degraded, 0 unhealthy",
        Some(match h.health {
            Verdict::Healthy => 1.0,
            Verdict::Degraded => 0.5,
            Verdict::Unhealthy => 0.0,
        }),
    );
    gauge(
        "desktop_streamer_frozen",
        "1 while the captured picture has not changed for frozen_after_seconds",
        Some(b(h.frozen)),
    );
    gauge("desktop_streamer_fps", "Encoded frames per second, measured", h.fps);
    gauge("desktop_streamer_bitrate_kbps", "Encoded kbit/s, measured", h.bitrate_kbps);
    gauge(
        "desktop_streamer_newest_segment_age_seconds",
        "Age of the newest listed segment",
        h.newest_segment_age_seconds,
    );
    gauge("desktop_streamer_uptime_seconds", "Seconds since the process started", Some(h.uptime_minutes * 60.0));
    gauge("desktop_streamer_recent_errors", "Faults within error_window", Some(h.recent_errors as f64));
    gauge("desktop_streamer_memory_mb", "Resident memory of the streamer process", h.memory_usage_mb);
    if let Some(p) = &r.playlist {
        gauge("desktop_streamer_media_sequence", "EXT-X-MEDIA-SEQUENCE of the playlist", Some(p.media_sequence as f64));
        gauge(
            "desktop_streamer_discontinuity_sequence",
            "EXT-X-DISCONTINUITY-SEQUENCE",
            Some(p.discontinuity_sequence as f64),
        );
        gauge("desktop_streamer_playlist_segments", "Segments in the playlist window", Some(p.segment_count as f64));
        gauge("desktop_streamer_playlist_seconds", "Duration of the playlist window", Some(p.window_duration_secs));
    }
    if let Some(d) = r.system.and_then(|s| s.disk_usage_percent) {
        gauge("desktop_streamer_output_disk_used_percent", "Use of the filesystem holding output_dir", Some(d));
    }

    let _ = writeln!(out, "# HELP desktop_streamer_state 1 for the current state\n# TYPE desktop_streamer_state gauge");
    for s in STATES {
        let _ = writeln!(out, "desktop_streamer_state{{state=\"{}\"}} {}", s.as_str(), b(*s == h.current_state));
    }
    let _ = writeln!(
        out,
        "# HELP desktop_streamer_restarts_total Pipeline rebuilds\n# TYPE desktop_streamer_restarts_total counter"
    );
    let _ = writeln!(out, "desktop_streamer_restarts_total {}", h.restart_count);
    let _ = writeln!(
        out,
        "# HELP desktop_streamer_errors_total Pipeline faults\n# TYPE desktop_streamer_errors_total counter"
    );
    let _ = writeln!(out, "desktop_streamer_errors_total {}", h.total_errors);
    if let Some(e) = &h.encoder {
        let _ = writeln!(
            out,
            "# HELP desktop_streamer_encoder_info The running encoder\n# TYPE desktop_streamer_encoder_info gauge"
        );
        let _ = writeln!(out, "desktop_streamer_encoder_info{{encoder=\"{}\"}} 1", escape(e));
    }
    out
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
