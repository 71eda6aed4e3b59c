//! WebRTC (WHEP) in a real browser: a real streamer on a real two-monitor Xorg, headless
//! Chromium (tests/browser/whep.mjs) posting its offer to `/whep/desktop` and reading the
//! decoded picture's colour; the test paints the second monitor when the page asks, so the
//! colour the page sees is the one on the kiosk's screen.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ds_tests::browser::run_script;
use ds_tests::streamer::StreamerProcess;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

/// How long the browser script may run before it is killed.
const SCRIPT_LIMIT: Duration = Duration::from_secs(240);
/// The colour of the second monitor when the page joins.
const FIRST_COLOUR: u32 = 0xd02020;
/// A viewer gone without DELETE is dropped at its DTLS close, or at the latest after str0m's
/// ICE timeout (no binding request for 15 s); this leaves room for a loaded machine.
const VANISHED_LIMIT: Duration = Duration::from_secs(45);
/// How long the viewers' RTCP figures may take to show in the health API (str0m reports them
/// once a second, the browser sends receiver reports about as often).
const STATS_LIMIT: Duration = Duration::from_secs(20);
/// The viewers allowed at once in this test: the third is refused.
const MAX_VIEWERS: u64 = 2;

/// Chromium negotiates WHEP and shows the second monitor's colour, then every change of it;
/// a second viewer plays too, a third is refused with 503; a wrong content type, garbage, an
/// offer without video and a huge body are clear 4xx and the first viewer keeps playing;
/// DELETE frees a slot, and so does a viewer that closed its connection without one; a viewer
/// that cannot reach the UDP port plays over ICE-TCP. The health API lists the viewers with
/// their state, bitrate and round-trip time, and `/metrics` has their series.
#[test]
fn chromium_plays_the_second_monitor_over_whep() {
    let x = DummyDisplay::start().expect("dummy Xorg");
    let patch = x.paint(SECOND_MONITOR, FIRST_COLOUR).expect("paint the second monitor");
    let s = StreamerProcess::start(
        &x.display(),
        json!({"max_webrtc_viewers": MAX_VIEWERS, "webrtc_udp_port": 0, "webrtc_tcp_port": 0, "webrtc_addresses": ["127.0.0.1"],
            // The page is about:blank, another origin: the stream is opened to every page.
            "cors_origins": ["*"]}),
    );
    s.wait_for("the first segment", Duration::from_secs(30), |h| h["playlist"]["segment_count"].as_u64() >= Some(1));
    let base = format!("http://127.0.0.1:{}", s.port);
    let run =
        run_script("whep.mjs", &[base.as_str(), &format!("{FIRST_COLOUR:06x}")], SCRIPT_LIMIT, |ask| match ask["ask"]
            .as_str()
        {
            Some("paint") => {
                let rgb = u32::from_str_radix(ask["rgb"].as_str().unwrap_or_default(), 16).expect("a colour");
                patch.set_colour(rgb).expect("repaint");
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                json!({"painted_at": now.as_millis() as u64})
            }
            // RTCP figures come once a second: the answer waits until both viewers have them.
            Some("health") => s.wait_for("both viewers' RTCP figures", STATS_LIMIT, has_figures)["webrtc"].clone(),
            _ => panic!("unexpected question from whep.mjs: {ask}"),
        });
    let result = run.result;
    eprintln!("browser checks ({:.1} s): {result:#}", run.elapsed.as_secs_f64());
    let checks = &result["checks"];
    for name in [
        "plays",
        "latency",
        "wrong_type_415",
        "garbage_400",
        "no_video_400",
        "huge_413",
        "second_viewer",
        "full_503",
        "health",
        "delete_frees",
        "tcp_only",
        "first_still_plays",
        "closed_without_delete",
        "page_errors",
    ] {
        assert_eq!(checks[name]["ok"], true, "{name}: {:#}\n{}\nstreamer log:\n{}", checks[name], run.stderr, s.logs());
    }
    let plays = &checks["plays"];
    assert_eq!(plays["status"], 201, "{plays:#}");
    assert_eq!(plays["type"], "application/sdp", "{plays:#}");
    assert!(plays["location"].as_str().is_some_and(|l| l.starts_with("/whep/desktop/")), "{plays:#}");
    assert_eq!((plays["width"].as_u64(), plays["height"].as_u64()), (Some(1280), Some(720)), "{plays:#}");

    let refused = |name: &str, status: u64, says: &str| {
        let c = &checks[name];
        assert_eq!(c["status"], status, "{name}: {c:#}");
        assert!(c["text"].as_str().is_some_and(|t| t.contains(says)), "{name} says {says:?}: {c:#}");
    };
    refused("wrong_type_415", 415, "Content-Type: application/sdp");
    refused("garbage_400", 400, "not SDP");
    refused("no_video_400", 400, "no video m-line");
    refused("huge_413", 413, "64 KiB");
    refused("full_503", 503, "max_webrtc_viewers");

    let delete = &checks["delete_frees"];
    assert_eq!((delete["deleted"].as_u64(), delete["deleted_again"].as_u64()), (Some(204), Some(404)), "{delete:#}");
    assert_eq!((delete["new_viewer"].as_u64(), delete["cleanup"].as_u64()), (Some(201), Some(204)), "{delete:#}");

    // Both viewers were playing when the health API was asked, with figures from RTCP.
    let webrtc = &checks["health"]["webrtc"];
    assert_eq!(webrtc["max_viewers"], MAX_VIEWERS, "{webrtc:#}");
    let viewers = webrtc["viewers"].as_array().expect("a list of viewers");
    assert_eq!(viewers.len(), 2, "{webrtc:#}");
    for v in viewers {
        assert_eq!(v["state"], "playing", "{v:#}");
        assert!(v["frames_sent"].as_u64() > Some(0), "{v:#}");
        assert!(v["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{v:#}");
    }
    assert!(has_figures(&checks["health"]), "{webrtc:#}");

    // The closed viewer's slot frees itself, with no DELETE. (One that falls silent without
    // closing is dropped after its ICE timeout: streamer/src/webrtc/mod.rs tests that.)
    let vanished =
        checks["closed_without_delete"]["location"].as_str().expect("its location").rsplit('/').next().unwrap();
    let ids = |h: &Value| -> Vec<String> {
        h["webrtc"]["viewers"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().filter_map(|v| v["id"].as_str().map(str::to_owned)).collect())
    };
    s.wait_for("the closed viewer to be dropped", VANISHED_LIMIT, |h| !ids(h).iter().any(|id| id == vanished));

    let metrics = s.get("/metrics").expect("metrics").text();
    assert!(metrics.contains("desktop_streamer_webrtc_max_viewers 2\n"), "{metrics}");

    let latency = &checks["latency"];
    eprintln!(
        "WebRTC latency, screen change to decoded picture: median {} ms, max {} ms ({})",
        latency["median_ms"], latency["max_ms"], latency["latencies_ms"]
    );
}

/// Whether the detailed health lists two viewers, each with its peer's address and bytes sent,
/// and one with a bitrate and a round-trip time from RTCP.
fn has_figures(health: &Value) -> bool {
    let viewers = health["webrtc"]["viewers"].as_array().map_or(&[][..], Vec::as_slice);
    viewers.len() == 2
        && viewers.iter().all(|v| v["peer"].is_string() && v["bytes_sent"].as_u64() > Some(0))
        && viewers.iter().any(|v| v["bitrate_kbps"].as_f64() > Some(0.0))
        && viewers.iter().any(|v| v["rtt_ms"].as_f64().is_some())
}
