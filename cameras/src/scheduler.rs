//! Runs the heartbeats of a fleet: one task per camera, never two sessions to one camera at
//! a time, at most `max_concurrent_probes` probes at once over all cameras, and heartbeats
//! spread evenly over the interval. Each camera gets a fixed phase in its interval from a
//! hash of its stable id (so a restart keeps the spread) plus a little random jitter per
//! heartbeat. A DOWN camera is probed at its normal interval: a growing backoff would hide
//! its recovery.
//!
//! The camera list arrives on a `watch` channel; on each change cameras that stayed the same
//! keep their task and their history (retry count, frozen-picture memory), changed settings
//! reach the running task, a changed URL starts the camera's history afresh, and removed
//! cameras stop. Every heartbeat and every change of state or reason goes out on an `mpsc`
//! channel ([`Event`]) for the store, and the latest status of every camera is kept in a
//! [`StatusBoard`] that the API reads without waiting on probes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ds_config::cameras::{Camera, CamerasConfig, ProbeSettings};
use ds_wire::cameras::PictureCounts;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::picture::budget::{Budget, Fate, PictureLog};
use crate::picture::{DecodeError, Decoder, Pictures, Thumbnail};
use crate::probe::{ProbeOutcome, Prober};
use crate::state::{Heartbeat, Reason, State};
use crate::verdict::{Tracker, Verdict};

/// Jitter added to a heartbeat: a tenth of the interval, at most this.
pub const MAX_JITTER: Duration = Duration::from_secs(1);
/// Threads that decode the probes' pictures ([`crate::picture`]).
pub const DECODE_THREADS: usize = 2;
/// Probes whose pictures may wait for a decoding thread; the next one goes without (its
/// heartbeat is judged without pictures, at once) rather than wait. A thousand cameras at a
/// 15 s heartbeat make 67 probes a second; a decode of a 640×360 keyframe and a few frames
/// takes a few milliseconds, so the queue is full only when decoding cannot keep up at all,
/// and a heartbeat whose pictures are queued waits at most this many decodes.
pub const DECODE_QUEUE: usize = 32;
/// How the scheduler decodes the probes' pictures ([`crate::picture::Decoder`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoding {
    /// Decoding threads ([`DECODE_THREADS`]).
    pub threads: usize,
    /// Pictures that may wait for a thread ([`DECODE_QUEUE`]); with no threads and no queue,
    /// every heartbeat goes without a picture, as when decoding never keeps up (for tests).
    pub queue: usize,
    /// Whether the threads spend at most the camera list's `picture_cpu_percent` of one core
    /// ([`crate::picture::budget::Budget`]); `false`: no limit (for tests and benchmarks).
    pub budgeted: bool,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding { threads: DECODE_THREADS, queue: DECODE_QUEUE, budgeted: true }
    }
}

/// What a scheduler does with the probes' pictures.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Where thumbnails are kept (e.g. [`Thumbnails::persisted`]; default in memory).
    pub thumbnails: Thumbnails,
    /// `None`: pictures are not decoded, so there are no thumbnails and no frozen or black
    /// verdicts; liveness and packet loss are judged as ever. Not a setting of the service:
    /// decoding degrades on its own when it cannot keep up ([`crate::picture::budget`]); the
    /// fleet benchmark compares the two.
    pub decoding: Option<Decoding>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { thumbnails: Thumbnails::default(), decoding: Some(Decoding::default()) }
    }
}

/// What the scheduler reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// One probe's result (every probe gives one).
    Heartbeat(Beat),
    /// The camera's state or reason changed with this heartbeat (the first heartbeat of a
    /// camera is a change from `None`).
    Transition(Transition),
}

/// One probe's heartbeat, and when its newest frame arrived on the monotonic clock (ages are
/// measured from it: the heartbeat's own times are wall times, which may step).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Beat {
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    #[serde(skip)]
    pub frame_seen: Option<Instant>,
    /// What became of the probe's pictures; `None` when there were none to decode (a failed
    /// probe) or pictures are not decoded.
    #[serde(skip)]
    pub picture: Option<Fate>,
}

/// A change of a camera's state or of the reason for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub camera_id: String,
    pub at: jiff::Timestamp,
    pub from: Option<State>,
    pub from_reason: Option<Reason>,
    pub to: State,
    pub reason: Option<Reason>,
    pub message: Option<String>,
}

