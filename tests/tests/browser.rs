//! A real browser plays the stream: Debian's headless Chromium, driven by playwright-core
//! (tests/browser, installed from the npm registry by tests/run.sh), opens the HLS URL in a
//! <video> element and must see its playback time advance.

use std::time::Duration;

use ds_tests::browser::{run_script, set_admin_password};
use ds_tests::mjpeg::MjpegServer;
use ds_tests::streamer::{StreamerProcess, wait_for_segments, write_streamer_unit};
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

/// How long a browser script may run before it is killed.
const SCRIPT_LIMIT: Duration = Duration::from_secs(240);

/// These scripts ask the test nothing.
fn no_questions(ask: &Value) -> Value {
    panic!("unexpected question from the browser script: {ask}")
}

#[test]
fn headless_chromium_plays_the_stream() {
    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&x.display(), json!({}));
    s.wait_for("three segments", Duration::from_secs(20), |h| h["playlist"]["segment_count"].as_u64() >= Some(3));
    let url = format!("http://127.0.0.1:{}/hls/desktop/playlist.m3u8", s.port);
    let result = run_script("play.mjs", &[url.as_str(), "6"], SCRIPT_LIMIT, no_questions).result;
    assert_eq!(result["ok"], true, "the video's time advanced: {result}");
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(1280), Some(720)), "{result}");
}

