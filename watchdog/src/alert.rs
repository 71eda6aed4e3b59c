//! An alert: what happened, how bad it is, since when, and what the watchdog did about it.
//! Every channel (email, webhooks) renders this one record; the outbox stores it as JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something recovered or an operator asked for a test.
    Info,
    /// Degraded but working, or a problem that may pass by itself.
    Warning,
    /// The stream or a service is down.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_uppercase())
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, stable across restarts: the outbox and the history key on it.
    pub id: String,
    /// What kind of problem, including its subject, e.g. `service_down:desktop-streamer.service`;
    /// cooldown applies per kind.
    pub kind: String,
    pub severity: Severity,
    /// One line, e.g. `service down: desktop-streamer.service`.
    pub title: String,
    /// What was seen, in sentences.
    pub details: String,
    /// When the condition started (RFC 3339, UTC).
    pub since: jiff::Timestamp,
    /// When the alert was raised.
    pub raised_at: jiff::Timestamp,
    /// What the watchdog did about it, if anything (`restarted the unit`, `held back: …`).
    pub action: Option<String>,
    /// The machine it is about.
    pub host: String,
    /// Where an operator can look, if known.
    pub dashboard_url: Option<String>,
}

impl Alert {
    /// The subject line channels use: `[desktop-streamer] CRITICAL service down on kiosk-7`.
    pub fn subject(&self) -> String {
        format!("[desktop-streamer] {} {} on {}", self.severity, self.title, self.host)
    }

    /// The plain-text body channels use.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n\nSince: {}\nSeverity: {}\nHost: {}\n",
            self.details,
            self.since,
            self.severity.as_str(),
            self.host
        );
        if let Some(action) = &self.action {
            t.push_str(&format!("Action: {action}\n"));
        }
        if let Some(url) = &self.dashboard_url {
            t.push_str(&format!("Dashboard: {url}\n"));
        }
        t
    }
}

/// A critical `service_down` alert `id`, raised at 2025-03-01T10:00:00Z, for unit tests.
#[cfg(test)]
pub(crate) fn sample(id: &str) -> Alert {
    let t: jiff::Timestamp = "2025-03-01T10:00:00Z".parse().unwrap();
    Alert {
        id: id.to_owned(),
        kind: "service_down:a.service".to_owned(),
        severity: Severity::Critical,
        title: "service down: a.service".to_owned(),
        details: "a.service failed.".to_owned(),
        since: t,
        raised_at: t,
        action: None,
        host: "kiosk-7".to_owned(),
        dashboard_url: None,
    }
}
