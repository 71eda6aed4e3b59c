//! The dashboard's live view, glass to glass; prints figures. (It asserts only that the worker
//! measured was not replaced mid-window, which would mix two processes' figures.)
//!
//! A two-monitor dummy Xorg whose second monitor is covered by one solid window that changes
//! colour at known moments; the real streamer and web service; headless Chromium opens the
//! dashboard with `?player=PATH` and reads the decoded picture (tests/browser/latency.mjs).
//! Latency = the moment the page's frame showing the new colour was to be displayed − the
//! moment the X server had the new colour, both on this machine's clock. Prints the median and
//! the maximum of CHANGES (default 8) changes per path, and the streamer's CPU over the run.
//!
//! Then, on moving content, what viewers cost: the streamer's CPU and resident memory
//! (supervisor and worker apart) over COST_SECONDS (default 30) each with HLS only, with 1 and
//! with 5 WebRTC viewers (headless Chromium decoding each, tests/browser/viewers.mjs), and
//! `gst-launch-1.0` running the same capture and encoder (`print-pipeline`) for reference.
//!
//! Paths: `webrtc` (WHEP), `hlsjs` (hls.js as the dashboard configures it), `native` (Chromium's
//! own HLS). Choose with LIVE_VIEW_PATHS=webrtc,hlsjs.
//!
//! Run: `cargo build --release --bins && cargo bench -p ds-tests --bench live_view`

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ds_tests::browser::run_script;
use ds_tests::kiosk::WebFiles;
use ds_tests::procfs::{cpu_seconds, rss_mb};
use ds_tests::service::ServiceProcess;
use ds_tests::streamer::{StreamerProcess, gst_launch_cost};
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

/// The whole script's bound.
const SCRIPT_LIMIT: Duration = Duration::from_secs(600);
/// Where the reference gst-launch-1.0 writes its segments.
const GST_DIR: &str = "/tmp/ds-bench-live-view-gst";

