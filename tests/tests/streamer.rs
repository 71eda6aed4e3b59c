//! desktop-streamer end to end: a real two-monitor X server (Xorg's dummy driver), the real
//! binary with its capture workers, real GStreamer, and produced segments decoded by ffmpeg.
//! Each fault is injected for real and the playlist's RFC 8216 rules are checked across it.

use std::path::Path;
use std::time::{Duration, Instant};

use ds_tests::hls::{self, Viewer};
use ds_tests::media::{close, first_frame_rgb, pixel, segment_problem};
use ds_tests::streamer::{StreamerProcess, signal_pid};
use ds_tests::wait::{try_wait_until, try_wait_until_every, wait_until};
use ds_tests::xorg::{DummyDisplay, FIRST_MONITOR, SECOND_MONITOR};
use serde_json::{Value, json};

const RED: u32 = 0xff0000;
const BLUE: u32 = 0x0000ff;
/// How far a colour may drift through 4:2:0 H.264.
const TOLERANCE: u8 = 40;
const WAIT: Duration = Duration::from_secs(20);

fn state(h: &Value) -> &str {
    h["current_state"].as_str().unwrap_or("")
}

/// Where frames are sampled: off the centre, where the X pointer (drawn into the stream)
/// starts out.
const SAMPLE: (u32, u32) = (400, 200);

/// The colour of the newest listed segment's first frame at [`SAMPLE`].
fn newest_colour(dir: &Path) -> u32 {
    let p = hls::read(dir);
    let newest = &p.segments.last().expect("a listed segment").name;
    colour_of(dir, newest)
}

fn colour_of(dir: &Path, name: &str) -> u32 {
    pixel(&first_frame_rgb(&dir.join(name), 1280, 720), 1280, SAMPLE.0, SAMPLE.1)
}

/// Waits until a segment newer than `after` (a media sequence number) is listed and shows
/// `colour` (or, with `not`, anything but it).
fn wait_for_picture(s: &StreamerProcess, viewer: &mut Viewer, colour: u32, shows: bool) -> u64 {
    let what = format!("a segment {} {colour:06x}", if shows { "showing" } else { "not showing" });
    // Each look decodes a frame: every 250 ms is often enough for 2 s segments.
    let newest = || {
        let p = viewer.reload();
        let Some(seg) = p.segments.last() else { return Err("no segment listed".to_owned()) };
        let last = colour_of(s.hls_dir(), &seg.name);
        if close(last, colour, TOLERANCE) == shows {
            Ok(p.media_sequence + p.segments.len() as u64 - 1)
        } else {
            Err(format!("{} shows {last:06x}", seg.name))
        }
    };
    try_wait_until_every(&what, WAIT, Duration::from_millis(250), newest)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()))
}

fn display_with_colours() -> (DummyDisplay, ds_tests::xorg::Patch, ds_tests::xorg::Patch) {
    let x = DummyDisplay::start().expect("dummy Xorg with two monitors");
    let blue = x.paint(FIRST_MONITOR, BLUE).unwrap();
    let red = x.paint(SECOND_MONITOR, RED).unwrap();
    (x, blue, red)
}

