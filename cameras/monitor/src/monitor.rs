//! Starts the camera monitor (the dashboard runs it): the list and its file watch, the
//! heartbeat database and its writer, the prober, and the tasks that tie them together.
//!
//! Every heartbeat the prober emits goes to the database writer and is announced to the
//! pages; the scheduler's status board is what the grid, the API and `/metrics` read. Each
//! heartbeat is marked with whether the wall clock was synchronised when it was recorded. The
//! database is optional: when it cannot be opened, the monitor runs without history and says
//! so, rather than not monitoring at all.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use ds_camera_db::{Batching, CameraInfo, Options, Retention, Store, Writer};
use ds_cameras::{Beat, Event, NetworkProber, Scheduler, SchedulerOptions, Thumbnails};
use ds_config::{CamerasConfig, WebConfig};
use ds_wire::system::ClockSync;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::live::Remembered;
use crate::{Fleet, Live};

/// Heartbeats that may wait for the database writer before the prober slows down.
const EVENT_QUEUE: usize = 10_000;

/// How often old heartbeats are rolled up and pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The running monitor; [`CameraMonitor::stop`] drains it.
#[derive(Debug)]
pub struct CameraMonitor {
    /// The camera list that runs, and its editor.
    pub fleet: Arc<Fleet>,
    /// What the prober found, for the grid, the API and `/metrics`.
    pub live: Arc<Live>,
    /// The history; `None` when the database could not be opened: the prober still runs
    /// and the grid shows live states, without history.
    pub store: Option<Store>,
    /// Each camera's newest thumbnail, from its last decoded heartbeat.
    pub thumbnails: Thumbnails,
    tasks: JoinSet<()>,
    scheduler: Option<Scheduler>,
    writer: Option<Writer>,
    stop: CancellationToken,
}

fn retention(config: &WebConfig) -> Retention {
    Retention { raw_days: config.camera_history.raw_days, rollup_days: config.camera_history.hourly_days }
}

/// What the store is told about the configured cameras (ids, names, intervals).
fn infos(list: &CamerasConfig) -> Vec<CameraInfo> {
    list.streams
        .iter()
        .map(|c| CameraInfo {
            id: c.stable_id(),
            name: c.name.clone(),
            heartbeat: Duration::from_secs(c.heartbeat_seconds.unwrap_or(list.heartbeat_seconds).into()),
        })
        .collect()
}

/// Each camera's state, when it began and how long it had lasted by its newest heartbeat, as
/// the database remembers them. The state is the newest stored one (the stored timeline never
/// goes backwards, so it is the last one recorded whatever the clock did). How long it lasted
/// is the span between the two stored times, never an age against the clock now. A start
/// ahead of the wall clock `clock` (history stored ahead of a clock that stepped back) is shown
/// as `clock`: the page shows no start in the future.
fn remembered(store: &Store, clock: Timestamp) -> Result<HashMap<String, Remembered>, ds_camera_db::Error> {
    let mut out = HashMap::new();
    for latest in store.latest_all()? {
        let since = store
            .state_changes(&latest.camera_id, None, 1)?
            .changes
            .first()
            .filter(|c| c.to == latest.state)
            .map_or(latest.at, |c| c.at);
        let lasted = Duration::try_from(latest.at.duration_since(since)).unwrap_or_default();
        out.insert(latest.camera_id, Remembered { state: latest.state, since: since.min(clock), lasted });
    }
    Ok(out)
}

