//! Login rate limit per client address: after [`MAX_LOGIN_FAILURES`] failed logins within
//! [`LOGIN_WINDOW`], further attempts get 429 until the oldest failure leaves the window.
//!
//! An attempt counts as a failure from the moment it starts, and a success forgets the
//! address's failures, so a burst of parallel guesses cannot slip past the check while the
//! (slow) password hash runs. Time is passed in so this is tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed logins allowed per address within [`LOGIN_WINDOW`].
pub const MAX_LOGIN_FAILURES: usize = 5;
/// The window failed logins are counted over: 5 minutes.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Addresses remembered at most; beyond this, addresses without recent failures are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(MAX_LOGIN_FAILURES, LOGIN_WINDOW)
    }
}

impl LoginLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        LoginLimiter { max_failures, window, failures: HashMap::new() }
    }

    /// Starts a login attempt from `ip`: counted as a failure until [`succeeded`](Self::succeeded)
    /// says otherwise. `Err` carries how long the address must wait (for Retry-After).
    pub fn begin(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.failures.len() >= MAX_TRACKED {
            let window = self.window;
            self.failures.retain(|_, q| q.back().is_some_and(|t| now.saturating_duration_since(*t) < window));
        }
        let q = self.failures.entry(ip).or_default();
        while q.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            q.pop_front();
        }
        if q.len() >= self.max_failures {
            let oldest = *q.front().expect("queue is not empty when full");
            return Err((oldest + self.window).saturating_duration_since(now).max(Duration::from_secs(1)));
        }
        q.push_back(now);
        Ok(())
    }

    /// The attempt from `ip` had the right password: forget its failures.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }

    /// Failures of `ip` still counted at `now`.
    pub fn failures(&self, ip: IpAddr, now: Instant) -> usize {
        self.failures
            .get(&ip)
            .map_or(0, |q| q.iter().filter(|t| now.saturating_duration_since(**t) < self.window).count())
    }

    pub fn max_failures(&self) -> usize {
        self.max_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn sixth_attempt_in_window_is_refused_until_oldest_expires() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        for i in 0..5 {
            l.begin(A, t0 + Duration::from_secs(i * 10)).unwrap();
        }
        let wait = l.begin(A, t0 + Duration::from_secs(60)).unwrap_err();
        assert_eq!(wait, LOGIN_WINDOW - Duration::from_secs(60));
        // Another address is not affected.
        l.begin(B, t0 + Duration::from_secs(60)).unwrap();
        // Once the first failure is 5 minutes old, one more attempt is allowed.
        l.begin(A, t0 + LOGIN_WINDOW).unwrap();
        assert!(l.begin(A, t0 + LOGIN_WINDOW + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn success_forgets_failures() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        for _ in 0..4 {
            l.begin(A, t0).unwrap();
        }
        l.begin(A, t0).unwrap();
        l.succeeded(A);
        assert_eq!(l.failures(A, t0), 0);
        for _ in 0..5 {
            l.begin(A, t0).unwrap();
        }
        assert_eq!(l.failures(A, t0), 5);
        assert!(l.begin(A, t0).is_err());
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(1, Duration::from_millis(10));
        l.begin(A, t0).unwrap();
        assert_eq!(l.begin(A, t0 + Duration::from_millis(9)).unwrap_err(), Duration::from_secs(1));
    }
}
