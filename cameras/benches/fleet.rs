//! What the prober costs for a fleet: N simulated cameras (RTSP mounts of ds_tests::rtsp_sim,
//! spread over a few server processes on loopback) at a 15 s heartbeat, every probe proving
//! a frame (a keyframe and a later frame, as for any camera). Prints, for N = 10, 100 and
//! 1000, the heartbeats of the measured window, how many proved a frame, the failures by
//! reason, the latency to the first frame, the prober's CPU in percent of one core, and its
//! resident memory (VmRSS at the end, VmHWM over the fleet's run); then the same for 100
//! cameras served by GStreamer's RTSP server, as a check that the simulated cameras do not
//! make probing cheaper than a real server does. Last, it sets the figures beside the issue's
//! targets ([`TARGET_CAMERAS`] cameras at a 15 s heartbeat, every probe proving a frame, the
//! prober's CPU at most [`TARGET_CPU_PERCENT`] % of one core and its resident memory at most
//! [`TARGET_RSS_MB`] MB) with a pass or MISS mark each, and how CPU and memory grow from 10 to
//! 100 to 1000 cameras. Exits non-zero unless every probe proved a frame, every camera kept
//! its heartbeat (no gap between two of its heartbeats longer than the interval plus jitter
//! and a second of slack: a fleet too big for the concurrency limit shows as late
//! heartbeats, not as failed ones), and every target was met.
//!
//! Each fleet runs in a process of its own (this binary, started with `--fleet`), which
//! runs only the scheduler and its probes, so its CPU time and memory are the prober's and
//! the figures of one size do not inherit the heap of another. The servers are child
//! processes of that (this binary with `--rtsp-sim`, or Python for GStreamer) and are not
//! counted; their CPU is printed apart. GStreamer's server cannot serve the large fleets: it
//! encodes for every session, which two cores cannot do 67 times a second.
//!
//!     cargo bench -p ds-cameras --bench fleet
//!
//! BENCH_SECONDS=60 measures longer; BENCH_FLEETS=10,100 picks the sizes; BENCH_GSTREAMER=0
//! skips the GStreamer run; BENCH_VIDEO=1280x720@2000 serves a detailed picture at that size
//! and bit rate instead of the default small stream (320x240, a ball on black, about
//! 100 kbit/s), to see what bigger frames cost; BENCH_GOP=60 sets the frames from one
//! keyframe to the next (default 15, one second); BENCH_START=gop-cache makes the cameras
//! send a keyframe at once instead of starting where their live picture is (the default,
//! `live`: the prober waits up to a keyframe interval for the first picture, as with most
//! cameras); BENCH_MAX_CONCURRENT=128 sets `max_concurrent_probes` (default: the
//! configuration's default).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_cameras::scheduler::MAX_JITTER;
use ds_cameras::{Event, Heartbeat, NetworkProber, Scheduler, State};
use ds_config::cameras::{Camera, CamerasConfig};
use ds_tests::procfs;
use ds_tests::rtsp::RtspServer;
use ds_tests::rtsp_sim::{self, Args, ClipFile, ClipSpec, SimProcess, StartAt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const HEARTBEAT_S: u32 = 15;
/// Measured window after the warm-up (one heartbeat interval); BENCH_SECONDS overrides.
const DEFAULT_MEASURE_S: u64 = 30;
const FLEETS: [usize; 3] = [10, 100, 1000];
/// Mounts per server process: 1000 cameras take four.
const MOUNTS_PER_SERVER: usize = 250;
/// Cameras of the GStreamer-served comparison run; BENCH_GSTREAMER overrides (0: none).
const DEFAULT_GSTREAMER_CAMERAS: usize = 100;
/// Longest time between two heartbeats of a camera that is on time: the interval, the
/// scheduler's largest jitter, and a second of slack (a probe takes time too).
const ON_TIME_GAP: Duration =
    Duration::from_secs(HEARTBEAT_S as u64).saturating_add(MAX_JITTER).saturating_add(Duration::from_secs(1));
/// The flag that turns this binary into a server process.
const SIM_FLAG: &str = "--rtsp-sim";
/// The flag that turns this binary into one fleet's run: `--fleet N sim|gstreamer CLIP`.
const FLEET_FLAG: &str = "--fleet";
/// Largest failure messages shown per fleet (the rest are counted by reason).
const SHOWN_FAILURES: usize = 5;
/// The targets: this many cameras at a [`HEARTBEAT_S`] heartbeat, every probe
/// proving a frame, with the prober's CPU and resident memory (its peak, VmHWM) at most these.
const TARGET_CAMERAS: usize = 1000;
const TARGET_CPU_PERCENT: f64 = 15.0;
const TARGET_RSS_MB: f64 = 64.0;
/// How a fleet process hands its figures to the parent: a line starting with this, then
/// `key=value` pairs.
const FIGURES: &str = "FIGURES";

/// Who serves a fleet's cameras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServedBy {
    Sim,
    GStreamer,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == SIM_FLAG) {
        let served = Args::parse(args[at + 1..].iter().cloned()).and_then(|a| rtsp_sim::run(&a));
        if let Err(e) = served {
            eprintln!("rtsp-sim: {e}");
            std::process::exit(1);
        }
        return;
    }
    let measure = Duration::from_secs(env_or("BENCH_SECONDS", DEFAULT_MEASURE_S));
    if let Some(at) = args.iter().position(|a| a == FLEET_FLAG) {
        let (Some(n), Some(by), Some(clip)) = (args.get(at + 1), args.get(at + 2), args.get(at + 3)) else {
            panic!("usage: {FLEET_FLAG} N sim|gstreamer CLIP");
        };
        let n: usize = n.parse().expect("a number of cameras");
        let by = if by == "gstreamer" { ServedBy::GStreamer } else { ServedBy::Sim };
        let met = fleet_process(n, by, Path::new(clip), measure);
        std::process::exit(if met { 0 } else { 1 });
    }

    let sizes: Vec<usize> = std::env::var("BENCH_FLEETS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| FLEETS.to_vec());
    let gstreamer = env_or("BENCH_GSTREAMER", DEFAULT_GSTREAMER_CAMERAS as u64) as usize;
    // Small fleets first; the GStreamer comparison next to the simulated fleet of its size.
    let mut runs: Vec<(usize, ServedBy)> = sizes.iter().map(|&n| (n, ServedBy::Sim)).collect();
    if gstreamer > 0 {
        let at = runs.iter().position(|&(n, _)| n > gstreamer).unwrap_or(runs.len());
        runs.insert(at, (gstreamer, ServedBy::GStreamer));
    }

    // The clip is encoded once, here, before anything is measured; the servers load it.
    let mut spec = match std::env::var("BENCH_VIDEO") {
        Ok(v) => ClipSpec::parse(&v).unwrap_or_else(|e| panic!("BENCH_VIDEO: {e}")),
        Err(_) => ClipSpec::SMALL,
    };
    spec.keyframe_interval = env_or("BENCH_GOP", u64::from(spec.keyframe_interval)) as u32;
    let clip_file = ClipFile::encode(&spec).expect("encode the clip");
    let clip = clip_file.load().expect("load the clip");
    let (key_bytes, other_bytes) = clip.frame_sizes();
    println!(
        "simulated cameras: H.264 {}x{} at {} fps, a keyframe every {} frames, {} frames looping, {:.0} kbit/s \
         (keyframes {key_bytes} bytes, other frames {other_bytes} bytes), sessions start {:?}; heartbeat \
         {HEARTBEAT_S} s, warm-up {HEARTBEAT_S} s, measured {} s; {} cores",
        spec.width,
        spec.height,
        rtsp_sim::clip::FPS,
        spec.keyframe_interval,
        clip.frames().len(),
        clip.kbps(),
        start_at(),
        measure.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "cameras  served by      heartbeats  proved    up  failed  latency p50/p99 ms  max gap s  prober cpu%  \
         rss MB  peak rss MB  servers cpu%  load avg"
    );
    let exe = std::env::current_exe().expect("path of this benchmark");
    let mut failed_runs = 0;
    let mut measured: Vec<Figures> = Vec::new();
    for (n, by) in runs {
        let by = if by == ServedBy::GStreamer { "gstreamer" } else { "sim" };
        let mut child = Command::new(&exe)
            .arg(FLEET_FLAG)
            .arg(n.to_string())
            .arg(by)
            .arg(clip_file.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run a fleet");
        // Its lines as they come; its figures kept for the targets.
        let stdout = child.stdout.take().expect("piped stdout");
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            match Figures::parse(&line) {
                Some(f) => measured.push(f),
                None => println!("{line}"),
            }
        }
        if !child.wait().expect("wait for a fleet").success() {
            failed_runs += 1;
        }
    }
    let met = print_targets(&measured);
    if failed_runs > 0 {
        println!(
            "NOT EVERY PROBE PROVED A FRAME ON TIME in {failed_runs} runs: the figures do not meet the benchmark's condition"
        );
    }
    if failed_runs > 0 || !met {
        std::process::exit(1);
    }
}

