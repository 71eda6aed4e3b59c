//! What the prober knows now, as the API shows it: the scheduler's [`StatusBoard`], with
//! the start of each camera's state carried over a restart of the service (from the store),
//! so a camera down since last night does not look down "since a minute ago" after an
//! update, and the watchdog's grace period does not start over either. Every heartbeat is
//! also announced to the pages that listen.

use std::collections::HashMap;
use std::sync::RwLock;

use ds_cameras::{CameraStatus, State, StatusBoard};
use jiff::Timestamp;
use tokio::sync::broadcast;

/// How many heartbeats a slow page may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

#[derive(Debug)]
pub struct Live {
    board: StatusBoard,
    /// Each camera's state and its start, as the store remembered them when this run began.
    remembered: HashMap<String, (State, Timestamp)>,
    /// Each camera's first heartbeat in this run.
    first_heartbeat: RwLock<HashMap<String, Timestamp>>,
    events: broadcast::Sender<CameraStatus>,
}

impl Live {
    pub fn new(board: StatusBoard, remembered: HashMap<String, (State, Timestamp)>) -> Live {
        Live { board, remembered, first_heartbeat: RwLock::default(), events: broadcast::channel(EVENT_BACKLOG).0 }
    }

    /// The board's status; when the camera is still in the state it was in before this run
    /// (its state began with this run's first heartbeat and matches what the store
    /// remembered), `since` is when that state really began.
    fn amend(&self, mut s: CameraStatus) -> CameraStatus {
        let first = self.first_heartbeat.read().unwrap_or_else(|p| p.into_inner()).get(&s.camera_id).copied();
        if let (Some(state), Some(since), Some((was, began))) = (s.state, s.since, self.remembered.get(&s.camera_id))
            && state == *was
            && first == Some(since)
            && *began < since
        {
            s.since = Some(*began);
        }
        s
    }

    pub fn get(&self, id: &str) -> Option<CameraStatus> {
        self.board.get(id).map(|s| self.amend(s))
    }

    /// Every camera on the board, by id.
    pub fn all(&self) -> HashMap<String, CameraStatus> {
        self.board.snapshot().into_iter().map(|s| (s.camera_id.clone(), self.amend(s))).collect()
    }

    /// A heartbeat of `id` taken at `at` arrived: note the run's first, tell the pages.
    pub fn announce(&self, id: &str, at: Timestamp) {
        self.first_heartbeat.write().unwrap_or_else(|p| p.into_inner()).entry(id.to_owned()).or_insert(at);
        if let Some(s) = self.get(id) {
            // Nobody listening is fine.
            let _ = self.events.send(s);
        }
    }

    /// Every heartbeat from now on, for the page's live updates.
    pub fn subscribe(&self) -> broadcast::Receiver<CameraStatus> {
        self.events.subscribe()
    }
}
