//! Each binary's `check-config`, run as an operator would: exit code and what it prints.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use ds_tests::bins::{bin, workspace_root};

fn check(binary: &str, config: &Path) -> Output {
    Command::new(bin(binary)).arg("--config").arg(config).arg("check-config").output().expect("run binary")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn streamer_accepts_the_seed_file_and_rejects_a_bad_one_with_every_problem() {
    let seed = workspace_root().join("config/tests/fixtures/seed/config.json");
    let out = check("desktop-streamer", &seed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("live_streaming.enabled: not used by desktop-streamer"), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("config.json: OK (4 warnings)"), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.json");
    fs::write(&bad, "{\n  \"fps\": 0, // too slow\n  \"bitrate\": \"lots\"\n}\n").unwrap();
    let out = check("desktop-streamer", &bad);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains(&format!("{}:2:10: fps = 0: must be 1..=120", bad.display())), "{all}");
    assert!(all.contains(&format!("{}:3:14: bitrate = \"lots\": expected a whole number", bad.display())), "{all}");
    assert!(all.contains("2 errors, 0 warnings"), "{all}");
}

#[test]
fn watchdog_check_config_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("watchdog-config.json");
    fs::copy(workspace_root().join("config/tests/fixtures/seed/watchdog-config.json"), &good).unwrap();
    let out = check("desktop-streamer-watchdog", &good);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let bad = dir.path().join("bad.json");
    fs::write(&bad, r#"{"email_alerts": {"enabled": true, "password": "pw-do-not-print", "smtp_port": 70000}}"#)
        .unwrap();
    let out = check("desktop-streamer-watchdog", &bad);
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(all.contains("email_alerts.smtp_port = 70000: expected"), "{all}");
    assert!(!all.contains("pw-do-not-print"), "{all}");
}

#[test]
fn web_and_monitor_check_the_camera_list_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web-config.json");
    fs::write(&web, r#"{"cameras_file": "cameras.yaml"}"#).unwrap();
    fs::copy(workspace_root().join("config/tests/fixtures/seed/cameras.yaml"), dir.path().join("cameras.yaml"))
        .unwrap();
    for binary in ["desktop-streamer-web", "desktop-streamer-monitor"] {
        let out = check(binary, &web);
        assert_eq!(out.status.code(), Some(0), "{binary}: {}", text(&out));
    }

    fs::write(dir.path().join("cameras.yaml"), "streams:\n- name: Gate\n  url: rtsp://admin:topsecret@/x\n").unwrap();
    for binary in ["desktop-streamer-web", "desktop-streamer-monitor"] {
        let out = check(binary, &web);
        assert_eq!(out.status.code(), Some(1), "{binary}: {}", text(&out));
        let all = text(&out);
        assert!(all.contains("cameras.yaml:3:8: streams[0].url"), "{binary}: {all}");
        assert!(!all.contains("topsecret"), "{binary}: {all}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let out = check("desktop-streamer", Path::new("/nonexistent/config.json"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("/nonexistent/config.json: cannot read the file: No such file"), "{}", text(&out));
}

#[test]
fn a_bad_listen_address_is_refused_before_anything_starts() {
    let out = Command::new(bin("desktop-streamer-web")).args(["--listen", "8080"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid value '8080' for '--listen <ADDR:PORT>'"), "{}", text(&out));
}
