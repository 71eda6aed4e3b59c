//! desktop-streamer-web benchmark; prints figures, asserts nothing.
//!
//! The release web service in front of a real systemd user manager (three units) and, when
//! its release binary exists, a real streamer on a real two-monitor Xorg:
//! 1. its resident memory (VmRSS) after start-up and 10 s idle;
//! 2. `wrk` (Debian package) against `/api/status` on 127.0.0.1, paced at 1000 requests/s
//!    (a Lua `delay()` per connection: 50 connections × one request per 50 ms) for
//!    BENCH_SECONDS (default 30): achieved requests/s, p50, p99, p99.9, errors (target p99
//!    ≤ 5 ms);
//! 3. the same unpaced for 10 s (what it can take), and the RSS after the load.
//!
//! Run: `cargo build --release -p desktop-streamer-web && cargo bench -p ds-tests --bench web`
//! (add `cargo build --release -p desktop-streamer` for the streamer).

use std::process::Command;
use std::time::Duration;

use ds_tests::kiosk::{Kiosk, UNITS};
use ds_tests::streamer::StreamerProcess;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

const RATE: u32 = 1000;
const CONNECTIONS: u32 = 50;
const THREADS: u32 = 2;
const IDLE: Duration = Duration::from_secs(10);

/// wrk's Lua hooks: pacing (each connection waits `delay` ms before each request) and a
/// machine-readable summary (microseconds).
fn script(delay_ms: u32) -> String {
    format!(
        r#"function delay() return {delay_ms} end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50=%d p90=%d p99=%d p999=%d max=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"#
    )
}

fn vm(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn wrk(url: &str, seconds: u64, paced: bool, dir: &std::path::Path) {
    let lua = dir.join(if paced { "paced.lua" } else { "unpaced.lua" });
    let delay = if paced { CONNECTIONS * 1000 / RATE } else { 0 };
    let mut text = script(delay);
    if !paced {
        text = text.replace(&format!("function delay() return {delay} end\n"), "");
    }
    std::fs::write(&lua, text).unwrap();
    let out = Command::new("wrk")
        .args([format!("-t{THREADS}"), format!("-c{CONNECTIONS}"), format!("-d{seconds}s"), "--latency".into()])
        .arg("-s")
        .arg(&lua)
        .arg(url)
        .output()
        .expect("wrk runs (tests/deps.sh installs the Debian package)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(result) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        println!("wrk gave no result:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        return;
    };
    let field = |k: &str| -> f64 {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let rps = field("requests") / (field("duration_us") / 1e6);
    let ms = |k: &str| field(k) / 1000.0;
    println!(
        "{}: {:.0} requests/s achieved over {seconds} s ({} connections, {} threads{}); latency p50 {:.2} ms, \
         p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; socket errors {}, non-2xx {}",
        if paced { "paced" } else { "unpaced" },
        rps,
        CONNECTIONS,
        THREADS,
        if paced { format!(", each connection one request per {delay} ms, target {RATE}/s") } else { String::new() },
        ms("p50"),
        ms("p90"),
        ms("p99"),
        ms("p999"),
        ms("max"),
        field("errors"),
        field("non2xx"),
    );
    if paced {
        println!("target p99 <= 5 ms: {}", if ms("p99") <= 5.0 { "met" } else { "NOT met" });
    }
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let web_bin = ds_tests::bins::bin("desktop-streamer-web");
    println!("web service: {}", web_bin.display());
    // A real streamer when its release binary was built; otherwise the status names it as
    // unreachable, which the figures say.
    let streamer_bin = web_bin.with_file_name("desktop-streamer");
    let x;
    let _moving;
    let streamer = if streamer_bin.exists() {
        x = DummyDisplay::start().expect("dummy Xorg");
        _moving = x.animate(SECOND_MONITOR).unwrap();
        let s = StreamerProcess::start(&x.display(), json!({}));
        s.wait_for("a segment", Duration::from_secs(30), |h| h["playlist"]["segment_count"].as_u64() >= Some(1));
        println!("streamer: {} (streaming while measured)", streamer_bin.display());
        Some(s)
    } else {
        println!(
            "streamer: none ({} not built; the status names it unreachable; build it with \
             `cargo build --release -p desktop-streamer` to include it)",
            streamer_bin.display()
        );
        None
    };
    let port = streamer.as_ref().map_or(9, |s| s.port);
    let kiosk = Kiosk::start(&UNITS, json!({"streamer_url": format!("http://127.0.0.1:{port}")}));
    let pid = kiosk.web.pid();
    let base = kiosk.url();
    let status = kiosk.web.get("/api/status").expect("the status answers");
    println!(
        "/api/status: HTTP {}, {} bytes, unreachable: {}",
        status.status,
        status.text().len(),
        status.json()["unreachable"]
    );

    println!("RSS after start-up: {:.1} MB", vm(pid, "VmRSS:"));
    std::thread::sleep(IDLE);
    let idle = vm(pid, "VmRSS:");
    println!(
        "RSS idle ({} s after start): {idle:.1} MB (target <= 30 MB: {})",
        IDLE.as_secs(),
        if idle <= 30.0 { "met" } else { "NOT met" }
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("{base}/api/status");
    wrk(&url, secs, true, dir.path());
    wrk(&url, 10, false, dir.path());
    println!("RSS after the load: {:.1} MB (peak VmHWM {:.1} MB)", vm(pid, "VmRSS:"), vm(pid, "VmHWM:"));
    drop(kiosk);
    drop(streamer);
}
