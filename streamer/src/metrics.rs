//! `/metrics` in Prometheus' text format, rendered from the health report with the writer
//! every service shares ([`ds_runtime::prometheus`]).

use ds_runtime::prometheus::{Kind, Writer};
use ds_wire::health::{WebrtcReport, WebrtcViewer};

use crate::health::{DetailedReport, Verdict};
use crate::status::State;

const STATES: &[State] =
    &[State::Starting, State::Streaming, State::Slate, State::Restarting, State::Failing, State::Stopping];

/// Renders every series; absent measurements are left out rather than reported as 0.
pub fn render(r: &DetailedReport) -> String {
    let h = &r.health;
    let mut w = Writer::new();
    let mut gauge = |name: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            w.single(name, Kind::Gauge, help, v);
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

    let mut state = w.family("desktop_streamer_state", Kind::Gauge, "1 for the current state");
    for s in STATES {
        state.sample(&[("state", s.as_str())], b(*s == h.current_state));
    }
    w.single("desktop_streamer_restarts_total", Kind::Counter, "Pipeline rebuilds", h.restart_count);
    w.single("desktop_streamer_errors_total", Kind::Counter, "Pipeline faults", h.total_errors);
    if let Some(e) = &h.encoder {
        w.family("desktop_streamer_encoder_info", Kind::Gauge, "The running encoder").sample(&[("encoder", e)], 1);
    }
    webrtc(&mut w, &r.webrtc);
    w.finish()
}