#[test]
fn streams_the_second_monitor_and_serves_it_over_http() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({}));
    let h = s.wait_for("streaming with two segments", WAIT, |h| {
        state(h) == "streaming" && h["playlist"]["segment_count"].as_u64() >= Some(2)
    });
    assert_eq!(h["monitor"]["name"], "DUMMY1", "{h:#}");
    assert_eq!((h["monitor"]["x"].as_i64(), h["monitor"]["width"].as_u64()), (Some(1920), Some(1280)));
    assert_eq!(h["encoder"], "x264enc");
    assert!(h["encoder_choice"]["skipped"].as_array().unwrap().iter().any(|e| e["name"] == "vaapih264enc"), "{h:#}");
    assert!(
        close(newest_colour(s.hls_dir()), RED, TOLERANCE),
        "the stream shows the second monitor (red), not the first (blue)"
    );
    for seg in hls::read(s.hls_dir()).segments {
        assert_eq!(segment_problem(&s.hls_dir().join(&seg.name)), None, "{} plays on its own", seg.name);
        let d: f64 = seg.extinf.parse().unwrap();
        assert!((1.9..=2.1).contains(&d), "segments are cut at 2 s: {} is {d} s", seg.name);
    }

    // Measured, not configured: about 15 frames per second of output.
    let h = s.wait_for("a measured frame rate", WAIT, |h| h["fps"].as_f64().is_some_and(|f| f > 0.0));
    let fps = h["fps"].as_f64().unwrap();
    assert!((12.0..=18.0).contains(&fps), "fps {fps}");
    assert!(h["bitrate_kbps"].as_f64().unwrap() > 0.0);
    assert_eq!(h["stream_active"], true);

    let playlist = s.get("/hls/desktop/playlist.m3u8").unwrap();
    assert_eq!(playlist.status, 200);
    assert_eq!(playlist.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(playlist.header("cache-control"), Some("no-cache"));
    assert_eq!(playlist.header("access-control-allow-origin"), None, "no page of another origin may read it");
    let first = playlist.text().lines().find(|l| l.ends_with(".ts")).unwrap().to_owned();
    let segment = s.get(&format!("/hls/desktop/{first}")).unwrap();
    assert_eq!((segment.status, segment.header("content-type")), (200, Some("video/mp2t")));
    for bad in [
        "/hls/desktop/..%2Fconfig.json",
        "/hls/desktop/.playlist-state.json",
        "/hls/desktop/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    ] {
        assert_eq!(s.get(bad).unwrap().status, 404, "{bad}");
    }
    assert_eq!(s.get("/healthz").unwrap().status, 200);
    let status = s.get("/api/status").unwrap().json();
    assert_eq!(status["stream"]["playlist_exists"], true);
    assert_eq!(status["service"]["details"]["ActiveState"], "active");
    let metrics = s.get("/metrics").unwrap().text();
    assert!(metrics.contains("desktop_streamer_stream_active 1"), "{metrics}");
    assert!(metrics.contains("desktop_streamer_state{state=\"streaming\"} 1"), "{metrics}");
}

#[test]
fn a_switched_off_monitor_gets_the_slate_and_the_stream_returns_with_it() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({}));
    let mut viewer = Viewer::new(s.hls_dir());
    s.wait_for("streaming", WAIT, |h| state(h) == "streaming");
    wait_for_picture(&s, &mut viewer, RED, true);

    x.second_monitor_off().unwrap();
    let h = s.wait_for("the slate", WAIT, |h| state(h) == "slate");
    assert!(h["source_problem"].as_str().unwrap().contains("Display unavailable"), "{h:#}");
    let slate_seq = wait_for_picture(&s, &mut viewer, RED, false);
    let p = viewer.reload();
    let slate_first = p.segments.iter().position(|seg| !close(colour_of(s.hls_dir(), &seg.name), RED, TOLERANCE));
    assert!(
        slate_first.is_some_and(|i| p.segments[i].discontinuity),
        "the first slate segment is marked discontinuous: {p:?}"
    );
    assert_eq!(s.get("/healthz").unwrap().status, 200, "the slate keeps the stream alive");

    x.second_monitor_on().unwrap();
    let _red_again = x.paint(SECOND_MONITOR, RED).unwrap();
    s.wait_for("streaming again", WAIT, |h| state(h) == "streaming");
    let back = wait_for_picture(&s, &mut viewer, RED, true);
    assert!(back > slate_seq);
    let reasons: Vec<_> =
        s.detailed()["recent_restarts"].as_array().unwrap().iter().map(|r| r["reason"].clone()).collect();
    assert!(reasons.iter().all(|r| r == "monitor_changed"), "{reasons:?}");
    assert_eq!(s.detailed()["total_errors"], 0, "a monitor going away is not a fault");
}

#[test]
fn a_killed_x_server_gets_the_slate_and_capture_resumes_when_it_returns() {
    let (mut x, blue, red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({}));
    let mut viewer = Viewer::new(s.hls_dir());
    s.wait_for("streaming", WAIT, |h| state(h) == "streaming");
    wait_for_picture(&s, &mut viewer, RED, true);
    drop((blue, red));

    x.kill_server().unwrap();
    let h = s.wait_for("the slate", WAIT, |h| state(h) == "slate");
    assert!(h["source_problem"].as_str().unwrap().contains(&x.display()), "{h:#}");
    wait_for_picture(&s, &mut viewer, RED, false);
    assert_eq!(s.get("/healthz").unwrap().status, 200, "HTTP and the stream live on without X");

    x.restart_server().unwrap();
    let _red = x.paint(SECOND_MONITOR, RED).unwrap();
    s.wait_for("streaming again", WAIT, |h| state(h) == "streaming");
    wait_for_picture(&s, &mut viewer, RED, true);
    let h = s.detailed();
    assert_eq!(h["total_errors"], 0, "X going away and coming back is not a fault: {h:#}");
    assert!(h["recent_restarts"].as_array().unwrap().iter().any(|r| r["reason"] == "display_changed"), "{h:#}");
}

