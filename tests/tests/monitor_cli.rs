//! desktop-streamer-monitor end to end: the real CLI against the real dashboard, in front of a
//! real streamer (on a real dummy X display) and a real systemd user manager ([`Kiosk`]: the
//! streamer runs outside systemd and `desktop-streamer.service` is a `sleep` unit, so stopping
//! the unit is what the dashboard, and so `check`, sees as the streamer's unit going down).

use std::time::Duration;

use ds_tests::bins::{run_monitor as monitor, run_monitor_with as monitor_with};
use ds_tests::kiosk::{Kiosk, UNITS};
use ds_tests::streamer::StreamerProcess;
use ds_tests::wait::{wait_until, wait_until_every};
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

/// Nothing listens on port 1: a kiosk that cannot be reached.
const NOWHERE: &str = "http://127.0.0.1:1";

#[test]
fn the_cli_reports_and_checks_a_running_kiosk_and_says_what_it_cannot_reach() {
    let x = DummyDisplay::start().unwrap();
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let streamer = StreamerProcess::start(&x.display(), json!({}));
    streamer.wait_for("a healthy stream", Duration::from_secs(30), |h| {
        h["playlist"]["segment_count"].as_u64() >= Some(1) && h["health"] == "healthy"
    });
    let kiosk = Kiosk::start(&UNITS, json!({"streamer_url": format!("http://127.0.0.1:{}", streamer.port)}));
    let (web, sd) = (&kiosk.web, &kiosk.systemd);
    let url = format!("http://127.0.0.1:{}", web.port);
    let streamer_url = format!("http://127.0.0.1:{}", streamer.port);

    // Streaming, every unit active: OK with performance data.
    let (code, out, err) = monitor(&["--url", &url, "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("DESKTOP-STREAMER OK - streaming, healthy"), "{out}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    let perfdata = out.split_once(" | ").map(|p| p.1).unwrap_or_default();
    for metric in ["fps=", "bitrate_kbps=", "segment_age=", "s;10;30;", "restarts=0;;;"] {
        assert!(perfdata.contains(metric), "{metric} in {out}");
    }
    let (code, out, _) = monitor(&["--url", &url, "check", "--warning", "0", "--critical", "60"]);
    assert_eq!(code, 1, "a segment older than 0 s warns: {out}");
    assert!(out.starts_with("DESKTOP-STREAMER WARNING - newest segment"), "{out}");
    // The same verdict for scripts: its state, problems and figures as fields.
    let (code, out, _) = monitor(&["--url", &url, "check", "--warning", "0", "--critical", "60", "--json"]);
    assert_eq!(code, 1, "{out}");
    let verdict: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&verdict["state"], &verdict["exit_code"], &verdict["source"]),
        (&json!("WARNING"), &json!(1), &json!(url))
    );
    assert_eq!(verdict["problems"][0]["level"], "WARNING", "{verdict:#}");
    assert!(verdict["problems"][0]["text"].as_str().unwrap().starts_with("newest segment"), "{verdict:#}");
    let age = verdict["perfdata"].as_array().unwrap().iter().find(|p| p["label"] == "segment_age").unwrap();
    assert_eq!((&age["unit"], &age["warning"], &age["critical"]), (&json!("s"), &json!(0.0), &json!(60.0)), "{age}");
    assert!(age["value"].as_f64().unwrap() > 0.0, "{age}");

    let (code, out, err) = monitor(&["--url", &url, "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"]["health"]["current_state"], "streaming", "{doc:#}");
    assert_eq!(doc["status"]["services"].as_array().unwrap().len(), 3, "{doc:#}");
    kiosk.write_alert_history();
    let (code, out, err) = monitor(&["--url", &url]);
    assert_eq!(code, 0, "status is the default: {err}");
    for part in [
        "Services",
        "desktop-streamer-watchdog.service",
        "Stream",
        "streaming",
        "Recent alerts",
        "warning cpu high [held back by the rate limit]",
        "warning stream stale [email delivered; came again 2× within its cooldown]",
    ] {
        assert!(out.contains(part), "{part} in\n{out}");
    }
    assert!(!out.contains('\x1b'), "no colour when stdout is not a terminal:\n{out}");

    let (code, out, err) = monitor(&["--url", &url, "logs", "--service", "desktop-streamer-web", "--grep", "started"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("INFO  desktop-streamer-web: desktop-streamer-web started"), "{out}");

    // Service control needs a token, and a wrong one is refused with the dashboard's reason.
    let (code, _, err) = monitor(&["--url", &url, "restart"]);
    assert_eq!(code, 1);
    assert!(err.contains("needs an API token"), "{err}");
    let (code, _, err) = monitor(&["--url", &url, "--token", "not-a-token", "restart", "watchdog"]);
    assert_eq!(code, 1);
    assert!(err.contains("restart refused (401"), "{err}");

    // The dashboard is down (here: elsewhere): status still shows the units' states from
    // systemd (on the bus the web config names) and the streamer's own health, and check warns
    // instead of failing, since the stream itself is fine.
    let config = kiosk.config.to_str().unwrap();
    let bus = [("DBUS_SESSION_BUS_ADDRESS", sd.bus_address())];
    let bus: Vec<(&str, &str)> = bus.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, err) = monitor_with(&["--config", config, "--url", NOWHERE, "--streamer-url", &streamer_url], &bus);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("web service unreachable at {NOWHERE}")), "{out}");
    assert!(out.contains("(from systemd on the session bus)\nServices\n"), "{out}");
    for unit in UNITS {
        assert!(out.lines().any(|l| l.contains(unit) && l.contains("active (running")), "{unit} in\n{out}");
    }
    assert!(out.contains("streaming") && out.contains("fps"), "the streamer's health:\n{out}");
    let (code, out, err) =
        monitor_with(&["--config", config, "--url", NOWHERE, "--streamer-url", NOWHERE, "status", "--json"], &bus);
    assert_eq!(code, 0, "systemd still answers: {out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["services"].as_array().map(Vec::len), Some(3), "{doc:#}");
    assert!(doc["health"].is_null() && doc["systemd_unreachable"].is_null(), "{doc:#}");
    // Without the bus: every part is named with its reason, and status fails.
    let (code, out, _) = monitor(&["--config", config, "--url", NOWHERE, "--streamer-url", NOWHERE]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("systemd: cannot connect to the session bus"), "{out}");
    assert!(out.contains(&format!("streamer: {NOWHERE}/api/health cannot be reached")), "{out}");
    let (code, out, _) = monitor(&["--url", NOWHERE, "--streamer-url", &streamer_url, "check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("DESKTOP-STREAMER WARNING - web service unreachable"), "{out}");

    // Nothing answers: UNKNOWN, as monitoring expects.
    let (code, out, _) = monitor(&["--url", NOWHERE, "--streamer-url", NOWHERE, "check"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("DESKTOP-STREAMER UNKNOWN - neither the web service nor the streamer answers"), "{out}");
    let (code, out, _) = monitor(&["--url", NOWHERE, "--streamer-url", NOWHERE, "check", "--json"]);
    assert_eq!(code, 3, "{out}");
    let verdict: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&verdict["state"], &verdict["source"]), (&json!("UNKNOWN"), &serde_json::Value::Null), "{verdict:#}");

    // The streamer's unit stops: CRITICAL, naming it.
    sd.systemctl(&["stop", UNITS[0]]).unwrap();
    // The dashboard samples the units every second: the next sample says so.
    let out = wait_until_every("check to say CRITICAL", Duration::from_secs(5), Duration::from_millis(100), || {
        let (code, out, _) = monitor(&["--url", &url, "check"]);
        if code == 2 { Ok(out) } else { Err(format!("exit {code}: {out}")) }
    });
    assert!(out.starts_with("DESKTOP-STREAMER CRITICAL - desktop-streamer.service is inactive"), "{out}");
}

#[test]
fn a_bad_check_argument_is_unknown_to_monitoring_not_critical() {
    let out = std::process::Command::new(ds_tests::bins::bin("desktop-streamer-monitor"))
        .args(["check", "--warning", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `desktop-streamer-monitor ARGS` (a `logs -f`), its stdout and stderr lines on two
/// channels, once it said it follows.
fn follow_logs(
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut follower = std::process::Command::new(ds_tests::bins::bin("desktop-streamer-monitor"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (out_tx, printed) = std::sync::mpsc::channel();
    let (err_tx, said) = std::sync::mpsc::channel();
    let stdout = std::io::BufReader::new(follower.stdout.take().unwrap());
    let stderr = std::io::BufReader::new(follower.stderr.take().unwrap());
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|l| drop(out_tx.send(l))));
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| drop(err_tx.send(l))));
    let first = said.recv_timeout(Duration::from_secs(10));
    assert!(first.as_deref().is_ok_and(|l| l.starts_with("following the logs at")), "{first:?}");
    (follower, printed, said)
}

/// The dashboard as `desktop-streamer-web.service` of a real systemd user manager (the other
/// two units are `sleep` units), answering on `port`.
struct WebUnit {
    sd: ds_tests::systemd::UserSystemd,
    files: ds_tests::kiosk::WebFiles,
    port: u16,
    _dir: tempfile::TempDir,
}

impl WebUnit {
    fn start() -> WebUnit {
        let sd = ds_tests::systemd::UserSystemd::start().expect("a systemd user manager on a private bus");
        for unit in &UNITS[..2] {
            sd.write_sleep_unit(unit, "").unwrap();
        }
        let dir = ds_tests::stream_dir();
        let files = ds_tests::kiosk::WebFiles::write(dir.path(), json!({"streamer_url": NOWHERE}));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        ds_tests::kiosk::write_web_unit(&sd, UNITS[2], &files, port);
        sd.start_unit(UNITS[2]).unwrap();
        let answers = || ds_tests::http::get(port, "/api/status").is_some_and(|r| r.status == 200);
        wait_until("the dashboard answers", Duration::from_secs(20), answers);
        WebUnit { sd, files, port, _dir: dir }
    }
}

/// `restart web` goes through the dashboard it restarts: run as `desktop-streamer-web.service`
/// of a real systemd user manager, the dashboard answers as soon as systemd has the job (it is
/// stopped before the job ends), the CLI says so and exits 0, and the service comes back as a
/// new process.
#[test]
fn restart_web_through_the_dashboard_itself_succeeds_and_it_comes_back() {
    let WebUnit { sd, files, port, _dir } = WebUnit::start();
    let answers = || ds_tests::http::get(port, "/api/status").is_some_and(|r| r.status == 200);
    let token = files.new_token("ops", "control");
    let before = sd.main_pid(UNITS[2]).unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let (code, out, err) = monitor(&["--url", &url, "--token", &token, "restart", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("restart: systemd has the restart job; it stops this dashboard now"), "{out}");
    wait_until("a new dashboard process", Duration::from_secs(20), || {
        sd.main_pid(UNITS[2]).is_ok_and(|pid| pid != 0 && pid != before)
    });
    wait_until("the restarted dashboard answers", Duration::from_secs(20), answers);
    assert_eq!(sd.show(UNITS[2], "ActiveState").unwrap(), "active");
    // A unit other than its own is still waited for, and the answer says how it ended.
    let (code, out, err) = monitor(&["--url", &url, "--token", &token, "restart", "watchdog"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "desktop-streamer-watchdog.service: restart done, now active (running)");
}

/// The CLI's actions with a valid token on a real streamer run by a real systemd user manager
/// (`desktop-streamer.service`, signalled through systemd as on a kiosk): `cleanup` deletes
/// what is outside the playlist and the playlist stays valid; `logs -f -n 0` prints only lines
/// written after it started, as they come; `restart` restarts the streamer's unit and the
/// stream goes on by the HLS rules.
#[test]
fn cleanup_logs_follow_and_restart_act_on_a_real_streamer_unit() {
    use ds_tests::hls::{Viewer, parse};
    use ds_tests::streamer::{wait_for_segments, write_streamer_unit};

    let x = DummyDisplay::start().unwrap();
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kiosk = Kiosk::start(&UNITS[1..], json!({"streamer_url": format!("http://127.0.0.1:{port}")}));
    let streamer_dir = kiosk.dir.path().join("streamer");
    write_streamer_unit(&kiosk.systemd, UNITS[0], &x.display(), port, &streamer_dir, &kiosk.logs);
    kiosk.systemd.start_unit(UNITS[0]).unwrap();
    wait_for_segments(port, 3, Duration::from_secs(40));
    let (url, token) = (kiosk.url(), kiosk.new_token("ops", "control"));
    let hls = streamer_dir.join("hls");
    let mut viewer = Viewer::new(&hls);
    viewer.reload();
    let cleanup = || monitor(&["--url", &url, "--token", &token, "cleanup"]);

    // A segment file the playlist does not list (left by a crash, say) is deleted.
    let stray = hls.join("stray-000001.ts");
    std::fs::write(&stray, b"not listed").unwrap();
    let (code, out, err) = cleanup();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "cleanup: the streamer is deleting segments outside its playlist");
    wait_until("the stray segment deleted", Duration::from_secs(10), || {
        viewer.reload();
        !stray.exists()
    });
    let served = kiosk.web.get("/hls/desktop/playlist.m3u8").unwrap();
    assert_eq!(served.status, 200);
    let listed = parse(&hls, &served.text());
    assert!(listed.segments.len() >= 3, "{listed:?}");
    let newest = listed.segments.last().unwrap().name.clone();
    assert_eq!(kiosk.web.get(&format!("/hls/desktop/{newest}")).unwrap().status, 200);

    // Following from now on: the first cleanup's line is not repeated, the second's arrives,
    // once: the third's is the next line printed.
    let first_line = || {
        let (code, out, err) =
            monitor(&["--url", &url, "logs", "--service", "desktop-streamer", "--grep", "cleanup: removed"]);
        match out.lines().collect::<Vec<_>>()[..] {
            [line] if code == 0 => Ok(line.to_owned()),
            _ => Err(format!("exit {code}: {out}{err}")),
        }
    };
    let first_cleanup = wait_until_every(
        "the first cleanup's line in the log",
        Duration::from_secs(10),
        Duration::from_millis(100),
        first_line,
    );
    let (mut follower, printed, _said) =
        follow_logs(&["--url", &url, "logs", "-f", "-n", "0", "--service", "desktop-streamer", "--grep", "cleanup:"]);
    let (code, out, err) = cleanup();
    assert_eq!(code, 0, "{out}{err}");
    let second = printed.recv_timeout(Duration::from_secs(15));
    let (code, out, err) = cleanup();
    assert_eq!(code, 0, "{out}{err}");
    let third = printed.recv_timeout(Duration::from_secs(15));
    let _ = follower.kill();
    let _ = follower.wait();
    let second = second.expect("the second cleanup's line, printed as it was written");
    let third = third.expect("the third cleanup's line, printed as it was written");
    for line in [&second, &third] {
        assert!(
            line.contains("INFO  desktop-streamer: cleanup: removed segments outside the playlist window"),
            "{line}"
        );
    }
    assert_ne!(second, first_cleanup, "the first cleanup's line, from before the follower started, is not printed");
    assert_ne!(third, second, "one cleanup since the follower started, one line");

    // Restarting the streamer's unit with the token: done, a new process, the stream goes on.
    let before = kiosk.systemd.main_pid(UNITS[0]).unwrap();
    let (code, out, err) = monitor(&["--url", &url, "--token", &token, "restart"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "desktop-streamer.service: restart done, now active (running)");
    assert_ne!(kiosk.systemd.main_pid(UNITS[0]).unwrap(), before);
    let seen = viewer.names_seen();
    wait_until("new segments after the restart", Duration::from_secs(40), || {
        viewer.reload();
        viewer.names_seen() > seen + 1
    });
}

/// Issue 20: `logs -f` tells lines apart by what they are, not by their time. After the
/// dashboard restarts (the follower reconnects), lines written with a timestamp a day older
/// than the newest printed (the wall clock stepped back) are printed, as they come, and the
/// line printed before the reconnect is not printed again.
#[test]
fn logs_follow_prints_lines_written_after_a_backward_step_across_a_reconnect() {
    use std::io::Write as _;

    let WebUnit { sd: _sd, files, port, _dir } = WebUnit::start();
    let answers = || ds_tests::http::get(port, "/api/status").is_some_and(|r| r.status == 200);
    let (url, token) = (format!("http://127.0.0.1:{port}"), files.new_token("ops", "control"));
    std::fs::create_dir_all(&files.logs).unwrap();
    let log = files.logs.join("desktop-streamer.log");
    let write_line = |offset: &str, message: &str| {
        let out = std::process::Command::new("date").args(["-u", "-d", offset, "+%Y-%m-%dT%H:%M:%S.%6NZ"]).output();
        let at = String::from_utf8(out.unwrap().stdout).unwrap();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let line = json!({"timestamp": at.trim(), "level": "INFO", "fields": {"message": message}, "target": "t"});
        writeln!(f, "{line}").unwrap();
    };
    write_line("now", "written before the follower started");

    let (mut follower, printed, said) =
        follow_logs(&["--url", &url, "logs", "-f", "-n", "0", "--service", "desktop-streamer"]);
    write_line("now", "before the step");
    let a = printed.recv_timeout(Duration::from_secs(15));

    // The dashboard restarts: the follower loses its stream and opens it again.
    let (code, out, err) = monitor(&["--url", &url, "--token", &token, "restart", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("the restarted dashboard answers", Duration::from_secs(20), answers);
    // The wall clock stepped back a day: both lines are older than the newest printed.
    write_line("-1 day", "after the step back");
    let b = printed.recv_timeout(Duration::from_secs(15));
    write_line("-1 day", "later still");
    let c = printed.recv_timeout(Duration::from_secs(15));
    // Nothing between: the next line printed is the next one written.
    write_line("-1 day", "the end");
    let end = printed.recv_timeout(Duration::from_secs(15));
    let _ = follower.kill();
    let _ = follower.wait();
    let said: Vec<String> = said.try_iter().collect();
    assert!(a.as_deref().is_ok_and(|l| l.ends_with("desktop-streamer: before the step")), "{a:?} {said:?}");
    assert!(b.as_deref().is_ok_and(|l| l.ends_with("desktop-streamer: after the step back")), "{b:?} {said:?}");
    assert!(c.as_deref().is_ok_and(|l| l.ends_with("desktop-streamer: later still")), "{c:?} {said:?}");
    assert!(end.as_deref().is_ok_and(|l| l.ends_with("desktop-streamer: the end")), "printed twice? {end:?}");
}