/// The latest known status of one camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraStatus {
    pub camera_id: String,
    pub name: String,
    /// The URL with its password masked.
    pub url: String,
    pub heartbeat_seconds: u32,
    /// `None` until the first heartbeat.
    pub state: Option<State>,
    pub reason: Option<Reason>,
    pub message: Option<String>,
    /// When the current state (and reason) began.
    pub since: Option<jiff::Timestamp>,
    /// The same moment on the monotonic clock, which ages are measured from (a step of the
    /// wall clock moves `since`'s age, not this one's).
    #[serde(skip)]
    pub since_instant: Option<std::time::Instant>,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    /// When the newest frame of any heartbeat arrived (kept while the camera is down).
    pub last_frame_at: Option<jiff::Timestamp>,
    /// RTP packets the sequence numbers showed missing in the last successful RTSP probe;
    /// `None` before one (and for HTTP cameras).
    pub packets_lost: Option<u32>,
    /// As of the last heartbeat: how many heartbeats of the last minutes had their pictures
    /// decoded, and how many went without for the decoding budget; `None` when pictures are
    /// not decoded.
    pub pictures: Option<PictureCounts>,
    pub last_heartbeat: Option<Heartbeat>,
}

/// The latest status of every camera; cheap to read, shared by clone.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard(Arc<RwLock<HashMap<String, CameraStatus>>>);

impl StatusBoard {
    /// Every camera, by name.
    pub fn snapshot(&self) -> Vec<CameraStatus> {
        let mut all: Vec<CameraStatus> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.camera_id.cmp(&b.camera_id)));
        all
    }

    /// One camera by its stable id.
    pub fn get(&self, camera_id: &str) -> Option<CameraStatus> {
        self.read().get(camera_id).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, CameraStatus>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, CameraStatus>> {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A camera's thumbnail ([`crate::picture::Thumbnail`]) from its last heartbeat whose
/// pictures were decoded, and when that probe started.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraThumbnail {
    pub thumbnail: Arc<Thumbnail>,
    pub taken_at: jiff::Timestamp,
}

/// Every camera's newest thumbnail; cheap to read, shared by clone. In memory, and, when made
/// with [`Thumbnails::persisted`], also on disk (`<dir>/<camera id>.jpg`, written atomically
/// off the runtime), so a restarted service shows every camera's last picture at once.
#[derive(Clone, Debug, Default)]
pub struct Thumbnails {
    map: Arc<RwLock<HashMap<String, CameraThumbnail>>>,
    dir: Option<Arc<std::path::Path>>,
}

impl Thumbnails {
    /// Thumbnails kept in `dir` too; those already there (from before a restart) are loaded.
    /// A directory that cannot be made or read is logged, and thumbnails stay in memory.
    pub fn persisted(dir: &std::path::Path) -> Thumbnails {
        let thumbnails = Thumbnails { dir: Some(Arc::from(dir)), ..Thumbnails::default() };
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot keep camera thumbnails on disk");
            return Thumbnails::default();
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return thumbnails };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let (Some(id), Some("jpg")) =
                (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|s| s.to_str()))
            else {
                continue;
            };
            let Ok(jpeg) = std::fs::read(&path) else { continue };
            let Ok(info) = crate::probe::jpeg::inspect(&jpeg) else { continue };
            let taken_at = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .unwrap_or_else(jiff::Timestamp::now);
            let thumbnail = Thumbnail { jpeg, width: info.width, height: info.height };
            thumbnails.insert(id, CameraThumbnail { thumbnail: Arc::new(thumbnail), taken_at });
        }
        thumbnails
    }

    /// The newest thumbnail of the camera with stable id `camera_id`.
    pub fn get(&self, camera_id: &str) -> Option<CameraThumbnail> {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(camera_id).cloned()
    }

    fn insert(&self, camera_id: &str, thumbnail: CameraThumbnail) {
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(camera_id.to_owned(), thumbnail);
    }

    /// Keeps `thumbnail` as the camera's newest (and writes it down, off the runtime).
    pub fn put(&self, camera_id: &str, thumbnail: CameraThumbnail) {
        if let Some(path) = self.file(camera_id) {
            let jpeg = Arc::clone(&thumbnail.thumbnail);
            tokio::task::spawn_blocking(move || {
                let tmp = path.with_extension("jpg.tmp");
                if let Err(e) = std::fs::write(&tmp, &jpeg.jpeg).and_then(|()| std::fs::rename(&tmp, &path)) {
                    tracing::debug!(file = %path.display(), error = %e, "camera thumbnail not written");
                }
            });
        }
        self.insert(camera_id, thumbnail);
    }

    /// Drops the camera's thumbnail (it was removed, or another camera took its id).
    pub fn forget(&self, camera_id: &str) {
        if let Some(path) = self.file(camera_id) {
            let _ = std::fs::remove_file(path);
        }
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(camera_id);
    }

    /// The file of a camera's thumbnail; none for ids that are not plain file names.
    fn file(&self, camera_id: &str) -> Option<std::path::PathBuf> {
        let plain = !camera_id.is_empty()
            && !camera_id.starts_with('.')
            && camera_id.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        self.dir.as_ref().filter(|_| plain).map(|d| d.join(format!("{camera_id}.jpg")))
    }
}