/// What one fleet measured, as the parent needs it for the targets.
#[derive(Clone, Debug, PartialEq)]
struct Figures {
    cameras: usize,
    by: String,
    beats: usize,
    proved: usize,
    failed: usize,
    max_gap_s: f64,
    cpu_percent: f64,
    rss_mb: f64,
    peak_rss_mb: f64,
}

impl Figures {
    fn line(&self) -> String {
        format!(
            "{FIGURES} cameras={} by={} beats={} proved={} failed={} max_gap_s={:.3} cpu_percent={:.3} rss_mb={:.3} \
             peak_rss_mb={:.3}",
            self.cameras,
            self.by,
            self.beats,
            self.proved,
            self.failed,
            self.max_gap_s,
            self.cpu_percent,
            self.rss_mb,
            self.peak_rss_mb
        )
    }

    fn parse(line: &str) -> Option<Figures> {
        let rest = line.strip_prefix(FIGURES)?;
        let pairs: HashMap<&str, &str> = rest.split_whitespace().filter_map(|p| p.split_once('=')).collect();
        let num = |k: &str| pairs.get(k)?.parse::<f64>().ok();
        let int = |k: &str| pairs.get(k)?.parse::<usize>().ok();
        Some(Figures {
            cameras: int("cameras")?,
            by: (*pairs.get("by")?).to_owned(),
            beats: int("beats")?,
            proved: int("proved")?,
            failed: int("failed")?,
            max_gap_s: num("max_gap_s")?,
            cpu_percent: num("cpu_percent")?,
            rss_mb: num("rss_mb")?,
            peak_rss_mb: num("peak_rss_mb")?,
        })
    }
}

