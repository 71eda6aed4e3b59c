//! Which alerts go out: a cooldown per kind of alert, at most `max_alerts` per cooldown
//! period, and whatever the limit holds back summed up in one alert when the period ends, so
//! no alert vanishes silently. Time is passed in, so the rules are tested without sleeping.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::alert::{Alert, Severity};

/// What became of an offered alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// The same kind was sent less than the cooldown ago, at the same or a higher severity.
    Cooldown {
        last_sent_ago: Duration,
    },
    /// `max_alerts` were already sent this period; it will be counted in the summary.
    RateLimited,
}

#[derive(Debug)]
pub struct Policy {
    cooldown: Duration,
    max_alerts: u32,
    /// Kind → when it was last sent and at what severity.
    last_sent: HashMap<String, (Instant, Severity)>,
    period_start: Option<Instant>,
    sent_in_period: u32,
    /// What the limit held back this period: kind → (count, highest severity, last title).
    held_back: BTreeMap<String, (u32, Severity, String)>,
}

impl Policy {
    /// `cooldown` is also the length of the `max_alerts` period.
    pub fn new(cooldown: Duration, max_alerts: u32) -> Self {
        Policy {
            cooldown,
            max_alerts: max_alerts.max(1),
            last_sent: HashMap::new(),
            period_start: None,
            sent_in_period: 0,
            held_back: BTreeMap::new(),
        }
    }

    /// Decides about `alert` at `now`, recording it as sent if it may go.
    pub fn offer(&mut self, alert: &Alert, now: Instant) -> Decision {
        self.roll_period(now);
        if let Some((at, severity)) = self.last_sent.get(&alert.kind) {
            let ago = now.duration_since(*at);
            // A kind that got worse is news, whatever the cooldown.
            if ago < self.cooldown && alert.severity <= *severity {
                return Decision::Cooldown { last_sent_ago: ago };
            }
        }
        if self.sent_in_period >= self.max_alerts {
            let entry = self.held_back.entry(alert.kind.clone()).or_insert((0, alert.severity, alert.title.clone()));
            entry.0 += 1;
            entry.1 = entry.1.max(alert.severity);
            entry.2.clone_from(&alert.title);
            return Decision::RateLimited;
        }
        self.sent_in_period += 1;
        self.last_sent.insert(alert.kind.clone(), (now, alert.severity));
        Decision::Send
    }

    fn roll_period(&mut self, now: Instant) {
        match self.period_start {
            Some(start) if now.duration_since(start) < self.cooldown => {}
            _ => {
                self.period_start = Some(now);
                self.sent_in_period = 0;
            }
        }
    }

    /// When the period is over and the limit held anything back, the summary alert to send
    /// (it is not itself limited). `template` supplies host, dashboard and time fields.
    pub fn summary(&mut self, now: Instant, template: &Alert) -> Option<Alert> {
        let start = self.period_start?;
        if now.duration_since(start) < self.cooldown || self.held_back.is_empty() {
            return None;
        }
        let held = std::mem::take(&mut self.held_back);
        let total: u32 = held.values().map(|(n, ..)| n).sum();
        let severity = held.values().map(|(_, s, _)| *s).max().unwrap_or(Severity::Warning);
        let lines: Vec<String> =
            held.iter().map(|(kind, (n, s, title))| format!("- {n} × {s} {title} ({kind})")).collect();
        self.period_start = Some(now);
        self.sent_in_period = 0;
        Some(Alert {
            id: format!("{}-summary", template.id),
            kind: "summary".to_owned(),
            severity,
            title: format!("{total} alerts held back by the rate limit"),
            details: format!(
                "At most {} alerts are sent per {} s; these were held back:\n{}",
                self.max_alerts,
                self.cooldown.as_secs(),
                lines.join("\n")
            ),
            ..template.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: &str, severity: Severity) -> Alert {
        Alert {
            id: format!("id-{kind}"),
            kind: kind.to_owned(),
            severity,
            title: format!("{kind} happened"),
            details: String::new(),
            since: jiff::Timestamp::UNIX_EPOCH,
            raised_at: jiff::Timestamp::UNIX_EPOCH,
            action: None,
            host: "kiosk".into(),
            dashboard_url: None,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_same_kind_waits_out_the_cooldown_unless_it_got_worse() {
        let t0 = Instant::now();
        let mut p = Policy::new(5 * MIN, 10);
        assert_eq!(p.offer(&alert("stream_stale", Severity::Warning), t0), Decision::Send);
        assert_eq!(
            p.offer(&alert("stream_stale", Severity::Warning), t0 + MIN),
            Decision::Cooldown { last_sent_ago: MIN }
        );
        assert_eq!(p.offer(&alert("stream_stale", Severity::Critical), t0 + MIN), Decision::Send, "worse is news");
        assert!(matches!(p.offer(&alert("stream_stale", Severity::Warning), t0 + 2 * MIN), Decision::Cooldown { .. }));
        assert_eq!(p.offer(&alert("other", Severity::Warning), t0 + 2 * MIN), Decision::Send, "cooldown is per kind");
        assert_eq!(p.offer(&alert("stream_stale", Severity::Critical), t0 + 6 * MIN + MIN), Decision::Send);
    }

    #[test]
    fn beyond_max_alerts_a_period_alerts_are_held_back_and_summed_up_when_it_ends() {
        let t0 = Instant::now();
        let mut p = Policy::new(5 * MIN, 2);
        let template = alert("template", Severity::Info);
        assert_eq!(p.offer(&alert("a", Severity::Warning), t0), Decision::Send);
        assert_eq!(p.offer(&alert("b", Severity::Warning), t0), Decision::Send);
        assert_eq!(p.offer(&alert("c", Severity::Critical), t0 + MIN), Decision::RateLimited);
        assert_eq!(p.offer(&alert("d", Severity::Warning), t0 + MIN), Decision::RateLimited);
        assert_eq!(p.offer(&alert("d", Severity::Warning), t0 + 2 * MIN), Decision::RateLimited);
        assert_eq!(p.summary(t0 + 4 * MIN, &template), None, "not before the period ends");
        let s = p.summary(t0 + 5 * MIN, &template).expect("a summary when the period ends");
        assert_eq!(s.severity, Severity::Critical, "as bad as the worst held back");
        assert_eq!(s.title, "3 alerts held back by the rate limit");
        assert!(
            s.details.contains("1 × CRITICAL c happened (c)") && s.details.contains("2 × WARNING d happened (d)"),
            "{}",
            s.details
        );
        assert_eq!(p.summary(t0 + 11 * MIN, &template), None, "nothing held back, no summary");
        assert_eq!(p.offer(&alert("e", Severity::Warning), t0 + 5 * MIN), Decision::Send, "a new period");
    }

    #[test]
    fn a_held_back_critical_is_never_lost_even_when_its_kind_recurs() {
        let t0 = Instant::now();
        let mut p = Policy::new(MIN, 1);
        p.offer(&alert("x", Severity::Info), t0);
        for i in 0..5 {
            assert_eq!(
                p.offer(&alert("service_down", Severity::Critical), t0 + Duration::from_secs(i)),
                Decision::RateLimited
            );
        }
        let s = p.summary(t0 + MIN, &alert("t", Severity::Info)).unwrap();
        assert!(s.details.contains("5 × CRITICAL"), "{}", s.details);
    }
}
