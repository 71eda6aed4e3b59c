//! desktop-streamer-watchdog end to end: the real binary against a real systemd user manager
//! on its own D-Bus bus, a real SMTP server (aiosmtpd) and real HTTP receivers on loopback.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ds_tests::bins::bin;
use ds_tests::faketime::{WallClock, offset_from_now};
use ds_tests::mjpeg::{MjpegServer, Mode};
use ds_tests::receiver::Receiver;
use ds_tests::service::ServiceProcess;
use ds_tests::smtp::{SmtpServer, TlsFiles, free_port};
use ds_tests::streamer::signal_pid;
use ds_tests::streamer::{wait_for_segments, write_streamer_unit};
use ds_tests::systemd::UserSystemd;
use ds_tests::wait::{try_wait_until, wait_until};
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

const VICTIM: &str = "ds-victim.service";
/// The watchdog's configuration file, in a test's directory.
const CONFIG: &str = "watchdog-config.json";

struct Watchdog {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Watchdog {
    fn start(config: &std::path::Path, bus: &str) -> Watchdog {
        Watchdog::start_with(config, bus, Vec::new())
    }

    /// With `env` added (e.g. a [`WallClock`]'s).
    fn start_with(config: &std::path::Path, bus: &str, env: Vec<(String, String)>) -> Watchdog {
        let mut child = Command::new(bin("desktop-streamer-watchdog"))
            .arg("--config")
            .arg(config)
            .env_remove("FAKETIME")
            .envs(env)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Watchdog { child, log }
    }

    /// Started with the configuration [`watch_with_webhook_env`] wrote in `dir`, on `sd`'s bus,
    /// with `env` added; watching.
    fn restart_on(sd: &UserSystemd, dir: &std::path::Path, env: Vec<(String, String)>) -> Watchdog {
        let w = Watchdog::start_with(&dir.join(CONFIG), &sd.bus_address(), env);
        w.wait_log("watching units over D-Bus", Duration::from_secs(10));
        w
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        self.wait_log_count(needle, 1, timeout);
    }