fn mark(met: bool) -> &'static str {
    if met { "pass" } else { "MISS" }
}

/// Prints each target of the issue beside the figure measured for it, and the growth from
/// fleet to fleet; `true` when every target was met.
fn print_targets(measured: &[Figures]) -> bool {
    let sim: Vec<&Figures> = measured.iter().filter(|f| f.by == "sim").collect();
    println!();
    println!("targets (issue 6): {TARGET_CAMERAS} simulated cameras at a {HEARTBEAT_S} s heartbeat");
    println!("  {:<44}  {:<34}  {:<12}  mark", "target", "measured", "limit");
    let Some(big) = sim.iter().find(|f| f.cameras == TARGET_CAMERAS) else {
        println!("  no run of {TARGET_CAMERAS} cameras (BENCH_FLEETS): the targets were not measured   MISS");
        return false;
    };
    let rows = [
        (
            "every probe proves a frame",
            format!("{} of {} heartbeats, {} failed", big.proved, big.beats, big.failed),
            "all".to_owned(),
            big.failed == 0 && big.beats > 0 && big.proved == big.beats,
        ),
        (
            "every camera on time (longest gap)",
            format!("{:.1} s", big.max_gap_s),
            format!("≤ {:.1} s", ON_TIME_GAP.as_secs_f64()),
            big.max_gap_s <= ON_TIME_GAP.as_secs_f64(),
        ),
        (
            "prober CPU, % of one core",
            format!("{:.1} %", big.cpu_percent),
            format!("≤ {TARGET_CPU_PERCENT:.0} %"),
            big.cpu_percent <= TARGET_CPU_PERCENT,
        ),
        (
            "prober resident memory (peak VmHWM)",
            format!("{:.1} MB (VmRSS at the end {:.1} MB)", big.peak_rss_mb, big.rss_mb),
            format!("≤ {TARGET_RSS_MB:.0} MB"),
            big.peak_rss_mb <= TARGET_RSS_MB,
        ),
    ];
    let mut met = true;
    for (what, figure, limit, ok) in rows {
        met &= ok;
        println!("  {what:<44}  {figure:<34}  {limit:<12}  {}", mark(ok));
    }
    println!(
        "growth with the fleet (simulated cameras; no limit of its own, the targets above are for {TARGET_CAMERAS}):"
    );
    println!(
        "  {:>7}  {:>11}  {:>15}  {:>7}  {:>12}  {:>10}",
        "cameras", "prober cpu%", "cpu% per 100", "rss MB", "peak rss MB", "peak MB per 100 more"
    );
    let base = sim.first().copied();
    for f in &sim {
        let per_100 = 100.0 * f.cpu_percent / f.cameras as f64;
        let mb_per_100 = match base {
            Some(b) if f.cameras > b.cameras => {
                format!("{:.2}", 100.0 * (f.peak_rss_mb - b.peak_rss_mb) / (f.cameras - b.cameras) as f64)
            }
            _ => "-".to_owned(),
        };
        println!(
            "  {:>7}  {:>11.1}  {:>15.2}  {:>7.1}  {:>12.1}  {:>20}",
            f.cameras, f.cpu_percent, per_100, f.rss_mb, f.peak_rss_mb, mb_per_100
        );
    }
    if !met {
        println!("SOME TARGETS WERE MISSED (marked MISS above)");
    }
    met
}