/// A running scheduler.
#[derive(Debug)]
pub struct Scheduler {
    board: StatusBoard,
    thumbnails: Thumbnails,
    task: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    /// Starts probing the cameras of `cameras` (and of every later value) with `prober`;
    /// events go to `events`. Stops when `shutdown` is cancelled. Must be called from a
    /// tokio runtime.
    pub fn spawn<P: Prober>(
        prober: P,
        cameras: watch::Receiver<Arc<CamerasConfig>>,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
    ) -> Scheduler {
        Scheduler::spawn_with(prober, cameras, events, shutdown, SchedulerOptions::default())
    }

    /// The same, with `options` for pictures and thumbnails.
    pub fn spawn_with<P: Prober>(
        prober: P,
        cameras: watch::Receiver<Arc<CamerasConfig>>,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
        options: SchedulerOptions,
    ) -> Scheduler {
        let SchedulerOptions { thumbnails, decoding } = options;
        let board = StatusBoard::default();
        // The cameras are on the board from the start, so the API lists them at once.
        for camera in &cameras.borrow().streams {
            let spec = Spec { camera: camera.clone(), settings: cameras.borrow().probe_settings(camera) };
            show(&board, &camera.stable_id(), &spec);
        }
        let share = cameras.borrow().picture_cpu_percent / 100.0;
        let decoder =
            decoding.map(|d| Decoder::with_budget(d.threads, d.queue, d.budgeted.then(|| Budget::new(share))));
        let task = tokio::spawn(supervise(
            Arc::new(prober),
            decoder,
            cameras,
            events,
            shutdown,
            board.clone(),
            thumbnails.clone(),
        ));
        Scheduler { board, thumbnails, task }
    }

    /// Every camera's newest thumbnail (clone it into the web service's state).
    pub fn thumbnails(&self) -> Thumbnails {
        self.thumbnails.clone()
    }

    /// The status board (clone it into the web service's state).
    pub fn statuses(&self) -> StatusBoard {
        self.board.clone()
    }

    /// Waits until the scheduler stopped (after `shutdown` was cancelled): every probe is
    /// abandoned and every camera task has ended.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Spec {
    camera: Camera,
    settings: ProbeSettings,
}

struct CameraTask {
    spec: watch::Sender<Spec>,
    stop: CancellationToken,
}

/// Shared by all camera tasks.
struct Fleet<P> {
    prober: Arc<P>,
    /// `None`: pictures are not decoded.
    decoder: Option<Decoder>,
    semaphore: Arc<Semaphore>,
    events: mpsc::Sender<Event>,
    board: StatusBoard,
    thumbnails: Thumbnails,
    /// Slots of every camera are counted from here.
    origin: Instant,
}

async fn supervise<P: Prober>(
    prober: Arc<P>,
    decoder: Option<Decoder>,
    mut cameras: watch::Receiver<Arc<CamerasConfig>>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
    board: StatusBoard,
    thumbnails: Thumbnails,
) {
    let first = cameras.borrow_and_update().clone();
    let mut permits = first.max_concurrent_probes.max(1);
    let fleet = Arc::new(Fleet {
        prober,
        decoder,
        semaphore: Arc::new(Semaphore::new(permits as usize)),
        events,
        board,
        thumbnails,
        origin: Instant::now(),
    });
    let mut tasks: HashMap<String, CameraTask> = HashMap::new();
    let mut set = JoinSet::new();
    let mut config = first;
    loop {
        permits = resize(&fleet.semaphore, permits, config.max_concurrent_probes.max(1));
        if let Some(decoder) = &fleet.decoder {
            decoder.set_share(config.picture_cpu_percent / 100.0);
        }
        apply(&fleet, &config, &mut tasks, &mut set, &shutdown);
        tracing::debug!(cameras = tasks.len(), max_concurrent_probes = permits, "camera list applied");
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = cameras.changed() => {
                if changed.is_err() {
                    // Nobody can send a new list; keep the last one until shutdown.
                    shutdown.cancelled().await;
                    break;
                }
                config = cameras.borrow_and_update().clone();
            }
            // Reap tasks that ended (removed cameras) so the set does not grow.
            Some(_) = set.join_next(), if !set.is_empty() => {}
        }
    }
    for task in tasks.values() {
        task.stop.cancel();
    }
    while set.join_next().await.is_some() {}
}