#[test]
fn a_named_encoder_that_does_not_exist_falls_back_and_says_so() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({"encoder": "nvh264enc"}));
    let h = s.wait_for("streaming", WAIT, |h| state(h) == "streaming");
    assert_eq!(h["encoder"], "x264enc");
    let skipped = h["encoder_choice"]["skipped"].as_array().unwrap();
    let nv = skipped.iter().find(|e| e["name"] == "nvh264enc").unwrap_or_else(|| panic!("{h:#}"));
    assert!(nv["message"].as_str().unwrap().contains("no GStreamer element named nvh264enc"), "{nv}");
}

#[test]
fn a_removed_output_directory_is_recreated_and_the_sequence_goes_on() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({}));
    let h = s.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let before = h["playlist"]["media_sequence"].as_u64().unwrap() + h["playlist"]["segment_count"].as_u64().unwrap();
    std::fs::remove_dir_all(s.hls_dir()).unwrap();
    s.wait_for("a playlist again", WAIT, |_| {
        s.hls_dir().join("playlist.m3u8").exists() && !hls::read(s.hls_dir()).segments.is_empty()
    });
    let p = hls::read(s.hls_dir());
    assert!(p.media_sequence >= before, "media sequence never goes back: {before} then {p:?}");
    assert!(p.segments[0].discontinuity, "the first segment after the fault is discontinuous");
}

#[test]
fn a_killed_streamer_is_replaced_by_a_new_process_that_continues_the_sequence() {
    let (x, _blue, _red) = display_with_colours();
    let dir = ds_tests::stream_dir();
    let hls_dir = dir.path().join("hls");
    let s = StreamerProcess::start_in(&x.display(), json!({}), &hls_dir, dir.path(), None);
    let mut viewer = Viewer::new(&hls_dir);
    s.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let worker = s.detailed()["worker_pid"].as_u64().unwrap() as u32;
    let before = viewer.reload();
    s.kill();
    // The orphaned worker notices its parent is gone (stdin closes) and stops.
    wait_until(&format!("worker {worker} to stop after its parent"), Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{worker}")).exists()
    });

    let s2 = StreamerProcess::start_in(&x.display(), json!({}), &hls_dir, dir.path(), None);
    s2.wait_for("a new segment", WAIT, |_| {
        let p = hls::read(&hls_dir);
        p.media_sequence + p.segments.len() as u64 > before.media_sequence + before.segments.len() as u64
    });
    let after = viewer.reload();
    let first_new = before.segments.len() - usize::try_from(after.media_sequence - before.media_sequence).unwrap_or(0);
    assert!(after.segments.get(first_new).is_some_and(|s| s.discontinuity), "{before:?}\n{after:?}");
}

#[test]
fn sigterm_stops_the_streamer_and_its_worker_within_five_seconds() {
    let (x, _blue, _red) = display_with_colours();
    let tmp = ds_tests::stream_dir();
    let dir = tmp.path().join("hls");
    let s = StreamerProcess::start_in(&x.display(), json!({}), &dir, tmp.path(), None);
    s.wait_for("streaming", WAIT, |h| state(h) == "streaming");
    let worker = s.detailed()["worker_pid"].as_u64().unwrap() as u32;
    let (status, took) = s.terminate(Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("still running after {took:?}"));
    assert!(status.success(), "{status:?}");
    assert!(!Path::new(&format!("/proc/{worker}")).exists(), "worker stopped with its parent");
    let text = std::fs::read_to_string(dir.join("playlist.m3u8")).unwrap();
    assert!(!text.contains("ENDLIST"), "a live stream that will come back has no ENDLIST");
}

