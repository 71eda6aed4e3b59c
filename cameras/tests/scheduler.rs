//! The scheduler's timing on tokio's paused clock, with a scripted prober in place of the
//! network (the probes themselves are tested against real servers in probes.rs and
//! heartbeats.rs): spread, the global limit, one session per camera, retries, list updates,
//! prompt shutdown, and heartbeats that go on without pictures when decoding cannot keep up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ds_cameras::picture::Coded;
use ds_cameras::picture::budget::thumbnails_behind;
use ds_cameras::probe::{ProbeFailure, ProbeOutcome, Prober, Proof};
use ds_cameras::{Decoding, Event, Reason, Scheduler, SchedulerOptions, State};
use ds_config::cameras::{Camera, CamerasConfig};
use ds_wire::cameras::PictureCounts;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One probe: url, start, end (`None` while it runs).
type ProbeRecord = (String, Instant, Option<Instant>);

/// Answers after `delay`: success, or a refusal for URLs in `failing`.
#[derive(Clone, Default)]
struct Script {
    delay: Duration,
    failing: Arc<Mutex<Vec<String>>>,
    /// (url, start, end) of every probe.
    log: Arc<Mutex<Vec<ProbeRecord>>>,
    active: Arc<Mutex<(usize, usize)>>,
    /// The frames every successful probe hands over for decoding.
    coded: Option<Coded>,
}

impl Prober for Script {
    async fn probe(&self, url: &str, _step: Duration, _verify_tls: bool) -> ProbeOutcome {
        let i = {
            let mut log = self.log.lock().unwrap();
            log.push((url.to_owned(), Instant::now(), None));
            log.len() - 1
        };
        {
            let mut a = self.active.lock().unwrap();
            a.0 += 1;
            a.1 = a.1.max(a.0);
        }
        tokio::time::sleep(self.delay).await;
        self.active.lock().unwrap().0 -= 1;
        self.log.lock().unwrap()[i].2 = Some(Instant::now());
        if self.failing.lock().unwrap().iter().any(|u| u == url) {
            return Err(ProbeFailure::new(Reason::Refused, "the camera refused the connection"));
        }
        Ok(Proof {
            latency: self.delay,
            codec: "h264".into(),
            width: Some(640),
            height: Some(480),
            last_frame: Instant::now(),
            last_frame_at: jiff::Timestamp::now(),
            coded: self.coded.clone(),
            span: Duration::ZERO,
            packets_lost: Some(0),
        })
    }
}

fn config(n: usize, heartbeat: u32, max_concurrent: u32) -> CamerasConfig {
    CamerasConfig {
        heartbeat_seconds: heartbeat,
        max_concurrent_probes: max_concurrent,
        retries: 2,
        streams: (0..n).map(|i| camera(&format!("cam{i}"))).collect(),
        ..CamerasConfig::default()
    }
}

fn camera(name: &str) -> Camera {
    Camera { name: name.into(), url: format!("rtsp://127.0.0.1/{name}"), ..Camera::default() }
}

struct Running {
    scheduler: Scheduler,
    list: watch::Sender<Arc<CamerasConfig>>,
    events: mpsc::Receiver<Event>,
    stop: CancellationToken,
}

fn start(script: &Script, config: CamerasConfig) -> Running {
    start_with(script, config, SchedulerOptions::default())
}

fn start_with(script: &Script, config: CamerasConfig, options: SchedulerOptions) -> Running {
    let (list, rx) = watch::channel(Arc::new(config));
    let (tx, events) = mpsc::channel(10_000);
    let stop = CancellationToken::new();
    let scheduler = Scheduler::spawn_with(script.clone(), rx, tx, stop.clone(), options);
    Running { scheduler, list, events, stop }
}

