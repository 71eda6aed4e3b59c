//! The camera monitor end to end, through the real `desktop-streamer-web` binary: real
//! cameras on loopback (GStreamer's RTSP server, with and without Digest authentication, and
//! the test MJPEG server), the real camera list on disk, the real API, `/metrics`, the log
//! files, and the real `desktop-streamer-monitor` CLI.
//!
//! Two services, each with many cameras, run side by side: one for the probes' verdicts and
//! everything that shows them (`probes_reach_the_truth_…`), one for the editor and hand
//! edits of `cameras.yaml` (`the_editor_…`), since those rewrite and break the file on
//! purpose. A third, small one has an https camera with a self-signed certificate
//! (`a_self_signed_camera_…`). Heartbeats are the shortest the configuration allows, so every
//! wait below is a few heartbeats at most.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use ds_tests::bins::run_monitor as monitor;
use ds_tests::http::{self, Response};
use ds_tests::mjpeg::{self, MjpegServer, Mode};
use ds_tests::procfs;
use ds_tests::receiver::Receiver;
use ds_tests::rtsp::{self, RtspServer};
use ds_tests::rtsp_sim::{Clip, ClipSpec, SimServer, StartAt};
use ds_tests::service::ServiceProcess;
use ds_tests::tcp_peer::{Behaviour, TcpPeer};
use ds_tests::wait::wait_until;
use serde_json::{Value, json};

/// A loopback port where nothing listens, ever: a port picked as free for a while could be
/// taken by another test's server running at the same time.
const REFUSED_PORT: u16 = 1;

/// The shortest heartbeat `cameras.yaml` allows (`HEARTBEAT_RANGE_S`).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Each probe step's timeout, `retries` and `frozen_seconds` as the test lists set them.
const TIMEOUT: Duration = Duration::from_secs(2);
const RETRIES: u32 = 1;
const FROZEN_S: u32 = 1;
/// The scheduler adds up to a tenth of the interval as jitter.
const JITTER: Duration = Duration::from_millis(500);
/// What a shared two-core machine may add to a bound: GStreamer's encoders and two services
/// run at the same time as the probes.
const SLACK: Duration = Duration::from_secs(3);
/// The editor's file watch looks every 2 s (`fleet::FILE_POLL`).
const FILE_PICKUP: Duration = Duration::from_secs(5);
/// A password the cameras do not accept; it must not appear anywhere either.
const WRONG_PASSWORD: &str = "wr0ng-S3cret";
/// A bearer of the same kind that the operator puts into a broken hand edit.
const HAND_EDIT_PASSWORD: &str = "hand-3dit-pw";
/// A password in a URL the editor refuses.
const REFUSED_URL_PASSWORD: &str = "ftp-pa55word";

/// Longest a camera may take to show a verdict that needs `attempts` probes: one heartbeat
/// to its first slot (its phase), one more per further attempt, each with jitter, and the
/// probe's timeout.
fn within(attempts: u32) -> Duration {
    (HEARTBEAT + JITTER) * attempts + TIMEOUT + SLACK
}

/// The real web service with its own configuration, camera list, database and log files.
struct Web {
    _dir: tempfile::TempDir,
    config: PathBuf,
    cameras_file: PathBuf,
    logs: PathBuf,
    env: Vec<(String, String)>,
    service: ServiceProcess,
    started: Instant,
    /// Stderr of the runs before a restart.
    earlier_logs: String,
}

impl Web {
    /// Starts the service on `cameras_yaml` with `RUST_LOG=rust_log`. Nothing systemd or a
    /// streamer: those parts of the dashboard say they cannot be reached, which is not what
    /// these tests look at.
    fn start(cameras_yaml: &str, rust_log: &str) -> Web {
        Web::start_with(cameras_yaml, rust_log, &[])
    }

    /// [`Web::start`] with more environment (a stepped wall clock's), kept for restarts.
    fn start_with(cameras_yaml: &str, rust_log: &str, extra_env: &[(String, String)]) -> Web {
        let dir = tempfile::tempdir().unwrap();
        let cameras_file = dir.path().join("cameras.yaml");
        std::fs::write(&cameras_file, cameras_yaml).unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let config = dir.path().join("web-config.json");
        let config_value = json!({
            "bus": "session",
            "streamer_url": "http://127.0.0.1:1",
            "auth_file": dir.path().join("web-auth.json"),
            "cameras_file": &cameras_file,
            "database": dir.path().join("cameras.db"),
            "log_dir": &logs,
            "watchdog_state_dir": dir.path().join("watchdog"),
        });
        std::fs::write(&config, config_value.to_string()).unwrap();
        let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
        let mut env = vec![
            ("RUST_LOG".to_owned(), rust_log.to_owned()),
            ("DBUS_SESSION_BUS_ADDRESS".to_owned(), no_bus),
            ("DESKTOP_STREAMER_LOG_DIR".to_owned(), logs.to_str().unwrap().to_owned()),
        ];
        env.extend_from_slice(extra_env);
        let service = Web::spawn(&config, &env);
        Web {
            _dir: dir,
            config,
            cameras_file,
            logs,
            env,
            service,
            started: Instant::now(),
            earlier_logs: String::new(),
        }
    }

    fn spawn(config: &std::path::Path, env: &[(String, String)]) -> ServiceProcess {
        let args: Vec<OsString> = vec!["--config".into(), config.into(), "--listen".into(), "127.0.0.1:0".into()];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ServiceProcess::start("desktop-streamer-web", &args, &env)
    }

    /// Stops the service (SIGTERM, as systemd does) and starts it again on the same files.
    fn restart(&mut self) {
        let (status, took) = self.service.terminate(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "the service stops cleanly on SIGTERM ({status:?} after {took:?})"
        );
        self.earlier_logs.push_str(&self.service.logs());
        self.service = Web::spawn(&self.config, &self.env);
        self.started = Instant::now();
    }

    fn port(&self) -> u16 {
        self.service.port
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    fn get(&self, path: &str) -> Response {
        self.service.get(path).unwrap_or_else(|| panic!("GET {path}: no answer"))
    }

    /// GET that must answer 200 with JSON.
    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Every camera of `GET /api/cameras`, by id.
    fn cameras(&self) -> Vec<Value> {
        self.json("/api/cameras")["cameras"].as_array().cloned().unwrap_or_default()
    }

    fn camera(&self, id: &str) -> Option<Value> {
        self.cameras().into_iter().find(|c| c["id"] == id)
    }

    /// A new API token from the CLI, as an operator makes one.
    fn token(&self) -> String {
        let out = std::process::Command::new(ds_tests::bins::bin("desktop-streamer-web"))
            .arg("--config")
            .arg(&self.config)
            .args(["new-token", "camera-tests", "--scope", "admin"])
            .output()
            .unwrap();
        assert!(out.status.success(), "new-token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `method path` with a JSON body and headers.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
        let body = body.map(Value::to_string);
        http::request(self.port(), method, path, headers, body.as_deref())
            .unwrap_or_else(|| panic!("{method} {path}: no answer\n{}", self.log_text()))
    }

    /// Everything the service logged: its log files and its stderr.
    fn log_text(&self) -> String {
        let mut text = self.earlier_logs.clone() + &self.service.logs();
        for entry in std::fs::read_dir(&self.logs).unwrap() {
            text.push('\n');
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        text
    }
}

/// Waits for camera `id` to be listed UP; its JSON.
fn wait_up(web: &Web, id: &str, limit: Duration) -> Value {
    wait_until(&format!("{id} UP"), limit, || {
        let cam = web.camera(id).ok_or_else(|| format!("{id} is not listed"))?;
        if verdict(&cam) == (Some("UP"), None) { Ok(cam) } else { Err(cam.to_string()) }
    })
}

/// A camera's state and reason as the API shows them.
fn verdict(camera: &Value) -> (Option<&str>, Option<&str>) {
    (camera["state"].as_str(), camera["reason"].as_str())
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time as the API writes it
/// (`2025-01-02T03:04:05.678Z`).
fn epoch_seconds(ts: &str) -> f64 {
    let (date, time) = ts.strip_suffix('Z').and_then(|t| t.split_once('T')).unwrap_or_else(|| panic!("not UTC: {ts}"));
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if d[1] <= 2 { d[0] - 1 } else { d[0] };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((d[1] + 9) % 12) + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// Waits until the history holds a heartbeat of camera `id` later than `after` (epoch seconds),
/// as the CSV export reads it from the database. The writer commits a heartbeat and the state
/// change it makes in one transaction, so from then on the changes are final for it.
fn wait_stored(web: &Web, id: &str, after: f64) {
    wait_until(&format!("a heartbeat of {id} after {after} in the database"), Duration::from_secs(10), || {
        let csv = web.get(&format!("/api/cameras/export.csv?camera={id}&hours=1")).text();
        let stored = csv.lines().skip(1).filter_map(|row| row.split(',').nth(2)).any(|t| epoch_seconds(t) > after);
        if stored { Ok(()) } else { Err(csv) }
    });
}

fn now_epoch_seconds() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Width and height from a JPEG's start-of-frame header; also checks the start and end
/// markers.
fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "no JPEG start marker");
    assert!(jpeg.ends_with(&[0xFF, 0xD9]), "no JPEG end marker");
    let mut i = 2;
    while i + 9 <= jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "not a JPEG marker at byte {i}");
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let width = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return (width.into(), height.into());
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    panic!("no start-of-frame header in the JPEG")
}

/// The first `count` events of a server-sent-events stream, as text (bounded in time).
fn read_events(port: u16, path: &str, count: usize, limit: Duration) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        if text.matches("\n\n").count() > count {
            return text.into_owned();
        }
    }
    panic!("fewer than {count} events within {limit:?}: {}", String::from_utf8_lossy(&got));
}

/// Fails if any of `secrets` appears in `text` (named `place`).
fn assert_no_secret(place: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "the password {secret:?} appears in {place}:\n{text}");
    }
}

/// One camera of the scenario list: its name, URL and the verdict it must reach.
struct Scenario {
    name: &'static str,
    url: String,
    state: &'static str,
    reason: Option<&'static str>,
    /// Probes it takes: 1 for UP, retries + 1 for DOWN, 2 for a frozen picture (the second
    /// probe sees the same picture).
    attempts: u32,
    /// What its message must start with, where the wording is what the test is about.
    message: Option<String>,
}

fn yaml_list(header: &str, cameras: &[(&str, &str, &str)]) -> String {
    let mut out = header.to_owned();
    out.push_str("streams:\n");
    for (name, url, extra) in cameras {
        out.push_str(&format!("- name: {name}\n  url: '{url}'\n{extra}"));
    }
    out
}

