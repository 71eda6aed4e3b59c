//! Each camera's newest heartbeat and since when it has been in its state, kept in memory
//! so the grid, the API and `/metrics` never wait on the database. Fed by every heartbeat
//! the prober emits; seeded from the store when the service starts, so a restart does not
//! forget that a camera has been down since last night.

use std::collections::HashMap;
use std::sync::RwLock;

use ds_cameras::Heartbeat;
use jiff::Timestamp;
use tokio::sync::broadcast;

/// How many heartbeats a slow page may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

/// A camera as the prober last saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveCamera {
    pub latest: Heartbeat,
    /// When the camera entered its current state.
    pub since: Timestamp,
}

#[derive(Debug)]
pub struct Live {
    cameras: RwLock<HashMap<String, LiveCamera>>,
    events: broadcast::Sender<LiveCamera>,
}

impl Default for Live {
    fn default() -> Self {
        Live { cameras: RwLock::default(), events: broadcast::channel(EVENT_BACKLOG).0 }
    }
}

impl Live {
    /// Starts from what the store remembers: each camera's newest heartbeat and the time of
    /// its newest state change.
    pub fn seed(&self, seeds: impl IntoIterator<Item = LiveCamera>) {
        let mut map = self.cameras.write().unwrap_or_else(|p| p.into_inner());
        for s in seeds {
            map.insert(s.latest.camera_id.clone(), s);
        }
    }

    /// Takes in a new heartbeat and tells the pages.
    pub fn apply(&self, hb: Heartbeat) {
        let mut map = self.cameras.write().unwrap_or_else(|p| p.into_inner());
        let since = match map.get(&hb.camera_id) {
            Some(prev) if prev.latest.state == hb.state => prev.since,
            _ => hb.at,
        };
        let entry = LiveCamera { latest: hb, since };
        map.insert(entry.latest.camera_id.clone(), entry.clone());
        drop(map);
        // Nobody listening is fine.
        let _ = self.events.send(entry);
    }

    pub fn get(&self, id: &str) -> Option<LiveCamera> {
        self.cameras.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn all(&self) -> HashMap<String, LiveCamera> {
        self.cameras.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every heartbeat from now on, for the page's live updates.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveCamera> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use ds_cameras::{Reason, State};

    use super::*;

    fn hb(at: i64, state: State) -> Heartbeat {
        Heartbeat {
            camera_id: "gate".into(),
            at: Timestamp::from_second(at).unwrap(),
            state,
            reason: (state != State::Up).then_some(Reason::Refused),
            message: None,
            latency_ms: None,
            codec: None,
            width: None,
            height: None,
            last_frame_at: None,
        }
    }

    #[test]
    fn since_is_when_the_state_began() {
        let live = Live::default();
        let mut events = live.subscribe();
        live.apply(hb(100, State::Up));
        live.apply(hb(115, State::Up));
        assert_eq!(live.get("gate").unwrap().since, Timestamp::from_second(100).unwrap());
        live.apply(hb(130, State::Pending));
        live.apply(hb(145, State::Pending));
        assert_eq!(live.get("gate").unwrap().since, Timestamp::from_second(130).unwrap());
        assert_eq!(events.try_recv().unwrap().latest.at, Timestamp::from_second(100).unwrap());
    }
}
