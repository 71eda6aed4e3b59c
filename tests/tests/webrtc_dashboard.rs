//! The dashboard's live view over WebRTC, as a user meets it: the real `desktop-streamer-web`
//! page `/` in headless Chromium (Debian's), a real streamer on a real two-monitor dummy Xorg.
//!
//! - It heals itself (tests/browser/heal.mjs): a pipeline rebuild, a killed capture worker, the
//!   X server gone (the slate) and back, and a restarted streamer process; each time the page
//!   shows the new picture without a reload, still over WebRTC, and says what happened. The
//!   in-process ones reach the page within 2 s of the new worker's first picture (the
//!   streamer logs when a viewer gets the first picture of a new worker run; the test paints a
//!   new colour then, so the colour can only come from the new run).
//! - It falls back to HLS by itself (tests/browser/fallback.mjs), on a phone-sized viewport:
//!   with the streamer's media address unreachable (its answer reaches the page naming an
//!   address no packet reaches, as behind a firewall dropping UDP: ICE cannot connect) and
//!   with WebRTC turned off on the streamer (503), saying which player plays, why, and its
//!   latency estimate.
//!
//! Screenshots go to `DS_SCREENSHOT_DIR` when set, else `<target>/<profile>/screenshots/<test>/`.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ds_tests::browser::{run_script, screenshot_dir};
use ds_tests::kiosk::WebFiles;
use ds_tests::service::{ServiceProcess, signal_pid};
use ds_tests::streamer::{ignore_host_disk, wait_for_segments};
use ds_tests::wait::wait_until_every;
use ds_tests::xorg::{DummyDisplay, Patch, SECOND_MONITOR};
use serde_json::{Value, json};