/// A web page a LAN user opens on another site cannot read the kiosk's screen: Chromium
/// refuses a page of an origin the streamer's `cors_origins` does not name its playlists and
/// WHEP, and lets a page of a named origin read them and a segment. The two origins are two
/// test servers on loopback (their pages only give the scripts an origin).
#[test]
fn only_the_origins_the_streamer_names_may_read_the_stream_in_chromium() {
    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let (allowed, refused) = (MjpegServer::start(), MjpegServer::start());
    let origin = |server: &MjpegServer| server.url("").trim_end_matches('/').to_owned();
    let s = StreamerProcess::start(&x.display(), json!({"cors_origins": [origin(&allowed)]}));
    s.wait_for("two segments", Duration::from_secs(20), |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let spec = json!({
        "stream": format!("http://127.0.0.1:{}", s.port),
        "allowed": origin(&allowed),
        "refused": origin(&refused),
    });
    let run = run_script("cross_origin.mjs", &[spec.to_string()], SCRIPT_LIMIT, no_questions);
    eprintln!("browser checks ({:.1} s): {:#}", run.elapsed.as_secs_f64(), run.result);
    run.assert_passed(&["allowed_origin_reads_the_stream", "other_origin_is_refused", "page_errors"], &s.logs());
}

/// The dashboard of a whole kiosk in a real browser: a real streamer on a real two-monitor
/// Xorg, run as `desktop-streamer.service` by a real systemd user manager (so the page's
/// "restart the stream" reaches it through systemd, as on a kiosk), the real web service, and
/// headless Chromium driving the page (tests/browser/dashboard.mjs): live status, the
/// browser's own HLS and hls.js both playing, a refused action, login, a stream restart whose
/// state change and log line arrive without a reload, a segment cleanup from the page and its
/// log lines, the log filter, hls.js recreated after a fatal error (the stream answering 404
/// for a while) and playing again, the phone layout, the
/// streamer stopped from the page and shown as unreachable, and the lost connection when the
/// web service stops.
#[test]
fn the_dashboard_plays_controls_and_updates_live_in_chromium() {
    use ds_tests::kiosk::{Kiosk, UNITS};

    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    // The streamer's port, chosen before the web service is configured with it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut kiosk = Kiosk::start(&UNITS[1..], json!({"streamer_url": format!("http://127.0.0.1:{port}")}));
    let streamer_dir = kiosk.dir.path().join("streamer");
    write_streamer_unit(&kiosk.systemd, UNITS[0], &x.display(), port, &streamer_dir, &kiosk.logs);
    kiosk.systemd.start_unit(UNITS[0]).unwrap();
    wait_for_segments(port, 3, Duration::from_secs(40));

    let password = "correct horse battery staple";
    set_admin_password(&kiosk.config, password);
    kiosk.write_alert_history();

    let run = run_script(
        "dashboard.mjs",
        &[kiosk.url(), password.to_owned(), kiosk.web.pid().to_string()],
        SCRIPT_LIMIT,
        no_questions,
    );
    let result = run.result;
    eprintln!("browser checks ({:.1} s): {result:#}", run.elapsed.as_secs_f64());
    for name in [
        "status_live",
        "alerts_shown",
        "native_plays",
        "refused_without_login",
        "login",
        "restart_live",
        "cleanup_live",
        "log_filter",
        "hlsjs_plays",
        "hlsjs_recreated",
        "phone_fits",
        "unreachable_shown",
        "connection_lost_shown",
        "page_errors",
    ] {
        assert_eq!(result["checks"][name]["ok"], true, "{name}: {:#}", result["checks"][name]);
    }
    assert_eq!(result["ok"], true, "{result:#}");
    let restart = &result["checks"]["restart_live"];
    assert!(restart["after"].as_u64() > restart["before"].as_u64(), "{restart:#}");
    let states: Vec<&str> = restart["states"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(states.contains(&"restarting") && states.last() == Some(&"streaming"), "{restart:#}");
    assert!(result["checks"]["log_filter"]["warnLines"].as_u64() > Some(0), "{:#}", result["checks"]["log_filter"]);
    assert_eq!(kiosk.systemd.show(UNITS[0], "ActiveState").unwrap(), "inactive", "stopped from the page");
    // The web service was stopped by the script (the lost-connection check): it exits, open
    // event streams notwithstanding.
    assert!(kiosk.web.wait_exit(Duration::from_secs(10)).is_some(), "the web service exits after SIGTERM");
}

/// A private dashboard (`public_read` off): before logging in the page says it needs a login
/// and shows no figures (the API answers it 401); after logging in through the page's header
/// the live status arrives without a reload. The cameras page asks for a login too, and shows
/// its list after one. The logs panel says why there are no logs (the log directory is missing).
#[test]
fn a_private_dashboard_asks_for_a_login_then_shows_itself_in_chromium() {
    private_dashboard_in_chromium(false);
}

/// The same over the dashboard's own HTTPS (a certificate of a private CA; Chromium started
/// with --ignore-certificate-errors): the page, its live feed and the login work, and the
/// session cookie is Secure.
#[test]
fn a_private_dashboard_over_https_logs_in_with_a_secure_cookie_in_chromium() {
    private_dashboard_in_chromium(true);
}

fn private_dashboard_in_chromium(https: bool) {
    let dir = tempfile::tempdir().unwrap();
    let tls = https.then(|| ds_tests::smtp::TlsFiles::create(dir.path()));
    let config = dir.path().join("web-config.json");
    // No streamer and no systemd: the machine's figures, measured by the web service itself,
    // are what arrives.
    // Port 1: nothing listens there, ever (a port found free could be taken by another test).
    let nothing_listens = 1;
    std::fs::write(
        &config,
        json!({"public_read": false, "cameras_file": dir.path().join("cameras.yaml"),
            "database": dir.path().join("cameras.db"), "auth_file": dir.path().join("web-auth.json"),
            "log_dir": dir.path().join("logs"), "watchdog_state_dir": dir.path().join("watchdog"),
            "streamer_url": format!("http://127.0.0.1:{nothing_listens}"), "bus": "session",
            "tls_cert_file": tls.as_ref().map(|t| &t.cert), "tls_key_file": tls.as_ref().map(|t| &t.key)})
        .to_string(),
    )
    .unwrap();
    let password = "a private kiosk";
    set_admin_password(&config, password);
    let web = ds_tests::service::ServiceProcess::start(
        "desktop-streamer-web",
        &["--config".into(), config.into(), "--listen".into(), "127.0.0.1:0".into()],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
    );
    // Over plain HTTP the API says a login is needed; the HTTPS port tells plain HTTP to use https.
    let plain = web.get("/api/status").unwrap();
    assert_eq!(plain.status, if https { 400 } else { 401 }, "{}", plain.text());
    let base = format!("{}://127.0.0.1:{}", if https { "https" } else { "http" }, web.port);
    let run = run_script("private.mjs", &[base.as_str(), password], SCRIPT_LIMIT, no_questions);
    assert_eq!(run.result["ok"], true, "{:#}\n{}", run.result, run.stderr);
    assert_eq!(
        run.result["checks"]["session_cookie_is_secure"]["ok"].as_bool(),
        https.then_some(true),
        "{:#}",
        run.result
    );
    // The log directory in the config was never created: the page shows the server's reason.
    let said = run.result["checks"]["logs_say_why"]["said"].as_str().unwrap_or_default();
    assert!(said.contains(&format!("log directory {} does not exist", dir.path().join("logs").display())), "{said}");
}