#[test]
fn ffmpeg_keeps_playing_through_a_killed_capture_worker() {
    let (x, _blue, _animation) = (DummyDisplay::start().unwrap(), (), ());
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&x.display(), json!({}));
    s.wait_for("three segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(3));
    let url = format!("http://127.0.0.1:{}/hls/desktop/playlist.m3u8", s.port);
    // -progress reports how much ffmpeg has played: the fault comes once it is playing.
    let mut player = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-progress", "pipe:1", "-i", &url, "-t", "12", "-f", "null", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (played_tx, played) = std::sync::mpsc::channel();
    let progress = std::io::BufReader::new(player.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(progress).map_while(Result::ok) {
            if let Some(us) = line.strip_prefix("out_time_us=").and_then(|v| v.parse::<i64>().ok()) {
                let _ = played_tx.send(us);
            }
        }
    });
    wait_until("ffmpeg to play the stream", WAIT, || played.try_iter().any(|us| us > 0));
    let worker = s.detailed()["worker_pid"].as_u64().unwrap() as u32;
    signal_pid(worker, "KILL");
    s.wait_for("a restart after the fault", WAIT, |h| {
        h["restart_count"].as_u64() >= Some(1) && state(h) == "streaming"
    });
    let status =
        try_wait_until("ffmpeg to read 12 s of the stream", Duration::from_secs(40), || player.try_wait().unwrap())
            .unwrap_or_else(|e| panic!("ffmpeg stopped reading through the restart: {e}"));
    let mut err = String::new();
    std::io::Read::read_to_string(player.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "ffmpeg read 12 s of the stream across the restart: {err}");
    let h = s.detailed();
    assert_eq!(h["recent_restarts"][0]["reason"], "pipeline_error", "{h:#}");
}

#[test]
fn sighup_reloads_a_good_config_and_refuses_a_bad_one_keeping_the_old() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({"bitrate": 2000}));
    s.wait_for("streaming", WAIT, |h| state(h) == "streaming");

    std::fs::write(&s.config_path, "{ \"fps\": 0, \"output_dir\": \"relative\" }").unwrap();
    s.signal("HUP");
    wait_until("the refusal in the log", WAIT, || s.logs().contains("new configuration refused"));
    let logs = s.logs();
    assert!(logs.contains("fps = 0: must be 1..=120"), "the reason is logged:\n{logs}");
    assert_eq!(s.detailed()["restart_count"], 0, "a refused config changes nothing");
    assert_eq!(s.detailed()["config"]["fps"], 15);

    let good = json!({"bitrate": 1000, "fps": 10, "output_dir": s.hls_dir().display().to_string()});
    std::fs::write(&s.config_path, good.to_string()).unwrap();
    s.signal("HUP");
    let h = s.wait_for("a rebuild with the new config", WAIT, |h| {
        h["recent_restarts"][0]["reason"] == "config_reloaded" && state(h) == "streaming"
    });
    assert_eq!((h["config"]["fps"].as_u64(), h["config"]["bitrate_kbps"].as_u64()), (Some(10), Some(1000)));
    let measured = s.wait_for("the new frame rate", WAIT, |h| h["fps"].as_f64().is_some_and(|f| f < 12.0));
    assert!(measured["fps"].as_f64().unwrap() > 8.0, "about 10 fps now: {measured:#}");
}

#[test]
fn an_unchanging_picture_is_reported_frozen_and_a_moving_one_is_not() {
    let x = DummyDisplay::start().unwrap();
    let _still = x.paint(SECOND_MONITOR, RED).unwrap();
    let s = StreamerProcess::start(&x.display(), json!({"frozen_after_seconds": 3}));
    let h = s.wait_for("frozen content", WAIT, |h| h["frozen"] == true);
    assert_eq!(state(&h), "streaming", "frozen content is reported, the stream is not restarted");
    assert_eq!(h["health"], "degraded");
    assert_eq!(h["restart_count"], 0);

    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let h = s.wait_for("a moving picture", WAIT, |h| h["frozen"] == false);
    assert!(h["picture_unchanged_seconds"].as_f64().unwrap() < 3.0, "{h:#}");
}

