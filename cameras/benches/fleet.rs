//! What the prober costs for a fleet: N simulated cameras (RTSP mounts of ds_tests::rtsp_sim,
//! spread over a few server processes on loopback; by default 640×360 at 15 fps, a keyframe
//! every second, [`ClipSpec::FLEET`]) at a 15 s heartbeat, every probe proving a frame (a
//! keyframe and a later frame, as for any camera), each fleet run twice: with the probes'
//! pictures decoded (thumbnails, frozen and black verdicts; the service's default) and with
//! decoding off. Prints, for N = 10, 100 and 1000, the heartbeats of the measured window, how
//! many proved a frame, the failures by reason, the latency to the first frame, the share of
//! the schedule kept (probes done / probes due, see [`Row::due`]), the thumbnails refreshed
//! per minute and the heartbeats that went without a picture because the decoding queue was
//! full, the prober's CPU in percent of one core, and its resident memory (VmRSS at the end,
//! VmHWM over the fleet's run); then the same for 100 cameras served by GStreamer's RTSP
//! server, as a check that the simulated cameras do not make probing cheaper than a real
//! server does. Last, it sets the figures beside the issues' targets ([`TARGET_CAMERAS`]
//! cameras at a 15 s heartbeat, every probe proving a frame, the whole schedule kept, the
//! prober's CPU at most [`TARGET_CPU_PERCENT`] % of one core and its resident memory at most
//! [`TARGET_RSS_MB_DECODING`] MB with decoding, [`TARGET_RSS_MB`] MB without) with a pass or
//! MISS mark each, and how CPU and memory grow from fleet to fleet, with decoding and without.
//! Exits non-zero unless every probe proved a frame, every camera kept its heartbeat (no gap
//! between two of its heartbeats longer than the interval plus jitter and a second of slack:
//! a fleet too big for the concurrency limit shows as late heartbeats, not as failed ones),
//! and every target was met.
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
//! BENCH_SECONDS=60 measures longer (a multiple of the heartbeat, 15 s); BENCH_FLEETS=10,100
//! picks the sizes; BENCH_DECODING=on (or off) runs each fleet only that way; BENCH_GSTREAMER=0
//! skips the GStreamer run; BENCH_VIDEO=1280x720@2000 serves a detailed picture at that size
//! and bit rate instead of the default (640x360, a detailed moving picture at 512 kbit/s),
//! to see what bigger frames cost; BENCH_GOP=60 sets the frames from one
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