impl CameraMonitor {
    /// Opens everything and starts the tasks (must run inside a tokio runtime); `clock` tells whether the wall clock is synchronised, for the mark
    /// on each heartbeat.
    pub async fn start(config: &WebConfig, clock: watch::Receiver<ClockSync>) -> anyhow::Result<CameraMonitor> {
        let stop = CancellationToken::new();
        let fleet = Arc::new(Fleet::open(&config.cameras_file));
        let store = open_store(config).await;
        let writer = match &store {
            Some(store) => match store.writer(Batching::default()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "camera history disabled: cannot start the database writer");
                    None
                }
            },
            None => None,
        };
        let mut before = HashMap::new();
        if let Some(store) = store.clone() {
            match tokio::task::spawn_blocking(move || remembered(&store, Timestamp::now())).await {
                Ok(Ok(r)) => before = r,
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the cameras' last states; starting afresh"),
                Err(_) => {}
            }
        }

        let prober = NetworkProber::new().map_err(|e| anyhow::anyhow!("cannot set up the camera prober: {e}"))?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        // Thumbnails beside the history, so a restart shows every camera's last picture.
        let thumbnails = Thumbnails::persisted(&config.database.with_extension("thumbnails"));
        let options = SchedulerOptions { thumbnails, ..SchedulerOptions::default() };
        let scheduler = Scheduler::spawn_with(prober, fleet.subscribe(), events_tx, stop.child_token(), options);
        let live = Arc::new(Live::new(scheduler.statuses(), before));
        let thumbnails = scheduler.thumbnails();

        let mut tasks = JoinSet::new();
        tasks.spawn(Arc::clone(&fleet).watch(stop.clone()));
        if let Some(store) = store.clone() {
            tasks.spawn(sync_cameras(store.clone(), fleet.subscribe(), stop.clone()));
            tasks.spawn(prune(store, stop.clone()));
        }
        tasks.spawn(consume(events, Arc::clone(&live), writer.clone(), clock));
        Ok(CameraMonitor { fleet, live, store, thumbnails, tasks, scheduler: Some(scheduler), writer, stop })
    }

    /// Stops the prober and the tasks, and commits what the writer still holds.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(s) = self.scheduler.take() {
            s.join().await;
        }
        while self.tasks.join_next().await.is_some() {}
        if let Some(w) = self.writer.take() {
            w.shutdown().await;
        }
    }
}

async fn open_store(config: &WebConfig) -> Option<Store> {
    let options = Options { retention: retention(config), ..Options::default() };
    let path = config.database.clone();
    match tokio::task::spawn_blocking(move || Store::open(&path, options)).await {
        Ok(Ok(store)) => Some(store),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "camera history disabled: cannot open the database");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "camera history disabled: the database task failed");
            None
        }
    }
}

/// Every heartbeat to the database and the pages, until the prober stops. (State changes
/// are derived by the store from the heartbeats; the scheduler's transitions are only
/// logged by it.)
async fn consume(
    mut events: mpsc::Receiver<Event>,
    live: Arc<Live>,
    writer: Option<Writer>,
    clock: watch::Receiver<ClockSync>,
) {
    while let Some(event) = events.recv().await {
        let Event::Heartbeat(Beat { heartbeat: mut hb, frame_seen, .. }) = event else { continue };
        let (id, state) = (hb.camera_id.clone(), hb.state);
        if let Some(seen) = frame_seen {
            live.frame_arrived(&id, seen.into_std());
        }
        hb.clock_synchronized = clock.borrow().synchronized;
        // A failure that continues a DOWN from before a restart is stored as DOWN (see
        // `live`), so the history shows no state change that did not happen.
        hb.state = live.stored_state(&id, state);
        if let Some(w) = &writer
            && let Err(e) = w.record(hb)
        {
            tracing::warn!(camera = %id, error = %e, "heartbeat not stored");
        }
        live.announce(&id, state);
    }
}

/// Keeps the database's camera names and intervals as the list says.
async fn sync_cameras(store: Store, mut list: watch::Receiver<Arc<CamerasConfig>>, stop: CancellationToken) {
    loop {
        let cameras = infos(&list.borrow_and_update());
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.sync_cameras(&cameras, Timestamp::now())).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record the camera list in the database"),
            Err(e) => tracing::warn!(error = %e, "camera list sync task failed"),
            Ok(Ok(())) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = list.changed() => if changed.is_err() { return },
        }
    }
}

/// Rolls up and prunes every [`PRUNE_INTERVAL`]: by the stored data, never by the clock
/// (`ds_camera_db`'s retention), which is only compared with it.
async fn prune(store: Store, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune(Timestamp::now())).await {
            Ok(Ok(report)) => tracing::debug!(?report, "camera history pruned"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune the camera history"),
            Err(e) => tracing::warn!(error = %e, "camera history prune task failed"),
        }
    }
}
