//! The alert history: the last [`HISTORY_LIMIT`] alerts, with where the delivery of each stands
//! on every channel and why one was held back, for the dashboard to show. The outbox records
//! into it; the dashboard reads the file.
//!
//! # On-disk format (version 1)
//!
//! `alert-history.json` in the state directory: oldest first, each with the status of every
//! channel; replaced atomically on every change, so a reader (the dashboard) always sees a whole
//! document. Read it with [`read_history`]. A file that cannot be read is renamed to
//! `alert-history.json.unreadable` and the watchdog starts a new history.
//!
//! ```json
//! {"version": 1, "entries": [{"alert": { ...the Alert's fields... }, "deliveries": [
//!   {"channel": "email", "status": "pending", "attempts": 1, "next_attempt": "…", "last_error": "…"},
//!   {"channel": "webhook:https://hooks.slack.com/services/…#1a2b3c4d", "status": "delivered", "at": "…", "attempts": 1},
//!   {"channel": "…", "status": "failed", "at": "…", "attempts": 1, "reason": "…"},
//!   {"channel": "…", "status": "expired", "at": "…", "attempts": 9, "reason": "…"}]}]}
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::alert::Alert;
use crate::state_file::set_aside;

/// File in the state directory holding the recent alerts and their delivery status.
pub const HISTORY_FILE: &str = "alert-history.json";
/// Alerts kept in the history.
pub const HISTORY_LIMIT: usize = 500;
/// Version of the file format.
const FORMAT_VERSION: u32 = 1;

use ds_wire::alerts::AlertHistory as HistoryFile;
pub use ds_wire::alerts::{ChannelStatus, DeliveryStatus, HistoryEntry};

#[derive(Debug, thiserror::Error)]
#[error("cannot read the alert history {path}: {reason}")]
pub struct HistoryError {
    pub path: PathBuf,
    pub reason: String,
}

/// The history of one watchdog, in memory and in its file. Every change is saved at once by the
/// caller ([`History::save`]); a failed save is logged, the history in memory stays.
#[derive(Debug)]
pub(crate) struct History {
    path: PathBuf,
    entries: Vec<HistoryEntry>,
}

impl History {
    /// Loads the history a previous run left in `state_dir`; an unreadable file is set aside.
    pub(crate) fn open(state_dir: &Path) -> History {
        let path = state_dir.join(HISTORY_FILE);
        let entries = match read_history_file(&path) {
            Ok(entries) => entries,
            Err(HistoryError { reason, .. }) => {
                set_aside(&path, &reason, "alert history");
                Vec::new()
            }
        };
        History { path, entries }
    }

    pub(crate) fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// The channels that finished with the alert `alert_id` (delivered, refused, expired).
    pub(crate) fn finished_channels(&self, alert_id: &str) -> Vec<String> {
        self.newest(alert_id)
            .map(|e| {
                e.deliveries
                    .iter()
                    .filter(|d| !matches!(d.status, DeliveryStatus::Pending { .. }))
                    .map(|d| d.channel.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds `alert` with `statuses`, or updates these channels of its entry if it has one.
    /// The oldest entries go beyond [`HISTORY_LIMIT`].
    pub(crate) fn record(&mut self, alert: &Alert, statuses: Vec<ChannelStatus>) {
        match self.entries.iter_mut().rev().find(|e| e.alert.id == alert.id) {
            Some(entry) => {
                for s in statuses {
                    match entry.deliveries.iter_mut().find(|d| d.channel == s.channel) {
                        Some(d) => *d = s,
                        None => entry.deliveries.push(s),
                    }
                }
            }
            None => {
                self.entries.push(HistoryEntry {
                    alert: alert.clone(),
                    deliveries: statuses,
                    not_sent: None,
                    repeats: 0,
                });
                let excess = self.entries.len().saturating_sub(HISTORY_LIMIT);
                self.entries.drain(..excess);
            }
        }
    }

    /// Sets where the delivery of `alert_id` on `channel` stands, if the alert is still kept.
    pub(crate) fn update(&mut self, alert_id: &str, channel: &str, status: DeliveryStatus) {
        let Some(entry) = self.entries.iter_mut().rev().find(|e| e.alert.id == alert_id) else { return };
        let s = ChannelStatus { channel: channel.to_owned(), status };
        match entry.deliveries.iter_mut().find(|d| d.channel == channel) {
            Some(d) => *d = s,
            None => entry.deliveries.push(s),
        }
    }

    /// Keeps `alert` without deliveries: the policy held it back, `why`.
    pub(crate) fn record_not_sent(&mut self, alert: &Alert, why: &str) {
        self.record(alert, Vec::new());
        if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.alert.id == alert.id) {
            entry.not_sent = Some(why.to_owned());
        }
    }

    /// Counts a repeat of the newest alert of `kind`; false if there is none.
    pub(crate) fn count_repeat(&mut self, kind: &str) -> bool {
        let Some(entry) = self.entries.iter_mut().rev().find(|e| e.alert.kind == kind) else { return false };
        entry.repeats += 1;
        true
    }

    /// Replaces the file with the history in memory.
    pub(crate) fn save(&self) {
        let file = HistoryFile { version: FORMAT_VERSION, entries: self.entries.clone() };
        let mut bytes = serde_json::to_vec(&file).expect("history serializes");
        bytes.push(b'\n');
        if let Err(e) = ds_config::write_atomic(&self.path, &bytes) {
            warn!(file = %self.path.display(), error = %e, "cannot write the alert history");
        }
    }

    fn newest(&self, alert_id: &str) -> Option<&HistoryEntry> {
        self.entries.iter().rev().find(|e| e.alert.id == alert_id)
    }
}

/// Reads the history the watchdog keeps in `state_dir` (for the dashboard): oldest first; empty
/// if there is none yet.
pub fn read_history(state_dir: &Path) -> Result<Vec<HistoryEntry>, HistoryError> {
    read_history_file(&state_dir.join(HISTORY_FILE))
}

fn read_history_file(path: &Path) -> Result<Vec<HistoryEntry>, HistoryError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HistoryError { path: path.to_owned(), reason: e.to_string() }),
    };
    let file: HistoryFile = serde_json::from_slice(&bytes)
        .map_err(|e| HistoryError { path: path.to_owned(), reason: format!("not valid JSON: {e}") })?;
    if file.version != FORMAT_VERSION {
        let reason = format!("unknown format version {} (this build reads {FORMAT_VERSION})", file.version);
        return Err(HistoryError { path: path.to_owned(), reason });
    }
    Ok(file.entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sample as alert;

    #[test]
    fn the_history_keeps_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(dir.path());
        for i in 0..HISTORY_LIMIT + 3 {
            history.record(&alert(&format!("a{i}")), Vec::new());
        }
        history.save();
        let read = read_history(dir.path()).unwrap();
        assert_eq!(read.len(), HISTORY_LIMIT);
        assert_eq!(read[0].alert.id, "a3");
        assert_eq!(read.last().unwrap().alert.id, format!("a{}", HISTORY_LIMIT + 2));
        assert_eq!(History::open(dir.path()).entries(), read, "a new run starts from the file");
    }

    #[test]
    fn an_unreadable_history_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(HISTORY_FILE), "{not json").unwrap();
        let err = read_history(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read the alert history "), "{err}");
        assert!(err.reason.starts_with("not valid JSON"), "{err}");
        assert!(History::open(dir.path()).entries().is_empty());
        assert!(dir.path().join("alert-history.json.unreadable").exists());
        assert!(read_history(dir.path()).unwrap().is_empty(), "the next run starts a new history");
    }
}