#[test]
fn too_many_faults_in_the_error_window_end_the_process_for_systemd_to_restart() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({"max_errors": 2, "error_window": 60}));
    for n in 1..=2u64 {
        let h = s.wait_for("a running worker", WAIT, |h| state(h) == "streaming" && h["worker_pid"].is_u64());
        signal_pid(h["worker_pid"].as_u64().unwrap() as u32, "KILL");
        if n == 1 {
            s.wait_for("the first fault counted", WAIT, |h| h["total_errors"].as_u64() == Some(1));
        }
    }
    let (status, _) = s.terminate_when_exited(WAIT);
    let status = status.expect("the process ends by itself after max_errors faults");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn systemd_hears_ready_after_the_first_segment_watchdog_while_segments_flow_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    // systemd's side of the notify protocol is a datagram socket; this is that socket.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start_with_env(&x.display(), json!({}), &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut heard: Vec<(Instant, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    let pets = |heard: &[(Instant, String)]| heard.iter().filter(|(_, m)| m.contains("WATCHDOG=1")).count();
    // Listens until it has heard all that is checked below (the socket's read timeout paces it).
    wait_until("READY=1, a streaming STATUS and three watchdog pets", Duration::from_secs(30), || {
        if let Ok(n) = sock.recv(&mut buf) {
            heard.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
        heard.iter().any(|(_, m)| m.contains("READY=1"))
            && heard.iter().any(|(_, m)| m.starts_with("STATUS=streaming: DUMMY1"))
            && pets(&heard) >= 3
    });
    let first_segment = s.detailed()["playlist"]["segment_count"].as_u64().unwrap_or(0);
    assert!(first_segment >= 1);
    let ready = heard.iter().position(|(_, m)| m.contains("READY=1")).expect("READY=1 was sent");
    assert!(heard[..ready].iter().all(|(_, m)| !m.contains("WATCHDOG=1")), "no watchdog pet before the stream runs");
    assert!(pets(&heard) >= 3, "segments flow, so the watchdog is petted: {heard:?}");
    assert!(heard.iter().any(|(_, m)| m.starts_with("STATUS=streaming: DUMMY1")), "{heard:?}");

    let (status, _) = s.terminate(Duration::from_secs(5));
    assert!(status.is_some_and(|st| st.success()));
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    assert!(stopping, "STOPPING=1 on shutdown");
}

/// A small tmpfs of our own, so a test can fill a real filesystem (needs root, as CI has).
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size_mb: u32) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root (the test command runs as root in CI)");
        SmallFs { dir }
    }

    /// Fills the filesystem with one file until `percent` of it is in use, as df counts.
    fn fill_to(&self, percent: f64) {
        let filler = self.dir.path().join("filler");
        let _ = std::fs::remove_file(&filler);
        let out =
            std::process::Command::new("df").args(["--output=size,used", "-B1"]).arg(self.dir.path()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<f64> = text.lines().nth(1).unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
        let want = (nums[0] * percent / 100.0 - nums[1]).max(0.0) as usize;
        std::fs::write(&filler, vec![0u8; want]).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn disk_pressure_cleans_up_first_then_shrinks_the_window_never_below_three_target_durations() {
    let fs = SmallFs::mount(32);
    let (x, _blue, _red) = display_with_colours();
    let hls_dir = fs.dir.path().join("hls");
    let conf = tempfile::tempdir().unwrap();
    let config = json!({"live_streaming": {"max_segments": 6, "emergency_segments": 1,
        "cleanup_threshold_percent": 60, "emergency_cleanup_threshold_percent": 80}});
    let s = StreamerProcess::start_in(&x.display(), config, &hls_dir, conf.path(), None);
    let mut viewer = Viewer::new(&hls_dir);
    s.wait_for("a full window", Duration::from_secs(30), |h| h["playlist"]["segment_count"].as_u64() >= Some(6));
    assert!(s.detailed()["disk_pressure"].is_null());

    fs.fill_to(70.0);
    let h = s.wait_for("cleanup", WAIT, |h| h["disk_pressure"].as_str().is_some_and(|p| p.starts_with("cleanup")));
    assert_eq!(h["health"], "degraded", "{h:#}");
    s.wait_for("nothing kept outside the window", WAIT, |h| h["playlist"]["pending_deletions"] == 0);
    assert_eq!(viewer.reload().segments.len(), 6, "cleanup alone keeps the window");

    fs.fill_to(90.0);
    s.wait_for("emergency", WAIT, |h| h["disk_pressure"].as_str().is_some_and(|p| p.starts_with("emergency")));
    let p = s.wait_for("the window shrunk", WAIT, |h| h["playlist"]["segment_count"].as_u64() == Some(3));
    assert!(
        p["playlist"]["window_duration_secs"].as_f64().unwrap() >= 6.0 - 0.2,
        "never under 3 target durations: {p:#}"
    );
    viewer.reload();

    fs.fill_to(0.0);
    s.wait_for("pressure gone", WAIT, |h| h["disk_pressure"].is_null());
    s.wait_for("the window grows back", Duration::from_secs(30), |h| {
        h["playlist"]["segment_count"].as_u64() == Some(6)
    });
    viewer.reload();
    drop(s);
}

#[test]
fn a_monitor_that_changes_size_is_followed_and_one_named_in_the_config_is_captured() {
    let (x, _blue, _red) = display_with_colours();
    let s = StreamerProcess::start(&x.display(), json!({}));
    s.wait_for("streaming 1280x720", WAIT, |h| state(h) == "streaming" && h["monitor"]["width"] == 1280);
    x.xrandr(&["--addmode", "DUMMY1", "1920x1080"]).unwrap();
    x.xrandr(&["--output", "DUMMY1", "--mode", "1920x1080", "--right-of", "DUMMY0"]).unwrap();
    let h = s.wait_for("the new geometry", WAIT, |h| state(h) == "streaming" && h["monitor"]["width"] == 1920);
    assert_eq!(h["monitor"]["height"], 1080);
    assert_eq!(h["recent_restarts"][0]["reason"], "monitor_changed", "{h:#}");
    drop(s);

    let named = StreamerProcess::start(&x.display(), json!({"monitor": "DUMMY0"}));
    named
        .wait_for("streaming the named monitor", WAIT, |h| state(h) == "streaming" && h["monitor"]["name"] == "DUMMY0");
    named.wait_for("a segment", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(1));
    assert!(
        close(newest_colour(named.hls_dir()), BLUE, TOLERANCE),
        "monitor: DUMMY0 captures the first monitor (blue), saw {:06x}",
        newest_colour(named.hls_dir())
    );
}

/// Unix seconds of a civil UTC time (H. Hinnant's days-from-civil).
fn unix_seconds(year: i64, month: i64, day: i64, hms: [i64; 3]) -> f64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]) as f64
}