fn id_of(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

#[test]
fn probes_reach_the_truth_through_the_service_and_no_password_leaves_it() {
    let rtsp = RtspServer::start();
    let cams = MjpegServer::start();
    // A camera watched once a day, on its own server: its requests are the preview's alone.
    let daily = MjpegServer::start();
    let refused_port = REFUSED_PORT;
    // A camera that accepts and never answers, one that hangs up on every request, and the
    // simulated cameras' audio-only and repeating mounts.
    let silent = TcpPeer::start(Behaviour::Silent);
    let hang_up = TcpPeer::start(Behaviour::HangUp);
    let sim = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), 1, StartAt::GopCache);
    cams.set_mode(Mode::NotFound);
    let scenarios = [
        Scenario { name: "rtsp live", url: rtsp.url("live"), state: "UP", reason: None, attempts: 1, message: None },
        Scenario {
            name: "rtsp digest right",
            url: rtsp.secure_url(Some((rtsp::USER, rtsp::PASSWORD))),
            state: "UP",
            reason: None,
            attempts: 1,
            message: None,
        },
        Scenario {
            name: "rtsp digest wrong",
            url: rtsp.secure_url(Some((rtsp::USER, WRONG_PASSWORD))),
            state: "DOWN",
            reason: Some("auth_failed"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "rtsp missing",
            url: rtsp.url("no-such-mount"),
            state: "DOWN",
            reason: Some("not_found"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "rtsp noframes",
            url: rtsp.url("noframes"),
            state: "DOWN",
            reason: Some("no_frames"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "rtsp frozen",
            url: rtsp.url("frozen"),
            state: "DEGRADED",
            reason: Some("frozen"),
            attempts: 2,
            message: None,
        },
        Scenario { name: "mjpeg live", url: cams.url("live"), state: "UP", reason: None, attempts: 1, message: None },
        Scenario {
            name: "mjpeg basic right",
            url: cams.auth_url(mjpeg::USER, mjpeg::PASSWORD),
            state: "UP",
            reason: None,
            attempts: 1,
            message: None,
        },
        Scenario {
            name: "mjpeg basic wrong",
            url: cams.auth_url(mjpeg::USER, WRONG_PASSWORD),
            state: "DOWN",
            reason: Some("auth_failed"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "mjpeg missing",
            url: cams.url("nothing-here"),
            state: "DOWN",
            reason: Some("not_found"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "mjpeg headers only",
            url: cams.url("headers-only"),
            state: "DOWN",
            reason: Some("no_frames"),
            attempts: RETRIES + 1,
            message: None,
        },
        Scenario {
            name: "mjpeg frozen",
            url: cams.url("frozen"),
            state: "DEGRADED",
            reason: Some("frozen"),
            attempts: 2,
            message: None,
        },
        Scenario {
            name: "rtsp silent",
            url: silent.url("rtsp", "live"),
            state: "DOWN",
            reason: Some("timeout"),
            attempts: RETRIES + 1,
            message: Some(format!("connecting and DESCRIBE took longer than {} s", TIMEOUT.as_secs())),
        },
        Scenario {
            name: "rtsp hang up",
            url: format!("rtsp://admin:{WRONG_PASSWORD}@127.0.0.1:{}/live", hang_up.port),
            state: "DOWN",
            reason: Some("unreachable"),
            attempts: RETRIES + 1,
            message: Some("the connection broke during connecting and DESCRIBE: ".to_owned()),
        },
        Scenario {
            name: "rtsp audio only",
            url: sim.url_of("audio"),
            state: "DOWN",
            reason: Some("no_video_track"),
            attempts: RETRIES + 1,
            message: Some("the stream describes no video, only audio/pcmu".to_owned()),
        },
        Scenario {
            name: "rtsp repeating",
            url: sim.url_of("frozen"),
            state: "DEGRADED",
            reason: Some("frozen"),
            attempts: 2,
            message: Some("the picture has not changed for ".to_owned()),
        },
        Scenario {
            name: "refused",
            url: format!("rtsp://admin:{WRONG_PASSWORD}@127.0.0.1:{refused_port}/live"),
            state: "DOWN",
            reason: Some("refused"),
            attempts: RETRIES + 1,
            message: Some("the camera refused the connection: ".to_owned()),
        },
        // The truth table of pictures (issue 14), each row through the service with its message.
        // Moving pictures are never frozen, whether the encoder starts afresh per session
        // (/restarted), runs on for every client (/shared: a restreamer's shared media, joined
        // mid-stream) or is H.265; a still scene with sensor noise is a quiet room, not a hung
        // camera; a still picture from an encoder that runs on (a hung sensor) is frozen, a black
        // one black, as are MJPEG's; a JPEG that differs only in its comment is the same picture.
        Scenario {
            name: "rtsp restarted",
            url: rtsp.url("restarted"),
            state: "UP",
            reason: None,
            attempts: 1,
            message: None,
        },
        Scenario {
            name: "rtsp shared",
            url: rtsp.url("shared"),
            state: "UP",
            reason: None,
            attempts: 1,
            message: None,
        },
        Scenario { name: "rtsp noisy", url: rtsp.url("noisy"), state: "UP", reason: None, attempts: 1, message: None },
        Scenario { name: "rtsp h265", url: rtsp.url("h265"), state: "UP", reason: None, attempts: 1, message: None },
        Scenario {
            name: "rtsp shared still",
            url: rtsp.url("shared-still"),
            state: "DEGRADED",
            reason: Some("frozen"),
            attempts: 2,
            message: Some("the picture has not changed for ".to_owned()),
        },
        Scenario {
            name: "rtsp black",
            url: rtsp.url("black"),
            state: "DEGRADED",
            reason: Some("black"),
            attempts: 2,
            message: Some("the picture has been almost uniformly dark for ".to_owned()),
        },
        Scenario { name: "mjpeg noisy", url: cams.url("noisy"), state: "UP", reason: None, attempts: 1, message: None },
        Scenario {
            name: "mjpeg stamped",
            url: cams.url("stamped"),
            state: "DEGRADED",
            reason: Some("frozen"),
            attempts: 2,
            message: Some("the picture has not changed for ".to_owned()),
        },
        Scenario {
            name: "mjpeg black",
            url: cams.url("black"),
            state: "DEGRADED",
            reason: Some("black"),
            attempts: 2,
            message: Some("the picture has been almost uniformly dark for ".to_owned()),
        },
        // Loss is counted from the first packet received: a client joining a stream under way
        // (a sequence gap after RTP-Info) has lost nothing; packets left out mid-stream are lost.
        Scenario {
            name: "rtsp joined",
            url: sim.url_of("joined"),
            state: "UP",
            reason: None,
            attempts: 1,
            message: None,
        },
        Scenario {
            name: "rtsp lossy",
            url: sim.url_of("lossy"),
            state: "DEGRADED",
            reason: Some("packet_loss"),
            attempts: 1,
            message: Some("RTP packets were lost during the probe (the limit is 2)".to_owned()),
        },
        // Starts lost (404), recovers below.
        Scenario {
            name: "mjpeg switchable",
            url: cams.url("switchable"),
            state: "DOWN",
            reason: Some("not_found"),
            attempts: RETRIES + 1,
            message: None,
        },
    ];
    let mut list: Vec<(&str, &str, &str)> = scenarios.iter().map(|s| (s.name, s.url.as_str(), "")).collect();
    let daily_url = daily.url("live");
    list.push(("mjpeg daily", &daily_url, "  heartbeat_seconds: 86400\n"));
    let header = format!(
        "heartbeat_seconds: {}\ntimezone: Asia/Kolkata\ntimeout_seconds: {}\nretries: {RETRIES}\nfrozen_seconds: {FROZEN_S}\nblack_seconds: {FROZEN_S}\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs()
    );
    // Debug logging everywhere: the log must not carry a password even then.
    let web = Web::start(&yaml_list(&header, &list), "debug");
    let secrets = [rtsp::PASSWORD, mjpeg::PASSWORD, WRONG_PASSWORD];

    // 1. Every scenario reaches its verdict within its bound, measured from the start.
    let mut reached: Vec<Option<Duration>> = vec![None; scenarios.len()];
    let seen = loop {
        let seen = web.cameras();
        let elapsed = web.started.elapsed();
        for (s, r) in scenarios.iter().zip(reached.iter_mut()).filter(|(_, r)| r.is_none()) {
            let cam =
                seen.iter().find(|c| c["id"] == id_of(s.name)).unwrap_or_else(|| panic!("{} is not listed", s.name));
            if verdict(cam) == (Some(s.state), s.reason) {
                *r = Some(elapsed);
            } else {
                let bound = within(s.attempts);
                assert!(
                    elapsed <= bound,
                    "{} did not become {}/{:?} within {bound:?}: {cam:#}",
                    s.name,
                    s.state,
                    s.reason
                );
            }
        }
        if reached.iter().all(Option::is_some) {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Each verdict holds now that the last one was reached (after `frozen_seconds` at least):
    // a moving picture was not called frozen meanwhile.
    for s in &scenarios {
        let cam = seen.iter().find(|c| c["id"] == id_of(s.name)).unwrap();
        assert_eq!(verdict(cam), (Some(s.state), s.reason), "{} once every verdict was reached: {cam:#}", s.name);
    }
    for (s, r) in scenarios.iter().zip(&reached) {
        eprintln!(
            "{:<20} {:>9} {:<12} after {:>5.1} s",
            s.name,
            s.state,
            s.reason.unwrap_or("-"),
            r.unwrap().as_secs_f64()
        );
    }
    let by_id = |id: &str| seen.iter().find(|c| c["id"] == id).cloned().unwrap();
    let live = by_id("rtsp-live");
    assert_eq!(verdict(&live), (Some("UP"), None), "{live:#}");
    assert_eq!(
        (live["codec"].as_str(), live["width"].as_u64(), live["height"].as_u64()),
        (Some("h264"), Some(320), Some(240))
    );
    assert!(live["latency_ms"].as_u64().is_some_and(|ms| ms > 0 && ms < 2000), "{live:#}");
    assert!(live["last_frame_at"].is_string() && live["since"].is_string(), "{live:#}");
    let digest = by_id("rtsp-digest-right");
    assert_eq!(digest["codec"], "h264", "{digest:#}");
    assert_eq!(digest["url"], format!("rtsp://{}:***@127.0.0.1:{}/live", rtsp::USER, rtsp.secure_port));
    let joined = by_id("rtsp-joined");
    assert_eq!(joined["packets_lost"], 0, "joining a stream under way loses nothing: {joined:#}");
    let lossy = by_id("rtsp-lossy");
    assert!(lossy["packets_lost"].as_u64().is_some_and(|n| n > 0), "{lossy:#}");
    let mjpeg_live = by_id("mjpeg-live");
    let (w, h) = MjpegServer::frame_size();
    assert_eq!(
        (mjpeg_live["codec"].as_str(), mjpeg_live["width"].as_u64(), mjpeg_live["height"].as_u64()),
        (Some("jpeg"), Some(u64::from(w)), Some(u64::from(h))),
        "{mjpeg_live:#}"
    );
    for s in scenarios.iter().filter(|s| s.state != "UP") {
        let cam = by_id(&id_of(s.name));
        assert!(cam["message"].as_str().is_some_and(|m| !m.is_empty()), "{} says why: {cam:#}", s.name);
        if let Some(start) = &s.message {
            let m = cam["message"].as_str().unwrap_or_default();
            assert!(m.contains(start.as_str()), "{} says …{start:?}…: {cam:#}", s.name);
        }
    }
    assert!(silent.accepted() >= 2 && hang_up.accepted() >= 2, "the probes connected, and were not refused");
    let daily_cam = by_id("mjpeg-daily");
    assert_eq!(daily_cam["state"], Value::Null, "a daily camera is not probed yet: {daily_cam:#}");
    assert_eq!(
        (daily_cam["heartbeat_seconds"].as_u64(), daily_cam["heartbeat_override"].as_u64()),
        (Some(86_400), Some(86_400))
    );

    // 2. Recovery: the lost MJPEG path comes back; UP within one heartbeat, `since` anew.
    let down_since = by_id("mjpeg-switchable")["since"].as_str().map(epoch_seconds).expect("a DOWN camera has a since");
    let switched = now_epoch_seconds();
    let t = Instant::now();
    cams.set_mode(Mode::Live);
    let recovered = wait_until("mjpeg switchable back UP", within(1), || {
        let cam = web.camera("mjpeg-switchable").unwrap();
        if verdict(&cam) == (Some("UP"), None) { Ok(cam) } else { Err(cam.to_string()) }
    });
    eprintln!("mjpeg switchable recovered to UP after {:.1} s", t.elapsed().as_secs_f64());
    let up_since = epoch_seconds(recovered["since"].as_str().unwrap());
    assert!(
        up_since > down_since && up_since >= switched - 0.5,
        "since {up_since} (switched at {switched}): {recovered:#}"
    );

    // 3. Pictures. Anonymous: `snapshot.jpg` is the last heartbeat's picture, no session to
    // the camera. Authenticated: a full-size picture grabbed now, served from the cache the
    // second time.
    let bearer = format!("Bearer {}", web.token());
    let grab = |path: &str| web.send("GET", path, &[("Authorization", &bearer)], None);
    let anonymous = web.get("/api/cameras/rtsp-live/snapshot.jpg");
    assert_eq!(
        (anonymous.status, anonymous.header("x-picture-source")),
        (200, Some("heartbeat")),
        "{}",
        anonymous.text()
    );
    assert_eq!(jpeg_size(&anonymous.body), (320, 240));
    let none = web.get("/api/cameras/rtsp-digest-wrong/snapshot.jpg");
    assert_eq!(none.status, 404, "{}", none.text());
    assert!(none.json()["error"].as_str().unwrap().contains("needs authentication"), "{}", none.text());
    let snap = grab("/api/cameras/rtsp-live/snapshot.jpg");
    assert_eq!((snap.status, snap.header("content-type")), (200, Some("image/jpeg")), "{}", snap.text());
    assert_eq!(snap.header("x-picture-source"), Some("grab"));
    assert_eq!(jpeg_size(&snap.body), (320, 240));
    let again = grab("/api/cameras/rtsp-live/snapshot.jpg");
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-taken-at"), snap.header("x-taken-at"), "a reload within seconds is the cached picture");
    let wrong = web.send("GET", "/api/cameras/rtsp-live/snapshot.jpg", &[("Authorization", "Bearer wrong")], None);
    assert_eq!(wrong.status, 401, "a wrong token is refused, not served as anonymous: {}", wrong.text());
    let secure = grab("/api/cameras/rtsp-digest-right/snapshot.jpg");
    assert_eq!(secure.status, 200, "the preview passes the Digest credentials: {}", secure.text());
    assert_eq!(jpeg_size(&secure.body), (320, 240));
    let refused = grab("/api/cameras/rtsp-digest-wrong/snapshot.jpg");
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(refused.json()["error"].as_str().unwrap().contains("refused the credentials"), "{}", refused.text());
    assert_no_secret("a failed preview's answer", &refused.text(), &secrets);
    let first = grab("/api/cameras/mjpeg-daily/snapshot.jpg");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(jpeg_size(&first.body), MjpegServer::frame_size());
    let after_first = daily.requests().len();
    assert!(after_first >= 1, "the preview asked the camera");
    let second = grab("/api/cameras/mjpeg-daily/snapshot.jpg");
    assert_eq!((second.status, &second.body), (200, &first.body));
    assert_eq!(daily.requests().len(), after_first, "the second preview came from the cache, not the camera");
    assert_eq!(web.camera("mjpeg-daily").unwrap()["state"], Value::Null, "no probe counted among those requests");
    assert_eq!(web.get("/api/cameras/no-such-camera/snapshot.jpg").status, 404);
    // The thumbnail: the picture of the last decoded heartbeat, no session to the camera.
    let thumb = web.get("/api/cameras/rtsp-live/thumbnail.jpg");
    assert_eq!((thumb.status, thumb.header("content-type")), (200, Some("image/jpeg")), "{}", thumb.text());
    assert_eq!(jpeg_size(&thumb.body), (320, 240));
    assert!(thumb.header("x-taken-at").is_some());
    let h265 = web.get("/api/cameras/rtsp-h265/thumbnail.jpg");
    assert_eq!(h265.status, 200, "an H.265 camera's picture: {}", h265.text());
    assert_eq!(jpeg_size(&h265.body), (320, 240));
    let none = web.get("/api/cameras/rtsp-digest-wrong/thumbnail.jpg");
    assert_eq!(none.status, 404, "a camera without video has no picture: {}", none.text());
    assert!(none.json()["error"].as_str().unwrap().contains("no picture yet"), "{}", none.text());

    // 4. StreamPulse's map, the CSV export and /metrics.
    let pulse = web.json("/api/streampulse/status");
    assert_eq!(pulse.as_object().unwrap().len(), list.len(), "{pulse:#}");
    for s in &scenarios {
        let entry = &pulse[s.name];
        let up = s.state == "UP" || s.name == "mjpeg switchable";
        assert_eq!(entry["status"], if up { "ok" } else { "fail" }, "{}: {entry:#}", s.name);
        assert!(entry["ts"].as_str().is_some_and(|ts| ts.ends_with("+05:30")), "ts in Asia/Kolkata: {entry:#}");
        assert!(entry["message"].as_str().is_some_and(|m| !m.is_empty()), "{entry:#}");
        assert_eq!(entry["latency"].is_u64(), up || s.state == "DEGRADED", "{}: {entry:#}", s.name);
    }
    let csv = web.get("/api/cameras/export.csv");
    assert_eq!((csv.status, csv.header("content-type")), (200, Some("text/csv; charset=utf-8")));
    let csv_text = csv.text();
    let mut lines = csv_text.lines();
    let header_row = lines.next().unwrap();
    assert!(header_row.starts_with("camera_id,camera_name,time_utc,time_local,state"), "{header_row}");
    let rows: Vec<&str> = lines.collect();
    for s in &scenarios {
        let id = id_of(s.name);
        assert!(rows.iter().any(|r| r.starts_with(&format!("{id},"))), "a row for {id} in\n{csv_text}");
    }
    assert!(rows.iter().any(|r| r.starts_with("rtsp-live,rtsp live,") && r.contains(",UP,")), "{csv_text}");
    assert!(rows.iter().any(|r| r.starts_with("refused,") && r.contains(",DOWN,refused,")), "{csv_text}");
    let metrics = web.get("/metrics").text();
    for series in [
        "ds_camera_up{camera=\"rtsp-live\",name=\"rtsp live\"} 1",
        "ds_camera_up{camera=\"refused\",name=\"refused\"} 0",
        "ds_camera_up{camera=\"rtsp-frozen\",name=\"rtsp frozen\"} 1",
        "ds_camera_state{camera=\"refused\",name=\"refused\",state=\"DOWN\"} 1",
        "ds_camera_state{camera=\"refused\",name=\"refused\",state=\"UP\"} 0",
        "ds_camera_state{camera=\"mjpeg-frozen\",name=\"mjpeg frozen\",state=\"DEGRADED\"} 1",
        "ds_camera_latency_seconds{camera=\"rtsp-live\",name=\"rtsp live\"} ",
        "ds_camera_last_frame_age_seconds{camera=\"mjpeg-live\",name=\"mjpeg live\"} ",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ds_camera_last_frame_age_seconds{camera=\"mjpeg-live\",name=\"mjpeg live\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..=(HEARTBEAT + TIMEOUT + SLACK).as_secs_f64()).contains(&age), "last frame {age} s ago");
    assert!(!metrics.contains("camera=\"mjpeg-daily\""), "no series for a camera without a heartbeat yet");

    // 5. No password anywhere: answers, live events, log files.
    let events = read_events(web.port(), "/api/cameras/events", 5, HEARTBEAT * 2);
    assert!(events.contains("event: camera\ndata: {"), "{events}");
    let mut answers = vec![
        ("GET /api/cameras".to_owned(), web.get("/api/cameras").text()),
        ("GET /api/streampulse/status".to_owned(), pulse.to_string()),
        ("GET /metrics".to_owned(), metrics),
        ("the CSV export".to_owned(), csv_text),
        ("GET /api/cameras/events".to_owned(), events),
    ];
    for s in &scenarios {
        let id = id_of(s.name);
        for path in
            [format!("/api/cameras/{id}"), format!("/api/cameras/{id}/changes"), format!("/api/cameras/{id}/history")]
        {
            let r = web.get(&path);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            answers.push((path, r.text()));
        }
    }
    let (code, table, err) = monitor(&["--url", &web.url(), "cameras"]);
    assert_eq!(code, 0, "{err}");
    let (code, cli_json, err) = monitor(&["--url", &web.url(), "--json", "cameras"]);
    assert_eq!(code, 0, "{err}");
    let (code, status, err) = monitor(&["--url", &web.url(), "status"]);
    assert_eq!(code, 0, "{err}");
    answers.extend([("`cameras`".to_owned(), table.clone()), ("`status`".to_owned(), status.clone())]);
    for (place, text) in &answers {
        assert_no_secret(place, text, &secrets);
    }
    assert!(answers[0].1.contains(&format!("{}:***@", mjpeg::USER)), "the masked user shows: {}", answers[0].1);
    let log = web.log_text();
    assert!(log.contains("camera state changed"), "the log is the service's: {log}");
    assert_no_secret("the service's log", &log, &secrets);

    // 6. The CLI: the table with each camera's state, the API's JSON, the status summary.
    let table_lines: Vec<&str> = table.lines().collect();
    assert_eq!(table_lines[0], format!("Cameras ({})", list.len()), "{table}");
    for s in &scenarios {
        let row = table_lines.iter().find(|l| l.trim_start().starts_with(&format!("{} ", s.name)));
        let row = row.unwrap_or_else(|| panic!("{} in\n{table}", s.name));
        let state = if s.name == "mjpeg switchable" { "UP" } else { s.state };
        assert!(row.contains(&format!(" {state} ")), "{} is {state}:\n{table}", s.name);
        if let Some(reason) = s.reason.filter(|_| s.name != "mjpeg switchable") {
            assert!(row.contains(reason), "{} says {reason}:\n{table}", s.name);
        }
    }
    let live_row = table_lines.iter().find(|l| l.trim_start().starts_with("rtsp live ")).unwrap();
    assert!(live_row.contains("h264") && live_row.contains("320x240") && live_row.contains(" ms"), "{live_row}");
    let parsed: Value = serde_json::from_str(&cli_json).unwrap_or_else(|e| panic!("{e}: {cli_json}"));
    let ids: Vec<&str> = parsed["cameras"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), list.len(), "{cli_json}");
    assert!(ids.contains(&"rtsp-live") && ids.contains(&"mjpeg-daily"), "{cli_json}");
    assert_eq!(parsed["timezone"], "Asia/Kolkata");
    let ups = scenarios.iter().filter(|s| s.state == "UP").count() + 1;
    let downs = scenarios.iter().filter(|s| s.state == "DOWN").count() - 1;
    let degraded = scenarios.iter().filter(|s| s.state == "DEGRADED").count();
    let summary = format!("{ups} UP, {degraded} DEGRADED, {downs} DOWN, 1 WAITING");
    assert!(status.contains(&format!("Cameras\n  {summary}\n")), "{summary} in\n{status}");
    assert!(status.contains("  DOWN refused: "), "the broken ones are named:\n{status}");
    assert!(status.contains("  DEGRADED rtsp frozen: the picture has not changed"), "{status}");
    drop(web);
}

#[test]
fn the_editor_keeps_ids_unknown_keys_and_passwords_and_hand_edits_win() {
    let rtsp = RtspServer::start();
    let cams = MjpegServer::start();
    let gate_url = rtsp.secure_url(Some((rtsp::USER, rtsp::PASSWORD)));
    let lab_url = cams.auth_url(mjpeg::USER, mjpeg::PASSWORD);
    // Nothing listens there: DOWN/refused before and after the restart at the end.
    let dark_port = REFUSED_PORT;
    let original = format!(
        "# North site: ask Priya before adding a camera.\n\
         heartbeat_seconds: {}\ntimezone: UTC\ntimeout_seconds: {}\nretries: {RETRIES}\n\
         site_notes: kept by the editor\nstreams:\n\
         - name: Gate\n  url: '{gate_url}'\n  mount: north pole\n\
         - name: Lab   # the bench camera\n  url: '{lab_url}'\n\
         - name: Dark\n  url: 'rtsp://127.0.0.1:{dark_port}/live'\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs()
    );
    let mut web = Web::start(&original, "info");
    let secrets = [rtsp::PASSWORD, mjpeg::PASSWORD, REFUSED_URL_PASSWORD, HAND_EDIT_PASSWORD];
    let token = web.token();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let cameras_file = web.cameras_file.clone();
    let file = || std::fs::read_to_string(&cameras_file).unwrap();
    let mut error_answers = Vec::new();

    wait_up(&web, "gate", within(1));
    wait_up(&web, "lab", within(1));
    // The first state is a change on record once the database writer commits (within 1 s).
    let changes_before = wait_until("Gate's first state change stored", Duration::from_secs(3), || {
        let changes = web.json("/api/cameras/gate/changes")["changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() { Err("none".to_owned()) } else { Ok(changes) }
    });

    // Adding needs a token, from the dashboard's own origin.
    let yard = json!({"name": "Yard", "url": cams.url("live")});
    let r = web.send("POST", "/api/cameras", &[], Some(&yard));
    assert_eq!(r.status, 401, "{}", r.text());
    let r = web.send("POST", "/api/cameras", &[auth[0], ("Origin", "http://evil.example")], Some(&yard));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(web.cameras().len(), 3, "refused calls change nothing");
    let r = web.send("POST", "/api/cameras", &auth, Some(&yard));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!((created["id"].as_str(), created["name"].as_str()), (Some("yard"), Some("Yard")), "{created:#}");
    let text = file();
    assert!(text.contains("site_notes: kept by the editor"), "an unknown top-level key survives:\n{text}");
    assert!(text.contains("mount: north pole"), "an unknown camera key survives:\n{text}");
    assert!(text.contains(&gate_url) && text.contains(&lab_url), "passwords stay in the file:\n{text}");
    let (g, l, y) = (text.find("name: Gate"), text.find("name: Lab"), text.find("name: Yard"));
    assert!(g < l && l < y && g.is_some(), "the order is kept, new cameras last:\n{text}");
    let notes = ["# North site: ask Priya before adding a camera.\n", "name: Lab   # the bench camera\n"];
    assert!(notes.iter().all(|n| text.contains(n)), "the operator's comments survive:\n{text}");
    wait_up(&web, "yard", within(1));

    // A rename keeps the id, and with it the history.
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"name": "Front Gate"})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((r.json()["id"].as_str(), r.json()["name"].as_str()), (Some("gate"), Some("Front Gate")));
    let renamed = web.camera("gate").expect("still listed under its id");
    assert_eq!(renamed["name"], "Front Gate");
    let changes_after = web.json("/api/cameras/gate/changes")["changes"].as_array().unwrap().clone();
    assert!(changes_after.len() >= changes_before.len(), "{changes_after:#?}");
    assert!(changes_after.ends_with(&changes_before), "the history follows the rename: {changes_after:#?}");
    assert!(file().contains("id: gate"), "the id is written down:\n{}", file());
    assert!(notes.iter().all(|n| file().contains(n)), "the comments survive a rename:\n{}", file());

    // The URL as the API shows it (password masked) keeps the stored password.
    let masked = renamed["url"].as_str().unwrap().to_owned();
    assert_eq!(masked, format!("rtsp://{}:***@127.0.0.1:{}/live", rtsp::USER, rtsp.secure_port));
    let saved_at = now_epoch_seconds();
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"url": masked})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(file().contains(&gate_url), "the stored password is kept:\n{}", file());
    let lab = web.camera("lab").unwrap();
    let r = web.send("PUT", "/api/cameras/lab", &auth, Some(&json!({"name": "Lab 2", "url": lab["url"]})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(file().contains(&lab_url), "the stored MJPEG password is kept:\n{}", file());
    wait_until("Front Gate UP after the save", within(1), || {
        let cam = web.camera("gate").unwrap();
        let after = cam["last_heartbeat_at"].as_str().is_some_and(|t| epoch_seconds(t) > saved_at);
        if after && verdict(&cam) == (Some("UP"), None) { Ok(()) } else { Err(cam.to_string()) }
    });
    // Another user with a masked password has no password to keep.
    let other_user = masked.replace(&format!("{}:", rtsp::USER), "someone:");
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"url": other_user})));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("password is masked"), "{}", r.text());
    error_answers.push(r.text());

    // Bad URLs and bodies: 422 saying what is allowed, never echoing a password.
    let bad = [
        (format!("ftp://op:{REFUSED_URL_PASSWORD}@127.0.0.1/cam"), "scheme `ftp` is not supported"),
        ("rtsp://".to_owned(), "has no host"),
        (format!("rtsps://op:{REFUSED_URL_PASSWORD}@127.0.0.1/cam"), "rtsps:// (RTSP over TLS) is not supported"),
    ];
    for (url, why) in bad {
        let r = web.send("POST", "/api/cameras", &auth, Some(&json!({"name": "Bad", "url": url})));
        assert_eq!(r.status, 422, "{url}: {}", r.text());
        let message = r.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(why), "{url}: {message}");
        assert!(message.contains("rtsp://") && message.contains("http"), "names what is allowed: {message}");
        error_answers.push(r.text());
    }
    let r = web.send(
        "POST",
        "/api/cameras",
        &auth,
        Some(&json!({"name": "Typo", "url": cams.url("live"), "pasword": REFUSED_URL_PASSWORD})),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("unknown field `pasword`"), "{}", r.text());
    error_answers.push(r.text());
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"url": 5})));
    assert_eq!(r.status, 422, "{}", r.text());
    error_answers.push(r.text());
    let r = web.send("PUT", "/api/cameras/nobody", &auth, Some(&json!({"name": "x"})));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(!file().contains("Bad") && !file().contains("Typo"), "refused edits are not written:\n{}", file());

    let r = web.send("POST", "/api/cameras", &auth, Some(&json!({"name": "yard", "url": cams.url("live")})));
    assert_eq!(r.status, 422, "names are unique: {}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("names must be unique"), "{}", r.text());
    let r = web.send("PUT", "/api/cameras/yard", &auth, Some(&json!({"heartbeat_seconds": 2})));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("5..=86400"), "{}", r.text());

    // A camera's own probe limits: written to its entry as heartbeat overrides are, listed
    // with the limits in force, `null` clears one (the list's applies again), and a value out
    // of range or of the wrong type is refused naming the field and what it may be.
    let limits = json!({"frozen_seconds": 0, "black_seconds": 120, "max_packets_lost": 9});
    let r = web.send("PUT", "/api/cameras/yard", &auth, Some(&limits));
    assert_eq!(r.status, 200, "{}", r.text());
    let answered = r.json();
    let listed = web.camera("yard").unwrap();
    for cam in [&answered, &listed] {
        let shown = |key: &str| (cam[key].clone(), cam[format!("{key}_override").replace("_seconds_", "_")].clone());
        assert_eq!(shown("frozen_seconds"), (json!(0), json!(0)), "{cam:#}");
        assert_eq!(shown("black_seconds"), (json!(120), json!(120)), "{cam:#}");
        assert_eq!(shown("max_packets_lost"), (json!(9), json!(9)), "{cam:#}");
    }
    let yard_entry = |text: &str| text[text.find("name: Yard").unwrap()..].to_owned();
    let entry = yard_entry(&file());
    for line in ["frozen_seconds: 0", "black_seconds: 120", "max_packets_lost: 9"] {
        assert!(entry.lines().any(|l| l.trim() == line), "`{line}` in Yard's entry:\n{}", file());
    }
    let r = web.send("PUT", "/api/cameras/yard", &auth, Some(&json!({"black_seconds": null, "name": "Yard"})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!file().contains("black_seconds"), "null clears the override:\n{}", file());
    assert!(yard_entry(&file()).contains("frozen_seconds: 0"), "the others stay:\n{}", file());
    let cleared = web.camera("yard").unwrap();
    assert_eq!((&cleared["black_seconds"], &cleared["black_override"]), (&json!(60), &Value::Null), "{cleared:#}");
    let before_refusals = file();
    for (body, field, allowed) in [
        (json!({"frozen_seconds": 90_000}), "frozen_seconds", "0..=86400"),
        (json!({"black_seconds": 86_401}), "black_seconds", "0..=86400"),
        (json!({"max_packets_lost": 100_001}), "max_packets_lost", "0..=100000"),
        (json!({"max_packets_lost": -1}), "max_packets_lost", "0..=100000"),
        (json!({"frozen_seconds": "a minute"}), "frozen_seconds", "0..=86400"),
        (json!({"black_seconds": 1.5}), "black_seconds", "0..=86400"),
    ] {
        let r = web.send("PUT", "/api/cameras/yard", &auth, Some(&body));
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let why = r.json()["error"].as_str().unwrap().to_owned();
        assert!(why.contains(field) && why.contains(allowed), "{body}: {why}");
        assert!(!why.contains("a minute"), "no value is echoed: {why}");
        error_answers.push(r.text());
    }
    assert_eq!(file(), before_refusals, "refused limits are not written");
    let r = web.send("PUT", "/api/cameras/settings", &auth, Some(&json!({"heartbeat_seconds": 2})));
    assert_eq!(r.status, 422, "{}", r.text());
    let r = web.send("PUT", "/api/cameras/settings", &auth, Some(&json!({"timezone": "Mars/Olympus"})));
    assert_eq!(r.status, 422, "{}", r.text());
    let why = r.json()["error"].as_str().unwrap().to_owned();
    assert!(why.starts_with("timezone = \"Mars/Olympus\": is not a known IANA time zone"), "{why}");
    assert!(!why.contains("cameras.yaml"), "the answer names no server path: {why}");
    assert_eq!(web.send("PUT", "/api/cameras/settings", &[], Some(&json!({"timezone": "UTC"}))).status, 401);
    let r = web.send("PUT", "/api/cameras/settings", &auth, Some(&json!({"timezone": "Europe/Berlin"})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(web.json("/api/cameras")["timezone"], "Europe/Berlin");

    // Delete: 401 without a token, 204 with one, and gone.
    assert_eq!(web.send("DELETE", "/api/cameras/yard", &[], None).status, 401);
    let r = web.send("DELETE", "/api/cameras/yard", &auth, None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(web.camera("yard").is_none(), "deleted cameras leave the list");
    assert!(!file().contains("Yard"), "{}", file());
    assert_eq!(web.get("/api/cameras/yard").status, 404);
    // A new camera under the deleted one's name is another camera: it does not inherit the
    // deleted camera's history (which stays in the database until retention removes it).
    // Its own frozen limit, set when it is added, is the one it is judged by: a picture that
    // stands still is DEGRADED/frozen at its second heartbeat, not after the list's minute.
    let r = web.send(
        "POST",
        "/api/cameras",
        &auth,
        Some(&json!({"name": "Yard", "url": cams.url("frozen"), "frozen_seconds": 1})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let new_yard = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!((&r.json()["frozen_seconds"], &r.json()["frozen_override"]), (&json!(1), &json!(1)), "{}", r.text());
    let changes = web.json(&format!("/api/cameras/{new_yard}/changes"));
    assert_eq!(changes["changes"], json!([]), "{new_yard} starts without history: {changes:#}");
    wait_until("the new Yard DEGRADED/frozen by its own limit", within(2), || {
        let cam = web.camera(&new_yard).unwrap();
        if verdict(&cam) == (Some("DEGRADED"), Some("frozen")) { Ok(()) } else { Err(cam.to_string()) }
    });
    let r = web.send("DELETE", &format!("/api/cameras/{new_yard}"), &auth, None);
    assert_eq!(r.status, 204, "{}", r.text());

    // A hand edit is picked up within seconds.
    // Appended as the operator would: in the file's own indentation.
    let text = file();
    let item = text.lines().find(|l| l.trim_start().starts_with("- name:")).unwrap();
    let indent = item[..item.len() - item.trim_start().len()].to_owned();
    let edited = text + &format!("{indent}- name: Hand\n{indent}  url: '{}'\n", cams.url("live"));
    std::fs::write(&web.cameras_file, &edited).unwrap();
    wait_until("the hand-added camera listed", FILE_PICKUP, || {
        let l = web.json("/api/cameras");
        let listed = l["cameras"].as_array().is_some_and(|c| c.iter().any(|c| c["id"] == "hand"));
        if listed { Ok(()) } else { Err(format!("{l:#} for the file\n{edited}")) }
    });
    wait_up(&web, "hand", within(1));

    // A broken hand edit is refused with its reasons; the last good list keeps running, and
    // the editor does not overwrite the operator's file.
    let broken = edited.replace("heartbeat_seconds: 5", "heartbeat_seconds: 1")
        + &format!("{indent}- name: Broken\n{indent}  url: 'ftp://op:{HAND_EDIT_PASSWORD}@127.0.0.1/x'\n");
    std::fs::write(&web.cameras_file, &broken).unwrap();
    let refused_at = now_epoch_seconds();
    let listing = wait_until("the broken edit refused", FILE_PICKUP, || {
        let l = web.json("/api/cameras");
        if l["file_problem"].is_object() { Ok(l) } else { Err(l["file_problem"].to_string()) }
    });
    let problems = listing["file_problem"]["messages"].as_array().unwrap();
    let joined = problems.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n");
    assert!(joined.contains("heartbeat_seconds") && joined.contains("5..=86400"), "{joined}");
    assert!(joined.contains("scheme `ftp` is not supported"), "{joined}");
    assert_no_secret("file_problem", &joined, &secrets);
    let names: Vec<&str> = listing["cameras"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Front Gate", "Lab 2", "Dark", "Hand"], "the last good list runs");
    assert_eq!(listing["heartbeat_seconds"], HEARTBEAT.as_secs());
    wait_until("heartbeats go on after the refused edit", within(1), || {
        let cam = web.camera("hand").unwrap();
        let after = cam["last_heartbeat_at"].as_str().is_some_and(|t| epoch_seconds(t) > refused_at);
        if after && cam["state"] == "UP" { Ok(()) } else { Err(cam.to_string()) }
    });
    let r = web.send("POST", "/api/cameras", &auth, Some(&json!({"name": "Late", "url": cams.url("live")})));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("fix the file first"), "{}", r.text());
    error_answers.push(r.text());
    assert_eq!(file(), broken, "the operator's edit is not overwritten");
    let (code, table, _) = monitor(&["--url", &web.url(), "cameras"]);
    assert_eq!(code, 0);
    assert!(table.contains("the camera list on disk was refused"), "{table}");
    assert_no_secret("`cameras` with a refused file", &table, &secrets);

    // Fixing the file clears the problem and runs the fixed list.
    std::fs::write(&web.cameras_file, &edited).unwrap();
    wait_until("the problem cleared", FILE_PICKUP, || {
        let l = web.json("/api/cameras");
        if l["file_problem"].is_null() { Ok(()) } else { Err(l["file_problem"].to_string()) }
    });
    let r = web.send("POST", "/api/cameras", &auth, Some(&json!({"name": "Late", "url": cams.url("live")})));
    assert_eq!(r.status, 201, "the editor works again: {}", r.text());

    // A restart keeps each camera's history and when its state began: an UP camera is UP
    // since before, and a DOWN one DOWN since before (not PENDING again, as if it had just
    // begun to fail: the watchdog's grace period would start over).
    let dark = web.camera("dark").unwrap();
    assert_eq!(verdict(&dark), (Some("DOWN"), Some("refused")), "{dark:#}");
    let gate = web.camera("gate").unwrap();
    let changes = web.json("/api/cameras/gate/changes");
    let dark_changes = web.json("/api/cameras/dark/changes");
    web.restart();
    let restarted_at = now_epoch_seconds();
    let again = wait_up(&web, "gate", within(1));
    // The database keeps milliseconds.
    let same_time =
        |a: &Value, b: &Value| (epoch_seconds(a.as_str().unwrap()) - epoch_seconds(b.as_str().unwrap())).abs() < 0.001;
    assert!(same_time(&again["since"], &gate["since"]), "UP since before the restart ({}): {again:#}", gate["since"]);
    assert_eq!(web.json("/api/cameras/gate/changes"), changes, "the history survives the restart");
    assert_eq!(again["name"], "Front Gate");
    let dark_again = wait_until("Dark's first heartbeat after the restart", within(1), || {
        let cam = web.camera("dark").unwrap();
        let after = cam["last_heartbeat_at"].as_str().is_some_and(|t| epoch_seconds(t) > restarted_at);
        if after { Ok(cam) } else { Err(cam.to_string()) }
    });
    assert_eq!(verdict(&dark_again), (Some("DOWN"), Some("refused")), "still DOWN: {dark_again:#}");
    assert!(
        same_time(&dark_again["since"], &dark["since"]),
        "DOWN since before the restart ({}): {dark_again:#}",
        dark["since"]
    );
    // No PENDING in between: once the heartbeat is in the export, the transaction that would
    // have recorded a change with it is committed.
    wait_stored(&web, "dark", restarted_at);
    assert_eq!(web.json("/api/cameras/dark/changes"), dark_changes, "no state change from a restart");

    // Dark has no `id` in the file (its id comes from its name). Renamed by hand, with its URL
    // unchanged, it is the same camera: it keeps the id `dark`, its history and its state, the
    // id is written into the file, and a restart keeps all of it.
    let text = file();
    assert!(!text.contains("id: dark"), "Dark starts without an id:\n{text}");
    assert_eq!(text.matches("name: Dark\n").count(), 1, "{text}");
    std::fs::write(&web.cameras_file, text.replace("name: Dark\n", "name: Cellar\n")).unwrap();
    let cellar = wait_until("the hand rename picked up", FILE_PICKUP, || {
        let cams = web.cameras();
        let named: Vec<(&str, &str)> =
            cams.iter().filter_map(|c| Some((c["id"].as_str()?, c["name"].as_str()?))).collect();
        match cams.iter().find(|c| c["name"] == "Cellar") {
            Some(c) => Ok(c.clone()),
            None => Err(format!("{named:?}")),
        }
    });
    assert_eq!(cellar["id"], "dark", "the renamed camera keeps its id: {cellar:#}");
    assert_eq!(verdict(&cellar), (Some("DOWN"), Some("refused")), "and its state: {cellar:#}");
    assert!(same_time(&cellar["since"], &dark["since"]), "DOWN since before the rename: {cellar:#}");
    assert!(web.camera("cellar").is_none(), "no new camera under the new name");
    assert_eq!(web.json("/api/cameras/dark/changes"), dark_changes, "the history follows the rename");
    assert!(file().contains("id: dark") && file().contains("name: Cellar"), "the id is written down:\n{}", file());
    let (code, table, _) = monitor(&["--url", &web.url(), "cameras"]);
    assert_eq!(code, 0);
    let row = table.lines().find(|l| l.trim_start().starts_with("Cellar ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" DOWN ") && row.contains("refused"), "{table}");
    web.restart();
    let restarted_at = now_epoch_seconds();
    let after = wait_until("Cellar's first heartbeat after the restart", within(1), || {
        let cam = web.camera("dark").ok_or("dark is not listed")?;
        let beat = cam["last_heartbeat_at"].as_str().is_some_and(|t| epoch_seconds(t) > restarted_at);
        if beat { Ok(cam) } else { Err(cam.to_string()) }
    });
    assert_eq!((after["name"].as_str(), verdict(&after)), (Some("Cellar"), (Some("DOWN"), Some("refused"))));
    wait_stored(&web, "dark", restarted_at);
    assert_eq!(web.json("/api/cameras/dark/changes"), dark_changes, "the history is still Cellar's after a restart");

    for answer in &error_answers {
        assert_no_secret("an editor's error answer", answer, &secrets);
    }
    let log = web.log_text();
    assert!(log.contains("camera list edit refused"), "the refusal is logged: {log}");
    assert!(log.contains("camera renamed by hand (same URL)"), "the kept id is logged: {log}");
    assert_no_secret("the service's log", &log, &secrets);
    drop(web);
}

/// An https camera whose certificate comes from a private CA no trust store knows (the test
/// MJPEG server over TLS): verified, it is DOWN with reason `tls` and a message naming
/// `verify_tls`; with `verify_tls: false` set through the editor it is UP and its picture
/// shows; clearing the override brings the refusal back, the list's own setting (the
/// settings form) accepts it again, and clearing that (`null`) refuses it again. (Timing is not what this test is
/// about: each verdict may take two heartbeats, the slot kept and the change's.)
#[test]
fn a_self_signed_camera_is_refused_until_the_editor_turns_verify_tls_off() {
    let cam = MjpegServer::start_tls();
    let url = cam.auth_url(mjpeg::USER, mjpeg::PASSWORD);
    assert!(url.starts_with("https://"), "{url}");
    let web = Web::start(
        &format!(
            "heartbeat_seconds: {}\ntimeout_seconds: {}\nretries: 0\nstreams:\n- id: lab\n  name: Lab\n  url: '{url}'\n",
            HEARTBEAT.as_secs(),
            TIMEOUT.as_secs()
        ),
        "info",
    );
    let service = &web;
    let verdict = |state: &'static str, reason: Option<&'static str>| {
        move || {
            let cam = service.camera("lab").ok_or("not listed")?;
            if cam["state"] == state && cam["reason"].as_str() == reason { Ok(cam) } else { Err(cam.to_string()) }
        }
    };

    let list = web.get("/api/cameras");
    assert!(!list.text().contains(mjpeg::PASSWORD), "{}", list.text());
    assert_eq!(list.json()["verify_tls"], true, "the list verifies by default");
    let refused = wait_until("DOWN/tls", within(2), verdict("DOWN", Some("tls")));
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("TLS certificate is not trusted") && message.contains("`verify_tls: false`"), "{message}");
    assert!(!refused.to_string().contains(mjpeg::PASSWORD), "{refused}");
    assert_eq!((&refused["verify_tls"], &refused["verify_tls_override"]), (&json!(true), &Value::Null));
    let bearer = format!("Bearer {}", web.token());
    let grab = || web.send("GET", "/api/cameras/lab/snapshot.jpg", &[("Authorization", &bearer)], None);
    let r = grab();
    assert_eq!(r.status, 502, "no picture from an untrusted camera: {}", r.text());
    assert!(r.text().contains("verify_tls") && !r.text().contains(mjpeg::PASSWORD), "{}", r.text());

    let put = |body: Value| {
        let r = web.send("PUT", "/api/cameras/lab", &[("Authorization", &bearer)], Some(&body));
        assert_eq!(r.status, 200, "PUT {body}: {}", r.text());
        r.json()
    };
    let changed = put(json!({"verify_tls": false}));
    assert_eq!((&changed["verify_tls"], &changed["verify_tls_override"]), (&json!(false), &json!(false)));
    let file = std::fs::read_to_string(&web.cameras_file).unwrap();
    assert!(file.contains("verify_tls: false") && file.contains(mjpeg::PASSWORD), "written down:\n{file}");
    let up = wait_until("UP once the certificate is accepted", within(2), verdict("UP", None));
    let (w, h) = MjpegServer::frame_size();
    assert_eq!(
        (up["codec"].as_str(), up["width"].as_u64(), up["height"].as_u64()),
        (Some("jpeg"), Some(w.into()), Some(h.into()))
    );
    let r = grab();
    assert_eq!(r.status, 200, "a picture with the certificate accepted: {}", r.text());
    assert!(r.body.starts_with(&[0xff, 0xd8]), "a JPEG");

    let cleared = put(json!({"verify_tls": null}));
    assert_eq!((&cleared["verify_tls"], &cleared["verify_tls_override"]), (&json!(true), &Value::Null));
    let file = std::fs::read_to_string(&web.cameras_file).unwrap();
    assert!(!file.contains("verify_tls"), "the override is gone:\n{file}");
    wait_until("DOWN/tls again", within(2), verdict("DOWN", Some("tls")));

    // The list's own setting, from the settings form, covers every camera without one.
    let r =
        web.send("PUT", "/api/cameras/settings", &[("Authorization", &bearer)], Some(&json!({"verify_tls": false})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["verify_tls"], false, "{}", r.text());
    let file = std::fs::read_to_string(&web.cameras_file).unwrap();
    assert!(file.lines().any(|l| l == "verify_tls: false"), "the list's setting is written down:\n{file}");
    let up = wait_until("UP under the list's setting", within(2), verdict("UP", None));
    assert_eq!((&up["verify_tls"], &up["verify_tls_override"]), (&json!(false), &Value::Null));

    // `null` clears the list's setting: the key leaves the file and the default (verify)
    // applies again, so the self-signed camera is refused once more.
    let r = web.send("PUT", "/api/cameras/settings", &[("Authorization", &bearer)], Some(&json!({"verify_tls": null})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["verify_tls"], true, "{}", r.text());
    let file = std::fs::read_to_string(&web.cameras_file).unwrap();
    assert!(!file.contains("verify_tls"), "the list's setting is gone:\n{file}");
    assert_eq!(web.json("/api/cameras")["verify_tls"], true);
    let refused = wait_until("DOWN/tls under the default again", within(2), verdict("DOWN", Some("tls")));
    assert_eq!((&refused["verify_tls"], &refused["verify_tls_override"]), (&json!(true), &Value::Null));
}

/// The longest span the history and the CSV export read back (`api::MAX_HOURS`).
const MAX_HOURS: u32 = 2 * 366 * 24;
const DAY_S: f64 = 86_400.0;

/// Every stored heartbeat of `id` as (time as stored, state), oldest first.
fn stored(web: &Web, id: &str) -> Vec<(String, String)> {
    let csv = web.get(&format!("/api/cameras/export.csv?camera={id}&hours={MAX_HOURS}"));
    assert_eq!(csv.status, 200, "{}", csv.text());
    csv.text()
        .lines()
        .skip(1)
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            (f[2].to_owned(), f[4].to_owned())
        })
        .collect()
}

/// The newest state changes of `id`, newest first, as (from, to, at).
fn changes(web: &Web, id: &str) -> Vec<(Value, Value, String)> {
    let page = web.json(&format!("/api/cameras/{id}/changes?limit=100"));
    page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].clone(), c["to"].clone(), c["at"].as_str().unwrap().to_owned()))
        .collect()
}

/// How far a time the service wrote is from the real time now, in days.
fn offset_days(ts: &str) -> f64 {
    ds_tests::faketime::offset_from_now(epoch_seconds(ts)) / DAY_S
}

/// Waits until the service's clock reads about `days` from the real time: a heartbeat of `id`
/// it took then is on the API.
fn wait_clock(web: &Web, id: &str, days: f64) -> Value {
    wait_until(&format!("a heartbeat of {id} {days:+} d from the real time"), within(1) + SLACK, || {
        let cam = web.camera(id).ok_or("not listed")?;
        match cam["last_heartbeat_at"].as_str() {
            Some(t) if (offset_days(t) - days).abs() < 0.01 => Ok(cam),
            _ => Err(cam.to_string()),
        }
    })
}

/// Waits until `id` is listed in `state`.
fn wait_state(web: &Web, id: &str, state: &str) -> Value {
    wait_until(&format!("{id} {state}"), within(1) + SLACK, || {
        let cam = web.camera(id).ok_or("not listed")?;
        if cam["state"] == state { Ok(cam) } else { Err(cam.to_string()) }
    })
}

/// Issue 20: the web service under a wall clock stepped a year forward and then back below
/// the real time (libfaketime, the monotonic clock untouched, as NTP leaves it), restarted
/// under each: no history is deleted or overwritten, state changes after the backward step
/// are recorded after the stored ones, uptime and bars stay readable, ages stay sane.
#[test]
fn a_stepped_wall_clock_keeps_the_camera_history() {
    let clock = ds_tests::faketime::WallClock::new();
    let cams = MjpegServer::start();
    let yaml = format!(
        "heartbeat_seconds: {}\ntimeout_seconds: {}\nretries: 0\nstreams:\n- id: cam\n  name: Cam\n  url: '{}'\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs(),
        cams.url("switchable")
    );
    let mut web = Web::start_with(&yaml, "info", &clock.env());
    wait_up(&web, "cam", within(1));
    // Two heartbeats before the step, so that "all but one" would show.
    let before = wait_until("two heartbeats stored", (HEARTBEAT + JITTER) * 2 + SLACK, || {
        let rows = stored(&web, "cam");
        if rows.len() >= 2 { Ok(rows) } else { Err(format!("{rows:?}")) }
    });
    let first_changes = changes(&web, "cam");
    assert_eq!(first_changes.len(), 1, "{first_changes:?}");

    // A year forward. As soon as the service's clock shows it (the history's end is the
    // clock then), before the next heartbeat: the last frame's age in /metrics runs on the
    // monotonic clock, it does not jump by a year.
    clock.step("+366d");
    wait_until("the service's clock a year ahead", Duration::from_secs(5), || {
        let h = web.json("/api/cameras/cam/history?hours=1&buckets=1");
        let to = h["to"].as_str().unwrap_or_default().to_owned();
        if offset_days(&to) > 365.0 { Ok(()) } else { Err(to) }
    });
    let metrics = web.get("/metrics").text();
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ds_camera_last_frame_age_seconds{camera=\"cam\",name=\"Cam\"} "))
        .unwrap_or_else(|| panic!("no frame age:\n{metrics}"))
        .parse()
        .unwrap();
    assert!((0.0..=(HEARTBEAT + SLACK).as_secs_f64() * 2.0).contains(&age), "frame age {age} s");
    wait_clock(&web, "cam", 366.0);

    // A restart under the stepped clock (it prunes at start-up), and its first heartbeat.
    web.restart();
    let restarted = wait_clock(&web, "cam", 366.0);
    assert_eq!(restarted["state"], "UP", "{restarted:#}");
    wait_until("a heartbeat of the restart stored", within(1) + SLACK, || {
        let rows = stored(&web, "cam");
        let after = rows.iter().filter(|(t, _)| offset_days(t) > 365.0).count();
        if after >= 2 { Ok(()) } else { Err(format!("{rows:?}")) }
    });
    let rows = stored(&web, "cam");
    assert!(rows.starts_with(&before), "the heartbeats before the step are kept: {rows:?}");
    assert_eq!(changes(&web, "cam").last(), first_changes.last(), "the first state change is kept");

    // Back to a day behind the real time; the camera goes DOWN, then UP again.
    clock.step("-1d");
    wait_clock(&web, "cam", -1.0);
    cams.set_mode(Mode::NotFound);
    wait_state(&web, "cam", "DOWN");
    cams.set_mode(Mode::Live);
    wait_state(&web, "cam", "UP");
    let recorded = wait_until("DOWN and UP recorded after the step back", within(1) + SLACK, || {
        let c = changes(&web, "cam");
        if c.len() >= 3 && c[0].1 == "UP" && c[1].1 == "DOWN" { Ok(c) } else { Err(format!("{c:?}")) }
    });
    // Recorded after everything stored before: the timeline never goes backwards.
    for (_, _, at) in &recorded[..2] {
        assert!(offset_days(at) > 366.0 - 0.01, "stored after the +366 d heartbeats: {recorded:?}");
    }
    assert!(recorded[0].2 > recorded[1].2, "{recorded:?}");

    // A restart under the clock a day behind: the remembered state is the newest one, with no
    // start ahead of the clock, and the restart records no state change.
    web.restart();
    let again = wait_clock(&web, "cam", -1.0);
    assert_eq!(again["state"], "UP", "{again:#}");
    let since = again["since"].as_str().expect("since");
    assert!(offset_days(since) < 0.01, "no state start ahead of the clock: {again:#}");
    let count = stored(&web, "cam").len();
    wait_until("a heartbeat of the second restart stored", within(1) + SLACK, || {
        let n = stored(&web, "cam").len();
        if n > count { Ok(()) } else { Err(n.to_string()) }
    });
    assert_eq!(changes(&web, "cam"), recorded, "no state change from the restart");

    // Nothing was overwritten: every heartbeat before the step is there, the times are all
    // different and in order.
    let rows = stored(&web, "cam");
    assert!(rows.starts_with(&before), "{rows:?}");
    let times: Vec<f64> = rows.iter().map(|(t, _)| epoch_seconds(t)).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
    assert!(rows.iter().any(|(_, s)| s == "DOWN"), "{rows:?}");

    // Uptime and the heartbeat bar are readable, and the history reaches back before the step.
    let cam = wait_until("uptime figures", Duration::from_secs(15), || {
        let cam = web.camera("cam").ok_or("not listed")?;
        let known = ["24h", "7d", "30d"].iter().all(|w| cam["uptime"][w].is_number());
        let bar = cam["bar"].as_array().is_some_and(|b| b.iter().any(|b| b["worst"] == "DOWN"));
        if known && bar { Ok(cam) } else { Err(cam.to_string()) }
    });
    eprintln!("after the steps: uptime {} bar {}", cam["uptime"], cam["bar"]);
    let history = web.json(&format!("/api/cameras/cam/history?hours={MAX_HOURS}&buckets=1000"));
    let early = history["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| offset_days(b["start"].as_str().unwrap()) < 1.0)
        .map(|b| b["probes"].as_i64().unwrap())
        .sum::<i64>();
    assert!(early >= before.len() as i64, "the heartbeats before the step in /history: {history:#}");
    let pid = web.service.pid();
    drop(web);
    ds_tests::faketime::WallClock::forget(pid);
}

/// Issue 20: whether the wall clock is synchronised is read from the machine's real
/// systemd-timedated (D-Bus-activated on the test's own system bus), shown in `/api/status` and
/// by `desktop-streamer-monitor status`, with and without the dashboard, and every heartbeat
/// recorded meanwhile carries it (the CSV export's last column). Here the kernel's clock is
/// what this machine's is (a test cannot set it without changing the machine); the
/// synchronised case is read from a stand-in daemon in `common/systemd/tests/timedate.rs`.
#[test]
fn the_clock_synchronisation_comes_from_timedated_and_marks_the_heartbeats() {
    let bus = ds_tests::system_bus::SystemBus::start().unwrap();
    let truth = bus.ntp_synchronized().unwrap();
    let (name, address) = bus.env();
    let cams = MjpegServer::start();
    let yaml = format!(
        "heartbeat_seconds: {}\ntimeout_seconds: {}\nretries: 0\nstreams:\n- id: cam\n  name: Cam\n  url: '{}'\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs(),
        cams.url("live")
    );
    let web = Web::start_with(&yaml, "info", &[(name.to_owned(), address.clone())]);
    let status = web.json("/api/status");
    // The first sample waits for the first answer: no poll interval to wait for.
    assert_eq!(status["clock"], json!({"synchronized": truth, "ntp_enabled": null}), "{status:#}");
    wait_up(&web, "cam", within(1));
    let rows = wait_until("a heartbeat stored", HEARTBEAT + JITTER + SLACK, || {
        let csv = web.get(&format!("/api/cameras/export.csv?camera=cam&hours={MAX_HOURS}"));
        let rows: Vec<String> = csv.text().lines().map(str::to_owned).collect();
        if rows.len() >= 2 { Ok(rows) } else { Err(csv.text()) }
    });
    assert!(rows[0].ends_with(",clock_synchronized"), "{}", rows[0]);
    for row in &rows[1..] {
        assert!(row.ends_with(&format!(",{truth}")), "{row}");
    }

    let said = if truth { "clock synchronised" } else { "clock not synchronised" };
    let (code, out, err) = monitor(&["--url", &web.url(), "status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(said), "{out}");
    // With the dashboard down the CLI asks timedated itself.
    let nowhere = format!("http://127.0.0.1:{REFUSED_PORT}");
    let env = [(name, address.as_str())];
    let (_, out, err) =
        ds_tests::bins::run_monitor_with(&["--url", &nowhere, "--streamer-url", &nowhere, "status"], &env);
    assert!(out.contains(said), "{out}{err}");
}

/// Sends `GET path` with `headers` and closes the connection without waiting for the answer,
/// as a client that gives up does.
fn cancelled_get(port: u16, path: &str, headers: &[(&str, &str)]) {
    drop(pending_get(STORM_CLIENT, port, path, headers));
}

/// Where the storm's requests come from: a client of its own, so that the service's cap on
/// connections per client (which the storm may reach while the service is still closing the
/// connections it cancelled) is the storm's and not the test's own requests' (from 127.0.0.1).
const STORM_CLIENT: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 9);
/// Another client of the storm: each client may have one grab running at a time.
const OTHER_STORM_CLIENT: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 10);

/// Sends `GET path` with `headers` from `from`; the connection, for the caller to drop
/// (cancel) when it likes.
fn pending_get(from: std::net::Ipv4Addr, port: u16, path: &str, headers: &[(&str, &str)]) -> std::net::TcpStream {
    use std::io::Write as _;
    let mut stream = ds_tests::flood::connect_from(from, port).expect("connect to the service");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    stream
}

/// `snapshot.jpg` under a storm of requests that their clients cancel. Anonymous requests are
/// answered from the heartbeats' thumbnails and never reach a camera. Authenticated ones grab
/// from the camera, one grab per camera whoever asks, one per client, at most two at once over
/// all cameras (a third camera is told to come back, and so is a client that has a grab
/// running), and a grab runs to its end when its request goes away, holding its client's place,
/// so the requests after it join it rather than open another session. Afterwards no
/// session to any camera is left open and the service has no more threads than before.
#[test]
fn a_storm_of_cancelled_snapshot_requests_opens_one_grab_per_camera_and_leaves_nothing_behind() {
    const STORM: usize = 60;
    let sim = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), 2, StartAt::GopCache);
    // Cameras that accept and never answer: a grab from one holds its place for its whole
    // timeout. Watched once a day, so their connections are the grabs' alone.
    let (silent_a, silent_b) = (TcpPeer::start(Behaviour::Silent), TcpPeer::start(Behaviour::Silent));
    let daily = "  heartbeat_seconds: 86400\n";
    let list = yaml_list(
        &format!("heartbeat_seconds: {}\ntimeout_seconds: {}\n", HEARTBEAT.as_secs(), TIMEOUT.as_secs()),
        &[
            ("Sim 0", &sim.url(0), ""),
            ("Sim 1", &sim.url(1), ""),
            ("Silent a", &silent_a.url("rtsp", "a"), daily),
            ("Silent b", &silent_b.url("rtsp", "b"), daily),
        ],
    );
    let web = Web::start(&list, "info");
    let pid = web.service.pid();
    let grabs = || {
        let seen = sim.requests();
        seen.iter().filter(|r| r.method == "DESCRIBE" && r.user_agent.as_deref().is_some_and(gstreamer_agent)).count()
    };
    wait_up(&web, "sim-0", within(1));
    wait_up(&web, "sim-1", within(1));
    // A heartbeat may go without its picture when the decoding budget is spent (a loaded
    // machine): the next one brings it.
    wait_until("both thumbnails", within(2), || {
        let missing: Vec<_> = ["sim-0", "sim-1"]
            .into_iter()
            .filter(|id| web.get(&format!("/api/cameras/{id}/thumbnail.jpg")).status != 200)
            .collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("{missing:?}")) }
    });
    let bearer = format!("Bearer {}", web.token());
    let auth = [("Authorization", bearer.as_str())];
    // One grab first, so that what GStreamer keeps once loaded is in the baseline.
    let first = web.send("GET", "/api/cameras/sim-0/snapshot.jpg", &auth, None);
    assert_eq!((first.status, first.header("x-picture-source")), (200, Some("grab")), "{}", first.text());
    let threads_before = procfs::threads(pid).expect("the service's threads");

    // Anonymous: every request answered from a thumbnail, none reaches a camera.
    let before = (grabs(), silent_a.accepted() + silent_b.accepted());
    for i in 0..STORM {
        let id = ["sim-0", "sim-1", "silent-a", "silent-b"][i % 4];
        cancelled_get(web.port(), &format!("/api/cameras/{id}/snapshot.jpg"), &[]);
    }
    let answered = web.get("/api/cameras/sim-1/snapshot.jpg");
    assert_eq!((answered.status, answered.header("x-picture-source")), (200, Some("heartbeat")), "{}", answered.text());
    assert_eq!((grabs(), silent_a.accepted() + silent_b.accepted()), before, "anonymous requests reached a camera");

    // Authenticated: a request for each silent camera starts its grab, and is cancelled once
    // the grab reached the camera (a request cancelled sooner may never reach the handler).
    // The two grabs take both places; the storm of cancelled requests after them joins them,
    // one session each however many ask; a third camera is refused with when to come back.
    let started: Vec<_> = [("silent-a", &silent_a, STORM_CLIENT), ("silent-b", &silent_b, OTHER_STORM_CLIENT)]
        .into_iter()
        .map(|(id, camera, from)| {
            let request = pending_get(from, web.port(), &format!("/api/cameras/{id}/snapshot.jpg"), &auth);
            wait_until(&format!("the grab at {id}"), Duration::from_secs(10), || match camera.accepted() {
                1 => Ok(()),
                n => Err(format!("{n} sessions")),
            });
            request
        })
        .collect();
    drop(started);
    for _ in 0..STORM / 2 {
        cancelled_get(web.port(), "/api/cameras/silent-a/snapshot.jpg", &auth);
        cancelled_get(web.port(), "/api/cameras/silent-b/snapshot.jpg", &auth);
    }
    assert_eq!((silent_a.accepted(), silent_b.accepted()), (1, 1), "cancelled requests started grabs again");
    let grabs_before = grabs();
    // The storm's client has its grab running (its request long gone): another camera is
    // refused to it, whether or not a place is free.
    let sim_1_for_the_storm_client = || {
        http::request_from(
            STORM_CLIENT,
            web.port(),
            "GET",
            "/api/cameras/sim-1/snapshot.jpg",
            &auth,
            None,
            http::Read::ToEnd,
        )
        .expect("an answer")
    };
    let own = sim_1_for_the_storm_client();
    assert_eq!((own.status, own.header("retry-after")), (429, Some("2")), "{}", own.text());
    let message = own.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("the most one client may at once") && message.contains("thumbnail.jpg"), "{message}");
    let busy = web.send("GET", "/api/cameras/sim-1/snapshot.jpg", &auth, None);
    assert_eq!((busy.status, busy.header("retry-after")), (503, Some("2")), "{}", busy.text());
    let message = busy.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("as many pictures as may be grabbed at once (2)") && message.contains("thumbnail.jpg"),
        "{message}"
    );
    for _ in 0..STORM / 2 {
        cancelled_get(web.port(), "/api/cameras/silent-a/snapshot.jpg", &auth);
    }
    // The grabs end at their timeout; a request for their camera then has their answer.
    let timed_out = web.send("GET", "/api/cameras/silent-a/snapshot.jpg", &auth, None);
    assert_eq!(timed_out.status, 504, "{}", timed_out.text());
    assert_eq!((silent_a.accepted(), silent_b.accepted()), (1, 1), "cancelled requests started grabs again");
    assert_eq!(grabs(), grabs_before, "the refused request reached its camera");
    // The places are free again.
    let later = sim_1_for_the_storm_client();
    assert_eq!((later.status, later.header("x-picture-source")), (200, Some("grab")), "{}", later.text());
    assert_eq!(grabs(), grabs_before + 1);

    // Nothing left behind: no connection to a camera outside the probes, no extra threads.
    wait_until("no connection left to the simulated cameras", Duration::from_secs(15), || {
        match sim.open_connections() {
            0 => Ok(()),
            n => Err(format!("{n} open")),
        }
    });
    wait_until("the service's threads back to where they were", Duration::from_secs(30), || {
        let now = procfs::threads(pid).unwrap_or(usize::MAX);
        if now <= threads_before { Ok(()) } else { Err(format!("{now} threads, {threads_before} before the storm")) }
    });
}