/// The WebRTC viewers, while WebRTC runs (its media port is bound).
fn webrtc(w: &mut Writer, r: &WebrtcReport) {
    if r.udp_port == 0 {
        return;
    }
    w.single("desktop_streamer_webrtc_viewers", Kind::Gauge, "WebRTC (WHEP) viewers now", r.viewers.len());
    w.single("desktop_streamer_webrtc_max_viewers", Kind::Gauge, "max_webrtc_viewers", r.max_viewers);
    if r.viewers.is_empty() {
        return;
    }
    let mut info =
        w.family("desktop_streamer_webrtc_viewer_info", Kind::Gauge, "One per viewer: its state and address");
    for v in &r.viewers {
        info.sample(&[("viewer", &v.id), ("state", v.state.as_str()), ("peer", v.peer.as_deref().unwrap_or(""))], 1);
    }
    type Figure = fn(&WebrtcViewer) -> Option<f64>;
    let figures: [(&str, Kind, &str, Figure); 5] = [
        (
            "desktop_streamer_webrtc_viewer_bitrate_kbps",
            Kind::Gauge,
            "Sent to the viewer over the last second, kbit/s",
            |v| Some(v.bitrate_kbps),
        ),
        ("desktop_streamer_webrtc_viewer_rtt_seconds", Kind::Gauge, "Round-trip time to the viewer, from RTCP", |v| {
            v.rtt_ms.map(|ms| ms / 1000.0)
        }),
        (
            "desktop_streamer_webrtc_viewer_loss_ratio",
            Kind::Gauge,
            "Packets lost on the way to the viewer, from RTCP",
            |v| v.loss_percent.map(|p| p / 100.0),
        ),
        ("desktop_streamer_webrtc_viewer_frames_total", Kind::Counter, "Pictures sent to the viewer", |v| {
            Some(v.frames_sent as f64)
        }),
        ("desktop_streamer_webrtc_viewer_keyframe_requests_total", Kind::Counter, "PLI and FIR from the viewer", |v| {
            Some(v.keyframe_requests as f64)
        }),
    ];
    for (name, kind, help, figure) in figures {
        let mut family = w.family(name, kind, help);
        for v in &r.viewers {
            if let Some(x) = figure(v) {
                family.sample(&[("viewer", &v.id)], x);
            }
        }
    }
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use ds_config::StreamerConfig;
    use ds_runtime::system::SystemSample;

    use super::*;
    use crate::playlist::PlaylistStats;
    use crate::status::StatusHandle;

    /// A report with every series present, its varying figures fixed.
    fn full_report() -> DetailedReport {
        let system = SystemSample {
            cpu_percent: 12.5,
            memory_percent: 40.0,
            process_memory_mb: 80.25,
            disk_usage_percent: Some(61.5),
        };
        let mut r = crate::health::build_detailed(&StatusHandle::new(10), &StreamerConfig::default(), Some(system));
        let h = &mut r.health;
        h.stream_active = true;
        h.health = Verdict::Degraded;
        h.current_state = State::Slate;
        h.fps = Some(29.97);
        h.bitrate_kbps = Some(2500.0);
        h.newest_segment_age_seconds = Some(1.25);
        h.uptime_minutes = 2.5;
        h.recent_errors = 2;
        h.total_errors = 7;
        h.restart_count = 3;
        h.encoder = Some("x264\"enc\\\n".to_owned());
        r.playlist = Some(PlaylistStats {
            target_duration_secs: 2,
            media_sequence: 41,
            discontinuity_sequence: 1,
            segment_count: 6,
            window_duration_secs: 12.0,
            window_bytes: 3_000_000,
            newest_segment_age_secs: Some(1.0),
            overlong_segments: 0,
            pending_deletions: 0,
        });
        r
    }

    const BEFORE: &str = r##"# HELP desktop_streamer_stream_active 1 while a segment newer than three target durations exists
# TYPE desktop_streamer_stream_active gauge
desktop_streamer_stream_active 1
# HELP desktop_streamer_healthy 1 healthy, 0.5 degraded, 0 unhealthy
# TYPE desktop_streamer_healthy gauge
desktop_streamer_healthy 0.5
# HELP desktop_streamer_frozen 1 while the captured picture has not changed for frozen_after_seconds
# TYPE desktop_streamer_frozen gauge
desktop_streamer_frozen 0
# HELP desktop_streamer_fps Encoded frames per second, measured
# TYPE desktop_streamer_fps gauge
desktop_streamer_fps 29.97
# HELP desktop_streamer_bitrate_kbps Encoded kbit/s, measured
# TYPE desktop_streamer_bitrate_kbps gauge
desktop_streamer_bitrate_kbps 2500
# HELP desktop_streamer_newest_segment_age_seconds Age of the newest listed segment
# TYPE desktop_streamer_newest_segment_age_seconds gauge
desktop_streamer_newest_segment_age_seconds 1.25
# HELP desktop_streamer_uptime_seconds Seconds since the process started
# TYPE desktop_streamer_uptime_seconds gauge
desktop_streamer_uptime_seconds 150
# HELP desktop_streamer_recent_errors Faults within error_window
# TYPE desktop_streamer_recent_errors gauge
desktop_streamer_recent_errors 2
# HELP desktop_streamer_memory_mb Resident memory of the streamer process
# TYPE desktop_streamer_memory_mb gauge
desktop_streamer_memory_mb 80.25
# HELP desktop_streamer_media_sequence EXT-X-MEDIA-SEQUENCE of the playlist
# TYPE desktop_streamer_media_sequence gauge
desktop_streamer_media_sequence 41
# HELP desktop_streamer_discontinuity_sequence EXT-X-DISCONTINUITY-SEQUENCE
# TYPE desktop_streamer_discontinuity_sequence gauge
desktop_streamer_discontinuity_sequence 1
# HELP desktop_streamer_playlist_segments Segments in the playlist window
# TYPE desktop_streamer_playlist_segments gauge
desktop_streamer_playlist_segments 6
# HELP desktop_streamer_playlist_seconds Duration of the playlist window
# TYPE desktop_streamer_playlist_seconds gauge
desktop_streamer_playlist_seconds 12
# HELP desktop_streamer_output_disk_used_percent Use of the filesystem holding output_dir
# TYPE desktop_streamer_output_disk_used_percent gauge
desktop_streamer_output_disk_used_percent 61.5
# HELP desktop_streamer_state 1 for the current state
# TYPE desktop_streamer_state gauge
desktop_streamer_state{state="starting"} 0
desktop_streamer_state{state="streaming"} 0
desktop_streamer_state{state="slate"} 1
desktop_streamer_state{state="restarting"} 0
desktop_streamer_state{state="failing"} 0
desktop_streamer_state{state="stopping"} 0
# HELP desktop_streamer_restarts_total Pipeline rebuilds
# TYPE desktop_streamer_restarts_total counter
desktop_streamer_restarts_total 3
# HELP desktop_streamer_errors_total Pipeline faults
# TYPE desktop_streamer_errors_total counter
desktop_streamer_errors_total 7
# HELP desktop_streamer_encoder_info The running encoder
# TYPE desktop_streamer_encoder_info gauge
desktop_streamer_encoder_info{encoder="x264\"enc\\\n"} 1
"##;

    /// Byte for byte what the streamer's hand-written renderer answered before the shared
    /// writer: names, labels, values, help texts and order.
    #[test]
    fn the_text_is_what_it_was() {
        assert_eq!(render(&full_report()), BEFORE);
    }

    #[test]
    fn each_webrtc_viewer_has_its_state_bitrate_rtt_and_loss() {
        use ds_wire::health::WebrtcViewerState;
        let mut r = full_report();
        r.webrtc = WebrtcReport {
            max_viewers: 10,
            udp_port: 8889,
            viewers: vec![WebrtcViewer {
                id: "ab12".into(),
                state: WebrtcViewerState::Playing,
                peer: Some("10.0.0.7:5000".into()),
                bitrate_kbps: 1500.5,
                rtt_ms: Some(12.0),
                loss_percent: Some(2.5),
                frames_sent: 300,
                ..WebrtcViewer::default()
            }],
        };
        let got = render(&r);
        assert!(got.starts_with(BEFORE), "the series before WebRTC are unchanged:\n{got}");
        for line in [
            "desktop_streamer_webrtc_viewers 1\n",
            "desktop_streamer_webrtc_max_viewers 10\n",
            "desktop_streamer_webrtc_viewer_info{viewer=\"ab12\",state=\"playing\",peer=\"10.0.0.7:5000\"} 1\n",
            "desktop_streamer_webrtc_viewer_bitrate_kbps{viewer=\"ab12\"} 1500.5\n",
            "desktop_streamer_webrtc_viewer_rtt_seconds{viewer=\"ab12\"} 0.012\n",
            "desktop_streamer_webrtc_viewer_loss_ratio{viewer=\"ab12\"} 0.025\n",
            "desktop_streamer_webrtc_viewer_frames_total{viewer=\"ab12\"} 300\n",
        ] {
            assert!(got.contains(line), "{line} in\n{got}");
        }
        r.webrtc.viewers.clear();
        let got = render(&r);
        assert!(got.ends_with("desktop_streamer_webrtc_max_viewers 10\n"), "no viewer series without viewers:\n{got}");
    }

    /// Absent measurements are left out rather than reported as 0.
    #[test]
    fn absent_measurements_have_no_series() {
        let mut r = full_report();
        r.health.fps = None;
        r.health.encoder = None;
        r.playlist = None;
        r.system = None;
        let got = render(&r);
        for gone in ["desktop_streamer_fps", "desktop_streamer_encoder_info", "desktop_streamer_media_sequence", "disk"]
        {
            assert!(!got.contains(gone), "{gone} in\n{got}");
        }
        assert!(got.contains("\ndesktop_streamer_bitrate_kbps 2500\n"), "{got}");
    }
}
