//! desktop-streamer-web end to end: the real dashboard service in front of a real streamer
//! (on a real two-monitor X display) and a real systemd user manager on its own bus.

use std::time::Duration;

use ds_tests::kiosk::{Kiosk, UNITS};
use ds_tests::streamer::StreamerProcess;
use ds_tests::wait::wait_until;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

#[test]
fn the_api_aggregates_streamer_services_and_alerts_and_names_what_it_cannot_reach() {
    let x = DummyDisplay::start().unwrap();
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let streamer = StreamerProcess::start(&x.display(), json!({}));
    streamer.wait_for("a segment", Duration::from_secs(20), |h| h["playlist"]["segment_count"].as_u64() >= Some(1));
    let kiosk = Kiosk::start(&UNITS[..1], json!({"streamer_url": format!("http://127.0.0.1:{}", streamer.port)}));
    std::fs::write(
        kiosk.watchdog_state.join("alert-history.json"),
        json!({"version": 1, "entries": [{"alert": {"id": "1", "kind": "stream:stale", "severity": "warning",
            "title": "stream stale", "details": "seen by the test", "since": "2026-01-01T10:00:00Z",
            "raised_at": "2026-01-01T10:00:00Z", "action": null, "host": "kiosk", "dashboard_url": null},
            "deliveries": [{"channel": "email", "status": "delivered", "at": "2026-01-01T10:00:02Z", "attempts": 1}]}]})
        .to_string(),
    )
    .unwrap();
    let web = &kiosk.web;

    let status = web.get("/api/status").unwrap().json();
    assert_eq!(status["unreachable"], json!([]), "{status:#}");
    assert_eq!(status["service"], json!({"active": true, "details": {"ActiveState": "active", "SubState": "running"}}));
    assert_eq!(status["stream"]["playlist_exists"], true, "{status:#}");
    assert_eq!(status["health"]["current_state"], "streaming");
    let states: Vec<_> =
        status["services"].as_array().unwrap().iter().map(|u| (u["name"].clone(), u["active_state"].clone())).collect();
    assert_eq!(
        states,
        [
            (json!(UNITS[0]), json!("active")),
            (json!(UNITS[1]), json!("inactive")),
            (json!(UNITS[2]), json!("inactive")),
        ]
    );

    let playlist = web.get("/hls/desktop/playlist.m3u8").unwrap();
    assert_eq!((playlist.status, playlist.header("content-type")), (200, Some("application/vnd.apple.mpegurl")));
    let segment = playlist.text().lines().find(|l| l.ends_with(".ts")).unwrap().to_owned();
    let seg = web.get(&format!("/hls/desktop/{segment}")).unwrap();
    assert_eq!((seg.status, seg.header("content-type")), (200, Some("video/mp2t")));
    assert_eq!(web.get("/hls/desktop/..%2F..%2Fetc%2Fpasswd").unwrap().status, 404);
    // The live page's feed: a `status` event with the same document, without asking again.
    let first_event = read_first_event(web.port, "/api/events");
    assert!(first_event.starts_with("event: status\ndata: {"), "{first_event}");
    let data: serde_json::Value =
        serde_json::from_str(first_event.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(data["health"]["current_state"], "streaming");

    let alerts = web.get("/api/alerts").unwrap().json();
    assert_eq!(alerts["entries"][0]["alert"]["title"], "stream stale");

    // The streamer goes away: the dashboard says so instead of showing old numbers.
    drop(streamer);
    // The status is sampled in the background every second: the next sample says so.
    let status = wait_until("the streamer unreachable in the status", Duration::from_secs(5), || {
        let status = web.get("/api/status").unwrap().json();
        if status["unreachable"] == json!([]) { Err(status) } else { Ok(status) }
    });
    assert_eq!(status["unreachable"][0]["part"], "streamer", "{status:#}");
    assert!(status["stream"].is_null() && status["health"].is_null(), "no stale numbers: {status:#}");
    let health = web.get("/api/health").unwrap();
    assert_eq!(health.status, 502);
    assert!(health.json()["error"].as_str().unwrap().contains("cannot be reached"));
}

/// Reads a server-sent-events response until its first event (bounded in time).
fn read_first_event(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        let n = s.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(start) = text.find("event: status")
            && let Some(end) = text[start..].find("\n\n")
        {
            return text[start..start + end].to_owned();
        }
    }
    panic!("no event within 8 s: {}", String::from_utf8_lossy(&got));
}

