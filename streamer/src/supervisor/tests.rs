//! The supervisor's loop under paused time with scripted workers. A fake worker stands in for
//! `desktop-streamer worker` here because what is under test is the ladder's timing (seconds of
//! back-off and stall timeouts, without waiting them out); the real worker and GStreamer are
//! exercised by the end-to-end tests in `tests/tests/streamer.rs`.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::encoder::EncoderChoice;
use crate::feed::AccessUnit;
use crate::monitor::Monitor;
use crate::worker::{Event, Request as WorkerRequest, Worker, Workers};

/// Longest any test waits for the supervisor (on the paused clock).
const PATIENCE: Duration = Duration::from_secs(600);
const SEGMENT: Duration = Duration::from_secs(2);
const STALL_TIMEOUT: Duration = Duration::from_secs(4);

/// What one scripted run does.
#[derive(Clone, Copy, Debug)]
enum Run {
    /// Reaches PLAYING, then every 2 s reports encoded video and sends a segment's frames
    /// (15 fps, a keyframe every 2 s), `n` times;
    /// then nothing more comes while the process lives on (a stall).
    SegmentsThenSilence(u32),
    /// Fails before reaching PLAYING (the capture cannot start).
    FailsAtStart,
    /// Plays and sends `n` segments' frames, then the encoder fails.
    SegmentsThenEncoderError(u32),
}

/// A run that started: when, and what it was asked to run.
#[derive(Clone, Debug)]
struct Started {
    at: Instant,
    description: String,
}

/// Workers that follow a script, one [`Run`] per start (the last one repeats).
#[derive(Debug)]
struct Script {
    runs: Mutex<VecDeque<Run>>,
    started: watch::Sender<Vec<Started>>,
    /// The encoders this machine has, best first.
    encoders: Vec<&'static str>,
    /// The `exclude` list of every encoder selection.
    selections: Mutex<Vec<Vec<String>>>,
    /// Where the scripted workers' video goes.
    feed: Feed,
}

impl Script {
    fn new(runs: &[Run]) -> Arc<Script> {
        Arc::new(Script {
            runs: Mutex::new(runs.iter().copied().collect()),
            started: watch::channel(Vec::new()).0,
            encoders: vec!["x264enc", "openh264enc"],
            selections: Mutex::new(Vec::new()),
            feed: Feed::new(),
        })
    }

    /// Waits until `n` runs started and returns them.
    async fn starts(&self, n: usize) -> Vec<Started> {
        let mut rx = self.started.subscribe();
        let waited = tokio::time::timeout(PATIENCE, rx.wait_for(|s| s.len() >= n)).await;
        waited
            .unwrap_or_else(|_| panic!("{n} runs did not start; started: {:?}", self.started.borrow()))
            .unwrap()
            .clone()
    }
}

fn encoder(name: &str) -> EncoderChoice {
    EncoderChoice { name: name.into(), hardware: false, input_format: None, settings: Vec::new(), skipped: Vec::new() }
}

impl Workers for Arc<Script> {
    type Worker = FakeWorker;

    async fn select_encoder(&self, _config: &StreamerConfig, exclude: &[String]) -> Result<EncoderChoice, String> {
        self.selections.lock().unwrap().push(exclude.to_vec());
        let name = self.encoders.iter().find(|e| !exclude.iter().any(|x| x == *e));
        name.map(|n| encoder(n)).ok_or_else(|| "no encoder works".to_owned())
    }

    async fn start(&self, request: &WorkerRequest) -> std::io::Result<FakeWorker> {
        let WorkerRequest::Run { description, .. } = request else { panic!("not a run: {request:?}") };
        let run = {
            let mut runs = self.runs.lock().unwrap();
            if runs.len() > 1 { runs.pop_front() } else { runs.front().copied() }
        }
        .expect("a script");
        let now = Instant::now();
        self.started.send_modify(|s| s.push(Started { at: now, description: description.clone() }));
        Ok(FakeWorker::new(run, now, self.feed.clone()))
    }
}

/// What a scripted worker does at a moment.
#[derive(Debug)]
enum Step {
    Report(Event),
    /// Sends these frames to the feed.
    Frames(Vec<AccessUnit>),
}

/// Frames per segment at 15 fps.
const FRAMES: u32 = 30;

/// Frame `k` of feed run `run`: 15 fps, a keyframe every [`FRAMES`].
fn frame(run: u64, k: u32) -> AccessUnit {
    let keyframe = k.is_multiple_of(FRAMES);
    AccessUnit {
        run,
        pts: Some(Duration::from_secs(1) * k / 15),
        keyframe,
        data: vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x88, 0x84],
    }
}

