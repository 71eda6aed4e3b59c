//! Turns what the checks find into news: a problem that appears is raised, one that gets
//! worse is raised again, one that goes away is resolved (an info alert). A problem that
//! simply persists is not news.
//!
//! How long a problem lasted is counted on the monotonic clock (a step of the wall clock
//! meanwhile does not make it a year or negative); `since` is the wall time people are shown.

use std::collections::HashMap;
use std::time::Duration;

use crate::alert::Severity;
use crate::clock::At;

/// A problem a check sees now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Stable identity, scoped by the check, e.g. `service_down:desktop-streamer.service`.
    pub kind: String,
    pub severity: Severity,
    pub title: String,
    pub details: String,
}

/// What changed since the check's previous findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Raised {
        finding: Finding,
        since: jiff::Timestamp,
    },
    /// Still there and worse than when raised.
    Escalated {
        finding: Finding,
        since: jiff::Timestamp,
    },
    Resolved {
        kind: String,
        title: String,
        since: jiff::Timestamp,
        /// How long it lasted, on the monotonic clock.
        lasted: Duration,
    },
}

#[derive(Debug)]
struct Active {
    since: jiff::Timestamp,
    started: tokio::time::Instant,
    severity: Severity,
    title: String,
}

#[derive(Debug, Default)]
pub struct Conditions {
    active: HashMap<String, Active>,
}

impl Conditions {
    /// Compares the findings of the check owning kinds that start with `scope` with what it
    /// found before.
    pub fn update(&mut self, scope: &str, findings: Vec<Finding>, now: At) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut gone: Vec<String> = self
            .active
            .keys()
            .filter(|k| k.starts_with(scope) && !findings.iter().any(|f| &f.kind == *k))
            .cloned()
            .collect();
        gone.sort();
        for kind in gone {
            if let Some(a) = self.active.remove(&kind) {
                let lasted = now.mono.saturating_duration_since(a.started);
                changes.push(Change::Resolved { kind, title: a.title, since: a.since, lasted });
            }
        }
        for finding in findings {
            match self.active.get_mut(&finding.kind) {
                None => {
                    self.active.insert(
                        finding.kind.clone(),
                        Active {
                            since: now.wall,
                            started: now.mono,
                            severity: finding.severity,
                            title: finding.title.clone(),
                        },
                    );
                    changes.push(Change::Raised { finding, since: now.wall });
                }
                Some(a) if finding.severity > a.severity => {
                    a.severity = finding.severity;
                    a.title.clone_from(&finding.title);
                    changes.push(Change::Escalated { since: a.since, finding });
                }
                Some(_) => {}
            }
        }
        changes
    }

    /// Problems active now, worst first, for the status line and the dashboard.
    pub fn active(&self) -> Vec<(String, Severity, String)> {
        let mut v: Vec<_> = self.active.iter().map(|(k, a)| (k.clone(), a.severity, a.title.clone())).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: &str, severity: Severity) -> Finding {
        Finding { kind: kind.into(), severity, title: format!("{kind} title"), details: String::new() }
    }

    #[tokio::test(start_paused = true)]
    async fn raised_once_escalated_when_worse_resolved_when_gone() {
        let mut c = Conditions::default();
        let t0 = At::now();
        let t = |s: u64| At {
            wall: jiff::Timestamp::from_second(s as i64).unwrap(),
            mono: t0.mono + Duration::from_secs(s),
        };
        let up = c.update("stream:", vec![f("stream:stale", Severity::Warning)], t(0));
        assert!(matches!(&up[..], [Change::Raised { .. }]));
        assert!(
            c.update("stream:", vec![f("stream:stale", Severity::Warning)], t(5)).is_empty(),
            "persisting is not news"
        );
        let worse = c.update("stream:", vec![f("stream:stale", Severity::Critical)], t(10));
        assert!(matches!(&worse[..], [Change::Escalated { since, .. }] if *since == t(0).wall));
        assert!(
            c.update("stream:", vec![f("stream:stale", Severity::Warning)], t(15)).is_empty(),
            "better but not gone"
        );
        // Another scope's findings do not resolve this one.
        assert!(c.update("resource:", vec![], t(20)).is_empty());
        let gone = c.update("stream:", vec![], t(25));
        assert_eq!(
            gone,
            [Change::Resolved {
                kind: "stream:stale".into(),
                title: "stream:stale title".into(),
                since: t(0).wall,
                lasted: Duration::from_secs(25)
            }]
        );
    }

    /// The wall clock steps while a problem lasts: how long it lasted comes from the monotonic
    /// clock, never a year nor negative.
    #[tokio::test(start_paused = true)]
    async fn how_long_a_problem_lasted_ignores_steps_of_the_wall_clock() {
        const DAY: Duration = Duration::from_secs(86_400);
        for step in [DAY * 366, DAY] {
            let mut c = Conditions::default();
            let t0 = At::now();
            c.update("stream:", vec![f("stream:stale", Severity::Warning)], t0);
            let later = t0 + Duration::from_secs(30);
            let stepped = At { wall: if step == DAY { later.wall - step } else { later.wall + step }, ..later };
            let gone = c.update("stream:", vec![], stepped);
            assert!(
                matches!(&gone[..], [Change::Resolved { lasted, since, .. }] if *lasted == Duration::from_secs(30) && *since == t0.wall),
                "{gone:?}"
            );
        }
    }
}
