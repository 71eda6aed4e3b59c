//! Starts the camera monitor inside the web service: the list and its file watch, the
//! heartbeat database and its writer, the prober, and the tasks that tie them together.
//!
//! Every heartbeat the prober emits goes to the live map (the grid, the API, `/metrics`) and
//! to the database writer. The database is optional: when it cannot be opened, the monitor
//! runs without history and says so, rather than not monitoring at all.

use std::sync::Arc;
use std::time::Duration;

use ds_camera_db::{Batching, CameraInfo, Options, Retention, Store, Writer};
use ds_cameras::Heartbeat;
use ds_config::{CamerasConfig, WebConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::live::LiveCamera;
use super::{Cameras, Fleet, Live};

/// How often old heartbeats are rolled up and pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The running monitor; [`CameraMonitor::stop`] drains it.
#[derive(Debug)]
pub struct CameraMonitor {
    pub cameras: Cameras,
    tasks: JoinSet<()>,
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

/// Each camera's newest heartbeat and when it entered that state, from the database.
fn seeds(store: &Store) -> Result<Vec<LiveCamera>, ds_camera_db::Error> {
    let mut out = Vec::new();
    for latest in store.latest_all()? {
        let since = store
            .state_changes(&latest.camera_id, None, 1)?
            .changes
            .first()
            .filter(|c| c.to == latest.state)
            .map_or(latest.at, |c| c.at);
        out.push(LiveCamera { latest, since });
    }
    Ok(out)
}

impl CameraMonitor {
    /// Opens everything and starts the tasks. `probe` starts the prober on the list and
    /// returns where its heartbeats come out.
    pub async fn start(
        config: &WebConfig,
        probe: impl FnOnce(watch::Receiver<Arc<CamerasConfig>>, CancellationToken) -> mpsc::Receiver<Heartbeat>,
    ) -> CameraMonitor {
        let stop = CancellationToken::new();
        let fleet = Arc::new(Fleet::open(&config.cameras_file));
        let live = Arc::new(Live::default());
        let options = Options { retention: retention(config), ..Options::default() };
        let path = config.database.clone();
        let store = match tokio::task::spawn_blocking(move || Store::open(&path, options)).await {
            Ok(Ok(store)) => Some(store),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "camera history disabled: cannot open the database");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "camera history disabled: the database task failed");
                None
            }
        };
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
        if let Some(store) = store.clone() {
            match tokio::task::spawn_blocking(move || seeds(&store)).await {
                Ok(Ok(s)) => live.seed(s),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the cameras' last states; starting afresh"),
                Err(_) => {}
            }
        }

        let mut tasks = JoinSet::new();
        tasks.spawn(Arc::clone(&fleet).watch(stop.clone()));
        if let Some(store) = store.clone() {
            tasks.spawn(sync_cameras(store.clone(), fleet.subscribe(), stop.clone()));
            tasks.spawn(prune(store, stop.clone()));
        }
        let heartbeats = probe(fleet.subscribe(), stop.child_token());
        tasks.spawn(consume(heartbeats, Arc::clone(&live), writer.clone()));
        CameraMonitor { cameras: Cameras::new(fleet, live, store), tasks, writer, stop }
    }

    /// Stops the prober and the tasks, and commits what the writer still holds.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(w) = self.writer.take() {
            w.shutdown().await;
        }
    }
}

/// Every heartbeat to the live map and the database, until the prober stops.
async fn consume(mut rx: mpsc::Receiver<Heartbeat>, live: Arc<Live>, writer: Option<Writer>) {
    while let Some(hb) = rx.recv().await {
        if let Some(w) = &writer
            && let Err(e) = w.record(hb.clone())
        {
            tracing::warn!(camera = %hb.camera_id, error = %e, "heartbeat not stored");
        }
        live.apply(hb);
    }
}

/// Keeps the database's camera names and intervals as the list says.
async fn sync_cameras(store: Store, mut list: watch::Receiver<Arc<CamerasConfig>>, stop: CancellationToken) {
    loop {
        let cameras = infos(&list.borrow_and_update());
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.sync_cameras(&cameras, jiff::Timestamp::now())).await {
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

/// Rolls up and prunes every [`PRUNE_INTERVAL`].
async fn prune(store: Store, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune(jiff::Timestamp::now())).await {
            Ok(Ok(report)) => tracing::debug!(?report, "camera history pruned"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune the camera history"),
            Err(e) => tracing::warn!(error = %e, "camera history prune task failed"),
        }
    }
}
