//! What the prober knows now, as the API shows it: the scheduler's [`StatusBoard`], with
//! each camera's state carried over a restart of the service (from the store), so a camera
//! down since last night does not look down "since a minute ago" after an update, and the
//! watchdog's grace period does not start over either. Every heartbeat is also announced to
//! the pages that listen.
//!
//! A restarted prober counts a camera's failures afresh, so a camera that was DOWN fails
//! its first heartbeats as PENDING (within its retries). It has been DOWN all along: as long
//! as every heartbeat of this run continues the remembered state, the camera is shown, and
//! its heartbeats are stored, in the remembered state since the remembered start. Without
//! this, each restart of the web service would briefly end every DOWN camera (the watchdog
//! would send "resolved", then alert again after its grace period) and store two state
//! changes that never happened.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

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
    /// Cameras with a heartbeat in this run that did not continue the remembered state: the
    /// board's state and `since` are theirs from then on.
    diverged: RwLock<HashSet<String>>,
    /// When each camera's newest frame arrived, on the monotonic clock: the ages `/metrics`
    /// shows, which a step of the wall clock must not change.
    frames: RwLock<HashMap<String, Instant>>,
    events: broadcast::Sender<CameraStatus>,
}

/// Whether a heartbeat in state `now` continues the remembered state `was`: the same state,
/// or a failure within the retries after a remembered DOWN (see the module doc).
fn continues(was: State, now: State) -> bool {
    now == was || (was == State::Down && now == State::Pending)
}

impl Live {
    pub fn new(board: StatusBoard, remembered: HashMap<String, (State, Timestamp)>) -> Live {
        Live {
            board,
            remembered,
            diverged: RwLock::default(),
            frames: RwLock::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    /// The remembered state of `id` and its start, when every heartbeat of this run so far,
    /// and one in `state`, continue it.
    fn continued(&self, id: &str, state: State) -> Option<(State, Timestamp)> {
        let &(was, began) = self.remembered.get(id)?;
        let diverged = self.diverged.read().unwrap_or_else(|p| p.into_inner()).contains(id);
        (continues(was, state) && !diverged).then_some((was, began))
    }

    /// The board's status, in the remembered state since its remembered start while this
    /// run continues it.
    fn amend(&self, mut s: CameraStatus) -> CameraStatus {
        if let (Some(state), Some(since)) = (s.state, s.since)
            && let Some((was, began)) = self.continued(&s.camera_id, state)
            && began <= since
        {
            s.state = Some(was);
            s.since = Some(began);
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

    /// The state a heartbeat of `id` in `state` is stored with: DOWN for a failure that
    /// continues a remembered DOWN (the prober's PENDING only means it restarted).
    pub fn stored_state(&self, id: &str, state: State) -> State {
        match self.continued(id, state) {
            Some((State::Down, _)) => State::Down,
            _ => state,
        }
    }

    /// A heartbeat of `id` in `state` arrived: note whether it continues the remembered
    /// state, tell the pages.
    pub fn announce(&self, id: &str, state: State) {
        if let Some(&(was, _)) = self.remembered.get(id)
            && !continues(was, state)
        {
            self.diverged.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned());
        }
        if let Some(s) = self.get(id) {
            // Nobody listening is fine.
            let _ = self.events.send(s);
        }
    }

    /// A heartbeat of `id` brought a frame, which arrived at `seen` on the monotonic clock (as
    /// the probe measured it: no wall time is involved, so a step cannot make its age absurd).
    pub fn frame_arrived(&self, id: &str, seen: Instant) {
        self.frames.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), seen);
    }

    /// How long ago the newest frame of `id` arrived, on the monotonic clock; `None` before
    /// the first frame of this run.
    pub fn last_frame_age(&self, id: &str) -> Option<Duration> {
        self.frames.read().unwrap_or_else(|p| p.into_inner()).get(id).map(Instant::elapsed)
    }

    /// Every heartbeat from now on, for the page's live updates.
    pub fn subscribe(&self) -> broadcast::Receiver<CameraStatus> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_after_a_remembered_down_continue_it_until_video_arrives() {
        let began: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let remembered =
            HashMap::from([("gate".to_owned(), (State::Down, began)), ("lab".to_owned(), (State::Up, began))]);
        let live = Live::new(StatusBoard::default(), remembered);
        assert_eq!(live.stored_state("gate", State::Pending), State::Down);
        assert_eq!(live.continued("gate", State::Down), Some((State::Down, began)));
        assert_eq!(live.stored_state("lab", State::Pending), State::Pending, "an UP camera's failure is news");
        assert_eq!(live.stored_state("new", State::Pending), State::Pending);
        live.announce("gate", State::Pending);
        assert_eq!(live.stored_state("gate", State::Pending), State::Down, "still continuing");
        live.announce("gate", State::Up);
        assert_eq!(live.continued("gate", State::Down), None, "video arrived: later failures are new");
        assert_eq!(live.stored_state("gate", State::Pending), State::Pending);
    }

    #[test]
    fn a_frame_age_runs_on_the_monotonic_clock() {
        let live = Live::new(StatusBoard::default(), HashMap::new());
        assert_eq!(live.last_frame_age("gate"), None);
        let seen = Instant::now() - Duration::from_millis(1500);
        live.frame_arrived("gate", seen);
        let age = live.last_frame_age("gate").unwrap();
        assert!(age >= Duration::from_millis(1500) && age < Duration::from_secs(30), "{age:?}");
    }
}