/// How long a browser script may run before it is killed.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);
/// The colour of the second monitor when the page opens.
const FIRST_COLOUR: u32 = 0xd02020;
/// How long a new streamer may take to write its first segment.
const SEGMENT_LIMIT: Duration = Duration::from_secs(40);
/// How long a worker run may take to start after a fault (the supervisor backs off).
const RUN_LIMIT: Duration = Duration::from_secs(45);
/// The log line of a viewer given the first picture of a new worker run
/// (streamer/src/webrtc/session.rs).
const NEW_RUN: &str = "the pictures of a new worker run arrive";
/// The promise: the picture carries on within 2 s of the new run's first picture.
const HEAL_LIMIT_MS: u64 = 2000;
/// A restarted streamer is met by the page reconnecting by itself: its pauses between tries
/// grow to 5 s (web-monitor/ui/webrtc.js), plus a connection and the new worker's start.
const RECONNECT_LIMIT_MS: u64 = 15_000;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A streamer on a fixed loopback port (the dashboard is configured with it, and a restarted
/// streamer comes back on it), its config and segments in `dir`; returns once it listens.
fn start_streamer(display: &str, port: u16, dir: &Path, config: &Value) -> ServiceProcess {
    let mut config = config.clone();
    config["output_dir"] = dir.join("hls").display().to_string().into();
    ignore_host_disk(&mut config);
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let args: Vec<OsString> =
        vec!["--config".into(), path.into(), "--listen".into(), format!("127.0.0.1:{port}").into()];
    ServiceProcess::start("desktop-streamer", &args, &[("DISPLAY", display)])
}

/// The dashboard, talking to the streamer on `port`; no systemd (its panel says so).
fn start_dashboard(dir: &Path, port: u16) -> ServiceProcess {
    let files = WebFiles::write(dir, json!({"streamer_url": format!("http://127.0.0.1:{port}")}));
    let no_bus = format!("unix:path={}", dir.join("no-bus").display());
    ServiceProcess::start(
        "desktop-streamer-web",
        &["--config".into(), files.config.into(), "--listen".into(), "127.0.0.1:0".into()],
        &[("DBUS_SESSION_BUS_ADDRESS", no_bus.as_str())],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The streamer's config in these tests: WebRTC on loopback, on any free UDP port.
fn webrtc_config(max_viewers: u32) -> Value {
    json!({"max_webrtc_viewers": max_viewers, "webrtc_udp_port": 0, "webrtc_tcp_port": 0, "webrtc_addresses": ["127.0.0.1"]})
}

/// Waits until the streamer's log has more than `seen` new-run lines; when the last came.
fn wait_for_new_run(s: &ServiceProcess, seen: usize) -> u64 {
    wait_until_every(
        "a viewer to get the first picture of a new worker run",
        RUN_LIMIT,
        Duration::from_millis(10),
        || {
            let n = s.logs().matches(NEW_RUN).count();
            if n > seen { Ok(now_ms()) } else { Err(n) }
        },
    )
}

/// A pipeline rebuild, a killed worker, X gone and back, and a restarted streamer: the page's
/// WebRTC video carries on (or reconnects) by itself and says what happened.
#[test]
fn the_dashboard_s_webrtc_view_carries_on_through_restarts_without_a_reload() {
    let mut x = DummyDisplay::start().expect("dummy Xorg");
    let mut patch: Option<Patch> = Some(x.paint(SECOND_MONITOR, FIRST_COLOUR).expect("paint the second monitor"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = webrtc_config(2);
    // Nothing answers there: the page must play all the same, having been told of it.
    config["webrtc_ice_servers"] = json!([{"urls": "stun:127.0.0.1:9"}]);
    let streamer_dir = dir.path().join("streamer");
    std::fs::create_dir_all(&streamer_dir).unwrap();
    let mut streamer = Some(start_streamer(&x.display(), port, &streamer_dir, &config));
    wait_for_segments(port, 1, SEGMENT_LIMIT);
    let web = start_dashboard(dir.path(), port);
    let shots = screenshot_dir("webrtc_dashboard");
    let base = format!("http://127.0.0.1:{}", web.port);

    let run = run_script(
        "heal.mjs",
        &[base.as_str(), &format!("{FIRST_COLOUR:06x}"), shots.to_str().unwrap()],
        SCRIPT_LIMIT,
        |ask| {
            let paint = |patch: &mut Option<Patch>, x: &DummyDisplay, rgb: Option<&str>| -> Option<u64> {
                let rgb = u32::from_str_radix(rgb?, 16).expect("a colour");
                match patch {
                    Some(p) => p.set_colour(rgb).expect("repaint"),
                    None => *patch = Some(x.paint(SECOND_MONITOR, rgb).expect("paint")),
                }
                Some(now_ms())
            };
            match ask["ask"].as_str() {
                Some("paint") => json!({"painted_at": paint(&mut patch, &x, ask["rgb"].as_str())}),
                Some("event") => {
                    let s = streamer.as_ref().expect("a streamer");
                    let seen = s.logs().matches(NEW_RUN).count();
                    let first_at = match ask["event"].as_str() {
                        Some("rebuild") => {
                            s.signal("USR1");
                            wait_for_new_run(s, seen)
                        }
                        Some("kill_worker") => {
                            let h = ds_tests::http::get(port, "/api/health/detailed").expect("health").json();
                            signal_pid(h["worker_pid"].as_u64().expect("a worker") as u32, "KILL");
                            wait_for_new_run(s, seen)
                        }
                        Some("x_gone") => {
                            patch = None;
                            x.kill_server().unwrap();
                            wait_for_new_run(s, seen)
                        }
                        Some("x_back") => {
                            x.restart_server().unwrap();
                            wait_for_new_run(s, seen)
                        }
                        Some("restart_streamer") => {
                            let (status, took) = streamer.take().unwrap().terminate(Duration::from_secs(10));
                            assert!(status.is_some(), "the streamer stopped after SIGTERM ({took:?})");
                            // From when the new process listens: its worker is yet to start.
                            streamer = Some(start_streamer(&x.display(), port, &streamer_dir, &config));
                            now_ms()
                        }
                        other => panic!("unknown event {other:?}"),
                    };
                    let painted_at = paint(&mut patch, &x, ask["rgb"].as_str());
                    json!({"first_at": first_at, "painted_at": painted_at})
                }
                _ => panic!("unexpected question from heal.mjs: {ask}"),
            }
        },
    );
    let result = run.result;
    let logs = streamer.as_ref().map(ServiceProcess::logs).unwrap_or_default();
    eprintln!("browser checks ({:.1} s): {result:#}", run.elapsed.as_secs_f64());
    eprintln!("screenshots: {}", shots.display());
    let checks = &result["checks"];
    for name in
        ["plays_webrtc", "rebuild", "kill_worker", "x_gone", "x_back", "restart_streamer", "still_live", "page_errors"]
    {
        assert_eq!(checks[name]["ok"], true, "{name}: {:#}\n{}\nstreamer log:\n{logs}", checks[name], run.stderr);
    }
    for name in ["rebuild", "kill_worker", "x_gone", "x_back"] {
        let c = &checks[name];
        let ms = c["after_first_picture_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(ms <= HEAL_LIMIT_MS, "{name}: the page showed the new run {ms} ms after its first picture: {c:#}");
        assert_eq!(c["sessions"], json!([1, 1]), "{name}: the same WebRTC session carried on: {c:#}");
    }
    let restart = &checks["restart_streamer"];
    let ms = restart["after_first_picture_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(ms <= RECONNECT_LIMIT_MS, "the page reconnected {ms} ms after the new streamer started: {restart:#}");
    eprintln!(
        "WebRTC picture back after the new run's first picture: rebuild {} ms, killed worker {} ms, \
         X gone (slate) {} ms, X back {} ms; streamer restart: {} ms after the new process listened",
        checks["rebuild"]["after_first_picture_ms"],
        checks["kill_worker"]["after_first_picture_ms"],
        checks["x_gone"]["after_first_picture_ms"],
        checks["x_back"]["after_first_picture_ms"],
        ms
    );
    drop(web);
}

/// With the streamer's media unreachable, then with WebRTC turned off on the streamer, the dashboard
/// plays HLS by itself and says so, with its latency estimate; on a phone it is usable.
#[test]
fn the_dashboard_falls_back_to_hls_when_webrtc_cannot_connect_and_says_so() {
    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let streamer_dir = dir.path().join("streamer");
    std::fs::create_dir_all(&streamer_dir).unwrap();
    let s = start_streamer(&x.display(), port, &streamer_dir, &webrtc_config(2));
    wait_for_segments(port, 1, SEGMENT_LIMIT);
    let web = start_dashboard(dir.path(), port);
    let shots = screenshot_dir("webrtc_fallback");
    let base = format!("http://127.0.0.1:{}", web.port);
    let started = Instant::now();

    let run =
        run_script("fallback.mjs", &[base.as_str(), shots.to_str().unwrap()], SCRIPT_LIMIT, |ask| {
            match ask["ask"].as_str() {
                Some("webrtc_off") => {
                    let path = streamer_dir.join("config.json");
                    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                    config["max_webrtc_viewers"] = 0.into();
                    std::fs::write(&path, config.to_string()).unwrap();
                    s.signal("HUP");
                    wait_until_every(
                        "max_webrtc_viewers 0 in the health API",
                        RUN_LIMIT,
                        Duration::from_millis(100),
                        || {
                            let h = ds_tests::http::get(port, "/api/health/detailed")
                                .map(|r| r.json())
                                .unwrap_or(Value::Null);
                            if h["webrtc"]["max_viewers"] == 0 { Ok(()) } else { Err(h["webrtc"].clone()) }
                        },
                    );
                    json!({})
                }
                _ => panic!("unexpected question from fallback.mjs: {ask}"),
            }
        });
    let result = run.result;
    eprintln!("browser checks ({:.1} s): {result:#}", run.elapsed.as_secs_f64());
    eprintln!("screenshots: {}", shots.display());
    for name in ["udp_blocked", "webrtc_off_503", "page_errors"] {
        assert_eq!(
            result["checks"][name]["ok"],
            true,
            "{name}: {:#}\n{}\n{}",
            result["checks"][name],
            run.stderr,
            s.logs()
        );
    }
    // The refusal is answered at once: no WebRTC attempt to wait out.
    let off = &result["checks"]["webrtc_off_503"];
    let udp = &result["checks"]["udp_blocked"];
    assert!(off["fell_back_ms"].as_u64() < udp["fell_back_ms"].as_u64(), "503 falls back sooner: {off:#} {udp:#}");
    eprintln!(
        "fell back to HLS after {} ms with the media unreachable, {} ms when refused (503); {:.0} s in all",
        udp["fell_back_ms"],
        off["fell_back_ms"],
        started.elapsed().as_secs_f64()
    );
    drop(web);
}