/// GStreamer's `rtspsrc` (the grabs) names itself so; the probes do not.
fn gstreamer_agent(agent: &str) -> bool {
    agent.starts_with("GStreamer")
}

/// Every shape of secret a camera URL carries: (name, URL, the secret parts that must never
/// show). The first four parse and are watched; the last three do not parse (a password with
/// an unencoded `#`, `/` or `?`) and are left out of the running list, their problem shown.
fn secret_shapes() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let at = format!("127.0.0.1:{REFUSED_PORT}");
    vec![
        ("userinfo", format!("rtsp://admin:Ui-pa55@{at}/live"), vec!["Ui-pa55"]),
        ("snap pwd", format!("http://{at}/snap.cgi?usr=admin&pwd=Qp-pa55"), vec!["Qp-pa55"]),
        (
            "query names",
            format!("http://{at}/img.jpg?Password=Qn-pw1&API_KEY=Qn-key2&access_token=Qn-tok3&sig=Qn-sig4&channel=1"),
            vec!["Qn-pw1", "Qn-key2", "Qn-tok3", "Qn-sig4"],
        ),
        ("both", format!("http://admin:Bo-pa%2355@{at}/mjpg?auth=Bo-auth"), vec!["Bo-pa", "Bo-auth"]),
        ("hash", format!("rtsp://admin:Hh-pa#55-hh@{at}/live"), vec!["Hh-pa", "55-hh"]),
        ("slash", format!("rtsp://admin:Sl-pa/55-sl@{at}/live"), vec!["Sl-pa", "55-sl"]),
        ("question", format!("rtsp://admin:Qm-pa?55-qm@{at}/live"), vec!["Qm-pa", "55-qm"]),
    ]
}

