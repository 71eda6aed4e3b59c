//! SIGTERM stops a service cleanly and in time; a second signal cuts a drain short.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ds_tests::bins::bin;

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
    let config = dir.path().join("c.json");
    std::fs::write(&config, "{}").unwrap();
    for binary in ["desktop-streamer-watchdog", "desktop-streamer-web"] {
        let mut child = start(binary, &config);
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "{binary} keeps running until told to stop");
        signal(&child, "TERM");
        let status =
            wait_exit(&mut child, Duration::from_secs(5)).unwrap_or_else(|| panic!("{binary} ignored SIGTERM"));
        assert!(status.success(), "{binary} exits 0 on SIGTERM: {status:?}");
    }
}
