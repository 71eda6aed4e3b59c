//! How often the watchdog may restart a unit, on its own, independently of alerts: a few
//! times per window, and never while systemd's own start limit holds the unit, so the
//! watchdog can never push a unit into that limit or restart it in a storm.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Whether a restart may be asked for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permit {
    Granted,
    HeldBack { reason: String, retry_after: Duration },
}

#[derive(Debug)]
pub struct RestartLimiter {
    max: u32,
    window: Duration,
    granted: HashMap<String, VecDeque<Instant>>,
}

impl RestartLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RestartLimiter { max: max.max(1), window, granted: HashMap::new() }
    }

    /// Asks to restart `unit` at `now`; `start_limit_hit` is systemd's own verdict (the
    /// unit's Result is `start-limit-hit`). A granted request is counted.
    pub fn request(&mut self, unit: &str, start_limit_hit: bool, now: Instant) -> Permit {
        if start_limit_hit {
            return Permit::HeldBack {
                reason: format!("systemd's start limit holds {unit}; restarting it now would keep it there"),
                retry_after: self.window,
            };
        }
        let times = self.granted.entry(unit.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.max as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Permit::HeldBack {
                reason: format!(
                    "{unit} was already restarted {} times within {} s (restart_limit)",
                    times.len(),
                    self.window.as_secs()
                ),
                retry_after: self.window.saturating_sub(now.duration_since(oldest)),
            };
        }
        times.push_back(now);
        Permit::Granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_restarts_per_window_then_held_back_until_the_oldest_ages_out() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = RestartLimiter::new(3, s(300));
        for i in 0..3 {
            assert_eq!(l.request("a.service", false, t0 + s(i * 10)), Permit::Granted);
        }
        let held = l.request("a.service", false, t0 + s(60));
        assert!(
            matches!(&held, Permit::HeldBack { retry_after, reason } if *retry_after == s(240) && reason.contains("3 times within 300 s")),
            "{held:?}"
        );
        assert_eq!(l.request("b.service", false, t0 + s(60)), Permit::Granted, "per unit");
        assert_eq!(l.request("a.service", false, t0 + s(300)), Permit::Granted, "the first restart aged out");
    }

    #[test]
    fn never_while_systemd_holds_the_unit_in_its_start_limit() {
        let mut l = RestartLimiter::new(3, Duration::from_secs(300));
        assert!(matches!(l.request("a.service", true, Instant::now()), Permit::HeldBack { .. }));
    }
}
