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
}

impl ServiceCheck {
    /// `frequent` restarts by systemd within `window` raise a warning.
    pub fn judge(&mut self, unit: &UnitState, frequent: u32, window: Duration, now: Instant) -> ServiceVerdict {
        let mut v = ServiceVerdict::default();
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
            invocation_id: String::new(),
            start_limit_hit: false,
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
