//! SIGTERM stops a service cleanly and in time; a second signal cuts a drain short.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ds_tests::bins::bin;
use serde_json::json;

fn start(binary: &str, config: &std::path::Path) -> Child {
    Command::new(bin(binary))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start service")
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -{name} failed");
}

/// Waits for the process to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn sigterm_stops_the_watchdog_and_the_web_service_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // Everything each service writes stays in `dir`, and the web service listens on loopback.
    let d = |name: &str| dir.path().join(name);
    let configs = [
        ("desktop-streamer-watchdog", json!({"state_dir": d("watchdog")})),
        (
            "desktop-streamer-web",
            json!({"listen": "127.0.0.1:0", "auth_file": d("web-auth.json"),
                "cameras_file": d("cameras.yaml"), "database": d("cameras.db"), "log_dir": d("logs"),
                "watchdog_state_dir": d("watchdog")}),
        ),
    ];
    for (binary, config_value) in configs {
        let config = dir.path().join(format!("{binary}.json"));
        std::fs::write(&config, config_value.to_string()).unwrap();
        let mut child = start(binary, &config);
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "{binary} keeps running until told to stop");
        signal(&child, "TERM");
        let status =
            wait_exit(&mut child, Duration::from_secs(5)).unwrap_or_else(|| panic!("{binary} ignored SIGTERM"));
        assert!(status.success(), "{binary} exits 0 on SIGTERM: {status:?}");
    }
}