fn main() {
    let changes: usize = std::env::var("CHANGES").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let paths: Vec<String> = std::env::var("LIVE_VIEW_PATHS")
        .unwrap_or_else(|_| "webrtc,hlsjs,native".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let x = DummyDisplay::start().expect("dummy Xorg");
    let patch = x.paint(SECOND_MONITOR, 0x808080).expect("a window over the second monitor");
    let config = json!({"fps": 15, "width": 1280, "height": 720, "bitrate": 2000, "encoder": "x264enc",
        "keyframe_interval": 2, "segment_duration": 2,
        // Any free port: the default 8889 may be taken by another streamer on this machine.
        "webrtc_udp_port": 0, "webrtc_addresses": ["127.0.0.1"],
        // viewers.mjs's page is about:blank, another origin than the streamer.
        "cors_origins": ["*"]});
    let streamer = StreamerProcess::start(&x.display(), config);
    streamer.wait_for("a healthy stream", Duration::from_secs(30), |h| {
        h["playlist"]["segment_count"].as_u64() >= Some(3) && h["health"] == "healthy"
    });
    let dir = tempfile::tempdir().unwrap();
    let files = WebFiles::write(dir.path(), json!({"streamer_url": format!("http://127.0.0.1:{}", streamer.port)}));
    let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let web = ServiceProcess::start(
        "desktop-streamer-web",
        &["--config".into(), files.config.into(), "--listen".into(), "127.0.0.1:0".into()],
        &[("DBUS_SESSION_BUS_ADDRESS", &no_bus), ("DESKTOP_STREAMER_LOG_DIR", files.logs.to_str().unwrap())],
    );
    println!(
        "live view, glass to glass: 1280x720 15 fps x264enc 2000 kbit/s, 2 s segments; {changes} colour changes per path"
    );
    let spec = json!({"base": format!("http://127.0.0.1:{}", web.port), "paths": paths, "changes": changes});
    let worker = streamer.detailed()["worker_pid"].as_u64().expect("a running worker") as u32;
    let streamer_cpu = || cpu_seconds(streamer.pid(), true).unwrap_or(0.0) + cpu_seconds(worker, false).unwrap_or(0.0);
    let cpu_before = streamer_cpu();
    let started = Instant::now();
    let run = run_script("latency.mjs", &[spec.to_string()], SCRIPT_LIMIT, |ask| match ask["ask"].as_str() {
        Some("paint") => {
            let colour = ask["colour"].as_u64().expect("a colour") as u32;
            patch.set_colour(colour).expect("repaint");
            let at = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64() * 1000.0;
            json!({"at": at})
        }
        other => panic!("latency.mjs asked {other:?}"),
    });
    let cpu = streamer_cpu() - cpu_before;
    for path in &paths {
        let r = &run.result["paths"][path];
        let figures: Vec<f64> = r["latencies_ms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .map(|ms| ms / 1000.0)
            .collect();
        println!("{path:>8}: {}", summary(&figures));
        println!("          the page said: {}", r["player_state"].as_str().unwrap_or("-"));
        if let Some(e) = r["error"].as_str() {
            println!("          error: {e}");
        }
    }
    println!(
        "streamer (supervisor and worker) CPU over the {:.0} s of the run: {:.1} % of one core",
        started.elapsed().as_secs_f64(),
        cpu / started.elapsed().as_secs_f64() * 100.0
    );
    drop(patch);

    // What viewers cost, on moving content.
    let secs: u64 = std::env::var("COST_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let _animation = x.animate(SECOND_MONITOR).expect("moving content");
    streamer.wait_for("segments of moving content", Duration::from_secs(30), |h| {
        h["playlist"]["segment_count"].as_u64() >= Some(4)
    });
    println!("\nwhat viewers cost over {secs} s each, moving content:");
    let hls_only = Cost::measure(&streamer, secs);
    println!("  HLS only:           {hls_only}");
    let mut with_viewers = Vec::new();
    let base = format!("http://127.0.0.1:{}", streamer.port);
    let run = run_script("viewers.mjs", &[base.as_str(), "[1,5]"], SCRIPT_LIMIT, |ask| match ask["ask"].as_str() {
        Some("measure") => {
            let cost = Cost::measure(&streamer, secs);
            let n = ask["viewers"].as_u64().expect("a count");
            let viewers = streamer.detailed()["webrtc"]["viewers"].as_array().map_or(0, Vec::len);
            println!(
                "  {n} WebRTC viewer{}:   {cost}; CPU {:.2}x HLS only, the one encoder (worker) {:.2}x; {viewers} listed by the streamer",
                if n == 1 { " " } else { "s" },
                cost.cpu() / hls_only.cpu(),
                cost.worker_cpu / hls_only.worker_cpu,
            );
            with_viewers.push(cost);
            json!({})
        }
        other => panic!("viewers.mjs asked {other:?}"),
    });
    if run.result["ok"] != true {
        println!("  viewers: {}", run.result);
    } else {
        println!("  frames each viewer decoded while measured: {}", run.result["counts"]);
    }
    let description = streamer.print_pipeline(&x.display(), &format!("{GST_DIR}/seg%05d.ts"));
    drop(streamer);
    let gst = gst_launch_cost(&description, Path::new(GST_DIR), secs);
    let (gst_cpu, gst_rss) = (gst.cpu_seconds, gst.rss_mb);
    println!(
        "  gst-launch-1.0:     CPU {:.1} % of one core, RSS {gst_rss:.0} MiB; HLS only is {:.2}x its CPU, {:.2}x its RSS",
        gst_cpu / secs as f64 * 100.0,
        hls_only.cpu() / gst_cpu,
        hls_only.rss() / gst_rss,
    );
    println!("    (the same capture and encoder: {description})");
}

/// The streamer's CPU over a measured window and its resident memory at the end.
#[derive(Clone, Copy, Debug)]
struct Cost {
    secs: f64,
    supervisor_cpu: f64,
    worker_cpu: f64,
    supervisor_rss: f64,
    worker_rss: f64,
}

impl Cost {
    /// Measures `secs` seconds of the streamer (its supervisor and the worker running now).
    fn measure(streamer: &StreamerProcess, secs: u64) -> Cost {
        let worker = streamer.detailed()["worker_pid"].as_u64().expect("a running worker") as u32;
        let (s0, w0) = (cpu_seconds(streamer.pid(), false).unwrap_or(0.0), cpu_seconds(worker, false).unwrap_or(0.0));
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let (s1, w1) = (cpu_seconds(streamer.pid(), false).unwrap_or(0.0), cpu_seconds(worker, false).unwrap_or(0.0));
        let still = streamer.detailed()["worker_pid"].as_u64() == Some(u64::from(worker));
        assert!(still, "the worker was replaced while measured: the figures would mix two workers");
        Cost {
            secs: t0.elapsed().as_secs_f64(),
            supervisor_cpu: s1 - s0,
            worker_cpu: w1 - w0,
            supervisor_rss: rss_mb(streamer.pid()).unwrap_or(0.0),
            worker_rss: rss_mb(worker).unwrap_or(0.0),
        }
    }

    fn cpu(&self) -> f64 {
        self.supervisor_cpu + self.worker_cpu
    }

    fn rss(&self) -> f64 {
        self.supervisor_rss + self.worker_rss
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |cpu: f64| cpu / self.secs * 100.0;
        write!(
            f,
            "CPU {:.1} % of one core (supervisor {:.1} + worker {:.1}), RSS {:.0} MiB ({:.0} + {:.0})",
            pct(self.cpu()),
            pct(self.supervisor_cpu),
            pct(self.worker_cpu),
            self.rss(),
            self.supervisor_rss,
            self.worker_rss
        )
    }
}

fn summary(v: &[f64]) -> String {
    if v.is_empty() {
        return "no change seen".to_owned();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let all: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
    format!("median {:.2} s, max {:.2} s (each: {})", s[s.len() / 2], s[s.len() - 1], all.join(", "))
}