/// Runs one fleet in this process and prints its row; `true` if every probe proved a frame
/// and every heartbeat was on time.
fn fleet_process(n: usize, by: ServedBy, clip: &Path, measure: Duration) -> bool {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (row, served_by) = match by {
        ServedBy::Sim => {
            let exe = std::env::current_exe().expect("path of this benchmark");
            let servers: Vec<SimProcess> = (0..n.div_ceil(MOUNTS_PER_SERVER))
                .map(|s| {
                    let mounts = MOUNTS_PER_SERVER.min(n - s * MOUNTS_PER_SERVER);
                    let args = Args { mounts, port: 0, clip: Some(PathBuf::from(clip)), start: start_at() };
                    SimProcess::start(&exe, &[SIM_FLAG], &args)
                })
                .collect();
            let urls = (0..n).map(|i| servers[i / MOUNTS_PER_SERVER].url(i % MOUNTS_PER_SERVER)).collect();
            let pids: Vec<u32> = servers.iter().map(SimProcess::pid).collect();
            (run_fleet(&runtime, urls, &pids, measure), format!("{} rtsp-sim", servers.len()))
        }
        ServedBy::GStreamer => {
            let server = RtspServer::start_on(0, 0, n);
            let urls = (0..n).map(|i| server.url(&format!("bench/{i}"))).collect();
            (run_fleet(&runtime, urls, &[server.pid()], measure), "1 GStreamer".to_owned())
        }
    };
    println!(
        "{n:>7}  {served_by:<11}  {:>10}  {:>6}  {:>4}  {:>6}  {:>18}  {:>9.1}  {:>11.1}  {:>6.1}  {:>11.1}  {:>12.1}  \
         {}",
        row.beats,
        row.proved,
        row.up,
        row.failed(),
        format!("{}/{}", row.latency_ms(0.5), row.latency_ms(0.99)),
        row.max_gap_s,
        row.cpu_percent,
        row.rss_mb,
        row.peak_rss_mb,
        row.servers_cpu_percent,
        row.load
    );
    let figures = Figures {
        cameras: n,
        by: if by == ServedBy::GStreamer { "gstreamer" } else { "sim" }.to_owned(),
        beats: row.beats,
        proved: row.proved,
        failed: row.failed(),
        max_gap_s: row.max_gap_s,
        cpu_percent: row.cpu_percent,
        rss_mb: row.rss_mb,
        peak_rss_mb: row.peak_rss_mb,
    };
    println!("{}", figures.line());
    if row.failed() > 0 {
        println!("         failures by state/reason: {:?}", row.reasons);
        for m in &row.messages {
            println!("           {m}");
        }
    }
    let on_time = row.max_gap_s <= ON_TIME_GAP.as_secs_f64();
    if !on_time {
        println!(
            "         LATE: a camera went {:.1} s between heartbeats (on time: at most {:.0} s, the interval plus \
             jitter and slack)",
            row.max_gap_s,
            ON_TIME_GAP.as_secs_f64()
        );
    }
    row.failed() == 0 && row.beats > 0 && on_time
}

/// One fleet's figures.
#[derive(Default)]
struct Row {
    beats: usize,
    /// Heartbeats with a frame (UP, or DEGRADED: video arrived but something is wrong).
    proved: usize,
    up: usize,
    reasons: BTreeMap<String, usize>,
    messages: Vec<String>,
    latencies_ms: Vec<u32>,
    /// When each camera's latest heartbeat started (warm-up included).
    last_at: HashMap<String, jiff::Timestamp>,
    /// The longest time between two heartbeats of one camera in the measured window.
    max_gap_s: f64,
    cpu_percent: f64,
    rss_mb: f64,
    peak_rss_mb: f64,
    servers_cpu_percent: f64,
    load: String,
}