/// Grows or shrinks the global limit; shrinking takes the permits as they come free.
fn resize(semaphore: &Arc<Semaphore>, current: u32, wanted: u32) -> u32 {
    if wanted > current {
        semaphore.add_permits((wanted - current) as usize);
    } else if wanted < current {
        let extra = current - wanted;
        let semaphore = semaphore.clone();
        tokio::spawn(async move {
            if let Ok(p) = semaphore.acquire_many_owned(extra).await {
                p.forget();
            }
        });
    }
    wanted
}

fn apply<P: Prober>(
    fleet: &Arc<Fleet<P>>,
    config: &CamerasConfig,
    tasks: &mut HashMap<String, CameraTask>,
    set: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) {
    let mut wanted = HashMap::new();
    for camera in &config.streams {
        let spec = Spec { camera: camera.clone(), settings: config.probe_settings(camera) };
        wanted.insert(camera.stable_id(), spec);
    }
    tasks.retain(|id, task| {
        let keep = wanted.contains_key(id);
        if !keep {
            task.stop.cancel();
            fleet.board.write().remove(id);
            fleet.thumbnails.forget(id);
            tracing::info!(camera = %id, "camera removed; its heartbeats stop");
        }
        keep
    });
    for (id, spec) in wanted {
        show(&fleet.board, &id, &spec);
        match tasks.get(&id) {
            Some(task) => {
                task.spec.send_if_modified(|current| {
                    let modified = *current != spec;
                    *current = spec;
                    modified
                });
            }
            None => {
                let (tx, rx) = watch::channel(spec);
                let stop = shutdown.child_token();
                set.spawn(camera_loop(fleet.clone(), id.clone(), rx, stop.clone()));
                tasks.insert(id, CameraTask { spec: tx, stop });
            }
        }
    }
}

/// Puts a camera on the board (state unknown until its first heartbeat) or updates its name,
/// URL and interval.
fn show(board: &StatusBoard, id: &str, spec: &Spec) {
    let mut board = board.write();
    let status = board.entry(id.to_owned()).or_insert_with(|| CameraStatus {
        camera_id: id.to_owned(),
        name: String::new(),
        url: String::new(),
        heartbeat_seconds: 0,
        state: None,
        reason: None,
        message: None,
        since: None,
        since_instant: None,
        consecutive_failures: 0,
        last_frame_at: None,
        packets_lost: None,
        pictures: None,
        last_heartbeat: None,
    });
    status.name.clone_from(&spec.camera.name);
    status.url = spec.camera.masked_url();
    status.heartbeat_seconds = spec.settings.heartbeat_seconds;
}

