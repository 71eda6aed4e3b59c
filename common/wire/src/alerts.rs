//! The watchdog's alerts and their delivery history: `alert-history.json` in the watchdog's
//! state directory, written by the watchdog, read by the dashboard (`GET /api/alerts` answers
//! [`AlertsReply`]) and the CLI.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The history file's name in the watchdog's state directory.
pub const HISTORY_FILE: &str = "alert-history.json";

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

/// One alert in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub alert: Alert,
    pub deliveries: Vec<ChannelStatus>,
    /// Why the alert was not sent, when the policy held it back (it then goes into a summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_sent: Option<String>,
    /// How often the same alert came again within its cooldown, and so was not sent again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where one channel's delivery of an alert stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    pub channel: String,
    #[serde(flatten)]
    pub status: DeliveryStatus,
}

/// Where one (alert, channel) delivery stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending {
        attempts: u32,
        next_attempt: jiff::Timestamp,
        last_error: Option<String>,
    },
    Delivered {
        at: jiff::Timestamp,
        attempts: u32,
    },
    /// Refused for good (e.g. HTTP 400, SMTP 550, authentication refused).
    Failed {
        at: jiff::Timestamp,
        attempts: u32,
        reason: String,
    },
    /// Older than the maximum age and still not delivered.
    Expired {
        at: jiff::Timestamp,
        attempts: u32,
        reason: String,
    },
}

impl DeliveryStatus {
    /// The word the JSON's `status` field carries.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending { .. } => "pending",
            DeliveryStatus::Delivered { .. } => "delivered",
            DeliveryStatus::Failed { .. } => "failed",
            DeliveryStatus::Expired { .. } => "expired",
        }
    }
}

/// `alert-history.json`: the last alerts, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertHistory {
    /// The file's format version; the watchdog sets aside a file of another version.
    pub version: u32,
    pub entries: Vec<HistoryEntry>,
}

/// The dashboard's `GET /api/alerts`: the history's entries, none while the watchdog has
/// written no history yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsReply {
    #[serde(default)]
    pub entries: Vec<HistoryEntry>,
}