    fn wait_log_count(&self, needle: &str, count: usize, timeout: Duration) {
        let what = format!("{needle:?} {count} time(s) in the watchdog's log");
        try_wait_until(&what, timeout, || self.logs().matches(needle).count() >= count)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    fn stop(mut self) -> std::process::ExitStatus {
        signal_pid(self.child.id(), "TERM");
        wait_until("the watchdog to exit on SIGTERM", Duration::from_secs(5), || self.child.try_wait().unwrap())
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A systemd user manager on a private bus running [`VICTIM`].
fn manager_with_victim() -> UserSystemd {
    let sd = UserSystemd::start().expect("a systemd user manager on a private bus");
    sd.write_sleep_unit(VICTIM, "").unwrap();
    sd.daemon_reload().unwrap();
    sd.start_unit(VICTIM).unwrap();
    sd
}

/// SIGKILLs the victim's main process and waits (10 s at most) until a new one runs; how long
/// that took.
fn kill_and_wait_for_restart(sd: &UserSystemd, w: &Watchdog) -> Duration {
    let old = sd.kill_main_process(VICTIM).unwrap();
    let t0 = Instant::now();
    try_wait_until(&format!("a new main process of {VICTIM}"), Duration::from_secs(10), || {
        let pid = sd.main_pid(VICTIM).unwrap_or(0);
        pid != 0 && pid != old
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    t0.elapsed()
}

#[test]
fn a_killed_unit_is_restarted_over_dbus_alerted_with_what_was_done_and_resolved() {
    let sd = manager_with_victim();
    let hooks = Receiver::start(&[200]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchdog-config.json");
    let state = dir.path().join("state");
    std::fs::write(
        &config,
        json!({"bus": "session", "units": [VICTIM], "check_interval": 60,
            "auto_recovery": {"resource_monitoring": false}, "state_dir": state,
            "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}})
        .to_string(),
    )
    .unwrap();
    let w = Watchdog::start(&config, &sd.bus_address());
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));

    println!("failure -> running again after {:?}", kill_and_wait_for_restart(&sd, &w));

    let alerts: Vec<Value> = hooks.wait_for(2, Duration::from_secs(15)).iter().map(|r| r.json()).collect();
    assert_eq!(alerts[0]["severity"], "critical", "{alerts:#?}");
    assert_eq!(alerts[0]["title"], format!("service down: {VICTIM}"));
    assert!(alerts[0]["details"].as_str().unwrap().contains("killed by signal 9"), "{alerts:#?}");
    assert!(alerts[0]["action"].as_str().unwrap().starts_with("restarted the unit"), "{alerts:#?}");
    assert_eq!(alerts[1]["severity"], "info");
    assert_eq!(alerts[1]["title"], format!("resolved: service down: {VICTIM}"));
    assert!(
        alerts[0]["subject"].as_str().unwrap().starts_with("[desktop-streamer] CRITICAL service down"),
        "{alerts:#?}"
    );

    // The history records each delivery once the receiver has answered.
    wait_until("both alerts recorded as delivered", Duration::from_secs(5), || {
        let text = std::fs::read_to_string(state.join("alert-history.json")).map_err(|e| e.to_string())?;
        let history: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let statuses: Vec<Value> =
            history["entries"].as_array().unwrap().iter().map(|e| e["deliveries"][0]["status"].clone()).collect();
        if statuses == ["delivered", "delivered"] { Ok(()) } else { Err(format!("{statuses:?}")) }
    });
    assert!(w.stop().success());
}

/// A watchdog on `sd`'s bus with `extra` configuration keys, resources unwatched, no cooldown,
/// its state in `dir`, alerting a JSON webhook receiver; started and watching.
fn watch_with_webhook(sd: &UserSystemd, dir: &std::path::Path, extra: Value) -> (Receiver, Watchdog) {
    watch_with_webhook_env(sd, dir, extra, Vec::new())
}

/// [`watch_with_webhook`] with `env` added to the watchdog's (e.g. a [`WallClock`]'s); its
/// configuration is [`CONFIG`] in `dir`, to start it again with [`Watchdog::restart_on`].
fn watch_with_webhook_env(
    sd: &UserSystemd,
    dir: &std::path::Path,
    extra: Value,
    env: Vec<(String, String)>,
) -> (Receiver, Watchdog) {
    let hooks = Receiver::start(&[200]);
    let mut config = json!({"bus": "session", "alert_cooldown": 0, "auto_recovery": {"resource_monitoring": false},
        "state_dir": dir.join("state"),
        "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}});
    if let (Some(c), Value::Object(more)) = (config.as_object_mut(), extra) {
        c.extend(more);
    }
    std::fs::write(dir.join(CONFIG), config.to_string()).unwrap();
    (hooks, Watchdog::restart_on(sd, dir, env))
}

/// A real streamer, run by a real systemd user manager as desktop-streamer.service on a real
/// two-monitor X display, hangs (SIGSTOP): its health API stops answering, the watchdog warns,
/// turns critical, restarts the unit over D-Bus, and says "resolved" once the new streamer
/// answers with fresh segments.
#[test]
fn a_hung_streamer_is_restarted_over_dbus_and_its_stream_comes_back() {
    const STREAMER: &str = "desktop-streamer.service";
    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let sd = UserSystemd::start().expect("a systemd user manager on a private bus");
    let dir = ds_tests::stream_dir();
    let port = free_port();
    write_streamer_unit(&sd, STREAMER, &x.display(), port, &dir.path().join("streamer"), dir.path());
    // A hung process ignores SIGTERM: systemd kills it after this.
    let drop_in = sd.unit_dir().join(format!("{STREAMER}.d"));
    std::fs::create_dir_all(&drop_in).unwrap();
    std::fs::write(drop_in.join("stop.conf"), "[Service]\nTimeoutStopSec=2\n").unwrap();
    sd.daemon_reload().unwrap();
    sd.start_unit(STREAMER).unwrap();
    wait_for_segments(port, 1, Duration::from_secs(40));

    let (hooks, w) = watch_with_webhook(
        &sd,
        dir.path(),
        json!({"units": [STREAMER], "check_interval": 1, "streamer_url": format!("http://127.0.0.1:{port}"),
            "stream": {"stale_warning_seconds": 2, "stale_critical_seconds": 5}}),
    );
    let hung = sd.main_pid(STREAMER).unwrap();
    signal_pid(hung, "STOP");

    let alerts: Vec<Value> = hooks.wait_for(3, Duration::from_secs(40)).iter().map(|r| r.json()).collect();
    let said: Vec<(&str, &str)> =
        alerts.iter().map(|a| (a["severity"].as_str().unwrap(), a["title"].as_str().unwrap())).collect();
    assert_eq!(
        said,
        [
            ("warning", "streamer health API unreachable"),
            ("critical", "streamer health API unreachable"),
            ("info", "resolved: streamer health API unreachable")
        ],
        "{alerts:#?}\n{}",
        w.logs()
    );
    assert_eq!(alerts[1]["action"], "restarted the unit (RestartUnit over D-Bus)", "{alerts:#?}");
    // One hang, one restart (the new process answers before its unit is active again).
    assert_eq!(w.logs().matches("restart requested over D-Bus").count(), 1, "{}", w.logs());
    let restarted = sd.main_pid(STREAMER).unwrap();
    assert!(restarted != 0 && restarted != hung, "a new streamer runs");
    wait_for_segments(port, 1, Duration::from_secs(20));
    assert!(w.stop().success());
}

/// A unit allowed three starts a minute (StartLimitBurst=3): the watchdog restarts it once
/// after a kill, then holds back and says why, so systemd never refuses it and a start by hand
/// still works.
#[test]
fn restarts_stop_short_of_systemds_start_limit_and_say_so() {
    let sd = UserSystemd::start().expect("a systemd user manager on a private bus");
    sd.write_sleep_unit(VICTIM, "StartLimitBurst=3\nStartLimitIntervalSec=60").unwrap();
    sd.daemon_reload().unwrap();
    sd.start_unit(VICTIM).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (hooks, w) = watch_with_webhook(
        &sd,
        dir.path(),
        json!({"units": [VICTIM], "check_interval": 60, "restart_limit": {"max_restarts": 10, "window_seconds": 300}}),
    );

    kill_and_wait_for_restart(&sd, &w);
    let first: Vec<Value> = hooks.wait_for(2, Duration::from_secs(15)).iter().map(|r| r.json()).collect();
    assert_eq!(first[0]["action"], "restarted the unit (StartUnit over D-Bus)", "{first:#?}");

    sd.kill_main_process(VICTIM).unwrap();
    w.wait_log("holding back a restart", Duration::from_secs(10));
    let alerts: Vec<Value> = hooks.wait_for(3, Duration::from_secs(15)).iter().map(|r| r.json()).collect();
    assert_eq!(alerts[2]["title"], format!("service down: {VICTIM}"), "{alerts:#?}");
    let action = alerts[2]["action"].as_str().unwrap();
    assert!(action.starts_with("held back a restart") && action.contains("StartLimitBurst (3)"), "{action}");
    assert_eq!(sd.show(VICTIM, "ActiveState").unwrap(), "failed");
    assert_ne!(sd.show(VICTIM, "Result").unwrap(), "start-limit-hit");
    sd.start_unit(VICTIM).expect("systemd still starts the unit: its start limit was never reached");
    assert!(w.stop().success());
}

#[test]
fn test_alert_reports_each_channel_and_reaches_real_smtp_and_webhook_peers() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = free_port();
    let smtp = SmtpServer::start(port, &maildir);
    let hooks = Receiver::start(&[200]);
    let config = dir.path().join("watchdog-config.json");
    let write = |smtp_port: u16| {
        std::fs::write(
            &config,
            json!({"state_dir": dir.path().join("state"),
                "email_alerts": {"enabled": true, "smtp_server": "127.0.0.1", "smtp_port": smtp_port, "tls": "none",
                    "from_email": "kiosk@example.com", "to_email": "ops@example.com"},
                "webhook_alerts": {"enabled": true, "url": hooks.url("/slack-like"), "format": "slack"}})
            .to_string(),
        )
        .unwrap();
    };
    write(port);
    let out =
        Command::new(bin("desktop-streamer-watchdog")).arg("--config").arg(&config).arg("test-alert").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: email") && text.contains("ok: webhook:http://127.0.0.1"), "{text}");
    let mail = smtp.wait_for(1, Duration::from_secs(10));
    assert!(mail[0].contains("Subject: [desktop-streamer] INFO test alert on"), "{}", mail[0]);
    let hook = hooks.wait_for(1, Duration::from_secs(10));
    assert_eq!(hook[0].json()["attachments"][0]["color"], "good");
    smtp.stop();

    // Nothing listens on the SMTP port now: the operator is told which channel failed.
    write(port);
    let out =
        Command::new(bin("desktop-streamer-watchdog")).arg("--config").arg(&config).arg("test-alert").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("failed: email:") && text.contains("ok: webhook:"), "{text}");
}

#[test]
fn email_goes_over_starttls_and_implicit_tls_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::create(dir.path());
    let config = dir.path().join("watchdog-config.json");
    let test_alert = |mode: &str, port: u16, ca: Option<&std::path::Path>| {
        let mut email = json!({"enabled": true, "smtp_server": "127.0.0.1", "smtp_port": port, "tls": mode,
            "from_email": "kiosk@example.com", "to_email": "ops@example.com"});
        if let Some(ca) = ca {
            email["tls_ca_file"] = json!(ca);
        }
        std::fs::write(&config, json!({"state_dir": dir.path().join("state"), "email_alerts": email}).to_string())
            .unwrap();
        let out = Command::new(bin("desktop-streamer-watchdog"))
            .arg("--config")
            .arg(&config)
            .arg("test-alert")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for (mode, implicit) in [("starttls", false), ("tls", true)] {
        let port = free_port();
        let smtp = SmtpServer::start_tls(port, &dir.path().join(mode), &tls, implicit);
        let (code, text) = test_alert(mode, port, Some(&tls.ca));
        assert_eq!(code, Some(0), "{mode}: {text}");
        let mail = smtp.wait_for(1, Duration::from_secs(10));
        assert!(mail[0].contains("Subject: [desktop-streamer] INFO test alert on"), "{mode}: {}", mail[0]);

        // Without the private CA the certificate is not trusted: refused, and nothing is sent.
        let (code, text) = test_alert(mode, port, None);
        assert_eq!(code, Some(1), "{mode}: {text}");
        assert!(text.contains("failed: email:") && text.contains("invalid peer certificate"), "{mode}: {text}");
        assert_eq!(smtp.messages().len(), 1, "{mode}: no mail over an untrusted connection");
    }
    // Plain SMTP to a server that requires STARTTLS is refused by the server.
    let port = free_port();
    let _smtp = SmtpServer::start_tls(port, &dir.path().join("plain"), &tls, false);
    let (code, text) = test_alert("none", port, None);
    assert_eq!(code, Some(1), "{text}");
}

#[test]
fn alerts_raised_while_smtp_is_down_arrive_once_each_after_a_watchdog_restart() {
    let sd = UserSystemd::start().unwrap();
    // ds-c fails only once SMTP is back: its alerts come after the four, the sign that the
    // outbox has been through them.
    let units = ["ds-a.service", "ds-b.service", "ds-c.service"];
    let (failed_first, failed_later) = (&units[..2], units[2]);
    for u in units {
        sd.write_sleep_unit(u, "").unwrap();
    }
    sd.daemon_reload().unwrap();
    for u in units {
        sd.start_unit(u).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, maildir) = (free_port(), dir.path().join("mail"));
    let config = dir.path().join("watchdog-config.json");
    std::fs::write(
        &config,
        json!({"bus": "session", "units": units, "check_interval": 60,
            "auto_recovery": {"resource_monitoring": false}, "state_dir": dir.path().join("state"),
            "email_alerts": {"enabled": true, "smtp_server": "127.0.0.1", "smtp_port": port, "tls": "none",
                "from_email": "kiosk@example.com", "to_email": "ops@example.com"}})
        .to_string(),
    )
    .unwrap();
    // SMTP is down: each failure and its resolution (4 alerts) wait in the outbox.
    let w = Watchdog::start(&config, &sd.bus_address());
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));
    for u in failed_first {
        sd.kill_main_process(u).unwrap();
        w.wait_log(&format!("resolved: service down: {u}"), Duration::from_secs(10));
    }
    w.wait_log("will retry", Duration::from_secs(10));
    assert!(w.stop().success());
    let waiting = std::fs::read_dir(dir.path().join("state/outbox")).unwrap().count();
    assert_eq!(waiting, 4, "four undelivered alerts kept on disk across the restart");

    // SMTP back, watchdog started again: everything arrives, once.
    let smtp = SmtpServer::start(port, &maildir);
    let w = Watchdog::start(&config, &sd.bus_address());
    smtp.wait_for(4, Duration::from_secs(40));
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));
    sd.kill_main_process(failed_later).unwrap();
    let mail = smtp.wait_for(6, Duration::from_secs(40));
    let later: Vec<&String> = mail.iter().filter(|m| m.contains(failed_later)).collect();
    assert_eq!(later.len(), 2, "{failed_later}: its failure and resolution, after the four: {mail:#?}");
    assert_eq!(ds_tests::smtp::maildir_messages(&maildir).len(), 6, "each alert exactly once: {mail:#?}");
    for u in failed_first {
        let subjects: Vec<&String> = mail.iter().filter(|m| m.contains(u)).collect();
        assert!(subjects.iter().any(|m| m.contains("CRITICAL service down")), "{mail:#?}");
        assert!(subjects.iter().any(|m| m.contains("INFO resolved: service down")), "{mail:#?}");
    }
    // The server has the last mail a moment before the watchdog records it delivered and
    // removes its file.
    let outbox = dir.path().join("state/outbox");
    try_wait_until("nothing left undelivered", Duration::from_secs(10), || {
        std::fs::read_dir(&outbox).unwrap().count() == 0
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", std::fs::read_dir(&outbox).unwrap().collect::<Vec<_>>(), w.logs()));
    assert!(w.stop().success());
}

#[test]
fn a_watchdog_that_cannot_reach_systemd_says_so_through_a_channel_that_works() {
    let hooks = Receiver::start(&[200]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchdog-config.json");
    std::fs::write(
        &config,
        json!({"bus": "session", "units": [VICTIM], "auto_recovery": {"resource_monitoring": false},
            "state_dir": dir.path().join("state"),
            "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}})
        .to_string(),
    )
    .unwrap();
    let nowhere = format!("unix:path={}", dir.path().join("no-bus").display());
    let w = Watchdog::start(&config, &nowhere);
    let alert = hooks.wait_for(1, Duration::from_secs(15))[0].json();
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["title"], "watchdog cannot reach systemd");
    assert!(alert["details"].as_str().unwrap().contains("no-bus"), "names the bus it tried: {alert}");
    assert!(w.stop().success());
}

#[test]
fn sighup_applies_a_good_config_and_alerts_a_refused_one_and_a_broken_file_at_start_runs_on_the_last_good_one() {
    let sd = manager_with_victim();
    let hooks = Receiver::start(&[200]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchdog-config.json");
    // Enough alerts per period that the rate limit, carried over to the last run, holds none back.
    let good = json!({"bus": "session", "units": [VICTIM], "auto_recovery": {"resource_monitoring": false}, "max_alerts": 50,
        "state_dir": dir.path().join("state"), "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}});
    std::fs::write(&config, good.to_string()).unwrap();
    let w = Watchdog::start(&config, &sd.bus_address());
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));

    let mut bad = good.clone();
    bad["check_interval"] = json!(0);
    std::fs::write(&config, bad.to_string()).unwrap();
    signal_pid(w.child.id(), "HUP");
    let alert = hooks.wait_for(1, Duration::from_secs(10))[0].json();
    assert_eq!(alert["title"], "new watchdog configuration refused", "{alert}");
    assert!(alert["details"].as_str().unwrap().contains("check_interval = 0: must be 1..=3600"), "{alert}");
    assert_eq!(w.logs().matches("watching units over D-Bus").count(), 1, "the old daemon runs on, not restarted");

    std::fs::write(&config, good.to_string()).unwrap();
    signal_pid(w.child.id(), "HUP");
    w.wait_log("configuration reloaded", Duration::from_secs(10));
    w.wait_log_count("watching units over D-Bus", 2, Duration::from_secs(10));
    // The restarted daemon still heals.
    kill_and_wait_for_restart(&sd, &w);
    // Started once, and once more for the good file only: the refused one restarted nothing,
    // even later.
    assert_eq!(w.logs().matches("watching units over D-Bus").count(), 2, "{}", w.logs());
    assert!(w.stop().success());

    // Started with the broken file, the watchdog runs with the last one that worked and says
    // so through that one's channel; it still heals.
    std::fs::write(&config, bad.to_string()).unwrap();
    let w = Watchdog::start(&config, &sd.bus_address());
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));
    let alert = try_wait_until("an alert about the unusable file", Duration::from_secs(10), || {
        hooks
            .requests()
            .iter()
            .map(|r| r.json())
            .find(|a| a["kind"] == "watchdog:config" && a["severity"] == "critical")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    assert_eq!(alert["title"], "watchdog configuration cannot be used", "{alert}");
    let details = alert["details"].as_str().unwrap();
    assert!(details.contains("runs with the last configuration that worked"), "{details}");
    assert!(details.contains("check_interval = 0: must be 1..=3600"), "{details}");
    kill_and_wait_for_restart(&sd, &w);
    assert!(w.stop().success());
}

/// The real web monitor probing two cameras of `camera` every 5 s, Gate (its switchable
/// stream) and Gone (never there: its alert proves the watchdog has judged the cameras), with
/// the list's `settings` (YAML lines) added; and a watchdog reading its `/api/cameras` every
/// second with a grace period of 3 s, alerting to a webhook receiver.
struct CameraWatch {
    web: ServiceProcess,
    hooks: Receiver,
    watchdog: Watchdog,
}

impl CameraWatch {
    fn start(dir: &std::path::Path, camera: &MjpegServer, settings: &str) -> CameraWatch {
        CameraWatch::start_with(dir, camera, settings, None, None)
    }

    /// With `token_file`: the dashboard's `public_read` is off and the watchdog sends the token
    /// that file holds (`web_token_file`). With `tls`: the dashboard serves HTTPS with its
    /// certificate, and the watchdog still has the `http://` `web_url` the installer writes.
    fn start_with(
        dir: &std::path::Path,
        camera: &MjpegServer,
        settings: &str,
        token_file: Option<&std::path::Path>,
        tls: Option<&TlsFiles>,
    ) -> CameraWatch {
        let cameras_yaml = format!(
            "heartbeat_seconds: 5\ntimeout_seconds: 2\nretries: 1\n{settings}streams:\n\
             - name: Gate\n  url: {}\n- name: Gone\n  url: {}\n",
            camera.url("switchable"),
            camera.url("not-there")
        );
        std::fs::write(dir.join("cameras.yaml"), cameras_yaml).unwrap();
        let web_config = dir.join("web-config.json");
        std::fs::write(
            &web_config,
            json!({"listen": "127.0.0.1:0", "cameras_file": "cameras.yaml", "database": "cameras.db",
                "auth_file": "web-auth.json", "log_dir": "logs", "watchdog_state_dir": "state",
                "bus": "session", "streamer_url": "http://127.0.0.1:9", "public_read": token_file.is_none(),
                "tls_cert_file": tls.map(|t| &t.cert), "tls_key_file": tls.map(|t| &t.key)})
            .to_string(),
        )
        .unwrap();
        let nowhere = format!("unix:path={}", dir.join("no-bus").display());
        let web = ServiceProcess::start(
            "desktop-streamer-web",
            &["--config".into(), web_config.into()],
            &[("DBUS_SESSION_BUS_ADDRESS", &nowhere)],
        );
        let hooks = Receiver::start(&[200]);
        let config = dir.join("watchdog-config.json");
        std::fs::write(
            &config,
            // No cooldown: a camera goes down twice within a minute.
            json!({"bus": "session", "units": [], "check_interval": 1, "camera_grace_seconds": 3, "alert_cooldown": 0,
                "auto_recovery": {"resource_monitoring": false}, "web_url": format!("http://127.0.0.1:{}", web.port),
                "state_dir": dir.join("state"),
                "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"},
                "web_token_file": token_file})
            .to_string(),
        )
        .unwrap();
        let watchdog = Watchdog::start(&config, &nowhere);
        CameraWatch { web, hooks, watchdog }
    }

    /// Waits up to `limit` for `count` alerts whose title names `camera {name}`; all of them.
    fn alerts_about(&self, name: &str, count: usize, limit: Duration) -> Vec<Value> {
        self.alerts_titled(&format!("camera {name}"), count, limit)
    }

    /// Waits up to `limit` for `count` alerts whose title contains `title`; all of them.
    fn alerts_titled(&self, title: &str, count: usize, limit: Duration) -> Vec<Value> {
        let found = || {
            let found: Vec<Value> = self
                .hooks
                .requests()
                .iter()
                .map(|r| r.json())
                .filter(|a| a["title"].as_str().is_some_and(|t| t.contains(title)))
                .collect();
            if found.len() >= count { Ok(found) } else { Err(format!("{found:?}")) }
        };
        try_wait_until(&format!("{count} alert(s) titled …{title}…"), limit, found)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", self.watchdog.logs(), self.web.logs()))
    }

    fn stop(self) {
        assert!(self.watchdog.stop().success());
        drop(self.web);
    }
}

#[test]
fn a_camera_down_past_its_grace_period_is_alerted_from_the_web_monitor_and_its_recovery_or_removal_said() {
    // The real web monitor probes a real MJPEG camera; the watchdog reads its /api/cameras.
    let camera = MjpegServer::start();
    let dir = tempfile::tempdir().unwrap();
    let watch = CameraWatch::start(dir.path(), &camera, "");
    let camera_alerts = |count: usize, limit: Duration| watch.alerts_about("Gate", count, limit);
    // Up first: no camera alert while it delivers video, though the watchdog has looked at the
    // cameras past their grace period (it alerted the one that never answered).
    watch.alerts_about("Gone", 1, Duration::from_secs(30));
    assert!(camera_alerts(0, Duration::ZERO).is_empty());

    // Down: PENDING after one failed heartbeat, DOWN after the retry, alerted after the grace.
    camera.set_mode(Mode::NotFound);
    let down = camera_alerts(1, Duration::from_secs(30));
    assert_eq!(down[0]["severity"], "warning", "{down:?}");
    assert!(down[0]["details"].as_str().unwrap().contains("not_found"), "the reason is given: {down:?}");

    // Back: the condition resolves and says so.
    camera.set_mode(Mode::Live);
    let both = camera_alerts(2, Duration::from_secs(30));
    assert_eq!(both[1]["severity"], "info", "{both:?}");
    assert!(both[1]["title"].as_str().unwrap().contains("resolved"), "{both:?}");

    // Down again, then taken off the list: the condition ends as removed, not as resolved.
    camera.set_mode(Mode::NotFound);
    camera_alerts(3, Duration::from_secs(30));
    std::fs::write(dir.path().join("cameras.yaml"), "heartbeat_seconds: 5\nstreams: []\n").unwrap();
    let all = camera_alerts(4, Duration::from_secs(30));
    assert_eq!(all[3]["severity"], "info", "{all:?}");
    assert!(all[3]["title"].as_str().unwrap().starts_with("no longer watched: camera Gate down"), "{all:?}");
    assert!(all[3]["details"].as_str().unwrap().contains("removed from the camera list"), "{all:?}");
    watch.stop();
}

/// The picture's verdicts reach the watchdog: a camera that delivers video of a black picture
/// (a covered lens) and then of a picture that stands still (a hung sensor), each past
/// `camera_grace_seconds`, is a warning named by its reason, with the monitor's message; good
/// video again resolves each. The real web monitor decodes the pictures of a real MJPEG camera
/// (`black_seconds` and `frozen_seconds` of 1 s: DEGRADED at the second heartbeat of each).
#[test]
fn a_black_or_frozen_camera_past_its_grace_period_is_a_warning_named_by_its_reason_and_good_video_resolves_it() {
    let camera = MjpegServer::start();
    let dir = tempfile::tempdir().unwrap();
    let watch = CameraWatch::start(dir.path(), &camera, "black_seconds: 1\nfrozen_seconds: 1\n");
    let camera_alerts = |count: usize, limit: Duration| watch.alerts_about("Gate", count, limit);
    watch.alerts_about("Gone", 1, Duration::from_secs(30));
    assert!(camera_alerts(0, Duration::ZERO).is_empty(), "a moving picture is not alerted");

    for (n, (mode, reason, words)) in
        [(Mode::Black, "black", "almost uniformly dark"), (Mode::Frozen, "frozen", "has not changed")]
            .into_iter()
            .enumerate()
    {
        camera.set_mode(mode);
        let raised = camera_alerts(2 * n + 1, Duration::from_secs(40));
        let alert = &raised[2 * n];
        assert_eq!(alert["severity"], "warning", "{raised:#?}");
        assert_eq!(alert["title"].as_str().unwrap(), format!("camera Gate {reason}"), "{raised:#?}");
        let details = alert["details"].as_str().unwrap();
        assert!(details.contains("delivered video with something wrong") && details.contains(words), "{details}");

        camera.set_mode(Mode::Live);
        let resolved = camera_alerts(2 * n + 2, Duration::from_secs(40));
        let alert = &resolved[2 * n + 1];
        assert_eq!(alert["severity"], "info", "{resolved:#?}");
        let title = alert["title"].as_str().unwrap();
        assert!(title.contains("resolved") && title.contains(&format!("camera Gate {reason}")), "{resolved:#?}");
    }
    watch.stop();
}

/// A board queues alerts while its network (here: the webhook receiver, answering 503) is down,
/// then NTP steps its wall clock by `step` (libfaketime, the monotonic clock untouched) and the
/// watchdog is restarted under the stepped clock: every held alert is kept and delivered once
/// the receiver is up, in order, within the normal back-off, none expired
/// (`alert_max_age_hours` is 1), with "raised at" as the clock said then and a note of the
/// step; the step itself is alerted.
fn held_alerts_survive_a_step_of_the_wall_clock_and_a_restart(step: &str, human: &str, step_s: f64) {
    let sd = UserSystemd::start().expect("a systemd user manager on a private bus");
    sd.write_sleep_unit("ds-a.service", "").unwrap();
    sd.daemon_reload().unwrap();
    sd.start_unit("ds-a.service").unwrap();
    let hooks = Receiver::start(&[503]);
    let clock = WallClock::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchdog-config.json");
    let outbox = dir.path().join("state/outbox");
    std::fs::write(
        &config,
        json!({"bus": "session", "units": ["ds-a.service"], "check_interval": 1, "alert_cooldown": 0,
            "alert_max_age_hours": 1, "auto_recovery": {"resource_monitoring": false},
            "state_dir": dir.path().join("state"),
            "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}})
        .to_string(),
    )
    .unwrap();
    let w = Watchdog::start_with(&config, &sd.bus_address(), clock.env());
    w.wait_log("watching units over D-Bus", Duration::from_secs(10));
    sd.kill_main_process("ds-a.service").unwrap();
    w.wait_log("resolved: service down: ds-a.service", Duration::from_secs(10));
    w.wait_log("will retry", Duration::from_secs(10));

    clock.step(step);
    w.wait_log(&format!("the system clock stepped {human}"), Duration::from_secs(15));
    let logs = w.logs();
    assert!(w.stop().success());

    // The held alerts' titles, oldest first, from their files (not a replacement being
    // written, `.<name>.<random>.tmp`). Under load the watchdog may see the unit down more than
    // once (each a pair of alerts); the clock's step is one alert whatever else is held.
    let held = || -> Vec<String> {
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap()["alert"]["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let step_title = format!("the system clock stepped {human}");
    let before_restart = held();
    assert_eq!(
        before_restart[..2],
        ["service down: ds-a.service", "resolved: service down: ds-a.service"],
        "{before_restart:?}\n{logs}"
    );
    assert_eq!(before_restart.last(), Some(&step_title), "{before_restart:?}\n{logs}");
    assert_eq!(before_restart.iter().filter(|t| t.contains("clock")).count(), 1, "once per step:\n{logs}");

    // Restarted under the stepped clock: the held alerts are still there and tried at once.
    let w = Watchdog::start_with(&config, &sd.bus_address(), clock.env());
    w.wait_log("will retry", Duration::from_secs(10));
    assert_eq!(held(), before_restart, "kept across the restart:\n{}", w.logs());

    // The receiver comes up: all arrive within the back-off (at most 20 s after three
    // failures), in order.
    let before = hooks.answer_from_now(200);
    hooks.wait_for(before + before_restart.len(), Duration::from_secs(30));
    let sent: Vec<Value> = hooks.requests()[before..].iter().map(|r| r.json()).collect();
    let titles: Vec<&str> = sent.iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, before_restart, "{sent:#?}");
    // How far from the real time now each alert's raised_at is (GNU date reads RFC 3339).
    let raised = |a: &Value| {
        let out = Command::new("date").arg("-d").arg(a["raised_at"].as_str().unwrap()).arg("+%s").output().unwrap();
        offset_from_now(String::from_utf8(out.stdout).unwrap().trim().parse().unwrap())
    };
    let (step_alert, before_step) = sent.split_last().unwrap();
    for a in before_step {
        assert!(raised(a).abs() < 600.0, "raised at as the clock said then, before the step: {a}");
        let note = format!("(the system clock has since stepped {human}).");
        assert!(a["details"].as_str().unwrap().ends_with(&note), "{a}");
    }
    assert!(
        (raised(step_alert) - step_s).abs() < 600.0,
        "the step alert was raised on the stepped clock: {step_alert}"
    );
    assert_eq!(step_alert["severity"], "info");
    try_wait_until("the outbox to empty", Duration::from_secs(10), || held().is_empty())
        .unwrap_or_else(|e| panic!("{e}\n{}", w.logs()));
    assert!(!w.logs().contains("alert dropped undelivered"), "nothing expired:\n{}", w.logs());
    let pid = w.child.id();
    assert!(w.stop().success());
    WallClock::forget(pid);
}

/// The wall clock steps while the watchdog is stopped (NTP at boot, an operator; libfaketime,
/// the monotonic clock untouched): the next start says so, once, as a step "while the watchdog
/// was not running", and a further restart does not say it again.
#[test]
fn a_step_while_the_watchdog_was_stopped_is_alerted_once_at_the_next_start() {
    let sd = manager_with_victim();
    let clock = WallClock::new();
    let dir = tempfile::tempdir().unwrap();
    let (hooks, w) =
        watch_with_webhook_env(&sd, dir.path(), json!({"units": [VICTIM], "check_interval": 60}), clock.env());
    assert!(w.stop().success());
    clock.step("+366d");

    let w = Watchdog::restart_on(&sd, dir.path(), clock.env());
    let alert = hooks.wait_for(1, Duration::from_secs(10))[0].json();
    assert_eq!(alert["title"], "the system clock stepped +366 d while the watchdog was not running", "{alert}");
    assert_eq!((&alert["kind"], &alert["severity"]), (&json!("clock_step"), &json!("info")), "{alert}");
    // Recorded as delivered before it stops, so the next run has nothing left to send again.
    w.wait_log("alert delivered", Duration::from_secs(10));
    assert!(w.stop().success());

    // Started again under the same clock: the unit's failure, raised after the start, arrives
    // behind anything the start raised (a channel delivers in order), and nothing came between.
    let w = Watchdog::restart_on(&sd, dir.path(), clock.env());
    kill_and_wait_for_restart(&sd, &w);
    let sent: Vec<Value> = hooks.wait_for(3, Duration::from_secs(15)).iter().map(|r| r.json()).collect();
    let titles: Vec<&str> = sent.iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles[..3],
        [
            "the system clock stepped +366 d while the watchdog was not running",
            format!("service down: {VICTIM}").as_str(),
            format!("resolved: service down: {VICTIM}").as_str()
        ],
        "{}",
        w.logs()
    );
    assert!(w.stop().success());
}

#[test]
fn alerts_held_while_the_webhook_is_down_survive_a_forward_step_of_a_year_and_a_restart() {
    held_alerts_survive_a_step_of_the_wall_clock_and_a_restart("+366d", "+366 d", 366.0 * 86_400.0);
}

#[test]
fn alerts_held_while_the_webhook_is_down_survive_a_backward_step_of_a_day_and_a_restart() {
    held_alerts_survive_a_step_of_the_wall_clock_and_a_restart("-1d", "−1 d", -86_400.0);
}

/// A dashboard that serves HTTPS with a certificate of a private CA while the watchdog still
/// asks `http://`: that is a warning saying what to set (no camera alert could come while it
/// lasts). With `web_url` https and `web_ca_file` its CA, after SIGHUP (which restarts the
/// watchdog's checks with the new file), the watchdog reads the camera list over HTTPS: the
/// camera that never answers is alerted, and the refusal is not raised again.
#[test]
fn a_dashboard_on_https_asked_over_http_is_alerted_and_web_ca_file_brings_the_camera_alerts_back() {
    let camera = MjpegServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles::create(dir.path());
    let watch = CameraWatch::start_with(dir.path(), &camera, "", None, Some(&tls));
    const REFUSED: &str = "camera alerts are off: the dashboard refuses the watchdog";
    let refused = watch.alerts_titled(REFUSED, 1, Duration::from_secs(30));
    let details = refused[0]["details"].as_str().unwrap_or_default();
    assert!(details.contains("speaks HTTPS") && details.contains("web_ca_file"), "{refused:?}");
    // The operator's fix.
    let config = dir.path().join("watchdog-config.json");
    let mut settings: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    settings["web_url"] = json!(format!("https://127.0.0.1:{}", watch.web.port));
    settings["web_ca_file"] = json!(tls.ca);
    std::fs::write(&config, settings.to_string()).unwrap();
    signal_pid(watch.watchdog.child.id(), "HUP");
    let gone = watch.alerts_about("Gone", 1, Duration::from_secs(30));
    assert_eq!(gone[0]["severity"], "warning", "{gone:?}");
    assert_eq!(watch.alerts_titled(REFUSED, 1, Duration::ZERO).len(), 1, "refused again after the fix");
    watch.stop();
}

/// With the dashboard's `public_read` off, a watchdog that has no valid token gets no camera
/// list: that is a warning of its own (no camera alert could come while it lasts), saying how
/// to fix it; a token written to `web_token_file` brings the camera alerts back and resolves it.
#[test]
fn a_dashboard_that_refuses_the_watchdog_is_alerted_and_a_token_brings_the_camera_alerts_back() {
    let camera = MjpegServer::start();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("watchdog-token");
    let watch = CameraWatch::start_with(dir.path(), &camera, "", Some(&token_file), None);
    const REFUSED: &str = "camera alerts are off: the dashboard refuses the watchdog";
    let refused = watch.alerts_titled(REFUSED, 1, Duration::from_secs(30));
    let details = refused[0]["details"].as_str().unwrap_or_default();
    assert!(details.contains("web_token_file") && details.contains("cannot be read"), "{refused:?}");
    // The operator's fix: a token from the CLI, into the file.
    let out = Command::new(bin("desktop-streamer-web"))
        .arg("--config")
        .arg(dir.path().join("web-config.json"))
        .args(["new-token", "watchdog"])
        .output()
        .unwrap();
    assert!(out.status.success(), "new-token: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&token_file, &out.stdout).unwrap();
    let resolved = watch.alerts_titled(REFUSED, 2, Duration::from_secs(30));
    assert!(resolved[1]["title"].as_str().unwrap().contains("resolved"), "{resolved:?}");
    assert_eq!(resolved[1]["severity"], "info");
    // And the camera alerts are back: the camera that never answers is alerted.
    watch.alerts_about("Gone", 1, Duration::from_secs(30));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let leaked = watch.hooks.requests().iter().any(|r| String::from_utf8_lossy(&r.body).contains(&token));
    assert!(!leaked, "the token never reaches an alert");
    watch.stop();
}
