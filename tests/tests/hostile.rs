//! Hostile LAN clients against the real services, loopback only, every loop bounded.
//!
//! A client that opens connections and holds them (half a request line each): one address
//! gets at most `DEFAULT_MAX_PER_CLIENT` places on each server, the rest are closed at once,
//! and the held ones are closed at the header-read timeout; meanwhile the stream keeps
//! producing segments and both services answer their health checks. Many addresses that
//! together take every place of either server: a new client takes the place of the oldest
//! silent connection, and the stream goes on. The figures (health
//! latency before and during, the gap between segments) are printed, not asserted: timing
//! bounds belong to benchmarks.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ds_http::serve::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_CLIENT};
use ds_tests::flood::Flood;
use ds_tests::hls;
use ds_tests::http;
use ds_tests::kiosk::{Kiosk, UNITS};
use ds_tests::streamer::StreamerProcess;
use ds_tests::wait::wait_until;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// Connections the flood tries past its address's places.
const BEYOND: usize = 16;
/// What a loaded two-core machine may add to the header-read timeout before the server has
/// closed every held connection.
const SLACK: Duration = Duration::from_secs(5);

/// The slowest of `n` health answers from 127.0.0.1, in ms; panics if one does not come or
/// is not a success.
fn slowest_answer(port: u16, path: &str, n: usize) -> f64 {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let r = http::get(port, path).unwrap_or_else(|| panic!("GET {path} on :{port}: no answer"));
            assert_eq!(r.status, 200, "GET {path} on :{port}: {}", r.text());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .fold(0.0, f64::max)
}

/// Segments the stream has produced so far (those gone from the playlist included).
fn produced(dir: &std::path::Path) -> u64 {
    let p = hls::read(dir);
    p.media_sequence + p.segments.len() as u64
}

/// `GET path` on 127.0.0.1:`port` naming `host` in its `Host` header: the status and the body.
fn get_for_host(port: u16, host: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Both servers answer only to this machine's addresses and names and to those
/// `allowed_hosts` lists: a page that rebinds its own name to the kiosk gets 403. Pages of
/// other origins read the stream only where `cors_origins` names them.
fn check_hosts_and_origins(streamer: u16, web: u16) {
    for (port, path) in [(streamer, "/api/health"), (web, "/api/cameras")] {
        let (status, answer) = get_for_host(port, "rebind.attacker.example", path);
        assert_eq!(status, 403, "{answer}");
        assert!(answer.contains("rebind.attacker.example") && answer.contains("allowed_hosts"), "{answer}");
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
            assert_eq!(get_for_host(port, &host, path).0, 200, "Host: {host}");
        }
    }
    assert_eq!(get_for_host(streamer, "kiosk.shop.example:8888", "/api/health").0, 200, "a listed name");
    let cors = |origin: &str| {
        let r = http::request(streamer, "GET", "/hls/desktop/playlist.m3u8", &[("Origin", origin)], None).unwrap();
        assert_eq!(r.status, 200);
        r.header("access-control-allow-origin").map(str::to_owned)
    };
    assert_eq!(cors("https://evil.example"), None, "a page of another origin cannot read the stream");
    assert_eq!(cors(SIGNAGE).as_deref(), Some(SIGNAGE), "the listed origin can");
}

/// The one origin the streamer lets read across origins here.
const SIGNAGE: &str = "https://signage.example";