/// Where in its interval a camera's heartbeats fall, from 0 to 1, from its id (FNV-1a, then
/// murmur3's finaliser so ids that differ in one digit land far apart; the same in every
/// run).
pub fn phase(camera_id: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in camera_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The first slot of the camera at or after `now`: `origin + phase·interval + k·interval`.
fn next_slot(origin: Instant, now: Instant, interval: Duration, phase: f64) -> Instant {
    let first = origin + interval.mul_f64(phase);
    if now <= first {
        return first;
    }
    let periods = ((now - first).as_secs_f64() / interval.as_secs_f64()).ceil();
    first + interval.mul_f64(periods)
}

/// Random jitter from a per-camera xorshift generator.
struct Jitter(u64);

impl Jitter {
    fn new(camera_id: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Jitter((phase(camera_id).to_bits() ^ nanos) | 1)
    }

    fn next(&mut self, interval: Duration) -> Duration {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let max = (interval / 10).min(MAX_JITTER);
        max.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

async fn camera_loop<P: Prober>(
    fleet: Arc<Fleet<P>>,
    id: String,
    mut spec: watch::Receiver<Spec>,
    stop: CancellationToken,
) {
    let mut current = spec.borrow_and_update().clone();
    let phase = phase(&id);
    let mut jitter = Jitter::new(&id);
    let mut tracker = Tracker::default();
    let mut picture_log = PictureLog::default();
    let interval = |s: &Spec| Duration::from_secs(u64::from(s.settings.heartbeat_seconds.max(1)));
    let mut slot = next_slot(fleet.origin, Instant::now(), interval(&current), phase);
    loop {
        let wake = slot + jitter.next(interval(&current));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(wake) => {}
            changed = spec.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = spec.borrow_and_update().clone();
                if new.camera.url != current.camera.url {
                    // Another camera behind the same id: its history starts now, and the
                    // other camera's picture is not shown for it.
                    tracker = Tracker::default();
                    picture_log = PictureLog::default();
                    fleet.thumbnails.forget(&id);
                }
                current = new;
                slot = next_slot(fleet.origin, Instant::now(), interval(&current), phase);
                continue;
            }
        }
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            p = fleet.semaphore.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let at = jiff::Timestamp::now();
        let step = Duration::from_secs(u64::from(current.settings.timeout_seconds.max(1)));
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            o = fleet.prober.probe(&current.camera.url, step, current.settings.verify_tls) => o,
        };
        drop(permit);
        // The probe's slot is free again; its pictures are decoded off the runtime, unless
        // the decoding queue is full, which answers at once.
        let coded = outcome.as_ref().ok().and_then(|p| p.coded.clone());
        let (pictures, fate) = match (&fleet.decoder, coded) {
            (Some(decoder), Some(coded)) => tokio::select! {
                () = stop.cancelled() => return,
                decoded = decoder.decode(coded) => decoded_pictures(&id, decoded),
            },
            _ => (None, None),
        };
        let now = Instant::now();
        if let Some(fate) = fate {
            picture_log.note(now, fate);
        }
        let verdict = tracker.judge(now, &outcome, pictures.as_ref(), &current.settings);
        if let Some(thumbnail) = pictures.and_then(|p| p.thumbnail) {
            fleet.thumbnails.put(&id, CameraThumbnail { thumbnail: Arc::new(thumbnail), taken_at: at });
        }
        let observed = Observed {
            at,
            outcome: &outcome,
            verdict: &verdict,
            failures: tracker.failures(),
            picture: fate,
            pictures: fleet.decoder.as_ref().map(|_| picture_log.counts(now)),
        };
        let events = record(&fleet.board, &id, &observed);
        for event in events {
            tokio::select! {
                () = stop.cancelled() => return,
                // A gone receiver only means nobody stores heartbeats; keep probing.
                _ = fleet.events.send(event) => {}
            }
        }
        slot = next_slot(fleet.origin, Instant::now(), interval(&current), phase);
    }
}

/// The pictures of a decode, if there are, and what became of them (a failure is logged: it
/// never fails a heartbeat).
fn decoded_pictures(id: &str, decoded: Result<Pictures, DecodeError>) -> (Option<Pictures>, Option<Fate>) {
    match decoded {
        Ok(p) => (Some(p), Some(Fate::Decoded)),
        Err(DecodeError::Busy) => {
            tracing::debug!(camera = %id, "camera decoding queue full; this heartbeat goes without a picture");
            (None, Some(Fate::Skipped))
        }
        Err(e) => {
            tracing::debug!(camera = %id, error = %e, "the probe's pictures could not be decoded");
            (None, None)
        }
    }
}

/// One heartbeat as the board and the events take it.
struct Observed<'a> {
    /// When the probe started.
    at: jiff::Timestamp,
    outcome: &'a ProbeOutcome,
    verdict: &'a Verdict,
    /// Failed probes in a row.
    failures: u32,
    /// What became of this heartbeat's pictures.
    picture: Option<Fate>,
    /// The camera's picture counts, with this heartbeat.
    pictures: Option<PictureCounts>,
}

