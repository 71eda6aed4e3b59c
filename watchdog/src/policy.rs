//! Which alerts go out: a cooldown per kind of alert, at most `max_alerts` per cooldown
//! period, and whatever the limit holds back summed up in one alert when the period ends, so
//! no alert vanishes silently. Time is passed in, so the rules are tested without sleeping;
//! what is held back can be saved and restored, so a restart loses none of it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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

/// Alerts of one kind the limit held back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    pub kind: String,
    pub count: u32,
    pub severity: Severity,
    /// The title of the last one.
    pub title: String,
}

/// What a restart must not lose: the alerts held back, and how long their period still runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Held back in the running period.
    pub held: Vec<HeldBack>,
    /// Held back in a period that has ended: due in the next summary.
    pub due: Vec<HeldBack>,
    /// How much of the running period was left when saved.
    #[serde(with = "seconds")]
    pub period_left: Duration,
    /// When it was saved: the time since counts against `period_left`.
    pub saved_at: jiff::Timestamp,
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

type HeldMap = BTreeMap<String, HeldBack>;

#[derive(Debug)]
pub struct Policy {
    cooldown: Duration,
    max_alerts: u32,
    /// Kind → when it was last sent and at what severity.
    last_sent: HashMap<String, (Instant, Severity)>,
    period_start: Option<Instant>,
    sent_in_period: u32,
    /// What the limit held back this period, by kind.
    held_back: HeldMap,
    /// What the limit held back in periods that ended, not yet summed up.
    due: HeldMap,
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
            held_back: HeldMap::new(),
            due: HeldMap::new(),
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
            let held = HeldBack { kind: alert.kind.clone(), count: 0, severity: alert.severity, title: String::new() };
            merge(&mut self.held_back, HeldBack { count: 1, title: alert.title.clone(), ..held });
            return Decision::RateLimited;
        }
        self.sent_in_period += 1;
        self.last_sent.insert(alert.kind.clone(), (now, alert.severity));
        Decision::Send
    }

    /// Starts a new period when the running one is over; what it held back becomes due.
    fn roll_period(&mut self, now: Instant) {
        match self.period_start {
            Some(start) if now.duration_since(start) < self.cooldown => {}
            _ => {
                self.period_start = Some(now);
                self.sent_in_period = 0;
                for (_, held) in std::mem::take(&mut self.held_back) {
                    merge(&mut self.due, held);
                }
            }
        }
    }

    /// When a period that held anything back is over, the summary alert to send (it is not
    /// itself limited, and new alerts cannot put it off). `template` supplies host,
    /// dashboard and time fields.
    pub fn summary(&mut self, now: Instant, template: &Alert) -> Option<Alert> {
        if self.period_start.is_some() {
            self.roll_period(now);
        }
        if self.due.is_empty() {
            return None;
        }
        let held = std::mem::take(&mut self.due);
        let total: u32 = held.values().map(|h| h.count).sum();
        let severity = held.values().map(|h| h.severity).max().unwrap_or(Severity::Warning);
        let lines: Vec<String> =
            held.values().map(|h| format!("- {} × {} {} ({})", h.count, h.severity, h.title, h.kind)).collect();
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

    /// What the limit holds back now, to be saved; `None` when nothing is.
    pub fn save(&self, now: Instant) -> Option<Saved> {
        if self.held_back.is_empty() && self.due.is_empty() {
            return None;
        }
        let elapsed = self.period_start.map_or(self.cooldown, |start| now.duration_since(start));
        Some(Saved {
            held: self.held_back.values().cloned().collect(),
            due: self.due.values().cloned().collect(),
            period_left: self.cooldown.saturating_sub(elapsed),
            saved_at: jiff::Timestamp::now(),
        })
    }

    /// Takes back what a previous run saved: its running period goes on for the time it had
    /// left, less the time since it was saved (the period counts as full: what that run sent
    /// is not known).
    pub fn restore(&mut self, saved: Saved, now: Instant) {
        for held in saved.due {
            merge(&mut self.due, held);
        }
        if saved.held.is_empty() {
            return;
        }
        let since_saved = jiff::Timestamp::now().duration_since(saved.saved_at);
        let since_saved = Duration::try_from(since_saved).unwrap_or_default();
        let elapsed = self.cooldown.saturating_sub(saved.period_left.saturating_sub(since_saved));
        self.period_start = Some(now.checked_sub(elapsed).unwrap_or(now));
        self.sent_in_period = self.max_alerts;
        for held in saved.held {
            merge(&mut self.held_back, held);
        }
    }
}

