//! How often the watchdog may restart a unit, on its own, independently of alerts: a few
//! times per window; never while systemd's own start limit holds the unit; and never when one
//! more start would use up that limit (StartLimitBurst starts within StartLimitIntervalSec,
//! counting systemd's own restarts), so the watchdog can never push a unit into it or restart
//! it in a storm.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::systemd::StartLimit;

/// What systemd says about a unit's start limit when a restart is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartBudget {
    /// systemd holds the unit (its Result is `start-limit-hit`).
    pub hit: bool,
    pub limit: StartLimit,
    /// Starts of the unit within `limit.interval` (by hand, by systemd, by the watchdog).
    pub starts: u32,
    /// When the oldest of them was: once it is `limit.interval` old, one start is free again.
    pub oldest_start: Option<Instant>,
}

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

    /// Asks to restart `unit` at `now`, given what systemd says about its start limit. A
    /// granted request is counted.
    pub fn request(&mut self, unit: &str, budget: StartBudget, now: Instant) -> Permit {
        let limit = budget.limit;
        if budget.hit {
            return Permit::HeldBack {
                reason: format!("systemd's start limit holds {unit}; restarting it now would keep it there"),
                retry_after: limit.interval.max(Duration::from_secs(1)),
            };
        }
        if limit.applies() {
            let starts = budget.starts;
            // systemd refuses start number burst + 1; one start is left for systemd's own
            // Restart= after ours, should ours fail again.
            if starts + 2 > limit.burst {
                let oldest = budget.oldest_start.unwrap_or(now);
                let retry_after = limit.interval.saturating_sub(now.duration_since(oldest));
                return Permit::HeldBack {
                    reason: format!(
                        "{unit} was started {starts} times within its StartLimitIntervalSec ({} s); one more \
                         start would come too close to systemd's StartLimitBurst ({}) and leave it held for good",
                        limit.interval.as_secs(),
                        limit.burst
                    ),
                    retry_after: retry_after.max(Duration::from_secs(1)),
                };
            }
        }
        let times = self.granted.entry(unit.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        let recent = times.len();
        if recent >= self.max as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Permit::HeldBack {
                reason: format!(
                    "{unit} was already restarted {recent} times within {} s (restart_limit)",
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
        let none = StartBudget::default();
        for i in 0..3 {
            assert_eq!(l.request("a.service", none, t0 + s(i * 10)), Permit::Granted);
        }
        let held = l.request("a.service", none, t0 + s(60));
        assert!(
            matches!(&held, Permit::HeldBack { retry_after, reason } if *retry_after == s(240) && reason.contains("3 times within 300 s")),
            "{held:?}"
        );
        assert_eq!(l.request("b.service", none, t0 + s(60)), Permit::Granted, "per unit");
        assert_eq!(l.request("a.service", none, t0 + s(300)), Permit::Granted, "the first restart aged out");
    }

    #[test]
    fn never_while_systemd_holds_the_unit_in_its_start_limit() {
        let mut l = RestartLimiter::new(3, Duration::from_secs(300));
        let held = StartBudget { hit: true, ..StartBudget::default() };
        assert!(matches!(l.request("a.service", held, Instant::now()), Permit::HeldBack { .. }));
    }

    #[test]
    fn never_so_often_that_systemd_would_refuse_the_next_start() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // systemd's default: 5 starts per 10 s; the watchdog's own limit is generous.
        let limit = StartLimit { burst: 5, interval: s(10) };
        let mut l = RestartLimiter::new(100, s(300));
        // Starts seen since t0 - 1 s.
        let budget = |starts| StartBudget { hit: false, limit, starts, oldest_start: Some(t0 - s(1)) };
        assert_eq!(l.request("a.service", budget(2), t0), Permit::Granted);
        assert_eq!(l.request("a.service", budget(3), t0 + s(1)), Permit::Granted, "4 starts, one left for systemd");
        let held = l.request("a.service", budget(4), t0 + s(2));
        assert!(
            matches!(&held, Permit::HeldBack { reason, retry_after }
                if reason.contains("StartLimitBurst (5)") && *retry_after == s(7)),
            "{held:?}"
        );
        assert_eq!(l.request("a.service", budget(0), t0 + s(11)), Permit::Granted, "the interval passed");
    }
}