impl Row {
    fn failed(&self) -> usize {
        self.beats - self.up
    }

    /// Notes when a heartbeat started, and the gap since the camera's previous one.
    fn note_time(&mut self, h: &Heartbeat) {
        if let Some(previous) = self.last_at.insert(h.camera_id.clone(), h.at) {
            self.max_gap_s = self.max_gap_s.max(h.at.duration_since(previous).as_secs_f64());
        }
    }

    fn count(&mut self, h: &Heartbeat) {
        self.note_time(h);
        self.beats += 1;
        if h.last_frame_at.is_some() {
            self.proved += 1;
        }
        if h.state == State::Up {
            self.up += 1;
            self.latencies_ms.extend(h.latency_ms);
            return;
        }
        let reason = h.reason.map_or("none", |r| r.as_str());
        *self.reasons.entry(format!("{}/{reason}", h.state.as_str())).or_default() += 1;
        if self.messages.len() < SHOWN_FAILURES {
            self.messages.push(format!("{}: {}", h.camera_id, h.message.as_deref().unwrap_or("")));
        }
    }

    fn latency_ms(&self, quantile: f64) -> String {
        if self.latencies_ms.is_empty() {
            return "-".into();
        }
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() - 1) as f64 * quantile).round() as usize;
        sorted[at].to_string()
    }
}

/// Probes the cameras at `urls` for one interval, then measures for `measure`.
fn run_fleet(runtime: &tokio::runtime::Runtime, urls: Vec<String>, server_pids: &[u32], measure: Duration) -> Row {
    let streams = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| Camera { name: format!("cam{i}"), url, ..Camera::default() })
        .collect();
    let defaults = CamerasConfig::default();
    let config = CamerasConfig {
        heartbeat_seconds: HEARTBEAT_S,
        frozen_seconds: 0,
        max_concurrent_probes: env_or("BENCH_MAX_CONCURRENT", u64::from(defaults.max_concurrent_probes)) as u32,
        streams,
        ..defaults
    };
    let me = std::process::id();
    runtime.block_on(async {
        let (_list, rx) = watch::channel(Arc::new(config));
        let (tx, mut events) = mpsc::channel(100_000);
        let stop = CancellationToken::new();
        let scheduler = Scheduler::spawn(NetworkProber::new().unwrap(), rx, tx, stop.clone());
        // One interval: every camera probes once (its first slot), then the steady state.
        let warm_up = tokio::time::Instant::now() + Duration::from_secs(u64::from(HEARTBEAT_S));
        let mut row = Row::default();
        while let Ok(Some(e)) = tokio::time::timeout_at(warm_up, events.recv()).await {
            if let Event::Heartbeat(h) = e {
                row.note_time(&h.heartbeat);
            }
        }
        row.max_gap_s = 0.0;
        let cpu0 = procfs::cpu_seconds(me, false).unwrap_or(0.0);
        let servers0: f64 = server_pids.iter().filter_map(|p| procfs::cpu_seconds(*p, false)).sum();
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + measure;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
            if let Event::Heartbeat(h) = e {
                row.count(&h.heartbeat);
            }
        }
        let elapsed = t0.elapsed().as_secs_f64();
        row.cpu_percent = 100.0 * (procfs::cpu_seconds(me, false).unwrap_or(0.0) - cpu0) / elapsed;
        let servers1: f64 = server_pids.iter().filter_map(|p| procfs::cpu_seconds(*p, false)).sum();
        row.servers_cpu_percent = 100.0 * (servers1 - servers0) / elapsed;
        row.rss_mb = status_mb("VmRSS:");
        row.peak_rss_mb = status_mb("VmHWM:");
        row.load = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        stop.cancel();
        scheduler.join().await;
        row
    })
}

/// A line of /proc/self/status in MiB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Where the simulated cameras start their sessions (BENCH_START).
fn start_at() -> StartAt {
    match std::env::var("BENCH_START").as_deref() {
        Ok("gop-cache") => StartAt::GopCache,
        Ok("live") | Err(_) => StartAt::Live,
        Ok(other) => panic!("BENCH_START: live or gop-cache, not `{other}`"),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
