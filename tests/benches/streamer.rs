//! desktop-streamer benchmark; prints figures, asserts nothing.
//!
//! In one run, on the same two-monitor display with the same moving content:
//! 1. CPU seconds and peak RSS of desktop-streamer (the supervisor and its capture worker)
//!    against `gst-launch-1.0` running the identical pipeline (from `print-pipeline`) at
//!    1280x720, 15 fps, x264 ultrafast, 2000 kbps, for BENCH_SECONDS (default 60) each;
//! 2. recovery: capture worker killed → first new segment listed in the playlist;
//! 3. screen change → first finished (listed) segment showing it.
//!
//! Run: `cargo build --release --bins && cargo bench -p ds-tests --bench streamer`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ds_tests::hls;
use ds_tests::media::{close, pixel};
use ds_tests::procfs::{cpu_seconds, peak_rss_mb};
use ds_tests::streamer::{StreamerProcess, gst_launch_cost, signal_pid};
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

const REPEATS: usize = 5;

fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let x = DummyDisplay::start().expect("dummy Xorg");
    let display = x.display();
    let config = json!({"fps": 15, "width": 1280, "height": 720, "bitrate": 2000, "encoder": "x264enc",
        "keyframe_interval": 2, "segment_duration": 2});
    println!("desktop-streamer benchmark: {secs} s per run, 1280x720 15 fps x264enc 2000 kbit/s, moving content");

    // 1a. desktop-streamer.
    let animation = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&display, config.clone());
    std::thread::sleep(Duration::from_secs(secs));
    let worker = s.detailed()["worker_pid"].as_u64().expect("a running worker") as u32;
    let ds_cpu = cpu_seconds(s.pid(), true).unwrap() + cpu_seconds(worker, false).unwrap();
    let (parent_rss, worker_rss) = (peak_rss_mb(s.pid()).unwrap(), peak_rss_mb(worker).unwrap());
    let ds_rss = parent_rss + worker_rss;
    let description = s.print_pipeline(&display, "/tmp/ds-bench-gst/seg%05d.ts");
    drop(s);

    // 1b. The same pipeline under gst-launch-1.0.
    let gst = gst_launch_cost(&description, Path::new("/tmp/ds-bench-gst"), secs);
    let (gst_cpu, gst_rss) = (gst.cpu_seconds, gst.peak_rss_mb);
    drop(animation);

    println!("\n1. cost over {secs} s (same pipeline: {description})");
    println!(
        "   desktop-streamer: CPU {ds_cpu:.2} s ({:.1} % of one core), peak RSS {ds_rss:.1} MiB (supervisor {parent_rss:.1} + worker {worker_rss:.1})",
        ds_cpu / secs as f64 * 100.0
    );
    println!(
        "   gst-launch-1.0:   CPU {gst_cpu:.2} s ({:.1} % of one core), peak RSS {gst_rss:.1} MiB",
        gst_cpu / secs as f64 * 100.0
    );
    println!("   ratio: CPU {:.3} (target <= 1.05), RSS {:.3} (target <= 1.3)", ds_cpu / gst_cpu, ds_rss / gst_rss);

    // 2. Recovery from a killed capture worker.
    let animation = x.animate(SECOND_MONITOR).unwrap();
    let s = StreamerProcess::start(&display, config.clone());
    s.wait_for("streaming", Duration::from_secs(30), |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let mut recoveries = Vec::new();
    for _ in 0..REPEATS {
        std::thread::sleep(Duration::from_millis(2300));
        let before = last_sequence(s.hls_dir());
        let worker = s.detailed()["worker_pid"].as_u64().unwrap() as u32;
        let t0 = Instant::now();
        signal_pid(worker, "KILL");
        while last_sequence(s.hls_dir()) <= before {
            assert!(t0.elapsed() < Duration::from_secs(30), "no recovery");
            std::thread::sleep(Duration::from_millis(10));
        }
        recoveries.push(t0.elapsed().as_secs_f64());
    }
    drop(animation);
    println!("\n2. recovery, worker killed -> first new segment listed: {} (target <= 3.5 s)", figures(&recoveries));

    // 3. Screen change -> first listed segment showing it. The picture is still between changes.
    let colours = [0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0xff00ff, 0xffffff];
    let patch = x.paint(SECOND_MONITOR, 0x000000).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut latencies = Vec::new();
    for (i, colour) in colours.iter().take(REPEATS).enumerate() {
        // Spread the change over the segment's phase.
        std::thread::sleep(Duration::from_millis(2000 + 370 * i as u64));
        let seen = last_sequence(s.hls_dir());
        let t0 = Instant::now();
        patch.set_colour(*colour).unwrap();
        let mut checked = seen;
        'wait: loop {
            assert!(t0.elapsed() < Duration::from_secs(30), "change never appeared");
            let p = hls::read(s.hls_dir());
            for (k, seg) in p.segments.iter().enumerate() {
                let seq = p.media_sequence + k as u64;
                if seq <= checked {
                    continue;
                }
                checked = seq;
                let seen_colour = last_frame_centre(&s.hls_dir().join(&seg.name));
                if std::env::var_os("BENCH_DEBUG").is_some() {
                    eprintln!("  segment {seq} ends with {seen_colour:06x}, waiting for {colour:06x}");
                }
                if close(seen_colour, *colour, 40) {
                    latencies.push(t0.elapsed().as_secs_f64());
                    break 'wait;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    println!("3. screen change -> first listed segment showing it: {} (target <= 2.5 s)", figures(&latencies));
}

fn last_sequence(dir: &Path) -> u64 {
    let p = hls::read(dir);
    (p.media_sequence + p.segments.len() as u64).saturating_sub(1)
}

/// The centre colour of a segment's last frame. (Seeking near the end with `-sseof` finds no
/// keyframe in a 2 s segment, so decode it all, scaled down.)
fn last_frame_centre(segment: &Path) -> u32 {
    const W: u32 = 64;
    const H: u32 = 36;
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(segment)
        .args(["-vf", &format!("scale={W}:{H}"), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    let frame = (W * H * 3) as usize;
    match out.stdout.len() / frame {
        0 => 0,
        n => pixel(&out.stdout[(n - 1) * frame..n * frame], W, W / 2, H / 2),
    }
}

fn figures(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    let all: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
    format!("median {median:.2} s, max {:.2} s (runs: {})", s[s.len() - 1], all.join(", "))
}
