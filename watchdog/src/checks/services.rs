//! The watched systemd units: down or failed (critical; restarted when allowed), held in
//! systemd's start limit, and restarting often by themselves.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Finding;
use crate::alert::Severity;
use crate::systemd::UnitState;

/// What the service check concluded about one unit.
#[derive(Debug, Default)]
pub struct ServiceVerdict {
    pub findings: Vec<Finding>,
    /// The unit is down and should be restarted (if `auto_recovery.service_restart`).
    pub restart: bool,
}

/// Remembers systemd's restart counter over time, per unit.
#[derive(Debug, Default)]
pub struct ServiceCheck {
    restarts: HashMap<String, VecDeque<(Instant, u32)>>,
    /// Per unit: its starts as seen or asked for.
    starts: HashMap<String, Starts>,
}

#[derive(Debug, Default)]
struct Starts {
    /// The last InvocationID seen.
    invocation: String,
    /// When each start was seen (a new InvocationID) or asked for by the watchdog.
    times: VecDeque<Instant>,
    /// Starts the watchdog asked for whose InvocationID has not been seen yet: the next new
    /// one is theirs, already counted.
    requested: VecDeque<Instant>,
}

impl ServiceCheck {
    /// `frequent` restarts by systemd within `window` raise a warning.
    pub fn judge(&mut self, unit: &UnitState, frequent: u32, window: Duration, now: Instant) -> ServiceVerdict {
        let mut v = ServiceVerdict::default();
        self.note_start(unit, window, now);
        let name = &unit.name;
        if unit.load_state == "not-found" {
            v.findings.push(Finding {
                kind: format!("service_missing:{name}"),
                severity: Severity::Critical,
                title: format!("service not installed: {name}"),
                details: format!("systemd has no unit {name}; install it or remove it from `units`."),
            });
            return v;
        }
        if unit.start_limit_hit {
            v.findings.push(Finding {
                kind: format!("service_start_limit:{name}"),
                severity: Severity::Critical,
                title: format!("service held by its start limit: {name}"),
                details: format!(
                    "systemd stopped trying to start {name} after too many failed starts; it starts again after the \
                     unit's StartLimitIntervalSec, or after `systemctl reset-failed {name}`."
                ),
            });
        } else if unit.is_down() {
            let how = unit.exit_description().map(|e| format!(" Its main process {e}.")).unwrap_or_default();
            v.findings.push(Finding {
                kind: format!("service_down:{name}"),
                severity: Severity::Critical,
                title: format!("service down: {name}"),
                details: format!("{name} is {} ({}), result {}.{how}", unit.active_state, unit.sub_state, unit.result),
            });
            v.restart = true;
        }
        let samples = self.restarts.entry(name.clone()).or_default();
        samples.push_back((now, unit.n_restarts));
        while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > window) {
            samples.pop_front();
        }
        let oldest = samples.front().map_or(unit.n_restarts, |(_, n)| *n);
        let recent = unit.n_restarts.saturating_sub(oldest);
        if recent >= frequent {
            v.findings.push(Finding {
                kind: format!("service_restarting:{name}"),
                severity: Severity::Warning,
                title: format!("service restarting often: {name}"),
                details: format!("systemd restarted {name} {recent} times within {} s.", window.as_secs()),
            });
        }
        v
    }

    /// Starts of `unit` within `interval` before `now`: each new InvocationID the checks saw
    /// (by hand, by systemd's Restart=, the first sighting included: its start time is not
    /// known, so it counts as recent), and each start the watchdog asked for.
    /// Returns how many, and when the oldest of them was.
    pub fn starts_within(&self, unit: &str, interval: Duration, now: Instant) -> (u32, Option<Instant>) {
        let Some(s) = self.starts.get(unit) else { return (0, None) };
        let mut recent = s.times.iter().copied().filter(|t| now.duration_since(*t) < interval);
        let oldest = recent.next();
        (oldest.map_or(0, |_| 1 + recent.count() as u32), oldest)
    }

    /// The watchdog asked systemd to start `unit` at `now`: counted at once, so that a second
    /// request before the new run shows up is judged by both.
    pub fn note_requested_start(&mut self, unit: &str, now: Instant) {
        let s = self.starts.entry(unit.to_owned()).or_default();
        s.times.push_back(now);
        s.requested.push_back(now);
    }

    fn note_start(&mut self, unit: &UnitState, window: Duration, now: Instant) {
        let s = self.starts.entry(unit.name.clone()).or_default();
        if !unit.invocation_id.is_empty() && unit.invocation_id != s.invocation {
            let first_sighting = s.invocation.is_empty();
            s.invocation.clone_from(&unit.invocation_id);
            // The run of a start the watchdog asked for was counted when it asked.
            if first_sighting || s.requested.pop_front().is_none() {
                s.times.push_back(now);
            }
        }
        let kept = window.max(unit.start_limit.interval);
        for times in [&mut s.times, &mut s.requested] {
            while times.front().is_some_and(|t| now.duration_since(*t) >= kept) {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::ActiveState;

    fn unit(active: ActiveState, n_restarts: u32) -> UnitState {
        UnitState {
            name: "desktop-streamer.service".into(),
            load_state: "loaded".into(),
            active_state: active,
            sub_state: "dead".into(),
            result: "signal".into(),
            n_restarts,
            exec_main_code: 2,
            exec_main_status: 9,
            main_pid: 0,
            invocation_id: format!("{n_restarts:032x}"),
            start_limit_hit: false,
            job_pending: false,
            start_limit: Default::default(),
        }
    }

    #[test]
    fn down_is_critical_and_asks_for_a_restart_running_is_fine() {
        let mut c = ServiceCheck::default();
        let v = c.judge(&unit(ActiveState::Failed, 0), 3, Duration::from_secs(300), Instant::now());
        assert!(v.restart);
        assert_eq!(v.findings[0].severity, Severity::Critical);
        assert!(v.findings[0].details.contains("killed by signal 9"), "{}", v.findings[0].details);
        let v = c.judge(&unit(ActiveState::Active, 0), 3, Duration::from_secs(300), Instant::now());
        assert!(!v.restart && v.findings.is_empty());
    }

    #[test]
    fn starts_are_counted_by_new_invocations() {
        let mut c = ServiceCheck::default();
        let t0 = Instant::now();
        let (w, s) = (Duration::from_secs(300), Duration::from_secs);
        for (at, invocation) in [(0, 1), (1, 1), (2, 2), (3, 2), (8, 3)] {
            c.judge(&unit(ActiveState::Active, invocation), 100, w, t0 + s(at));
        }
        let name = "desktop-streamer.service";
        assert_eq!(
            c.starts_within(name, s(10), t0 + s(9)),
            (3, Some(t0)),
            "the first sighting and two new invocations"
        );
        assert_eq!(c.starts_within(name, s(10), t0 + s(11)), (2, Some(t0 + s(2))));
        assert_eq!(c.starts_within(name, s(10), t0 + s(30)), (0, None));
        assert_eq!(c.starts_within("other.service", s(10), t0), (0, None));

        // Starts the watchdog asks for count at once, and their runs are not counted again.
        c.note_requested_start(name, t0 + s(40));
        c.note_requested_start(name, t0 + s(41));
        assert_eq!(c.starts_within(name, s(10), t0 + s(41)).0, 2);
        c.judge(&unit(ActiveState::Active, 4), 100, w, t0 + s(42));
        assert_eq!(c.starts_within(name, s(10), t0 + s(42)).0, 2, "the run of the first request");
        c.judge(&unit(ActiveState::Active, 5), 100, w, t0 + s(43));
        c.judge(&unit(ActiveState::Active, 6), 100, w, t0 + s(44));
        assert_eq!(c.starts_within(name, s(10), t0 + s(44)).0, 3, "the second request's run, then one by hand");
    }

    #[test]
    fn restarts_by_systemd_counted_over_the_window_warn() {
        let mut c = ServiceCheck::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(300);
        assert!(c.judge(&unit(ActiveState::Active, 10), 3, w, t0).findings.is_empty(), "old restarts are not news");
        assert!(c.judge(&unit(ActiveState::Active, 12), 3, w, t0 + Duration::from_secs(60)).findings.is_empty());
        let v = c.judge(&unit(ActiveState::Active, 13), 3, w, t0 + Duration::from_secs(120));
        assert_eq!(v.findings[0].kind, "service_restarting:desktop-streamer.service");
        assert!(
            c.judge(&unit(ActiveState::Active, 13), 3, w, t0 + Duration::from_secs(500)).findings.is_empty(),
            "calm again"
        );
    }
}