#[test]
fn service_control_needs_a_session_or_token_from_the_same_origin_and_really_acts() {
    use ds_tests::http::post_json;
    use std::io::Write as _;
    // The address a browser shows when a reverse proxy (which sends its own Host) serves the
    // dashboard.
    let proxied = "https://kiosk.example.com";
    let kiosk = Kiosk::start(&UNITS, json!({"trusted_origins": [proxied]}));
    let (web, sd, config, dir) = (&kiosk.web, &kiosk.systemd, &kiosk.config, &kiosk.dir);
    let body = json!({"unit": UNITS[0]}).to_string();

    let anonymous = post_json(web.port, "/api/service/restart", &[], &body).unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let no_password = post_json(web.port, "/api/login", &[], r#"{"password": "whatever-it-is"}"#).unwrap();
    assert!(no_password.text().contains("set-password"), "says how to set one: {}", no_password.text());

    // The operator sets a password with the CLI, as the installer will.
    let bin = ds_tests::bins::bin("desktop-streamer-web");
    let mut set = std::process::Command::new(&bin)
        .arg("--config")
        .arg(config)
        .arg("set-password")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(b"correct horse battery staple\n").unwrap();
    assert!(set.wait().unwrap().success());
    let login = post_json(web.port, "/api/login", &[], r#"{"password": "correct horse battery staple"}"#).unwrap();
    assert_eq!(login.status, 200, "{}", login.text());
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    assert!(
        login.header("set-cookie").unwrap().contains("HttpOnly")
            && login.header("set-cookie").unwrap().contains("SameSite=Strict")
    );

    let origin = format!("http://127.0.0.1:{}", web.port);
    let evil =
        post_json(web.port, "/api/service/restart", &[("Cookie", &cookie), ("Origin", "http://evil.example")], &body)
            .unwrap();
    assert_eq!(evil.status, 403, "cross-origin is refused even with a session: {}", evil.text());
    let before = sd.main_pid(UNITS[0]).unwrap();
    let restarted =
        post_json(web.port, "/api/service/restart", &[("Cookie", &cookie), ("Origin", &origin)], &body).unwrap();
    assert_eq!(restarted.status, 200, "{}", restarted.text());
    assert_eq!(restarted.json()["state"]["active_state"], "active");
    assert_ne!(sd.main_pid(UNITS[0]).unwrap(), before, "really restarted");
    let before = sd.main_pid(UNITS[0]).unwrap();
    let through_proxy =
        post_json(web.port, "/api/service/restart", &[("Cookie", &cookie), ("Origin", proxied)], &body).unwrap();
    assert_eq!(through_proxy.status, 200, "a trusted origin is refused: {}", through_proxy.text());
    assert_ne!(sd.main_pid(UNITS[0]).unwrap(), before, "really restarted from the trusted origin");
    let evil = post_json(
        web.port,
        "/api/service/restart",
        &[("Cookie", &cookie), ("Origin", "http://kiosk.example.com")],
        &body,
    )
    .unwrap();
    assert_eq!(evil.status, 403, "another scheme is another origin: {}", evil.text());
    assert!(evil.json()["error"].as_str().unwrap().contains("nor in trusted_origins"), "{}", evil.text());

    let bad =
        post_json(web.port, "/api/service/restart", &[("Cookie", &cookie)], r#"{"unit": "sshd.service"}"#).unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("not one of the dashboard's units"));
    let malformed = post_json(web.port, "/api/service/restart", &[("Cookie", &cookie)], "{unit").unwrap();
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert_eq!(malformed.json()["error"], "the body is not valid JSON: key must be a string at line 1 column 2");
    // Oversized and wrongly shaped bodies: refused with the reason, and nothing restarted.
    let pid = sd.main_pid(UNITS[0]).unwrap();
    let huge = json!({"unit": "x".repeat(70 * 1024)}).to_string();
    let oversized = post_json(web.port, "/api/service/restart", &[("Cookie", &cookie)], &huge).unwrap();
    assert_eq!(oversized.status, 413, "{}", oversized.text());
    assert_eq!(
        oversized.json()["error"],
        "the request body is larger than the limit of 65536 bytes; send a smaller JSON document"
    );
    for (body, why) in [
        (r#"{"unit": 5}"#, "the body has the wrong shape: unit: invalid type: integer `5`, expected a string"),
        (
            r#"{"unit": "desktop-streamer.service", "now": true}"#,
            "the body has the wrong shape: now: unknown field `now`, expected `unit`",
        ),
        ("\"restart\"", "the body has the wrong shape: invalid type: string \"restart\", expected"),
    ] {
        let r = post_json(web.port, "/api/service/restart", &[("Cookie", &cookie)], body).unwrap();
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with(why), "{body}: {error}");
    }
    assert_eq!(sd.main_pid(UNITS[0]).unwrap(), pid, "no refused request restarted the unit");

    // A script with an API token: a monitoring script's (read, the default) may not stop a
    // service; one made for control may.
    let token_of = |label: &str, scope: &[&str]| {
        let out = std::process::Command::new(&bin)
            .arg("--config")
            .arg(config)
            .args(["new-token", label])
            .args(scope)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let stop = json!({"unit": UNITS[1]}).to_string();
    let read = format!("Bearer {}", token_of("nagios", &[]));
    let refused = post_json(web.port, "/api/service/stop", &[("Authorization", &read)], &stop).unwrap();
    assert_eq!(refused.status, 403, "{}", refused.text());
    let why = refused.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("scope is read") && why.contains("needs control") && why.contains("--scope control"), "{why}");
    assert_eq!(sd.show(UNITS[1], "ActiveState").unwrap(), "active", "a read token stopped nothing");
    let token = token_of("ops", &["--scope", "control"]);
    let bearer = format!("Bearer {token}");
    let stopped = post_json(web.port, "/api/service/stop", &[("Authorization", &bearer)], &stop).unwrap();
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    assert_eq!(sd.show(UNITS[1], "ActiveState").unwrap(), "inactive");
    // The dashboard reads the services' logs, its own among them.
    let lines = web.get("/api/logs?service=desktop-streamer-web&q=started").unwrap().json();
    let messages: Vec<_> = lines["lines"].as_array().unwrap().iter().map(|l| l["message"].clone()).collect();
    assert!(messages.contains(&json!("desktop-streamer-web started")), "{lines:#}");
    let bad = web.get("/api/logs?level=loud").unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("use error, warn, info, debug or trace"));
    let auth_file = std::fs::read_to_string(dir.path().join("web-auth.json")).unwrap();
    assert!(!auth_file.contains(&token) && !auth_file.contains("correct horse"), "only hashes are stored");

    // After a login, a failed login and token calls, no secret is anywhere the service writes
    // or shows: its log file, its stderr, the page, the logs API.
    let wrong = "not the right horse battery";
    let failed = post_json(web.port, "/api/login", &[], &json!({"password": wrong}).to_string()).unwrap();
    assert_eq!(failed.status, 401, "{}", failed.text());
    let session_id = cookie.split_once('=').unwrap().1.to_owned();
    let log_file = kiosk.logs.join("desktop-streamer-web.log");
    // The failed login's warning is written (the file writer is asynchronous): the log holds
    // everything the requests above made it write.
    let log = wait_until("the failed login's warning in the log file", Duration::from_secs(5), || {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if log.contains("login failed: wrong password") { Ok(log) } else { Err(log) }
    });
    assert!(log.contains("login failed: wrong password") && log.contains("admin logged in"), "{log}");
    let shown = [
        ("the log file", log),
        ("stderr", web.logs()),
        ("the page", web.get("/").unwrap().text()),
        ("the logs API", web.get("/api/logs?lines=5000").unwrap().text()),
        ("the status", web.get("/api/status").unwrap().text()),
    ];
    for (place, text) in &shown {
        for secret in ["correct horse battery staple", wrong, &token, &session_id] {
            assert!(!text.contains(secret), "{place} shows a secret ({secret}):\n{text}");
        }
    }
}

/// The dashboard starts before the bus it reaches systemd on exists: it says why systemd
/// cannot be reached (the connect error, in the 503 of a control call and in the status
/// document), keeps connecting with backoff, and once a real systemd user manager brings its
/// bus up at that address, shows the units and controls them, without a restart.
#[test]
fn the_dashboard_connects_to_systemd_once_its_bus_comes_up() {
    use ds_tests::http::post_json;
    use ds_tests::kiosk::WebFiles;
    use ds_tests::systemd::UserSystemd;

    let pending = UserSystemd::prepare().unwrap();
    let address = pending.bus_address();
    let dir = ds_tests::stream_dir();
    let files = WebFiles::write(dir.path(), json!({"streamer_url": "http://127.0.0.1:1"}));
    let token = files.new_token("ops", "control");
    let args: Vec<std::ffi::OsString> =
        vec!["--config".into(), files.config.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
    let web = ds_tests::service::ServiceProcess::start(
        "desktop-streamer-web",
        &args,
        &[("DBUS_SESSION_BUS_ADDRESS", &address), ("DESKTOP_STREAMER_LOG_DIR", files.logs.to_str().unwrap())],
    );
    let bearer = format!("Bearer {token}");
    let restart = |unit: &str| {
        post_json(web.port, "/api/service/restart", &[("Authorization", &bearer)], &json!({"unit": unit}).to_string())
            .unwrap()
    };

    let refused = restart(UNITS[0]);
    assert_eq!(refused.status, 503, "{}", refused.text());
    let why = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(
        why.starts_with("no connection to systemd's D-Bus API: cannot connect to the session bus: ")
            && why.contains("No such file or directory")
            && why.ends_with("the dashboard keeps trying to connect"),
        "{why}"
    );
    let status = web.get("/api/status").unwrap().json();
    let systemd_part = status["unreachable"].as_array().unwrap().iter().find(|u| u["part"] == "systemd").cloned();
    let reason = systemd_part.as_ref().and_then(|u| u["error"].as_str()).unwrap_or_default();
    assert!(reason.contains("cannot connect to the session bus"), "{status:#}");
    let cleanup = post_json(web.port, "/api/stream/cleanup", &[("Authorization", &bearer)], "{}").unwrap();
    assert_eq!(cleanup.status, 503, "{}", cleanup.text());

    // The bus comes up at that address, with systemd and the units behind it.
    let sd = pending.start().unwrap();
    for unit in UNITS {
        sd.write_sleep_unit(unit, "").unwrap();
    }
    sd.daemon_reload().unwrap();
    sd.start_unit(UNITS[0]).unwrap();
    // Attempts back off to at most 8 s apart: the next one finds it.
    let status = wait_until("the units in the status", Duration::from_secs(20), || {
        let status = web.get("/api/status").unwrap().json();
        if status["services"].as_array().is_none_or(Vec::is_empty) { Err(status) } else { Ok(status) }
    });
    assert_eq!(status["services"][0]["active_state"], "active", "{status:#}");
    assert!(!status["unreachable"].as_array().unwrap().iter().any(|u| u["part"] == "systemd"), "{status:#}");
    let before = sd.main_pid(UNITS[0]).unwrap();
    let restarted = restart(UNITS[0]);
    assert_eq!(restarted.status, 200, "{}", restarted.text());
    assert_ne!(sd.main_pid(UNITS[0]).unwrap(), before, "really restarted");
    let metrics = web.get("/metrics").unwrap().text();
    assert!(metrics.contains("desktop_streamer_web_systemd_reachable 1"), "{metrics}");
}
