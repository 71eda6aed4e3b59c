//! The files users of the replaced systems already have load unchanged and mean the same.

use std::path::PathBuf;

use crate::common::{fixture, load_ok};
use ds_config::watchdog::{Bus, SmtpTls, WebhookFormat};
use ds_config::{CamerasConfig, StreamerConfig, WatchdogConfig, WebConfig};

fn seed(name: &str) -> PathBuf {
    fixture("tests/fixtures/seed", name)
}

#[test]
fn readme_config_json_loads_with_its_comments_and_keeps_its_meaning() {
    let (c, warnings) = load_ok::<StreamerConfig>(&seed("config.json"));
    assert_eq!((c.fps, c.width, c.height, c.bitrate), (15, 1280, 720, 2000));
    assert_eq!((c.keyframe_interval, c.segment_duration), (2, 2));
    assert_eq!(c.output_dir, PathBuf::from("/tmp/hls"));
    assert_eq!((c.max_restarts, c.restart_delay, c.max_errors, c.error_window), (15, 60, 10, 600));
    assert_eq!(c.encoder, "auto");
    let ls = &c.live_streaming;
    assert_eq!((ls.max_segments, ls.emergency_segments), (5, 2));
    assert_eq!((ls.cleanup_threshold_percent, ls.emergency_cleanup_threshold_percent), (70, 85));
    let uo = &c.unity_optimization;
    assert!(uo.enabled);
    assert_eq!((uo.gpu_memory_limit_mb, uo.cpu_quota_percent, uo.memory_limit_mb), (1024, 30, 800));
    // Not in the file: the default, the second monitor.
    assert_eq!(c.screen, 1);

    // One warning for each key this system does not use, naming its path, and the /tmp note.
    let mut paths: Vec<&str> = warnings.iter().map(|w| w.split(": ").nth(2).unwrap_or(w)).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "live_streaming.enabled",
            "output_dir = \"/tmp/hls\"",
            "unity_optimization.disk_cleanup_threshold_percent",
            "unity_optimization.emergency_cleanup_threshold_percent",
        ],
        "{warnings:#?}"
    );
    assert!(warnings.iter().any(|w| w.contains("config.json:15:9: warning: live_streaming.enabled: not used")));
}

#[test]
fn installer_kiosk_config_loads_with_its_extra_sections() {
    let (c, warnings) = load_ok::<StreamerConfig>(&seed("kiosk-config.json"));
    assert_eq!((c.fps, c.width, c.height, c.bitrate), (30, 1920, 1080, 8000));
    assert_eq!((c.keyframe_interval, c.segment_duration, c.screen), (1, 1, 1));
    assert!(c.real_time.enabled);
    assert_eq!(c.real_time.min_fps, Some(30));
    assert!(c.real_time.drop_frames);
    assert!((c.real_time.buffer_size - 0.1).abs() < f64::EPSILON);
    assert_eq!(c.monitoring.check_interval_seconds, 30);
    assert_eq!(c.monitoring.health_metrics_history_size, 1000);
    assert_eq!(c.monitoring.error_events_history_size, 100);
    assert!(c.performance.low_latency_mode && c.performance.hardware_acceleration);
    assert_eq!(c.performance.thread_count, 2);
    assert_eq!((c.live_streaming.max_segments, c.live_streaming.emergency_segments), (3, 1));
    for unused in [
        "real_time.target_latency_ms",
        "real_time.sync_tolerance_ms",
        "monitoring.log_rotation_mb",
        "performance.buffer_size",
        "live_streaming.enabled",
    ] {
        let hits = warnings.iter().filter(|w| w.contains(&format!("warning: {unused}: not used"))).count();
        assert_eq!(hits, 1, "exactly one warning for {unused}: {warnings:#?}");
    }
    assert!(warnings.iter().all(|w| !w.contains("unknown key")), "{warnings:#?}");
}

#[test]
fn watchdog_config_loads_with_its_meaning() {
    let (c, warnings) = load_ok::<WatchdogConfig>(&seed("watchdog-config.json"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!((c.check_interval, c.max_alerts, c.alert_cooldown), (30, 10, 300));
    assert!(c.auto_recovery.service_restart && c.auto_recovery.stream_restart && c.auto_recovery.resource_monitoring);
    let e = &c.email_alerts;
    assert!(!e.enabled);
    assert_eq!((e.smtp_server.as_str(), e.smtp_port), ("smtp.gmail.com", 587));
    assert_eq!(e.tls_mode(), SmtpTls::Starttls, "use_tls on 587 meant STARTTLS");
    assert_eq!(e.from_email, "watchdog@example.com");
    assert_eq!(e.to_email, ["admin@example.com"]);
    assert_eq!(e.username, "your-email@gmail.com");
    assert_eq!(e.password.expose(), "your-app-password");
    assert!(!format!("{c:?}").contains("your-app-password"), "the password never shows in Debug output");
    assert!(!c.webhook_alerts.enabled);
    assert_eq!(c.webhook_alerts.url, ["https://hooks.slack.com/services/YOUR/WEBHOOK/URL"]);
    assert_eq!(c.webhook_alerts.format, WebhookFormat::Auto);
    assert_eq!(c.bus, Bus::System);
}

#[test]
fn streampulse_cameras_yaml_loads() {
    let (c, warnings) = load_ok::<CamerasConfig>(&seed("cameras.yaml"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(c.heartbeat_seconds, 15);
    assert_eq!(c.timezone, "Asia/Kolkata");
    let names: Vec<_> = c.streams.iter().map(|s| (s.name.as_str(), s.url.as_str())).collect();
    assert_eq!(
        names,
        [("GateCamera", "rtsp://user:pass@192.168.1.10:554/stream1"), ("LabCam1", "http://192.168.1.1:9081")]
    );
    assert_eq!(c.streams[0].masked_url(), "rtsp://user:***@192.168.1.10:554/stream1");
}

#[test]
fn the_shipped_example_files_load_without_warnings() {
    let etc = |n| fixture("etc", n);
    assert!(load_ok::<StreamerConfig>(&etc("config.json")).1.is_empty());
    assert!(load_ok::<WatchdogConfig>(&etc("watchdog-config.json")).1.is_empty());
    assert!(load_ok::<WebConfig>(&etc("web-config.json")).1.is_empty());
    assert!(load_ok::<CamerasConfig>(&etc("cameras.yaml")).1.is_empty());
    // The example streamer file states the defaults it claims to state.
    let (c, _) = load_ok::<StreamerConfig>(&etc("config.json"));
    assert_eq!(c, StreamerConfig::default());
}
