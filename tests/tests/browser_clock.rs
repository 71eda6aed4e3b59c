//! Issue 20, what a user sees: the dashboard and the cameras page in a real browser (Debian's
//! headless Chromium, tests/browser/clock.mjs) while the real `desktop-streamer-web`'s wall
//! clock is stepped a year forward, then a day back (libfaketime, `CLOCK_MONOTONIC` untouched,
//! as NTP leaves a board without a real-time clock), with a real camera on loopback (the
//! harness's MJPEG server). The browser runs on the real clock, as a viewer's would.
//!
//! The dashboard's status age stays small and non-negative (never "366 d ago"), its machine
//! charts go on after each step with the whole hour in order, `/api/status/history` stays
//! continuous, and a live camera's last frame reads as seconds old. A screenshot of both pages is saved after
//! each step (the path is printed): into `DS_SCREENSHOT_DIR` when set, else
//! `<target>/<profile>/screenshots/browser_clock/`.

use std::path::PathBuf;
use std::time::Duration;

use ds_tests::browser::{run_script, screenshot_dir};
use ds_tests::faketime::WallClock;
use ds_tests::kiosk::WebFiles;
use ds_tests::mjpeg::MjpegServer;
use ds_tests::service::ServiceProcess;
use ds_tests::system_bus::SystemBus;
use serde_json::json;

/// The script's own waits are bounded; this is the backstop.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);
/// The steps, as libfaketime's offset file takes them, and in days for the script.
const STEPS: [(&str, i64); 2] = [("+366d", 366), ("-1d", -1)];

#[test]
fn the_pages_show_sane_ages_and_continuous_charts_under_a_stepped_wall_clock_in_chromium() {
    let clock = WallClock::new();
    let cams = MjpegServer::start();
    let dir = tempfile::tempdir().unwrap();
    // No streamer and no systemd: the machine's figures, measured by the web service itself,
    // are what the charts show. Port 1: nothing listens there, ever.
    let files = WebFiles::write(dir.path(), json!({"streamer_url": "http://127.0.0.1:1"}));
    std::fs::write(
        dir.path().join("cameras.yaml"),
        format!(
            "heartbeat_seconds: 5\ntimeout_seconds: 2\nretries: 0\nstreams:\n- id: cam\n  name: Cam\n  url: '{}'\n",
            cams.url("live")
        ),
    )
    .unwrap();
    let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
    // The machine's real systemd-timedated, on a system bus of the test's own.
    let system_bus = SystemBus::start().unwrap();
    let synchronized = system_bus.ntp_synchronized().unwrap();
    let (bus_var, bus_address) = system_bus.env();
    let mut env = vec![
        (bus_var.to_owned(), bus_address),
        ("DBUS_SESSION_BUS_ADDRESS".to_owned(), no_bus),
        ("DESKTOP_STREAMER_LOG_DIR".to_owned(), files.logs.to_str().unwrap().to_owned()),
    ];
    env.extend(clock.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let web = ServiceProcess::start(
        "desktop-streamer-web",
        &["--config".into(), files.config.into(), "--listen".into(), "127.0.0.1:0".into()],
        &env,
    );

    let screenshots = screenshot_dir("browser_clock");
    let spec = json!({
        "base": format!("http://127.0.0.1:{}", web.port),
        "camera": "cam",
        "steps": STEPS.iter().map(|(offset, days)| json!({"offset": offset, "days": days})).collect::<Vec<_>>(),
        "screenshots": screenshots,
        "clock_synchronized": synchronized,
    });
    let mut stepped = Vec::new();
    let run = run_script("clock.mjs", &[spec.to_string()], SCRIPT_LIMIT, |ask| match ask["ask"].as_str() {
        Some("step") => {
            let offset = ask["offset"].as_str().expect("an offset");
            clock.step(offset);
            stepped.push(offset.to_owned());
            json!({"ok": true})
        }
        _ => panic!("unexpected question from clock.mjs: {ask}"),
    });
    let result = run.result;
    eprintln!("browser checks ({:.1} s): {result:#}", run.elapsed.as_secs_f64());
    eprintln!("screenshots of the pages after each step: {}", screenshots.display());
    assert_eq!(stepped, STEPS.map(|(o, _)| o), "the script stepped the clock: {result:#}\n{}", run.stderr);
    let mut names = vec!["before_the_step".to_owned()];
    for (offset, _) in STEPS {
        for check in ["chart_goes_on", "status_fresh", "history_continuous", "fresh_dashboard", "camera_age"] {
            names.push(format!("{check}_{offset}"));
        }
    }
    names.push("page_errors".to_owned());
    for name in &names {
        assert_eq!(result["checks"][name]["ok"], true, "{name}: {:#}\n{}", result["checks"][name], run.stderr);
    }
    assert_eq!(result["ok"], true, "{result:#}");
    let shots = result["checks"]["screenshots"]["paths"].as_array().cloned().unwrap_or_default();
    assert_eq!(shots.len(), 2 * STEPS.len(), "{result:#}");
    for shot in &shots {
        let path = PathBuf::from(shot.as_str().unwrap());
        assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0), "no screenshot at {}", path.display());
    }

    let pid = web.pid();
    drop(web);
    WallClock::forget(pid);
}
