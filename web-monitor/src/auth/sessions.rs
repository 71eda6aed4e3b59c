//! Logged-in browser sessions, kept in memory: a restart of the service logs everyone out,
//! which for a single-admin kiosk dashboard is cheaper than a session database.
//!
//! Time is passed in (`now: Instant`) so expiry is tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::AuthError;
use super::store::random_string;

/// A session unused for this long expires: 12 hours.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// At most this many sessions live at once; the least recently used one goes first.
pub const MAX_SESSIONS: usize = 1000;
const SESSION_ID_BYTES: usize = 32;

/// Session ids and when each was last used.
#[derive(Debug)]
pub struct SessionStore {
    idle: Duration,
    max: usize,
    last_used: HashMap<String, Instant>,
}

impl SessionStore {
    pub fn new(idle: Duration) -> Self {
        SessionStore { idle, max: MAX_SESSIONS, last_used: HashMap::new() }
    }

    /// Starts a session and returns its id (256 random bits, URL-safe).
    pub fn create(&mut self, now: Instant) -> Result<String, AuthError> {
        self.purge(now);
        if self.last_used.len() >= self.max
            && let Some(oldest) = self.last_used.iter().min_by_key(|(_, t)| **t).map(|(id, _)| id.clone())
        {
            self.last_used.remove(&oldest);
        }
        let id = random_string::<SESSION_ID_BYTES>()?;
        self.last_used.insert(id.clone(), now);
        Ok(id)
    }

    /// Whether `id` is a live session; using it keeps it alive for another idle period.
    pub fn touch(&mut self, id: &str, now: Instant) -> bool {
        match self.last_used.get_mut(id) {
            Some(t) if now.saturating_duration_since(*t) < self.idle => {
                *t = now;
                true
            }
            Some(_) => {
                self.last_used.remove(id);
                false
            }
            None => false,
        }
    }

    /// Ends every session.
    pub fn clear(&mut self) {
        self.last_used.clear();
    }

    pub fn remove(&mut self, id: &str) {
        self.last_used.remove(id);
    }

    pub fn len(&self) -> usize {
        self.last_used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_used.is_empty()
    }

    fn purge(&mut self, now: Instant) {
        let idle = self.idle;
        self.last_used.retain(|_, t| now.saturating_duration_since(*t) < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_idle_time_and_use_keeps_it_alive() {
        let t0 = Instant::now();
        let mut s = SessionStore::new(Duration::from_secs(60));
        let id = s.create(t0).unwrap();
        assert!(s.touch(&id, t0 + Duration::from_secs(59)));
        // Used at 59 s, so still alive at 118 s.
        assert!(s.touch(&id, t0 + Duration::from_secs(118)));
        assert!(!s.touch(&id, t0 + Duration::from_secs(178)));
        assert!(s.is_empty());
        assert!(!s.touch("made-up", t0));
    }

    #[test]
    fn ids_are_unique_and_logout_removes() {
        let t0 = Instant::now();
        let mut s = SessionStore::new(SESSION_IDLE);
        let a = s.create(t0).unwrap();
        let b = s.create(t0).unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        s.remove(&a);
        assert!(!s.touch(&a, t0));
        assert!(s.touch(&b, t0));
    }

    #[test]
    fn full_store_drops_least_recently_used() {
        let t0 = Instant::now();
        let mut s = SessionStore::new(SESSION_IDLE);
        s.max = 2;
        let a = s.create(t0).unwrap();
        let b = s.create(t0 + Duration::from_secs(1)).unwrap();
        assert!(s.touch(&a, t0 + Duration::from_secs(2)));
        let c = s.create(t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.touch(&b, t0 + Duration::from_secs(4)));
        assert!(s.touch(&a, t0 + Duration::from_secs(4)));
        assert!(s.touch(&c, t0 + Duration::from_secs(4)));
    }
}
