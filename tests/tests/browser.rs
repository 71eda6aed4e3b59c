//! A real browser plays the stream: Debian's headless Chromium, driven by playwright-core
//! (tests/browser, installed from the npm registry by tests/run.sh), opens the HLS URL in a
//! <video> element and must see its playback time advance.

use std::process::Command;
use std::time::Duration;

use ds_tests::bins::workspace_root;
use ds_tests::streamer::StreamerProcess;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

#[test]
fn headless_chromium_plays_the_stream() {
    let x = DummyDisplay::start().expect("dummy Xorg");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&x.display(), json!({}));
    s.wait_for("three segments", Duration::from_secs(20), |h| h["playlist"]["segment_count"].as_u64() >= Some(3));
    let url = format!("http://127.0.0.1:{}/hls/desktop/playlist.m3u8", s.port);
    let out = Command::new("node")
        .arg(workspace_root().join("tests/browser/play.mjs"))
        .args([&url, "6"])
        .output()
        .expect("node runs (tests/deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value =
        stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
            panic!("no result from the browser: {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });
    assert_eq!(result["ok"], true, "the video's time advanced: {result}");
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(1280), Some(720)), "{result}");
}