use ds_cameras::picture::budget::Fate;
use ds_cameras::scheduler::MAX_JITTER;
use ds_cameras::{Beat, Event, Heartbeat, NetworkProber, Scheduler, SchedulerOptions, State};
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
/// The flag that turns this binary into one fleet's run: `--fleet N sim|gstreamer CLIP on|off`
/// (decoding on or off).
const FLEET_FLAG: &str = "--fleet";
/// Largest failure messages shown per fleet (the rest are counted by reason).
const SHOWN_FAILURES: usize = 5;
/// The issues' targets: this many cameras at a [`HEARTBEAT_S`] heartbeat, every probe
/// proving a frame and the whole schedule kept, with the prober's CPU and resident memory
/// (its peak, VmHWM) at most these: issue 6 for probing alone, issue 14 with decoding.
const TARGET_CAMERAS: usize = 1000;
const TARGET_CPU_PERCENT: f64 = 15.0;
const TARGET_RSS_MB: f64 = 64.0;
const TARGET_RSS_MB_DECODING: f64 = 96.0;
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
        let (Some(n), Some(by), Some(clip), Some(decoding)) =
            (args.get(at + 1), args.get(at + 2), args.get(at + 3), args.get(at + 4))
        else {
            panic!("usage: {FLEET_FLAG} N sim|gstreamer CLIP on|off");
        };
        let n: usize = n.parse().expect("a number of cameras");
        let by = if by == "gstreamer" { ServedBy::GStreamer } else { ServedBy::Sim };
        let met = fleet_process(n, by, Path::new(clip), decoding == "on", measure);
        std::process::exit(if met { 0 } else { 1 });
    }

    let sizes: Vec<usize> = std::env::var("BENCH_FLEETS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| FLEETS.to_vec());
    let gstreamer = env_or("BENCH_GSTREAMER", DEFAULT_GSTREAMER_CAMERAS as u64) as usize;
    let decodings: Vec<bool> = match std::env::var("BENCH_DECODING").as_deref() {
        Ok("on") => vec![true],
        Ok("off") => vec![false],
        Ok("both") | Err(_) => vec![true, false],
        Ok(other) => panic!("BENCH_DECODING: on, off or both, not `{other}`"),
    };
    // Small fleets first, each with decoding and without; the GStreamer comparison (decoding
    // on) next to the simulated fleet of its size.
    let mut runs: Vec<(usize, ServedBy, bool)> =
        sizes.iter().flat_map(|&n| decodings.iter().map(move |&d| (n, ServedBy::Sim, d))).collect();
    if gstreamer > 0 {
        let at = runs.iter().position(|&(n, ..)| n > gstreamer).unwrap_or(runs.len());
        runs.insert(at, (gstreamer, ServedBy::GStreamer, decodings[0]));
    }

    // The clip is encoded once, here, before anything is measured; the servers load it.
    let mut spec = match std::env::var("BENCH_VIDEO") {
        Ok(v) => ClipSpec::parse(&v).unwrap_or_else(|e| panic!("BENCH_VIDEO: {e}")),
        Err(_) => ClipSpec::FLEET,
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
        "cameras  served by    decoding  heartbeats  proved    up  failed  kept %  thumbs/min  skipped  \
         latency p50/p99 ms  max gap s  prober cpu%  rss MB  peak rss MB  servers cpu%  load avg"
    );
    let exe = std::env::current_exe().expect("path of this benchmark");
    let mut failed_runs = 0;
    let mut measured: Vec<Figures> = Vec::new();
    for (n, by, decoding) in runs {
        let by = if by == ServedBy::GStreamer { "gstreamer" } else { "sim" };
        let mut child = Command::new(&exe)
            .arg(FLEET_FLAG)
            .arg(n.to_string())
            .arg(by)
            .arg(clip_file.path())
            .arg(if decoding { "on" } else { "off" })
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
    decoding: bool,
    beats: usize,
    proved: usize,
    failed: usize,
    due: usize,
    decoded: usize,
    skipped: usize,
    measured_s: f64,
    max_gap_s: f64,
    cpu_percent: f64,
    rss_mb: f64,
    peak_rss_mb: f64,
}

impl Figures {
    fn line(&self) -> String {
        format!(
            "{FIGURES} cameras={} by={} decoding={} beats={} proved={} failed={} due={} decoded={} skipped={} \
             measured_s={:.3} max_gap_s={:.3} cpu_percent={:.3} rss_mb={:.3} peak_rss_mb={:.3}",
            self.cameras,
            self.by,
            self.decoding,
            self.beats,
            self.proved,
            self.failed,
            self.due,
            self.decoded,
            self.skipped,
            self.measured_s,
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
            decoding: pairs.get("decoding")?.parse().ok()?,
            beats: int("beats")?,
            proved: int("proved")?,
            failed: int("failed")?,
            due: int("due")?,
            decoded: int("decoded")?,
            skipped: int("skipped")?,
            measured_s: num("measured_s")?,
            max_gap_s: num("max_gap_s")?,
            cpu_percent: num("cpu_percent")?,
            rss_mb: num("rss_mb")?,
            peak_rss_mb: num("peak_rss_mb")?,
        })
    }

    /// Probes done of those due, in percent.
    fn kept_percent(&self) -> f64 {
        if self.due == 0 { 0.0 } else { 100.0 * self.beats.min(self.due) as f64 / self.due as f64 }
    }

    fn thumbnails_per_minute(&self) -> f64 {
        if self.measured_s > 0.0 { 60.0 * self.decoded as f64 / self.measured_s } else { 0.0 }
    }

    fn decoding_word(&self) -> &'static str {
        if self.decoding { "on" } else { "off" }
    }
}

fn mark(met: bool) -> &'static str {
    if met { "pass" } else { "MISS" }
}

/// Prints each target of the issues beside the figure measured for it, and the growth from
/// fleet to fleet; `true` when every target was met.
fn print_targets(measured: &[Figures]) -> bool {
    println!();
    println!("targets (issues 6 and 14): {TARGET_CAMERAS} simulated cameras at a {HEARTBEAT_S} s heartbeat");
    println!("  {:<52}  {:<38}  {:<12}  mark", "target", "measured", "limit");
    let mut met = true;
    let mut any = false;
    for decoding in [true, false] {
        let Some(big) =
            measured.iter().find(|f| f.by == "sim" && f.cameras == TARGET_CAMERAS && f.decoding == decoding)
        else {
            continue;
        };
        any = true;
        let rss_limit = if decoding { TARGET_RSS_MB_DECODING } else { TARGET_RSS_MB };
        let with = if decoding { "decoding on" } else { "decoding off" };
        let rows = [
            (
                "every probe proves a frame",
                format!("{} of {} heartbeats, {} failed", big.proved, big.beats, big.failed),
                "all".to_owned(),
                big.failed == 0 && big.beats > 0 && big.proved == big.beats,
            ),
            (
                "the schedule kept (probes done / probes due)",
                format!("{:.1} % ({} of {})", big.kept_percent(), big.beats.min(big.due), big.due),
                "100 %".to_owned(),
                big.due > 0 && big.beats >= big.due,
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
                format!("≤ {rss_limit:.0} MB"),
                big.peak_rss_mb <= rss_limit,
            ),
        ];
        for (what, figure, limit, ok) in rows {
            met &= ok;
            println!("  {:<52}  {figure:<38}  {limit:<12}  {}", format!("{what}, {with}"), mark(ok));
        }
        if decoding {
            println!(
                "  {:<52}  {:<38}",
                "thumbnails refreshed per minute, decoding on",
                format!(
                    "{:.0} ({} decoded, {} skipped for the budget)",
                    big.thumbnails_per_minute(),
                    big.decoded,
                    big.skipped
                )
            );
        }
    }
    if !any {
        println!("  no run of {TARGET_CAMERAS} cameras (BENCH_FLEETS): the targets were not measured   MISS");
        return false;
    }
    print_growth(measured);
    if !met {
        println!("SOME TARGETS WERE MISSED (marked MISS above)");
    }
    met
}