/// Reads what a previous run saved at `path`; nothing if there is no such file. An unreadable
/// one is logged and ignored (its alerts were in the history already).
pub fn read_saved(path: &Path) -> Option<Saved> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the alerts held back by a previous run");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .inspect_err(|e| tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable held-back alerts"))
        .ok()
}

/// Saves `saved` at `path`, or removes the file when nothing is held back.
pub fn write_saved(path: &Path, saved: Option<&Saved>) {
    let result = match saved {
        Some(saved) => ds_config::write_atomic(path, &serde_json::to_vec_pretty(saved).expect("serializes")),
        None => std::fs::remove_file(path)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
    };
    if let Err(e) = result {
        tracing::error!(file = %path.display(), error = %e, "cannot save the alerts held back by the rate limit");
    }
}

/// Adds `held` into `map`: counts add up, the worst severity and the latest title stay.
fn merge(map: &mut HeldMap, held: HeldBack) {
    match map.get_mut(&held.kind) {
        Some(entry) => {
            entry.count += held.count;
            entry.severity = entry.severity.max(held.severity);
            entry.title = held.title;
        }
        None => {
            map.insert(held.kind.clone(), held);
        }
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
        assert_eq!(p.offer(&alert("e", Severity::Warning), t0 + 11 * MIN), Decision::Send, "a new period");
    }

    #[test]
    fn new_alerts_cannot_put_the_summary_off() {
        let t0 = Instant::now();
        let mut p = Policy::new(MIN, 1);
        let template = alert("template", Severity::Info);
        assert_eq!(p.offer(&alert("a", Severity::Warning), t0), Decision::Send);
        assert_eq!(p.offer(&alert("b", Severity::Critical), t0 + MIN / 2), Decision::RateLimited);
        // The period ends; an alert arrives before the summary is asked for, and opens a new one.
        assert_eq!(p.offer(&alert("c", Severity::Warning), t0 + MIN), Decision::Send);
        let s = p.summary(t0 + MIN, &template).expect("the ended period's summary, at once");
        assert!(s.details.contains("1 × CRITICAL b happened (b)"), "{}", s.details);
        assert_eq!(p.summary(t0 + MIN, &template), None, "sent once");
    }

    #[test]
    fn what_is_held_back_survives_a_save_and_restore() {
        let t0 = Instant::now();
        let template = alert("template", Severity::Info);
        let mut p = Policy::new(5 * MIN, 1);
        p.offer(&alert("a", Severity::Warning), t0);
        assert_eq!(p.offer(&alert("b", Severity::Critical), t0 + MIN), Decision::RateLimited);
        let saved = p.save(t0 + 2 * MIN).expect("something is held back");
        assert_eq!(saved.period_left, 3 * MIN);
        let json = serde_json::to_string(&saved).unwrap();

        // A new run, 1 minute later: its period goes on for the 3 minutes left, full.
        let t1 = t0 + 3 * MIN;
        let mut p = Policy::new(5 * MIN, 1);
        p.restore(serde_json::from_str(&json).unwrap(), t1);
        assert_eq!(p.offer(&alert("c", Severity::Warning), t1), Decision::RateLimited, "the period is full");
        assert_eq!(p.summary(t1 + 2 * MIN, &template), None, "the period has a minute left");
        let s = p.summary(t1 + 3 * MIN, &template).expect("the summary when the saved period ends");
        assert_eq!(s.title, "2 alerts held back by the rate limit");
        assert!(s.details.contains("1 × CRITICAL b happened (b)"), "{}", s.details);
        assert_eq!(p.save(t1 + 3 * MIN), None, "nothing left to save");
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