/// One scripted run: what it does, each step due at a time on the paused clock.
#[derive(Debug)]
struct FakeWorker {
    events: VecDeque<(Instant, Step)>,
    /// Whether the process lives on silently after its last event (else it exits).
    hangs: bool,
    feed: Feed,
}

impl FakeWorker {
    fn new(run: Run, t0: Instant, feed: Feed) -> FakeWorker {
        let feed_run = feed.begin_run();
        let mut events = VecDeque::new();
        let segments = |n: u32, events: &mut VecDeque<(Instant, Step)>| {
            events.push_back((t0, Step::Report(Event::Playing)));
            for i in 0..n {
                let at = t0 + SEGMENT * (i + 1);
                let flow = Event::Flow {
                    buffers: u64::from(i + 1) * 30,
                    bytes: u64::from(i + 1) * 30_000,
                    since_buffer_ms: Some(0),
                    since_picture_change_ms: Some(0),
                };
                events.push_back((at, Step::Report(flow)));
                // Segment i ends with the keyframe that starts the next.
                let first = if i == 0 { 0 } else { FRAMES * i + 1 };
                let frames = (first..=FRAMES * (i + 1)).map(|k| frame(feed_run, k)).collect();
                events.push_back((at, Step::Frames(frames)));
            }
        };
        let hangs = match run {
            Run::SegmentsThenSilence(n) => {
                segments(n, &mut events);
                true
            }
            Run::FailsAtStart => {
                let detail = "ximagesrc0: Could not open X display for reading".to_owned();
                events.push_back((t0, Step::Report(Event::Error { from_encoder: false, detail })));
                false
            }
            Run::SegmentsThenEncoderError(n) => {
                segments(n, &mut events);
                let at = t0 + SEGMENT * n + Duration::from_secs(1);
                events.push_back((
                    at,
                    Step::Report(Event::Error { from_encoder: true, detail: "enc: device lost".into() }),
                ));
                false
            }
        };
        FakeWorker { events, hangs, feed }
    }
}

impl Worker for FakeWorker {
    fn pid(&self) -> Option<u32> {
        Some(4242)
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            let Some(&(due, _)) = self.events.front() else {
                if self.hangs {
                    std::future::pending::<()>().await;
                }
                return None;
            };
            tokio::time::sleep_until(due).await;
            match self.events.pop_front()?.1 {
                Step::Report(event) => return Some(event),
                Step::Frames(frames) => frames.into_iter().for_each(|f| self.feed.publish(f)),
            }
        }
    }

    async fn end_detail(&mut self) -> String {
        "the capture process ended (exit status: 3)".into()
    }

    async fn stop(self) {}
}

fn monitor() -> Monitor {
    Monitor { name: "DUMMY1".into(), x: 1920, y: 0, width: 1280, height: 720, primary: false, outputs: Vec::new() }
}

/// The display as the tests have it: the selected monitor is there.
fn monitor_is_there(_display: &str, _selection: &Selection) -> MonitorState {
    MonitorState::Available(monitor())
}

/// A supervisor running `script`, its handles, and the directory it writes to.
struct Running {
    task: tokio::task::JoinHandle<Exit>,
    status: StatusHandle,
    shutdown: Shutdown,
    requests: mpsc::UnboundedSender<Request>,
    live: LiveHls,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> StreamerConfig {
    let mut c = StreamerConfig { output_dir: dir.to_path_buf(), ..StreamerConfig::default() };
    c.segment_duration = 2;
    c.stall_timeout_seconds = Some(4);
    c.max_restarts = 3;
    c.restart_delay = 10;
    c.max_errors = 100;
    c.error_window = 600;
    // Whatever the test machine's disk holds, no disk pressure here.
    c.live_streaming.cleanup_threshold_percent = 99;
    c.live_streaming.emergency_cleanup_threshold_percent = 100;
    c
}

fn start(script: &Arc<Script>, change: impl FnOnce(&mut StreamerConfig)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    change(&mut config);
    let playlist = open_playlist(&config).unwrap();
    let status = StatusHandle::new(100);
    let shutdown = Shutdown::new();
    let (requests, requests_rx) = mpsc::unbounded_channel();
    // The senders of the config and the monitor state stay with the supervisor's task: the
    // receivers see no change and no close.
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    let (monitor_tx, monitor_rx) = watch::channel(MonitorState::Available(monitor()));
    let live = LiveHls::new(dir.path().to_path_buf(), crate::live::PartTiming::for_fps(15));
    let sup = Supervisor::new(
        config_rx,
        status.clone(),
        monitor_rx,
        ":99".into(),
        requests_rx,
        shutdown.clone(),
        playlist,
        Arc::clone(script),
        script.feed.clone(),
        live.clone(),
    )
    .looking_with(monitor_is_there);
    let task = tokio::spawn(async move {
        let exit = sup.run().await;
        drop((config_tx, monitor_tx));
        exit
    });
    Running { task, status, shutdown, requests, live, dir }
}

impl Running {
    async fn stop(self) -> StatusHandle {
        self.shutdown.trigger();
        let exit = tokio::time::timeout(PATIENCE, self.task).await.expect("the supervisor stops").unwrap();
        assert_eq!(exit, Exit::Shutdown);
        self.status
    }