/// The streamer's wall clock as its HTTP answers carry it (the `Date` header), in Unix seconds.
/// Only for a forward step: hyper caches the header until the wall clock passes the next
/// second it expects, so after a step back it keeps the old time.
fn served_clock(s: &StreamerProcess) -> Option<f64> {
    let date = s.get("/healthz")?.header("date")?.to_owned();
    // IMF-fixdate: `Mon, 07 Dec 2026 05:09:06 GMT`.
    let parts: Vec<&str> = date.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else { return None };
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == month)? as i64 + 1;
    let hms: Vec<i64> = time.split(':').map(|v| v.parse().ok()).collect::<Option<_>>()?;
    Some(unix_seconds(year.parse().ok()?, month, day.parse().ok()?, [hms[0], hms[1], hms[2]]))
}

/// An RFC 3339 UTC time as the health report writes it (`2026-12-06T05:10:00.123Z`).
fn rfc3339_seconds(t: &str) -> Option<f64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    Some(unix_seconds(n(0..4)?, n(5..7)?, n(8..10)?, [n(11..13)?, n(14..16)?, n(17..19)?]))
}

fn is_off_by(t: f64, days: f64) -> bool {
    (ds_tests::faketime::offset_from_now(t) - days * 86_400.0).abs() < 60.0
}

/// Waits until the streamer's wall clock is `days` (> 0) off the real one (libfaketime rereads
/// its offset file within a second).
fn wait_for_step(s: &StreamerProcess, days: f64) {
    wait_until(&format!("the streamer's wall clock to be {days} d off"), Duration::from_secs(10), || {
        served_clock(s).is_some_and(|t| is_off_by(t, days))
    });
}

/// Waits until the streamer's wall clock is `days` off the real one, as the time of a requested
/// rebuild (SIGUSR1) in its restart history says.
fn wait_for_step_by_rebuilds(s: &StreamerProcess, days: f64) {
    wait_until(&format!("a rebuild stamped {days} d off"), Duration::from_secs(20), || {
        let count = s.detailed()["restart_count"].as_u64().unwrap_or(0);
        s.signal("USR1");
        let h = s.wait_for("the requested rebuild", WAIT, |h| h["restart_count"].as_u64() > Some(count));
        h["recent_restarts"][0]["at"].as_str().and_then(rfc3339_seconds).is_some_and(|t| is_off_by(t, days))
    });
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    names.sort();
    names
}