/// A foreign `Host` and a foreign origin are refused (see [`check_hosts_and_origins`]); then a
/// client holds connections.
#[test]
fn a_client_holding_connections_stops_neither_the_stream_nor_the_services() {
    let x = DummyDisplay::start().expect("dummy Xorg with two monitors");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let streamer = StreamerProcess::start(
        &x.display(),
        json!({"allowed_hosts": ["kiosk.shop.example"], "cors_origins": [SIGNAGE]}),
    );
    streamer.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let kiosk = Kiosk::start(&UNITS[..1], json!({"streamer_url": format!("http://127.0.0.1:{}", streamer.port)}));
    let web = &kiosk.web;
    check_hosts_and_origins(streamer.port, web.port);
    let health_before = (slowest_answer(streamer.port, "/api/health", 5), slowest_answer(web.port, "/api/health", 5));

    // One address holds every place it may have on both servers, and tries for more.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let per_client = DEFAULT_MAX_PER_CLIENT + BEYOND;
    let started = Instant::now();
    let floods = [Flood::hold(streamer.port, attacker, per_client), Flood::hold(web.port, attacker, per_client)];
    for (flood, name) in floods.iter().zip(["streamer", "dashboard"]) {
        wait_until(&format!("the {name} closes the connections past the address's places"), SLACK, || {
            match flood.closed() {
                n if n >= BEYOND => Ok(n),
                n => Err(format!("{n} of {} closed", flood.len())),
            }
        });
        assert_eq!(flood.closed(), BEYOND, "the {name} holds {DEFAULT_MAX_PER_CLIENT} connections of one address");
    }

    // While they are held, the stream goes on and both services answer.
    let health_during = (slowest_answer(streamer.port, "/api/health", 5), slowest_answer(web.port, "/api/health", 5));
    let status = web.get("/api/status").unwrap().json();
    assert_eq!(status["health"]["current_state"], "streaming", "{status:#}");
    let (from, at) = (produced(streamer.hls_dir()), Instant::now());
    wait_until("two more segments while the connections are held", WAIT, || {
        let now = produced(streamer.hls_dir());
        if now >= from + 2 { Ok(now) } else { Err(format!("{now} produced, {from} before")) }
    });
    let segment_gap = at.elapsed().as_secs_f64() / 2.0;
    let still_held = floods.iter().map(|f| f.len() - f.closed()).collect::<Vec<_>>();

    // At the header-read timeout both servers close what they held.
    for (flood, name) in floods.iter().zip(["streamer", "dashboard"]) {
        wait_until(&format!("the {name} closes the held connections"), DEFAULT_HEADER_READ_TIMEOUT + SLACK, || {
            match flood.closed() {
                n if n == flood.len() => Ok(()),
                n => Err(format!("{n} of {} closed after {:?}", flood.len(), started.elapsed())),
            }
        });
    }
    eprintln!(
        "held {DEFAULT_MAX_PER_CLIENT} per server (refused {BEYOND} more); still held after the segments: \
         {still_held:?}; slowest health answer before {:.1}/{:.1} ms, during {:.1}/{:.1} ms (streamer/dashboard); \
         {segment_gap:.2} s per segment during; all closed {:.1} s after they opened",
        health_before.0,
        health_before.1,
        health_during.0,
        health_during.1,
        started.elapsed().as_secs_f64()
    );
    drop(floods);

    // Both services count what they did in their metrics.
    let series = |port: u16, name: &str| -> u64 {
        let text = http::get(port, "/metrics").expect("/metrics answers").text();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in\n{text}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    for (port, prefix) in [(streamer.port, "desktop_streamer"), (web.port, "desktop_streamer_web")] {
        let refused =
            series(port, &format!("{prefix}_http_connections_refused_total{{reason=\"client_places_taken\"}} "));
        assert!(refused as usize >= BEYOND, "{prefix}: {refused} refused for the client's places");
        assert!(series(port, &format!("{prefix}_http_connections_accepted_total ")) > 0);
    }

    // Many addresses together take every place of each server with connections that send
    // nothing (each within its own cap): a client's request takes the place of the oldest of
    // them at once instead of waiting for the header-read timeout, and the stream goes on.
    let hosts = DEFAULT_MAX_CONNECTIONS.div_ceil(DEFAULT_MAX_PER_CLIENT) + 1;
    let opened = hosts * DEFAULT_MAX_PER_CLIENT;
    let mut full = Vec::new();
    for (port, name, prefix) in
        [(web.port, "dashboard", "desktop_streamer_web"), (streamer.port, "streamer", "desktop_streamer")]
    {
        let started = Instant::now();
        let many: Vec<Flood> = (0..hosts)
            .map(|i| Flood::hold(port, Ipv4Addr::new(127, 0, 0, 10 + i as u8), DEFAULT_MAX_PER_CLIENT))
            .collect();
        wait_until(&format!("the {name}'s oldest held connections closed to make room"), SLACK, || {
            match many.iter().map(Flood::closed).sum::<usize>() {
                n if n >= opened - DEFAULT_MAX_CONNECTIONS => Ok(n),
                n => Err(format!("{n} of {opened} closed")),
            }
        });
        let health_full = slowest_answer(port, "/api/health", 5);
        assert!(
            started.elapsed() < DEFAULT_HEADER_READ_TIMEOUT,
            "the {name}'s answers came after the held connections' timeout ({:?}), not by taking their places",
            started.elapsed()
        );
        let from = produced(streamer.hls_dir());
        wait_until(&format!("a segment while the {name}'s places are taken"), WAIT, || {
            let now = produced(streamer.hls_dir());
            if now > from { Ok(now) } else { Err(format!("{now} produced, {from} before")) }
        });
        let evicted = series(port, &format!("{prefix}_http_connections_evicted_total "));
        assert!(evicted as usize >= opened - DEFAULT_MAX_CONNECTIONS, "{name}: {evicted} evicted");
        full.push(format!("{name} {health_full:.1} ms"));
    }
    eprintln!(
        "{opened} connections held from {hosts} addresses against {DEFAULT_MAX_CONNECTIONS} places of each server: \
         the oldest closed to make room; slowest health answer meanwhile: {}",
        full.join(", ")
    );
}

/// With `stream_token_file`, the stream is read only with its token: a native player (ffmpeg)
/// with the token as the URL's password plays both playlists, segments and parts included;
/// without it, or with another, 401 with a Basic challenge (so VLC asks). The health API and
/// CORS preflights stay open. A new token in the file applies at once. The dashboard, given the
/// same file as `streamer_token_file`, passes the stream on; without it, it gets the refusal.
#[test]
fn the_stream_behind_a_token_plays_with_it_in_native_players_and_is_refused_without() {
    use ds_tests::kiosk::WebFiles;
    use ds_tests::service::ServiceProcess;

    let dir = ds_tests::stream_dir();
    let token_file = dir.path().join("stream-token");
    let token = "viewer-token-0123456789abcdef";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let x = DummyDisplay::start().expect("dummy Xorg with two monitors");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&x.display(), json!({ "stream_token_file": token_file }));
    s.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));

    let playlist = "/hls/desktop/playlist.m3u8";
    let get_with = |auth: Option<&str>, path: &str| {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        http::request(s.port, "GET", path, &headers, None).expect("the streamer answers")
    };
    let none = get_with(None, playlist);
    assert_eq!(none.status, 401, "{}", none.text());
    assert!(none.header("www-authenticate").is_some_and(|c| c.starts_with("Basic realm=")), "{:?}", none.headers);
    assert!(
        none.text().contains("reading the stream needs a token") && !none.text().contains(token),
        "{}",
        none.text()
    );
    let wrong = get_with(Some("Bearer viewer-token-0123456789abcdeX"), playlist);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("not the stream's token"), "{}", wrong.text());
    assert_eq!(get_with(Some(&format!("Bearer {token}")), playlist).status, 200);
    assert_eq!(get_with(None, "/hls/desktop/ll.m3u8").status, 401);
    assert_eq!(get_with(None, "/api/health").status, 200, "the health API stays open");
    let preflight = http::request(s.port, "OPTIONS", playlist, &[], None).unwrap();
    assert_eq!(preflight.status, 204, "a preflight carries no credentials: {}", preflight.text());
    let whep =
        http::request(s.port, "POST", "/whep/desktop", &[("Content-Type", "application/sdp")], Some("v=0")).unwrap();
    assert_eq!(whep.status, 401, "WHEP without the token: {}", whep.text());

    let ffmpeg = |url: &str| {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-rw_timeout", "10000000", "-i", url, "-t", "4", "-f", "null", "-"])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for path in [playlist, "/hls/desktop/ll.m3u8"] {
        let (ok, err) = ffmpeg(&format!("http://viewer:{token}@127.0.0.1:{}{path}", s.port));
        assert!(ok && err.is_empty(), "ffmpeg with the token in the URL read {path}: {err}");
    }
    let (ok, err) = ffmpeg(&format!("http://127.0.0.1:{}{playlist}", s.port));
    assert!(!ok && err.contains("401"), "ffmpeg without the token: {err}");

    // Through the dashboard: with the file it plays, without it the streamer's refusal.
    let streamer_url = format!("http://127.0.0.1:{}", s.port);
    let start_web = |name: &str, extra: serde_json::Value| {
        let files_dir = dir.path().join(name);
        std::fs::create_dir_all(&files_dir).unwrap();
        let mut config = json!({ "streamer_url": streamer_url });
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let files = WebFiles::write(&files_dir, config);
        let args: Vec<std::ffi::OsString> =
            vec!["--config".into(), files.config.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
        let bus = format!("unix:path={}", files_dir.join("no-bus").display());
        ServiceProcess::start(
            "desktop-streamer-web",
            &args,
            &[("DBUS_SESSION_BUS_ADDRESS", &bus), ("DESKTOP_STREAMER_LOG_DIR", files.logs.to_str().unwrap())],
        )
    };
    let web = start_web("with", json!({ "streamer_token_file": token_file }));
    let through = web.get(playlist).expect("the dashboard answers");
    assert_eq!(through.status, 200, "{}", through.text());
    assert!(through.text().starts_with("#EXTM3U"), "{}", through.text());
    let without = start_web("without", json!({}));
    assert_eq!(without.get(playlist).expect("the dashboard answers").status, 401);

    // A new token applies at once; the old one no longer reads.
    let new = "viewer-token-fedcba9876543210";
    std::fs::write(&token_file, new).unwrap();
    assert_eq!(get_with(Some(&format!("Bearer {token}")), playlist).status, 401);
    assert_eq!(get_with(Some(&format!("Bearer {new}")), playlist).status, 200);
    // Too short a token reads nothing, and says why without showing it.
    std::fs::write(&token_file, "short").unwrap();
    let refused = get_with(Some("Bearer short"), playlist);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("token cannot be read") && !refused.text().contains("short"), "{}", refused.text());
}