fn heartbeats(events: &mut mpsc::Receiver<Event>) -> Vec<ds_cameras::Heartbeat> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Heartbeat(h) = e {
            out.push(h.heartbeat);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn heartbeats_spread_evenly_over_the_interval() {
    let script = Script::default();
    let r = start(&script, config(200, 10, 1000));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    let log = script.log.lock().unwrap().clone();
    // Phases lie in [0, 10 s), jitter adds up to 1 s: not all 200 have started yet, but most.
    assert!(log.len() > 160 && log.len() <= 200, "{} probes in the first interval", log.len());
    let mut per_second = [0u32; 10];
    for (_, start, _) in &log {
        per_second[((*start - t0).as_secs() as usize).min(9)] += 1;
    }
    assert!(per_second.iter().all(|&n| n <= 40), "probes per second: {per_second:?}");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let log = script.log.lock().unwrap().clone();
    let mut per_camera: HashMap<&str, Vec<Instant>> = HashMap::new();
    for (url, start, _) in &log {
        per_camera.entry(url).or_default().push(*start);
    }
    assert_eq!(per_camera.len(), 200);
    for (url, starts) in per_camera {
        for w in starts.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= Duration::from_secs(9) && gap <= Duration::from_secs(11),
                "{url}: {gap:?} between heartbeats"
            );
        }
    }
    r.stop.cancel();
    r.scheduler.join().await;
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_and_one_session_per_camera_hold() {
    // Probes take 7 s, longer than the 5 s interval; at most 4 at once over 20 cameras.
    let script = Script { delay: Duration::from_secs(7), ..Script::default() };
    let r = start(&script, config(20, 5, 4));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(script.active.lock().unwrap().1, 4, "the limit is reached and never passed");
    let log = script.log.lock().unwrap().clone();
    let mut by_camera: HashMap<&str, Vec<(Instant, Option<Instant>)>> = HashMap::new();
    for (url, s, e) in &log {
        by_camera.entry(url).or_default().push((*s, *e));
    }
    for (url, probes) in by_camera {
        for w in probes.windows(2) {
            assert!(w[0].1.is_some_and(|end| end <= w[1].0), "{url}: two sessions at once");
        }
    }
    r.stop.cancel();
    r.scheduler.join().await;
}

#[tokio::test(start_paused = true)]
async fn retries_then_down_at_the_normal_interval_then_recovery() {
    let script = Script::default();
    script.failing.lock().unwrap().push("rtsp://127.0.0.1/cam0".into());
    let mut r = start(&script, config(1, 10, 4));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let beats = heartbeats(&mut r.events);
    let states: Vec<State> = beats.iter().map(|h| h.state).collect();
    assert!(states.len() >= 5, "{states:?}");
    assert_eq!(&states[..4], &[State::Pending, State::Pending, State::Down, State::Down]);
    assert!(beats.iter().all(|h| h.reason == Some(Reason::Refused)));
    // No backoff: a DOWN camera keeps its interval (probe starts on the paused clock).
    let starts: Vec<Instant> = script.log.lock().unwrap().iter().map(|(_, s, _)| *s).collect();
    for w in starts.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_secs(9) && gap <= Duration::from_secs(11), "{gap:?}");
    }
    let status = r.scheduler.statuses().get("cam0").unwrap();
    assert_eq!((status.state, status.reason), (Some(State::Down), Some(Reason::Refused)));
    assert!(status.consecutive_failures >= 5);

    script.failing.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let status = r.scheduler.statuses().get("cam0").unwrap();
    assert_eq!((status.state, status.reason), (Some(State::Up), None), "one good heartbeat brings it back");
    let mut transitions = Vec::new();
    while let Ok(e) = r.events.try_recv() {
        if let Event::Transition(t) = e {
            transitions.push((t.from, t.to));
        }
    }
    assert_eq!(transitions, [(Some(State::Down), State::Up)]);
    r.stop.cancel();
    r.scheduler.join().await;
}