/// Issue 20: NTP steps the wall clock of a board without a real-time clock by a year, then an
/// operator steps it back a day. A player behind the window (holding a playlist whose first
/// segment has since left it) fetches every segment it lists within their RFC 8216 lifetime
/// without a 404; a restart under the stepped clock keeps the media sequence; after the step
/// back segments keep coming and old ones are still deleted (the disk does not fill).
#[test]
fn a_stepped_wall_clock_neither_expires_segments_early_nor_stops_their_deletion() {
    let (x, _blue, _red) = display_with_colours();
    let clock = ds_tests::faketime::WallClock::new();
    let env: Vec<(String, String)> = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = ds_tests::stream_dir();
    let hls_dir = dir.path().join("hls");
    // A 10 s window: a segment lives 2 s + 10 s after it left the playlist.
    let config = json!({"live_streaming": {"max_segments": 5}});
    let s = StreamerProcess::start_in_with_env(&x.display(), config.clone(), &hls_dir, dir.path(), &env);
    let sequence = |s: &StreamerProcess| s.detailed()["playlist"]["media_sequence"].as_u64().unwrap_or(0);
    s.wait_for("a segment to have left the window", Duration::from_secs(40), |h| {
        h["playlist"]["media_sequence"].as_u64() >= Some(1)
    });

    // The player loads the playlist, then the window slides past its first segment.
    let read_at = Instant::now();
    let held = hls::parse(&hls_dir, &s.get("/hls/desktop/playlist.m3u8").unwrap().text());
    s.wait_for("the player's first segment to leave the window", WAIT, |h| {
        h["playlist"]["media_sequence"].as_u64() > Some(held.media_sequence)
    });
    clock.step("+366d");
    wait_for_step(&s, 366.0);
    // A segment added after the step ran the deletions on the stepped clock.
    s.wait_for("a segment after the step", WAIT, |h| {
        h["playlist"]["media_sequence"].as_u64() > Some(held.media_sequence + 1)
    });
    for seg in &held.segments {
        let status = s.get(&format!("/hls/desktop/{}", seg.name)).map(|r| r.status);
        assert_eq!(status, Some(200), "{} listed in the playlist the player holds is gone after +366 d", seg.name);
    }
    // Within the lifetime of the player's first segment: it left at most 2 s after the read.
    assert!(read_at.elapsed() < Duration::from_secs(12), "too slow to prove anything: {:?}", read_at.elapsed());
    let pending_at_step = held.segments[0].name.clone();

    // A restart under the stepped clock: the sequence goes on, the stream serves.
    let before = sequence(&s);
    let (status, _) = s.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "clean exit: {status:?}");
    let s = StreamerProcess::start_in_with_env(&x.display(), config, &hls_dir, dir.path(), &env);
    let p = hls::parse(&hls_dir, &s.get("/hls/desktop/playlist.m3u8").unwrap().text());
    assert!(
        p.media_sequence >= before,
        "media sequence went back over the restart: {before} then {}",
        p.media_sequence
    );
    s.wait_for("new segments after the restart", WAIT, |h| h["playlist"]["media_sequence"].as_u64() > Some(before + 1));
    let listed = hls::parse(&hls_dir, &s.get("/hls/desktop/playlist.m3u8").unwrap().text());
    assert_eq!(s.get(&format!("/hls/desktop/{}", listed.segments[0].name)).map(|r| r.status), Some(200));

    // A step back a day: segments keep coming, and the old ones still go.
    clock.step("-1d");
    wait_for_step_by_rebuilds(&s, -1.0);
    let at_step = segment_files(&hls_dir);
    let sequence_at_step = sequence(&s);
    s.wait_for("segments after the step back", WAIT, |h| {
        h["playlist"]["media_sequence"].as_u64() > Some(sequence_at_step + 2)
    });
    // Every file there at the step has left the window by now or will within 10 s; each is
    // deleted within its lifetime (12 s) of leaving, not a day later.
    wait_until("every segment file from before the step back to be deleted", Duration::from_secs(40), || {
        let now = segment_files(&hls_dir);
        !now.contains(&pending_at_step) && at_step.iter().all(|n| !now.contains(n))
    });
    assert!(segment_files(&hls_dir).len() <= 5 + 8, "the disk grows: {:?}", segment_files(&hls_dir));
}
