//! SIGTERM stops a service cleanly and in time; a second signal cuts a drain short.

use std::time::Duration;

use ds_tests::service::ServiceProcess;
use serde_json::json;

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
        // Started means its "started" line is logged (the web service's after it listens).
        let mut service = ServiceProcess::start(binary, &["--config".into(), config.into()], &[]);
        if service.port != 0 {
            assert!(service.get("/api/health").is_some(), "{binary} answers before it is told to stop");
        }
        assert!(service.exited().is_none(), "{binary} keeps running until told to stop:\n{}", service.logs());
        let (status, took) = service.terminate(Duration::from_secs(5));
        let status = status.unwrap_or_else(|| panic!("{binary} ignored SIGTERM:\n{}", service.logs()));
        assert!(status.success(), "{binary} exits 0 on SIGTERM after {took:?}: {status:?}\n{}", service.logs());
    }
}