/// How CPU, memory, the schedule and the thumbnails grow from the smallest simulated fleet
/// to each larger one, with decoding and without.
fn print_growth(measured: &[Figures]) {
    println!(
        "growth with the fleet (simulated cameras; no limit of its own, the targets above are for {TARGET_CAMERAS}):"
    );
    println!(
        "  {:>7}  {:>8}  {:>11}  {:>12}  {:>11}  {:>20}  {:>7}  {:>10}",
        "cameras",
        "decoding",
        "prober cpu%",
        "cpu% per 100",
        "peak rss MB",
        "peak MB per 100 more",
        "kept %",
        "thumbs/min"
    );
    for decoding in [true, false] {
        let sim: Vec<&Figures> = measured.iter().filter(|f| f.by == "sim" && f.decoding == decoding).collect();
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
                "  {:>7}  {:>8}  {:>11.1}  {:>12.2}  {:>11.1}  {:>20}  {:>7.1}  {:>10.0}",
                f.cameras,
                f.decoding_word(),
                f.cpu_percent,
                per_100,
                f.peak_rss_mb,
                mb_per_100,
                f.kept_percent(),
                f.thumbnails_per_minute()
            );
        }
    }
    let pair = |n: usize, d: bool| measured.iter().find(|f| f.by == "sim" && f.cameras == n && f.decoding == d);
    for decoding in [true, false] {
        if let (Some(a), Some(b)) = (pair(100, decoding), pair(1000, decoding)) {
            let thumbnails = if decoding {
                format!(
                    ", thumbnails/min ×{:.1}",
                    b.thumbnails_per_minute() / a.thumbnails_per_minute().max(f64::EPSILON)
                )
            } else {
                String::new()
            };
            println!(
                "  100 → 1000 cameras, decoding {}: CPU ×{:.1} ({:.1} → {:.1} %), peak RSS ×{:.2} ({:.1} → {:.1} \
                 MB){thumbnails}",
                a.decoding_word(),
                b.cpu_percent / a.cpu_percent.max(f64::EPSILON),
                a.cpu_percent,
                b.cpu_percent,
                b.peak_rss_mb / a.peak_rss_mb.max(f64::EPSILON),
                a.peak_rss_mb,
                b.peak_rss_mb
            );
        }
    }
    for n in [100, 1000] {
        if let (Some(on), Some(off)) = (pair(n, true), pair(n, false)) {
            println!(
                "  {n} cameras, decoding on against off: CPU +{:.1} points, peak RSS +{:.1} MB",
                on.cpu_percent - off.cpu_percent,
                on.peak_rss_mb - off.peak_rss_mb
            );
        }
    }
}

