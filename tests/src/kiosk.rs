//! A kiosk for the dashboard's end-to-end tests: a real systemd user manager on its own bus
//! holding the three desktop-streamer units, and the real web service in front of them with
//! its configuration, credentials and log files in a temporary directory.
//!
//! The units run `sleep`: the real streamer, when a test needs one, runs outside systemd (see
//! [`crate::streamer`]), so stopping `desktop-streamer.service` is what the dashboard sees as
//! the streamer's unit going down.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::service::ServiceProcess;
use crate::systemd::UserSystemd;

/// The units the dashboard watches by default.
pub const UNITS: [&str; 3] =
    ["desktop-streamer.service", "desktop-streamer-watchdog.service", "desktop-streamer-web.service"];

#[derive(Debug)]
pub struct Kiosk {
    pub systemd: UserSystemd,
    pub dir: tempfile::TempDir,
    /// The web service's configuration file.
    pub config: PathBuf,
    /// Where the web service writes its log file and reads every service's.
    pub logs: PathBuf,
    /// The watchdog's state directory (its alert history), as the web service reads it.
    pub watchdog_state: PathBuf,
    pub web: ServiceProcess,
}

impl Kiosk {
    /// Starts the units in `started` (all three exist) and the web service with `extra` keys
    /// added to its configuration (such as `streamer_url`).
    pub fn start(started: &[&str], extra: Value) -> Kiosk {
        let systemd = UserSystemd::start().expect("a systemd user manager on a private bus");
        for u in UNITS {
            systemd.write_sleep_unit(u, "").unwrap();
        }
        systemd.daemon_reload().unwrap();
        for u in started {
            systemd.start_unit(u).unwrap();
        }
        let dir = crate::stream_dir();
        let WebFiles { config, logs, watchdog_state } = WebFiles::write(dir.path(), extra);
        let args: Vec<OsString> =
            vec!["--config".into(), config.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
        let web = ServiceProcess::start(
            "desktop-streamer-web",
            &args,
            &[
                ("DBUS_SESSION_BUS_ADDRESS", &systemd.bus_address()),
                ("DESKTOP_STREAMER_LOG_DIR", logs.to_str().unwrap()),
            ],
        );
        Kiosk { systemd, dir, config, logs, watchdog_state, web }
    }

    /// Writes the watchdog's alert history as the watchdog writes it: one alert delivered that
    /// came again twice within its cooldown ("stream stale"), one held back by the rate limit
    /// ("cpu high").
    pub fn write_alert_history(&self) {
        // The whole shape the watchdog writes (ds_wire::alerts::AlertHistory).
        let alert = |id: &str, title: &str, at: &str| {
            json!({"id": id, "kind": "k", "severity": "warning", "title": title, "details": "seen by the test",
                "since": at, "raised_at": at, "action": null, "host": "kiosk", "dashboard_url": null})
        };
        let history = json!({"version": 1, "entries": [
            {"alert": alert("1", "stream stale", "2026-01-01T10:00:00Z"), "repeats": 2,
             "deliveries": [{"channel": "email", "status": "delivered", "at": "2026-01-01T10:00:02Z", "attempts": 1}]},
            {"alert": alert("2", "cpu high", "2026-01-01T10:00:01Z"), "deliveries": [],
             "not_sent": "held back: 2 alerts were sent within 300 s (max_alerts)"}]});
        std::fs::write(self.watchdog_state.join("alert-history.json"), history.to_string()).unwrap();
    }

    /// A new API token for the dashboard, of `scope` (`read`, `control` or `admin`).
    pub fn new_token(&self, label: &str, scope: &str) -> String {
        new_token(&self.config, label, scope)
    }

    /// The dashboard's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web.port)
    }
}

/// The web service's files in a test directory: its configuration (systemd on the session
/// bus, everything it writes or reads below the directory) and the directories it reads.
#[derive(Debug)]
pub struct WebFiles {
    pub config: PathBuf,
    /// Where the services' log files are (created).
    pub logs: PathBuf,
    /// The watchdog's state directory (created).
    pub watchdog_state: PathBuf,
}

impl WebFiles {
    /// Writes `web-config.json` in `dir`, with `extra` keys added (such as `streamer_url`).
    pub fn write(dir: &Path, extra: Value) -> WebFiles {
        let (logs, watchdog_state) = (dir.join("logs"), dir.join("watchdog"));
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::create_dir_all(&watchdog_state).unwrap();
        let mut config_value = json!({"bus": "session", "auth_file": dir.join("web-auth.json"),
            "cameras_file": dir.join("cameras.yaml"), "database": dir.join("cameras.db"),
            "log_dir": &logs, "watchdog_state_dir": &watchdog_state});
        if let (Some(c), Value::Object(more)) = (config_value.as_object_mut(), extra) {
            c.extend(more);
        }
        let config = dir.join("web-config.json");
        std::fs::write(&config, config_value.to_string()).unwrap();
        WebFiles { config, logs, watchdog_state }
    }

    /// A new API token for the dashboard, of `scope` (`read`, `control` or `admin`).
    pub fn new_token(&self, label: &str, scope: &str) -> String {
        new_token(&self.config, label, scope)
    }
}

/// A new API token of `scope` in the credentials of the web service configured by `config`
/// (`desktop-streamer-web new-token LABEL --scope SCOPE`, as an operator creates one).
pub fn new_token(config: &Path, label: &str, scope: &str) -> String {
    let out = std::process::Command::new(crate::bins::bin("desktop-streamer-web"))
        .arg("--config")
        .arg(config)
        .args(["new-token", label, "--scope", scope])
        .output()
        .expect("desktop-streamer-web runs");
    assert!(out.status.success(), "new-token failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 token").trim().to_owned()
}

/// Makes `unit` of the user manager `sd` run the real web service with `files`' configuration
/// on 127.0.0.1:`port`, talking to `sd` over its bus, as the installed unit runs it; systemd
/// never restarts it by itself (`Restart=no`). The unit is not started.
pub fn write_web_unit(sd: &UserSystemd, unit: &str, files: &WebFiles, port: u16) {
    let text = format!(
        "[Unit]\nDescription=desktop-streamer-web under test\n\n[Service]\nExecStart={} --config {} --listen 127.0.0.1:{port}\n\
         Environment=DBUS_SESSION_BUS_ADDRESS={} DESKTOP_STREAMER_LOG_DIR={} RUST_LOG=info\nRestart=no\nTimeoutStopSec=15\n",
        crate::bins::bin("desktop-streamer-web").display(),
        files.config.display(),
        sd.bus_address(),
        files.logs.display()
    );
    sd.write_unit(unit, &text).unwrap();
    sd.daemon_reload().unwrap();
}