/// Puts a heartbeat on the board; returns the events it makes.
fn record(board: &StatusBoard, id: &str, observed: &Observed<'_>) -> Vec<Event> {
    let Observed { at, outcome, verdict, failures, picture, pictures } = *observed;
    let proof = outcome.as_ref().ok();
    let heartbeat = Heartbeat {
        camera_id: id.to_owned(),
        at,
        state: verdict.state,
        reason: verdict.reason,
        message: verdict.message.clone(),
        latency_ms: proof.map(|p| u32::try_from(p.latency.as_millis()).unwrap_or(u32::MAX)),
        codec: proof.map(|p| p.codec.clone()),
        width: proof.and_then(|p| p.width),
        height: proof.and_then(|p| p.height),
        last_frame_at: proof.map(|p| p.last_frame_at),
        clock_synchronized: None,
    };
    let mut events = Vec::with_capacity(2);
    let mut board = board.write();
    // The camera was removed while it was probed: nothing to report.
    let Some(status) = board.get_mut(id) else { return events };
    if status.state != Some(verdict.state) || status.reason != verdict.reason {
        tracing::info!(
            camera = %id,
            from = ?status.state.map(State::as_str),
            to = %verdict.state,
            reason = ?verdict.reason.map(Reason::as_str),
            detail = verdict.message.as_deref(),
            "camera state changed"
        );
        events.push(Event::Transition(Transition {
            camera_id: id.to_owned(),
            at,
            from: status.state,
            from_reason: status.reason,
            to: verdict.state,
            reason: verdict.reason,
            message: verdict.message.clone(),
        }));
        status.since = Some(at);
        status.since_instant = Some(std::time::Instant::now());
    }
    status.state = Some(verdict.state);
    status.reason = verdict.reason;
    status.message.clone_from(&verdict.message);
    status.consecutive_failures = failures;
    status.pictures = pictures;
    if let Some(p) = proof {
        status.last_frame_at = Some(p.last_frame_at);
        status.packets_lost = p.packets_lost;
    }
    status.last_heartbeat = Some(heartbeat.clone());
    tracing::debug!(camera = %id, state = %verdict.state, reason = ?verdict.reason.map(Reason::as_str), "heartbeat");
    events.insert(0, Event::Heartbeat(Beat { heartbeat, frame_seen: proof.map(|p| p.last_frame), picture }));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal, well-framed baseline JPEG header of 8×6 (not decodable: no tables).
    fn tiny_jpeg() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x06, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00];
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        j
    }

    #[tokio::test]
    async fn thumbnails_kept_on_disk_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let at: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let thumb = |jpeg: Vec<u8>| CameraThumbnail {
            thumbnail: Arc::new(Thumbnail { jpeg, width: 8, height: 6 }),
            taken_at: at,
        };
        let before = Thumbnails::persisted(dir.path());
        before.put("gate", thumb(tiny_jpeg()));
        before.put("../escape", thumb(tiny_jpeg()));
        let file = dir.path().join("gate.jpg");
        ds_tests::wait::wait_until_async("the thumbnail written down", Duration::from_secs(5), || {
            let written = std::fs::read(&file).ok() == Some(tiny_jpeg());
            async move { if written { Ok(()) } else { Err("not yet".to_owned()) } }
        })
        .await;
        let after = Thumbnails::persisted(dir.path());
        let back = after.get("gate").expect("the thumbnail came back");
        assert_eq!((back.thumbnail.jpeg.clone(), back.thumbnail.width, back.thumbnail.height), (tiny_jpeg(), 8, 6));
        assert!(after.get("../escape").is_none(), "an id that is no file name stays in memory only");
        after.forget("gate");
        assert!(!file.exists() && after.get("gate").is_none());
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            let p = phase(&format!("camera-{i}"));
            assert!((0.0..1.0).contains(&p));
            buckets[(p * 10.0) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (70..=130).contains(&n)), "{buckets:?}");
        assert_eq!(phase("gate"), phase("gate"), "the same id always gets the same phase");
    }

    #[test]
    fn slots_are_fixed_in_the_interval() {
        let origin = Instant::now();
        let i = Duration::from_secs(10);
        assert_eq!(next_slot(origin, origin, i, 0.5), origin + Duration::from_secs(5));
        assert_eq!(next_slot(origin, origin + Duration::from_secs(5), i, 0.5), origin + Duration::from_secs(5));
        assert_eq!(next_slot(origin, origin + Duration::from_millis(5001), i, 0.5), origin + Duration::from_secs(15));
        assert_eq!(next_slot(origin, origin + Duration::from_secs(31), i, 0.0), origin + Duration::from_secs(40));
    }
}
