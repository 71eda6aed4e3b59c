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

/// A camera's state as the store remembered it when this run began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remembered {
    pub state: State,
    /// When the state began (what the page shows).
    pub since: Timestamp,
    /// How long it had lasted by the newest stored heartbeat: the span between two stored
    /// timestamps of the earlier run, so no reading of the clock now (which NTP may still be
    /// about to step) enters an age. The time the service was down is not counted.
    pub lasted: Duration,
}

#[derive(Debug)]
pub struct Live {
    board: StatusBoard,
    /// Each camera's state as the store remembered it when this run began.
    remembered: HashMap<String, Remembered>,
    /// Cameras with a heartbeat in this run that did not continue the remembered state: the
    /// board's state and `since` are theirs from then on.
    diverged: RwLock<HashSet<String>>,
    /// When each camera's newest frame arrived, on the monotonic clock: the ages `/metrics`
    /// shows, which a step of the wall clock must not change.
    frames: RwLock<HashMap<String, Instant>>,
    /// When this run began: a remembered state's age is what it had lasted then, plus the
    /// time since.
    started: Instant,
    events: broadcast::Sender<CameraStatus>,
}

/// Whether a heartbeat in state `now` continues the remembered state `was`: the same state,
/// or a failure within the retries after a remembered DOWN (see the module doc).
fn continues(was: State, now: State) -> bool {
    now == was || (was == State::Down && now == State::Pending)
}

impl Live {
    pub fn new(board: StatusBoard, remembered: HashMap<String, Remembered>) -> Live {
        Live {
            board,
            remembered,
            diverged: RwLock::default(),
            frames: RwLock::default(),
            started: Instant::now(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    /// The remembered state of `id` and its start, when every heartbeat of this run so far,
    /// and one in `state`, continue it.
    fn continued(&self, id: &str, state: State) -> Option<(State, Timestamp)> {
        let &Remembered { state: was, since: began, .. } = self.remembered.get(id)?;
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

    /// How long the state of `s` (as [`Live::get`] shows it) has lasted, on the monotonic
    /// clock alone, so a step of the wall clock changes no age: from its instant within this
    /// run; for a state carried over from before this run, what it had lasted by the earlier
    /// run's newest heartbeat ([`Remembered::lasted`]) plus the time since this run began.
    /// `None` before the first heartbeat.
    pub fn state_age(&self, s: &CameraStatus) -> Option<Duration> {
        if let (Some(state), Some(since)) = (s.state, s.since)
            && let Some((_, began)) = self.continued(&s.camera_id, state)
            && began == since
        {
            let lasted = self.remembered.get(&s.camera_id).map_or(Duration::ZERO, |r| r.lasted);
            return Some(lasted + self.started.elapsed());
        }
        s.since_instant.map(|i| i.elapsed())
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
        if let Some(r) = self.remembered.get(id)
            && !continues(r.state, state)
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
        let was = |state| Remembered { state, since: began, lasted: Duration::from_secs(60) };
        let remembered = HashMap::from([("gate".to_owned(), was(State::Down)), ("lab".to_owned(), was(State::Up))]);
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
    fn a_state_age_runs_on_the_monotonic_clock_and_a_remembered_one_carries_what_it_had_lasted() {
        let board = StatusBoard::default();
        // Wall timestamps the history holds; no age below is taken from them.
        let began: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let in_a_year: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let remembered = HashMap::from([
            ("gate".to_owned(), Remembered { state: State::Down, since: began, lasted: hour }),
            ("future".to_owned(), Remembered { state: State::Down, since: in_a_year, lasted: Duration::ZERO }),
        ]);
        let live = Live::new(board, remembered);
        let status = |id: &str, state, since, since_instant| CameraStatus {
            camera_id: id.to_owned(),
            name: id.to_owned(),
            url: String::new(),
            heartbeat_seconds: 10,
            state: Some(state),
            reason: None,
            message: None,
            since: Some(since),
            since_instant,
            consecutive_failures: 1,
            last_frame_at: None,
            packets_lost: None,
            pictures: None,
            last_heartbeat: None,
        };
        // Failing again in this run continues the remembered DOWN: an hour old, not seconds.
        let gate = live.amend(status("gate", State::Pending, in_a_year, Some(Instant::now())));
        let age = live.state_age(&gate).unwrap();
        assert!(age >= Duration::from_secs(3600) && age < Duration::from_secs(3660), "{age:?}");
        // A state with nothing stored after its start counts from this run's start only.
        let future = live.amend(status("future", State::Down, in_a_year, Some(Instant::now())));
        assert!(live.state_age(&future).unwrap() < Duration::from_secs(60));
        // A state that began in this run is aged from its instant, whatever its wall `since` says.
        let at = Instant::now() - Duration::from_secs(90);
        let lab = status("lab", State::Up, in_a_year, Some(at));
        let age = live.state_age(&lab).unwrap();
        assert!(age >= Duration::from_secs(90) && age < Duration::from_secs(150), "{age:?}");
        let waiting = CameraStatus { state: None, since: None, since_instant: None, ..lab };
        assert_eq!(live.state_age(&waiting), None);
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