    fn reasons(&self) -> Vec<RestartReason> {
        self.status.lock().restarts.iter().map(|r| r.reason).collect()
    }
}

fn gaps(starts: &[Started]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(start_paused = true)]
async fn a_stall_rebuilds_at_once_and_a_run_that_worked_resets_the_back_off() {
    use Run::*;
    let script =
        Script::new(&[FailsAtStart, FailsAtStart, SegmentsThenSilence(2), FailsAtStart, SegmentsThenSilence(9)]);
    let r = start(&script, |_| {});
    let starts = script.starts(5).await;
    let g = gaps(&starts);
    assert_eq!(g[0], Duration::ZERO, "the first failure rebuilds at once");
    assert_eq!(g[1], ladder::FIRST_BACKOFF, "the second backs off");
    // The third run's last report comes 4 s in; the stall shows at the first tick after 4 s
    // of silence more.
    let silent_from = SEGMENT * 2;
    assert!(
        g[2] > silent_from + STALL_TIMEOUT && g[2] <= silent_from + STALL_TIMEOUT + TICK,
        "stall rebuild {:?} after the start, the silence began at {silent_from:?}",
        g[2]
    );
    assert_eq!(g[3], ladder::FIRST_BACKOFF, "after a run that listed segments the back-off starts over");
    assert_eq!(
        r.reasons(),
        [
            RestartReason::PipelineError,
            RestartReason::PipelineError,
            RestartReason::Stall,
            RestartReason::PipelineError
        ]
    );
    let detail = r.status.lock().restarts[2].detail.clone();
    assert!(detail.starts_with("no encoded video for 4.5 s (stall timeout 4 s)"), "{detail}");
    let status = r.stop().await;
    assert_eq!(status.lock().state, State::Stopping);
}

#[tokio::test(start_paused = true)]
async fn failures_before_any_segment_back_off_to_restart_delay_then_max_errors_end_the_process() {
    let script = Script::new(&[Run::FailsAtStart]);
    let r = start(&script, |c| {
        c.restart_delay = 2;
        c.max_errors = 6;
    });
    let exit = tokio::time::timeout(PATIENCE, r.task).await.expect("the supervisor gives up").unwrap();
    let Exit::Escalate(why) = exit else { panic!("{exit:?}") };
    assert!(why.starts_with("6 pipeline faults within 600 s (max_errors 6); the last: "), "{why}");
    assert!(why.contains("Could not open X display"), "{why}");
    let starts = script.starts(6).await;
    assert_eq!(starts.len(), 6, "no run after giving up");
    let ms = |m: u64| Duration::from_millis(m);
    assert_eq!(gaps(&starts), [ms(0), ms(500), ms(1000), ms(2000), ms(2000)], "doubling up to restart_delay");
    let s = r.status.lock();
    assert_eq!(s.consecutive_failures, 5);
    assert_eq!(s.total_errors, 6);
}

#[tokio::test(start_paused = true)]
async fn faults_outside_the_error_window_do_not_end_the_process() {
    // A run works for 20 s and stalls 4.5 s later, again and again: faults 24.5 s apart
    // are never four within 60 s.
    let script = Script::new(&[Run::SegmentsThenSilence(10)]);
    let r = start(&script, |c| {
        c.max_errors = 4;
        c.error_window = 60;
    });
    script.starts(8).await;
    assert!(!r.task.is_finished(), "seven faults, never four within 60 s");
    assert!(r.reasons().iter().all(|x| *x == RestartReason::Stall));
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_encoder_gives_way_to_the_next_one() {
    let script = Script::new(&[Run::SegmentsThenEncoderError(1), Run::SegmentsThenSilence(100)]);
    let r = start(&script, |_| {});
    let starts = script.starts(2).await;
    assert!(starts[0].description.contains("x264enc name=enc"), "{}", starts[0].description);
    assert!(starts[1].description.contains("openh264enc name=enc"), "{}", starts[1].description);
    assert_eq!(*script.selections.lock().unwrap(), [Vec::<String>::new(), vec!["x264enc".to_owned()]]);
    assert_eq!(r.reasons(), [RestartReason::EncoderFailed]);
    assert_eq!(gaps(&starts), [SEGMENT + Duration::from_secs(1)], "the run had worked: rebuilt at once");
    assert_eq!(r.status.lock().encoder.as_ref().map(|e| e.name.as_str()), Some("openh264enc"));
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_requested_restart_is_immediate_and_no_fault() {
    let script = Script::new(&[Run::SegmentsThenSilence(100)]);
    let r = start(&script, |c| c.max_errors = 1);
    script.starts(1).await;
    // Let the run list a segment: the state says streaming.
    tokio::time::sleep(SEGMENT + Duration::from_millis(1)).await;
    assert_eq!(r.status.lock().state, State::Streaming);
    r.requests.send(Request::Restart("SIGUSR1".into())).unwrap();
    let starts = script.starts(2).await;
    assert_eq!(gaps(&starts), [SEGMENT + Duration::from_millis(1)]);
    assert_eq!(r.reasons(), [RestartReason::Requested]);
    assert_eq!(r.status.lock().total_errors, 0, "max_errors 1 would have ended the process");
    r.stop().await;
}

/// The supervisor cuts the feed: each segment is written whole under the run's names and
/// listed, its parts are the low-latency playlist's and concatenate to the file, and the
/// keyframe after the target ends it.
#[tokio::test(start_paused = true)]
async fn segments_cut_from_the_feed_are_written_listed_and_their_parts_published() {
    let script = Script::new(&[Run::SegmentsThenSilence(100)]);
    let r = start(&script, |_| {});
    script.starts(1).await;
    tokio::time::sleep(SEGMENT * 3 + Duration::from_millis(1)).await;
    let playlist = std::fs::read_to_string(r.dir.path().join("playlist.m3u8")).unwrap();
    let names: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(names.len(), 3, "{playlist}");
    assert!(playlist.contains("#EXTINF:2.000,\n"), "{playlist}");
    let ll = r.live.render();
    for name in &names {
        let file = std::fs::read(r.dir.path().join(name)).unwrap();
        assert_eq!(file.len() % crate::mpegts::PACKET, 0);
        let mut joined = Vec::new();
        for i in 0..6 {
            let part = crate::live::part_name(name, i);
            assert!(ll.contains(&format!("URI=\"{part}\"")), "{part} in\n{ll}");
            joined.extend(r.live.part(&part, Duration::ZERO).await.unwrap());
        }
        assert_eq!(joined, file, "{name} is exactly its six parts");
    }
    assert!(ll.contains("#EXT-X-PART-INF:PART-TARGET=0.367\n"), "{ll}");
    // The fourth segment has begun (its first part is complete at its second frame): hinted.
    let next = crate::live::part_name(&names[2].replace("seg00002", "seg00003"), 0);
    assert!(ll.ends_with(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{next}\"\n")), "{ll}");
    r.stop().await;
}

/// A run that ends (here its encoder fails a second after its first segment) lists what it had
/// cut: the segment begun with the keyframe it sent last, one frame long. The next run's
/// first segment follows a discontinuity, in both playlists.
#[tokio::test(start_paused = true)]
async fn a_run_that_ends_lists_what_it_cut_and_the_next_run_follows_a_discontinuity() {
    let script = Script::new(&[Run::SegmentsThenEncoderError(1), Run::SegmentsThenSilence(100)]);
    let r = start(&script, |_| {});
    script.starts(2).await;
    tokio::time::sleep(SEGMENT + Duration::from_millis(1)).await;
    let playlist = std::fs::read_to_string(r.dir.path().join("playlist.m3u8")).unwrap();
    assert!(
        playlist.contains(
            "#EXTINF:2.000,\nrun000000-seg00000.ts\n#EXTINF:0.067,\nrun000000-seg00001.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.000,\nrun000001-seg00000.ts\n"
        ),
        "{playlist}"
    );
    let ll = r.live.render();
    assert!(ll.contains("URI=\"run000000-seg00001.part0.ts\",INDEPENDENT=YES\n#EXTINF:0.067,\n"), "{ll}");
    assert!(
        ll.contains("run000000-seg00001.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=0.333,URI=\"run000001-seg00000.part0.ts\""),
        "{ll}"
    );
    r.stop().await;
}
