//! The streamer's health documents hold today's JSON byte for byte. The golden files were
//! captured from the streamer's own serializer (its `HealthReport`, `DetailedReport` and
//! `/api/status` structs) before they moved here; the field names are the seed's contract.
//! The detailed report's `webrtc` object was added with WHEP, at its end; a report without it
//! still reads.

use ds_wire::health::*;
use ds_wire::system::SystemSample;

const DETAILED: &str = include_str!("golden/streamer-health-detailed.json");
const STATUS: &str = include_str!("golden/streamer-status.json");

fn health() -> HealthReport {
    HealthReport {
        health: Verdict::Degraded,
        monitoring_active: true,
        current_state: State::Slate,
        state_for_seconds: 12.75,
        stream_active: true,
        total_errors: 3,
        recent_errors: 2,
        restart_count: 4,
        last_error: Some("stall: no buffer for 4 s".into()),
        uptime_minutes: 61.5,
        memory_usage_mb: Some(88.5),
        system_memory_percent: Some(40.25),
        fps: Some(14.5),
        bitrate_kbps: Some(2048.0),
        newest_segment_age_seconds: Some(1.25),
        encoder: Some("x264enc".into()),
        monitor: Some(Monitor {
            name: "DUMMY0".into(),
            x: 0,
            y: -10,
            width: 1920,
            height: 1080,
            primary: true,
            outputs: vec!["DUMMY0".into()],
        }),
        source_problem: Some("Display unavailable".into()),
        frozen: false,
        picture_unchanged_seconds: None,
        disk_pressure: None,
        recent_restarts: vec![RestartEvent {
            at: "2026-12-07T03:00:00Z".parse().unwrap(),
            reason: RestartReason::MonitorChanged,
            detail: "DUMMY1 moved".into(),
        }],
    }
}

fn detailed() -> DetailedReport {
    DetailedReport {
        health: health(),
        started_at: "2026-12-07T02:00:00.5Z".parse().unwrap(),
        worker_pid: Some(4242),
        encoder_choice: Some(EncoderChoice {
            name: "x264enc".into(),
            hardware: false,
            input_format: Some("I420".into()),
            settings: vec![Setting { property: "bitrate".into(), value: "2048".into() }],
            skipped: vec![
                SkippedEncoder::new("vah264enc", SkipReason::HardwareDisabled),
                SkippedEncoder::new("nvh264enc", SkipReason::Missing { detail: "no element".into() }),
                SkippedEncoder::new("openh264enc", SkipReason::Timeout { timeout_ms: 5000, buffers: 2 }),
            ],
        }),
        playlist: Some(PlaylistStats {
            target_duration_secs: 2,
            media_sequence: 120,
            discontinuity_sequence: 1,
            segment_count: 6,
            window_duration_secs: 12.0,
            window_bytes: 3_145_728,
            newest_segment_age_secs: Some(0.5),
            overlong_segments: 0,
            pending_deletions: 2,
        }),
        system: Some(SystemSample {
            cpu_percent: 12.5,
            memory_percent: 40.25,
            process_memory_mb: 88.5,
            disk_usage_percent: Some(61.0),
        }),
        config: ConfigSummary {
            width: 1920,
            height: 1080,
            fps: 15,
            bitrate_kbps: 2048,
            keyframe_interval: 30,
            segment_duration: 2,
            max_segments: 6,
            output_dir: "/var/lib/desktop-streamer/hls".into(),
        },
        webrtc: WebrtcReport {
            max_viewers: 10,
            udp_port: 8889,
            viewers: vec![WebrtcViewer {
                id: "5f0c8a3e9d2b4c71a6e0f1d2c3b4a596".into(),
                state: WebrtcViewerState::Playing,
                peer: Some("192.168.1.40:53012".into()),
                bitrate_kbps: 1984.5,
                rtt_ms: Some(2.5),
                loss_percent: Some(0.0),
                bytes_sent: 2_480_000,
                frames_sent: 150,
                frames_skipped: 0,
                keyframe_requests: 1,
                nacks: 0,
            }],
        },
    }
}

fn status() -> StreamerStatus {
    StreamerStatus {
        service: ServiceReport {
            active: true,
            details: ServiceDetails { active_state: "active".into(), sub_state: "running".into() },
            managed_by_systemd: Some(false),
        },
        stream: StreamReport { playlist_exists: true, segment_count: 6, total_size_mb: 3.0, stream_active: true },
        health: health(),
        system: SystemReport { cpu_percent: Some(12.5), memory_percent: Some(40.25), disk_usage_percent: None },
    }
}

#[test]
fn the_detailed_health_is_written_and_read_as_today() {
    assert_eq!(serde_json::to_string(&detailed()).unwrap(), DETAILED.trim_end());
    assert_eq!(serde_json::from_str::<DetailedReport>(DETAILED).unwrap(), detailed());
}

#[test]
fn a_detailed_report_from_before_webrtc_reads_with_no_viewers() {
    let cut = DETAILED.find(",\"webrtc\"").unwrap();
    let old = format!("{}}}", &DETAILED[..cut]);
    let read = serde_json::from_str::<DetailedReport>(&old).unwrap();
    assert_eq!(read.webrtc, WebrtcReport::default());
    assert_eq!(DetailedReport { webrtc: WebrtcReport::default(), ..detailed() }, read);
}

#[test]
fn the_health_is_the_detailed_report_without_its_additions() {
    let written = serde_json::to_string(&health()).unwrap();
    let cut = DETAILED.find(",\"started_at\"").unwrap();
    assert_eq!(written, format!("{}}}", &DETAILED[..cut]));
    assert_eq!(serde_json::from_str::<HealthReport>(&written).unwrap(), health());
}

#[test]
fn the_streamer_status_keeps_the_seed_shape() {
    assert_eq!(serde_json::to_string(&status()).unwrap(), STATUS.trim_end());
    assert_eq!(serde_json::from_str::<StreamerStatus>(STATUS).unwrap(), status());
}

#[test]
fn enum_words_are_the_documented_ones() {
    for s in [State::Starting, State::Streaming, State::Slate, State::Restarting, State::Failing, State::Stopping] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for w in [WebrtcViewerState::Connecting, WebrtcViewerState::WaitingForKeyframe, WebrtcViewerState::Playing] {
        assert_eq!(serde_json::to_value(w).unwrap(), w.as_str());
    }
    for v in [Verdict::Healthy, Verdict::Degraded, Verdict::Unhealthy] {
        assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
    }
    assert_eq!(serde_json::to_value(RestartReason::ConfigReloaded).unwrap(), "config_reloaded");
}