#[tokio::test(start_paused = true)]
async fn list_updates_keep_unchanged_cameras_and_stop_removed_ones() {
    let script = Script::default();
    script.failing.lock().unwrap().push("rtsp://127.0.0.1/cam0".into());
    let mut c = config(3, 10, 4);
    let r = start(&script, c.clone());
    tokio::time::sleep(Duration::from_secs(21)).await;
    let board = r.scheduler.statuses();
    assert_eq!(board.get("cam0").unwrap().consecutive_failures, 2);

    // Rename cam0 (same id), drop cam2, add cam3, and give cam1 a 5 s override.
    c.streams[0].id = Some("cam0".into());
    c.streams[0].name = "Gate".into();
    c.streams[1].heartbeat_seconds = Some(5);
    c.streams.truncate(2);
    c.streams.push(camera("cam3"));
    r.list.send(Arc::new(c.clone())).unwrap();
    let probes_before = script.log.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let cam0 = board.get("cam0").unwrap();
    assert_eq!(cam0.name, "Gate");
    assert!(cam0.consecutive_failures >= 4, "the renamed camera kept its count: {cam0:?}");
    assert_eq!(cam0.state, Some(State::Down));
    assert!(board.get("cam2").is_none());
    assert_eq!(board.get("cam3").unwrap().state, Some(State::Up));
    let log = script.log.lock().unwrap()[probes_before..].to_vec();
    let count = |u: &str| log.iter().filter(|(url, ..)| url == u).count();
    assert_eq!(count("rtsp://127.0.0.1/cam2"), 0, "a removed camera is not probed");
    assert!(count("rtsp://127.0.0.1/cam1") >= 3, "the 5 s override applies");

    // A new URL behind the same id starts afresh.
    c.streams[0].url = "rtsp://127.0.0.1/elsewhere".into();
    r.list.send(Arc::new(c)).unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(board.get("cam0").unwrap().state, Some(State::Up));
    r.stop.cancel();
    r.scheduler.join().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_probes_at_once() {
    let script = Script { delay: Duration::from_secs(3600), ..Script::default() };
    let r = start(&script, config(50, 5, 100));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(script.active.lock().unwrap().0, 50);
    let t = Instant::now();
    r.stop.cancel();
    tokio::time::timeout(Duration::from_millis(10), r.scheduler.join()).await.expect("stops within 10 ms");
    assert!(Instant::now() - t < Duration::from_millis(10));
}

/// A decoder that never keeps up (no threads and no queue: every job finds the queue full)
/// costs the heartbeats their pictures, never their verdicts: every camera keeps its
/// interval and is UP, none gets a thumbnail, and the board counts every heartbeat as
/// skipped for the decoding budget, which the camera list turns into the notice that
/// thumbnails are behind. With decoding off nothing is counted and there is no notice.
#[tokio::test(start_paused = true)]
async fn heartbeats_go_on_without_pictures_when_decoding_cannot_keep_up() {
    let script = Script { coded: Some(Coded::Jpeg(vec![vec![0xff, 0xd8, 0xff, 0xd9]; 2])), ..Script::default() };
    let busy = SchedulerOptions {
        decoding: Some(Decoding { threads: 0, queue: 0, budgeted: false }),
        ..SchedulerOptions::default()
    };
    let mut r = start_with(&script, config(3, 10, 4), busy);
    tokio::time::sleep(Duration::from_secs(35)).await;
    let beats = heartbeats(&mut r.events);
    assert!(beats.len() >= 9, "three heartbeats each: {}", beats.len());
    assert!(beats.iter().all(|h| h.state == State::Up), "{beats:?}");
    let log = script.log.lock().unwrap().clone();
    for i in 0..3 {
        let url = format!("rtsp://127.0.0.1/cam{i}");
        let starts: Vec<Instant> = log.iter().filter(|(u, ..)| *u == url).map(|(_, s, _)| *s).collect();
        for w in starts.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= Duration::from_secs(9) && gap <= Duration::from_secs(11), "{url}: {gap:?}");
        }
    }
    let board = r.scheduler.statuses();
    let mut counted = Vec::new();
    for i in 0..3 {
        let id = format!("cam{i}");
        let status = board.get(&id).unwrap();
        let per_camera = beats.iter().filter(|h| h.camera_id == id).count() as u32;
        assert_eq!(status.pictures, Some(PictureCounts { window_seconds: 300, decoded: 0, skipped: per_camera }));
        assert!(r.scheduler.thumbnails().get(&id).is_none(), "no picture was decoded for {id}");
        counted.push((status.heartbeat_seconds, status.pictures.unwrap()));
    }
    let behind = thumbnails_behind(counted, 4.0).expect("thumbnails are behind");
    assert_eq!((behind.cameras, behind.decoded, behind.skipped), (3, 0, beats.len() as u32));
    assert_eq!(behind.refresh_seconds, 300, "no picture in the whole window");
    r.stop.cancel();
    r.scheduler.join().await;

    let off = SchedulerOptions { decoding: None, ..SchedulerOptions::default() };
    let mut r = start_with(&script, config(3, 10, 4), off);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(heartbeats(&mut r.events).iter().all(|h| h.state == State::Up));
    let statuses = r.scheduler.statuses().snapshot();
    assert!(statuses.iter().all(|s| s.state == Some(State::Up) && s.pictures.is_none()), "{statuses:?}");
    r.stop.cancel();
    r.scheduler.join().await;
}