/// Runs one fleet in this process and prints its row; `true` if every probe proved a frame
/// and every heartbeat was on time.
fn fleet_process(n: usize, by: ServedBy, clip: &Path, decoding: bool, measure: Duration) -> bool {
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
            (run_fleet(&runtime, urls, &pids, decoding, measure), format!("{} rtsp-sim", servers.len()))
        }
        ServedBy::GStreamer => {
            let server = RtspServer::start_on(0, 0, n);
            let urls = (0..n).map(|i| server.url(&format!("bench/{i}"))).collect();
            (run_fleet(&runtime, urls, &[server.pid()], decoding, measure), "1 GStreamer".to_owned())
        }
    };
    let figures = Figures {
        cameras: n,
        by: if by == ServedBy::GStreamer { "gstreamer" } else { "sim" }.to_owned(),
        decoding,
        beats: row.beats,
        proved: row.proved,
        failed: row.failed(),
        due: row.due,
        decoded: row.decoded,
        skipped: row.skipped,
        measured_s: row.measured_s,
        max_gap_s: row.max_gap_s,
        cpu_percent: row.cpu_percent,
        rss_mb: row.rss_mb,
        peak_rss_mb: row.peak_rss_mb,
    };
    println!(
        "{n:>7}  {served_by:<11}  {:>8}  {:>10}  {:>6}  {:>4}  {:>6}  {:>6.1}  {:>10.0}  {:>7}  {:>18}  {:>9.1}  \
         {:>11.1}  {:>6.1}  {:>11.1}  {:>12.1}  {}",
        figures.decoding_word(),
        row.beats,
        row.proved,
        row.up,
        row.failed(),
        figures.kept_percent(),
        figures.thumbnails_per_minute(),
        row.skipped,
        format!("{}/{}", row.latency_ms(0.5), row.latency_ms(0.99)),
        row.max_gap_s,
        row.cpu_percent,
        row.rss_mb,
        row.peak_rss_mb,
        row.servers_cpu_percent,
        row.load
    );
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
    /// Probes due in the measured window: those done, and those missed (see [`Row::due`]).
    due: usize,
    /// Heartbeats whose pictures were decoded (each refreshed its camera's thumbnail) …
    decoded: usize,
    /// … and those that went without, the decoding queue being full.
    skipped: usize,
    reasons: BTreeMap<String, usize>,
    messages: Vec<String>,
    latencies_ms: Vec<u32>,
    /// When each camera's latest heartbeat started (warm-up included).
    /// When each camera's last heartbeat arrived (monotonic: the wall clock may step).
    last_at: HashMap<String, Instant>,
    /// The longest time between two heartbeats of one camera in the measured window.
    max_gap_s: f64,
    measured_s: f64,
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

    /// Notes when a heartbeat started, and the gap since the camera's previous one; in the
    /// measured window (`measured`), a gap longer than the on-time gap missed probes.
    fn note_time(&mut self, h: &Heartbeat, measured: bool) {
        let at = Instant::now();
        if let Some(previous) = self.last_at.insert(h.camera_id.clone(), at) {
            let gap = at.duration_since(previous).as_secs_f64();
            self.max_gap_s = self.max_gap_s.max(gap);
            if measured {
                self.due += 1 + missed(gap);
            }
        } else if measured {
            self.due += 1;
        }
    }

    /// Counts the probes missed at the end of the window (`end`): a camera whose last
    /// heartbeat is more than the on-time gap before it, or that never had one since
    /// `started`.
    fn due(&mut self, cameras: usize, started: Instant, end: Instant) {
        let since = |t: Instant| end.duration_since(t).as_secs_f64();
        let silent = cameras.saturating_sub(self.last_at.len());
        self.due += self.last_at.values().map(|t| missed(since(*t))).sum::<usize>();
        self.due += silent * missed(since(started)).max(1);
    }

    fn count(&mut self, beat: &Beat) {
        let h = &beat.heartbeat;
        self.note_time(h, true);
        self.beats += 1;
        match beat.picture {
            Some(Fate::Decoded) => self.decoded += 1,
            Some(Fate::Skipped) => self.skipped += 1,
            None => {}
        }
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

/// Heartbeats missed in a gap of `gap_s` seconds between two heartbeats of a camera: none
/// while the gap is on time (the interval, jitter and slack), one more for every interval
/// beyond.
fn missed(gap_s: f64) -> usize {
    let late = gap_s - (ON_TIME_GAP.as_secs_f64() - f64::from(HEARTBEAT_S));
    (late / f64::from(HEARTBEAT_S)).floor().max(0.0) as usize
}

/// Probes the cameras at `urls` (their pictures decoded or not) for one interval, then
/// measures for `measure`.
fn run_fleet(
    runtime: &tokio::runtime::Runtime,
    urls: Vec<String>,
    server_pids: &[u32],
    decoding: bool,
    measure: Duration,
) -> Row {
    let n = urls.len();
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
        let options = SchedulerOptions { decoding: decoding.then(Default::default), ..SchedulerOptions::default() };
        let started = Instant::now();
        let scheduler = Scheduler::spawn_with(NetworkProber::new().unwrap(), rx, tx, stop.clone(), options);
        // One interval: every camera probes once (its first slot), then the steady state.
        let warm_up = tokio::time::Instant::now() + Duration::from_secs(u64::from(HEARTBEAT_S));
        let mut row = Row::default();
        while let Ok(Some(e)) = tokio::time::timeout_at(warm_up, events.recv()).await {
            if let Event::Heartbeat(h) = e {
                row.note_time(&h.heartbeat, false);
            }
        }
        row.max_gap_s = 0.0;
        let cpu0 = procfs::cpu_seconds(me, false).unwrap_or(0.0);
        let servers0: f64 = server_pids.iter().filter_map(|p| procfs::cpu_seconds(*p, false)).sum();
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + measure;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
            if let Event::Heartbeat(h) = e {
                row.count(&h);
            }
        }
        let elapsed = t0.elapsed().as_secs_f64();
        row.measured_s = elapsed;
        row.due(n, started, Instant::now());
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