#[test]
fn every_secret_bearing_url_shape_stays_out_of_every_answer_and_log_and_a_broken_url_does_not_stop_the_service() {
    // And a camera that answers (404), so the messages of a probe and of a grab that reached
    // it (souphttpsrc names the URL it asked in its error) are checked too.
    let answering = MjpegServer::start();
    let mut shapes = secret_shapes();
    shapes.push((
        "answering",
        answering.url("missing").replace("http://", "http://admin:An-pa55@") + "?pwd=An-qp55&channel=2",
        vec!["An-pa55", "An-qp55"],
    ));
    let secrets: Vec<&str> = shapes.iter().flat_map(|(_, _, s)| s.iter().copied()).collect();
    let cameras: Vec<(&str, &str, &str)> = shapes.iter().map(|(name, url, _)| (*name, url.as_str(), "")).collect();
    let header = format!(
        "heartbeat_seconds: {}\ntimezone: Asia/Kolkata\ntimeout_seconds: {}\nretries: {RETRIES}\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs()
    );
    // Debug: the probes' own messages are logged too.
    let web = Web::start(&yaml_list(&header, &cameras), "debug");
    let watched = ["userinfo", "snap-pwd", "query-names", "both", "answering"];

    // The service runs, watches the cameras whose URLs parse, and names the others' problem.
    for id in watched {
        wait_until(&format!("{id} DOWN"), within(RETRIES + 1), || {
            let cam = web.camera(id).ok_or_else(|| format!("{id} is not listed"))?;
            if cam["state"] == "DOWN" { Ok(()) } else { Err(cam.to_string()) }
        });
    }
    let listing = web.json("/api/cameras");
    let ids: Vec<&str> = listing["cameras"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, watched, "the cameras whose URL parses, and only those: {listing:#}");
    let problems: Vec<&str> =
        listing["file_problem"]["messages"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    for (i, m) in problems.iter().enumerate() {
        assert!(m.contains(&format!("streams[{}].url", i + 4)), "{m}");
        assert!(m.contains("the URL does not parse") && m.contains("`#` as %23"), "{m}");
    }
    let masked: Vec<&str> = listing["cameras"].as_array().unwrap().iter().filter_map(|c| c["url"].as_str()).collect();
    assert_eq!(
        masked,
        [
            format!("rtsp://admin:***@127.0.0.1:{REFUSED_PORT}/live"),
            format!("http://127.0.0.1:{REFUSED_PORT}/snap.cgi?usr=admin&pwd=***"),
            format!(
                "http://127.0.0.1:{REFUSED_PORT}/img.jpg?Password=***&API_KEY=***&access_token=***&sig=***&channel=1"
            ),
            format!("http://admin:***@127.0.0.1:{REFUSED_PORT}/mjpg?auth=***"),
            answering.url("missing").replace("http://", "http://admin:***@") + "?pwd=***&channel=2",
        ]
    );

    // Every read endpoint, the CLIs, the live events, the logs.
    let mut answers = vec![
        ("GET /api/cameras".to_owned(), listing.to_string()),
        ("GET /api/streampulse/status".to_owned(), web.get("/api/streampulse/status").text()),
        ("GET /metrics".to_owned(), web.get("/metrics").text()),
        ("the CSV export".to_owned(), web.get("/api/cameras/export.csv").text()),
        ("GET /api/cameras/events".to_owned(), read_events(web.port(), "/api/cameras/events", 2, HEARTBEAT * 2)),
    ];
    for id in watched {
        for path in [
            format!("/api/cameras/{id}"),
            format!("/api/cameras/{id}/changes"),
            format!("/api/cameras/{id}/history"),
            format!("/api/cameras/{id}/thumbnail.jpg"),
        ] {
            answers.push((path.clone(), web.get(&path).text()));
        }
    }
    let base = web.url();
    for args in [&["cameras"][..], &["--json", "cameras"], &["status"]] {
        let (_, out, err) = monitor(&[&["--url", base.as_str()][..], args].concat());
        answers.push((format!("desktop-streamer-monitor {args:?}"), out + &err));
    }
    let check = std::process::Command::new(ds_tests::bins::bin("desktop-streamer-web"))
        .arg("--config")
        .arg(&web.config)
        .arg("check-config")
        .output()
        .unwrap();
    let check_text = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check_text.contains("streams[4].url"), "check-config names the broken camera: {check_text}");
    answers.push(("desktop-streamer-web check-config".to_owned(), check_text));
    let pulse: Value = serde_json::from_str(&answers[1].1).unwrap();
    assert_eq!(pulse.as_object().unwrap().len(), watched.len(), "{pulse:#}");
    // A picture grabbed now (authenticated) fails with a message naming the camera's URL; an
    // anonymous one has no heartbeat picture to show. A broken URL's camera is not there.
    let token = web.token();
    let bearer = format!("Bearer {token}");
    for id in watched.iter().chain(&["hash", "slash", "question"]) {
        let path = format!("/api/cameras/{id}/snapshot.jpg");
        let grabbed = web.send("GET", &path, &[("Authorization", &bearer)], None);
        let expected = if watched.contains(id) { [502, 504] } else { [404, 404] };
        assert!(expected.contains(&grabbed.status), "{path}: {} {}", grabbed.status, grabbed.text());
        let names_url = grabbed.text().contains("***");
        assert_eq!(names_url, watched.contains(id), "the grab's error names the URL, masked: {}", grabbed.text());
        answers.push((format!("{path} (grabbed)"), grabbed.text()));
        answers.push((format!("{path} (anonymous)"), web.get(&path).text()));
    }
    // The real watchdog reads the cameras with the same token and alerts each camera down to a
    // webhook, with the dashboard's message: its alert bodies and the alert history the
    // dashboard shows (`/api/alerts`). Its log file is where the dashboard reads the logs.
    let hooks = Receiver::start(&[200]);
    let token_file = web._dir.path().join("watchdog-token");
    std::fs::write(&token_file, &token).unwrap();
    let watchdog_config = web._dir.path().join("watchdog-config.json");
    std::fs::write(
        &watchdog_config,
        json!({"bus": "session", "units": [], "check_interval": 1, "camera_grace_seconds": 1, "alert_cooldown": 0,
            "max_alerts": 100, "auto_recovery": {"resource_monitoring": false}, "web_url": web.url(),
            "streamer_url": format!("http://127.0.0.1:{REFUSED_PORT}"), "web_token_file": token_file,
            "state_dir": web._dir.path().join("watchdog"),
            "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}})
        .to_string(),
    )
    .unwrap();
    let nowhere = format!("unix:path={}", web._dir.path().join("no-bus").display());
    let logs = web.logs.to_str().unwrap().to_owned();
    let watchdog = ServiceProcess::start(
        "desktop-streamer-watchdog",
        &["--config".into(), watchdog_config.into()],
        &[("DBUS_SESSION_BUS_ADDRESS", &nowhere), ("DESKTOP_STREAMER_LOG_DIR", &logs), ("RUST_LOG", "debug")],
    );
    let listed = web.cameras();
    let alerts = wait_until("an alert for each camera down", within(RETRIES + 1) + SLACK * 4, || {
        let bodies: Vec<Value> = hooks.requests().iter().map(|r| r.json()).collect();
        let down = bodies.iter().filter(|a| a["title"].as_str().is_some_and(|t| t.ends_with(" down"))).count();
        if down >= watched.len() { Ok(bodies) } else { Err(format!("{down} camera alerts: {bodies:#?}")) }
    });
    for cam in &listed {
        let name = cam["name"].as_str().unwrap();
        let message =
            cam["message"].as_str().filter(|m| !m.is_empty()).unwrap_or_else(|| panic!("no message: {cam:#}"));
        let alert = alerts
            .iter()
            .find(|a| a["title"] == format!("camera {name} down"))
            .unwrap_or_else(|| panic!("no alert for {name}: {alerts:#?}"));
        assert!(alert["details"].as_str().unwrap().contains(message), "the camera's message {message:?}: {alert:#}");
    }
    for request in hooks.requests() {
        answers.push(("a watchdog alert's body".to_owned(), String::from_utf8_lossy(&request.body).into_owned()));
    }
    let history = wait_until("the alerts in the dashboard's history", SLACK * 2, || {
        let history = web.json("/api/alerts");
        let titles = history["entries"].as_array().map_or(0, |e| {
            e.iter().filter(|e| e["alert"]["title"].as_str().is_some_and(|t| t.ends_with(" down"))).count()
        });
        if titles >= watched.len() { Ok(history) } else { Err(history.to_string()) }
    });
    answers.push(("GET /api/alerts".to_owned(), history.to_string()));
    drop(watchdog);
    // The logs over HTTP: the last lines, a search for a camera, and the live stream's start.
    let recent = web.json("/api/logs?lines=5000");
    assert!(recent["lines"].as_array().is_some_and(|l| l.len() > 100), "{recent:#}");
    answers.push(("GET /api/logs".to_owned(), recent.to_string()));
    for q in ["userinfo", "snap", "127.0.0.1", "streams"] {
        let found = web.json(&format!("/api/logs?lines=5000&q={q}"));
        assert!(found["lines"].as_array().is_some_and(|l| !l.is_empty()), "q={q}: {found:#}");
        answers.push((format!("GET /api/logs?q={q}"), found.to_string()));
    }
    answers.push((
        "GET /api/logs/stream".to_owned(),
        read_events(web.port(), "/api/logs/stream?lines=5000", 100, HEARTBEAT * 2),
    ));
    for (place, text) in &answers {
        assert_no_secret(place, text, &secrets);
    }
    let log = web.log_text();
    assert!(log.contains("camera list refused") && log.contains("streams[5].url"), "{log}");
    assert_no_secret("the service's log", &log, &secrets);
}

#[test]
fn a_masked_password_stays_with_its_camera_and_names_like_other_types_read_back() {
    let real = MjpegServer::start();
    // Another host as far as the camera list goes: a server that also accepts the password.
    let elsewhere = MjpegServer::start();
    let query_secret = "Qs-pa55";
    let gate_url = real.auth_url(mjpeg::USER, mjpeg::PASSWORD);
    let snap_url = format!("{}?usr=admin&pwd={query_secret}", real.url("live"));
    // Flow style: the editor cannot edit it in place, its first write is the whole-file writer's.
    let original = format!(
        "{{heartbeat_seconds: {}, timeout_seconds: {}, retries: {RETRIES}, streams: [{{name: Gate, url: '{gate_url}'}}, {{name: Snap, url: '{snap_url}'}}]}}\n",
        HEARTBEAT.as_secs(),
        TIMEOUT.as_secs()
    );
    let mut web = Web::start(&original, "info");
    let bearer = format!("Bearer {}", web.token());
    let auth = [("Authorization", bearer.as_str())];
    let cameras_file = web.cameras_file.clone();
    let file = || std::fs::read_to_string(&cameras_file).unwrap();
    wait_up(&web, "gate", within(1));

    // 1. `***` towards another port (another camera, or the editor's own server): refused.
    let edited_at = now_epoch_seconds();
    for (id, url) in [
        ("gate", format!("http://{}:***@127.0.0.1:{}/auth", mjpeg::USER, elsewhere.port)),
        ("snap", format!("http://127.0.0.1:{}/live?usr=admin&pwd=***", elsewhere.port)),
        ("gate", format!("https://{}:***@127.0.0.1:{}/auth", mjpeg::USER, real.port)),
        ("gate", format!("http://someone-else:***@127.0.0.1:{}/auth", real.port)),
    ] {
        let r = web.send("PUT", &format!("/api/cameras/{id}"), &auth, Some(&json!({"url": url})));
        assert_eq!(r.status, 422, "{url}: {}", r.text());
        let m = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(m.contains("scheme, host, port and user") && m.contains("type the camera's password"), "{m}");
    }
    // The same camera: the stored secrets are kept.
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"url": web.camera("gate").unwrap()["url"]})));
    assert_eq!(r.status, 200, "{}", r.text());
    let masked_snap = web.camera("snap").unwrap()["url"].as_str().unwrap().to_owned();
    assert!(masked_snap.ends_with("pwd=***"), "{masked_snap}");
    let r = web.send("PUT", "/api/cameras/snap", &auth, Some(&json!({"url": masked_snap.replace("/live", "/frozen")})));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = file();
    assert!(text.contains(&gate_url), "{text}");
    assert!(text.contains(&format!("/frozen?usr=admin&pwd={query_secret}")), "{text}");
    // A probe after the refused edits went to the real camera, never elsewhere.
    wait_stored(&web, "gate", edited_at);
    wait_up(&web, "gate", within(1));
    assert_eq!(elsewhere.requests(), Vec::new(), "nothing was sent to the other server");

    // 2. Names that YAML reads as other types, through both writers, and a restart.
    let odd = ["0o17", "1e3", "true", "null", "~", "0x1F", ".inf", "-.inf", "0b101", "+1"];
    for (i, name) in odd.iter().enumerate() {
        let r = web.send(
            "POST",
            "/api/cameras",
            &auth,
            Some(&json!({"name": name, "url": format!("rtsp://127.0.0.1:{REFUSED_PORT}/cam{i}")})),
        );
        assert_eq!(r.status, 201, "{name}: {}", r.text());
        assert_eq!(r.json()["name"], *name);
    }
    let r = web.send("PUT", "/api/cameras/gate", &auth, Some(&json!({"name": "0o777"})));
    assert_eq!(r.status, 200, "a rename in place: {}", r.text());
    web.restart();
    let listing = web.json("/api/cameras");
    assert!(listing["file_problem"].is_null(), "the list loads at the next start: {listing:#}\n{}", file());
    let names: Vec<&str> = listing["cameras"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    let mut expected = vec!["0o777", "Snap"];
    expected.extend(odd);
    assert_eq!(names, expected, "{}", file());
    assert_no_secret("the service's log", &web.log_text(), &[mjpeg::PASSWORD, query_secret]);
}
