//! The alert outbox: an alert is written to disk before any delivery is tried, retried with
//! backoff while its channel is down, and removed only once delivered, refused for good, or
//! older than the maximum age. It survives watchdog restarts, so alerts are not lost when SMTP
//! or a webhook is down, and each (alert, channel) is delivered once.
//!
//! The one window for a duplicate: a crash after a peer accepted a delivery and before its
//! removal was written to disk; the next run delivers it again. (Emails carry a Message-ID
//! derived from the alert id, so mail systems can drop such a duplicate.)
//!
//! Per channel, alerts go out in the order they were enqueued: while the oldest waits for its
//! retry the newer ones wait behind it, so "resolved" never arrives before "down".
//!
//! # On-disk formats (version 1), under the state directory
//!
//! `outbox/<seq:012>-<alert id, file-safe>.json`: one file per alert with undelivered
//! channels, replaced atomically (write + rename) on every change, removed when no channel is
//! left:
//!
//! ```json
//! {"version": 1, "seq": 7, "alert": { ...the Alert's fields... },
//!  "deliveries": [{"channel": "email", "attempts": 2, "next_attempt": "2025-01-01T10:00:10Z",
//!                  "last_error": "SMTP server …: Connection refused (will retry)"}]}
//! ```
//!
//! A file that cannot be read is renamed to `<name>.unreadable` and kept for a person to look at.
//!
//! `alert-history.json`: the last [`HISTORY_LIMIT`] alerts, oldest first, each with the status
//! of every channel; replaced atomically on every change, so a reader (the dashboard) always
//! sees a whole document. Read it with [`read_history`].
//!
//! ```json
//! {"version": 1, "entries": [{"alert": { ...the Alert's fields... }, "deliveries": [
//!   {"channel": "email", "status": "pending", "attempts": 1, "next_attempt": "…", "last_error": "…"},
//!   {"channel": "webhook:https://hooks.slack.com/services/…#1a2b3c4d", "status": "delivered", "at": "…", "attempts": 1},
//!   {"channel": "…", "status": "failed", "at": "…", "attempts": 1, "reason": "…"},
//!   {"channel": "…", "status": "expired", "at": "…", "attempts": 9, "reason": "…"}]}]}
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ds_runtime::Shutdown;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::alert::Alert;
use crate::channel::{Channel, DeliveryError};

/// Sub-directory of the state directory holding undelivered alerts.
pub const OUTBOX_DIR: &str = "outbox";
/// File in the state directory holding the recent alerts and their delivery status.
pub const HISTORY_FILE: &str = "alert-history.json";
/// Alerts kept in the history.
pub const HISTORY_LIMIT: usize = 500;
/// Wait after the first temporary failure; doubled after each further one ...
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
/// ... up to this.
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// Version of both file formats.
const FORMAT_VERSION: u32 = 1;
/// The delivery loop looks again at least this often, and at most this often after a failure.
const IDLE_RECHECK: Duration = Duration::from_secs(60);
const MIN_RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot create the alert outbox directory {path}: {source}; check the permissions of state_dir")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read the alert outbox directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error(
        "cannot write {path}: {source}; check free space and permissions of state_dir (the alert is kept in memory)"
    )]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove the delivered alert {path}: {source}; it may be delivered again after a restart")]
    Remove { path: PathBuf, source: io::Error },
    #[error("cannot read the alert history {path}: {reason}")]
    History { path: PathBuf, reason: String },
}

/// Wait before attempt `attempts + 1`, after `attempts` temporary failures (at least 1).
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_FIRST * 2u32.pow(doublings)).min(RETRY_MAX)
}

/// One undelivered (alert, channel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingDelivery {
    pub channel: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not tried before this.
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
}

/// The content of one outbox file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    /// Enqueue order, kept across restarts.
    seq: u64,
    alert: Alert,
    deliveries: Vec<PendingDelivery>,
}

#[derive(Debug)]
struct Pending {
    path: PathBuf,
    file: PendingFile,
}

use ds_wire::alerts::AlertHistory as HistoryFile;
pub use ds_wire::alerts::{ChannelStatus, DeliveryStatus, HistoryEntry};

/// What one [`Outbox::deliver_due`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u32,
    /// Temporary failures, scheduled again.
    pub retrying: u32,
    /// Permanent failures, dropped.
    pub failed: u32,
    /// Too old, dropped.
    pub expired: u32,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.expired += other.expired;
    }
}

#[derive(Debug, Default)]
struct State {
    /// By enqueue order.
    pending: BTreeMap<u64, Pending>,
    next_seq: u64,
    history: Vec<HistoryEntry>,
}

/// The outbox of one watchdog. Share it (`Arc`) between the code that raises alerts
/// ([`Outbox::enqueue`]) and one delivery task ([`Outbox::run`]).
#[derive(Debug)]
pub struct Outbox {
    outbox_dir: PathBuf,
    history_path: PathBuf,
    max_age: Duration,
    state: Mutex<State>,
    /// Deliveries run one call at a time; enqueueing never waits for them.
    delivering: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

impl Outbox {
    /// Opens the outbox under `state_dir` (creating it) and loads what a previous run left.
    /// Alerts not delivered within `max_age` of being raised are dropped.
    pub fn open(state_dir: &Path, max_age: Duration) -> Result<Outbox, OutboxError> {
        let outbox_dir = state_dir.join(OUTBOX_DIR);
        fs::create_dir_all(&outbox_dir)
            .map_err(|source| OutboxError::CreateDir { path: outbox_dir.clone(), source })?;
        let history_path = state_dir.join(HISTORY_FILE);
        let mut state = State { history: load_history(&history_path), ..State::default() };
        let mut loaded = load_pending(&outbox_dir)?;
        loaded.sort_by_key(|(path, file)| (file.seq, path.clone()));
        for (path, mut file) in loaded {
            // Two files with one seq (copied in by hand?): keep both, the later one after.
            if state.pending.contains_key(&file.seq) {
                file.seq = state.next_seq;
            }
            state.next_seq = state.next_seq.max(file.seq + 1);
            state.pending.insert(file.seq, Pending { path, file });
        }
        let deliveries: usize = state.pending.values().map(|p| p.file.deliveries.len()).sum();
        info!(dir = %outbox_dir.display(), alerts = state.pending.len(), deliveries, "alert outbox opened");
        Ok(Outbox {
            outbox_dir,
            history_path,
            max_age,
            state: Mutex::new(state),
            delivering: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Where undelivered alerts are kept.
    pub fn dir(&self) -> &Path {
        &self.outbox_dir
    }

    /// Stores one delivery of `alert` per channel id (see [`Channel::id`]) on disk, then wakes
    /// the delivery task. Enqueueing an alert id again adds only channels that neither wait for it
    /// nor finished it (delivered, refused or expired, as the history says).
    /// If the disk write fails the alert is still kept in memory and the error returned.
    pub fn enqueue(&self, alert: &Alert, channels: &[String]) -> Result<(), OutboxError> {
        let mut st = self.lock();
        let new = |c: &String| PendingDelivery {
            channel: c.clone(),
            attempts: 0,
            next_attempt: alert.raised_at,
            last_error: None,
        };
        let seq = match st.pending.iter().find(|(_, p)| p.file.alert.id == alert.id) {
            Some((seq, _)) => *seq,
            None => {
                let seq = st.next_seq;
                st.next_seq += 1;
                let path = self.outbox_dir.join(file_name(seq, &alert.id));
                let file = PendingFile { version: FORMAT_VERSION, seq, alert: alert.clone(), deliveries: Vec::new() };
                st.pending.insert(seq, Pending { path, file });
                seq
            }
        };
        // A channel that already finished with this alert (delivered, refused, expired) is not
        // tried again: enqueueing the same alert twice must not deliver it twice.
        let finished: Vec<String> = st
            .history
            .iter()
            .rev()
            .find(|e| e.alert.id == alert.id)
            .map(|e| {
                e.deliveries
                    .iter()
                    .filter(|d| !matches!(d.status, DeliveryStatus::Pending { .. }))
                    .map(|d| d.channel.clone())
                    .collect()
            })
            .unwrap_or_default();
        let pending = st.pending.get_mut(&seq).expect("inserted above");
        for c in channels {
            if !finished.contains(c) && !pending.file.deliveries.iter().any(|d| &d.channel == c) {
                pending.file.deliveries.push(new(c));
            }
        }
        let statuses: Vec<ChannelStatus> = pending.file.deliveries.iter().map(pending_status).collect();
        let result = if pending.file.deliveries.is_empty() {
            // No channel: nothing to deliver, but the dashboard still shows the alert.
            st.pending.remove(&seq);
            Ok(())
        } else {
            write_pending(pending)
        };
        st.record_history(alert, statuses);
        self.save_history(&st);
        drop(st);
        self.wake.notify_one();
        result
    }

    /// Attempts every delivery that is due at `now` on the given channels (oldest first per
    /// channel, channels in parallel), after dropping deliveries older than the maximum age.
    /// Deliveries for channel ids not in `channels` wait (and expire).
    pub async fn deliver_due(&self, channels: &[Channel], now: Timestamp) -> Result<DeliveryReport, OutboxError> {
        let _one_at_a_time = self.delivering.lock().await;
        let mut report = DeliveryReport::default();
        let mut first_error = None;
        // A failed removal must not hold back the deliveries: keep going, report it after.
        let expired = self.expire(now, &mut report);
        let results = futures_util::future::join_all(channels.iter().map(|c| self.deliver_channel(c, now))).await;
        for r in std::iter::once(expired.map(|()| DeliveryReport::default())).chain(results) {
            match r {
                Ok(r) => report.add(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn deliver_channel(&self, channel: &Channel, now: Timestamp) -> Result<DeliveryReport, OutboxError> {
        let id = channel.id();
        let mut report = DeliveryReport::default();
        // Each round removes the head or stops, so this bounds the loop.
        let rounds = self.lock().pending.values().filter(|p| p.file.deliveries.iter().any(|d| d.channel == id)).count();
        for _ in 0..rounds {
            let Some((seq, alert)) = self.lock().due_head(&id, now) else { break };
            let result = channel.deliver(&alert).await;
            let retrying = result.as_ref().is_err_and(DeliveryError::is_temporary);
            match &result {
                Ok(()) => report.delivered += 1,
                Err(DeliveryError::Temporary(_)) => report.retrying += 1,
                Err(DeliveryError::Permanent(_)) => report.failed += 1,
            }
            self.record(seq, &id, result, now)?;
            if retrying {
                break;
            }
        }
        Ok(report)
    }

    fn record(
        &self,
        seq: u64,
        channel: &str,
        result: Result<(), DeliveryError>,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let mut st = self.lock();
        let Some(pending) = st.pending.get_mut(&seq) else { return Ok(()) };
        let Some(i) = pending.file.deliveries.iter().position(|d| d.channel == channel) else { return Ok(()) };
        let alert_id = pending.file.alert.id.clone();
        let d = &mut pending.file.deliveries[i];
        d.attempts += 1;
        let status = match result {
            Ok(()) => {
                info!(alert = %alert_id, channel, attempts = d.attempts, "alert delivered");
                DeliveryStatus::Delivered { at: now, attempts: d.attempts }
            }
            Err(DeliveryError::Temporary(reason)) => {
                let delay = retry_delay(d.attempts);
                d.next_attempt = now + delay;
                warn!(alert = %alert_id, channel, attempts = d.attempts, retry_in_s = delay.as_secs(), reason = %reason,
                    "alert delivery failed; will retry");
                d.last_error = Some(reason);
                pending_status(d).status
            }
            Err(DeliveryError::Permanent(reason)) => {
                warn!(alert = %alert_id, channel, attempts = d.attempts, reason = %reason,
                    "alert delivery refused for good; dropped");
                DeliveryStatus::Failed { at: now, attempts: d.attempts, reason }
            }
        };
        if !matches!(status, DeliveryStatus::Pending { .. }) {
            pending.file.deliveries.remove(i);
        }
        let saved = self.persist(&mut st, seq);
        st.update_history(&alert_id, channel, status);
        self.save_history(&st);
        saved
    }

    /// Drops every delivery older than the maximum age, with its reason in the log and history.
    fn expire(&self, now: Timestamp, report: &mut DeliveryReport) -> Result<(), OutboxError> {
        let mut st = self.lock();
        let mut first_error = None;
        let expired: Vec<u64> = st
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.file.alert.raised_at) > signed(self.max_age))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let pending = st.pending.get_mut(&seq).expect("listed above");
            let alert_id = pending.file.alert.id.clone();
            let gone = std::mem::take(&mut pending.file.deliveries);
            if let Err(e) = self.persist(&mut st, seq) {
                first_error.get_or_insert(e);
            }
            for d in gone {
                let reason = format!(
                    "not delivered within {} of being raised after {} attempt(s); last error: {}",
                    human(self.max_age),
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("none (never tried)")
                );
                warn!(alert = %alert_id, channel = %d.channel, reason = %reason, "alert dropped undelivered");
                report.expired += 1;
                let status = DeliveryStatus::Expired { at: now, attempts: d.attempts, reason };
                st.update_history(&alert_id, &d.channel, status);
            }
        }
        if report.expired > 0 {
            self.save_history(&st);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes the alert's file, or removes it (and the entry) when no delivery is left.
    fn persist(&self, st: &mut State, seq: u64) -> Result<(), OutboxError> {
        let Some(pending) = st.pending.get(&seq) else { return Ok(()) };
        if !pending.file.deliveries.is_empty() {
            return write_pending(pending);
        }
        let path = st.pending.remove(&seq).expect("present").path;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(OutboxError::Remove { path, source }),
        }
        // The removal must be durable, or a crash could bring the alert back.
        fs::File::open(&self.outbox_dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| OutboxError::Remove { path, source })
    }

    fn save_history(&self, st: &State) {
        let file = HistoryFile { version: FORMAT_VERSION, entries: st.history.clone() };
        let mut bytes = serde_json::to_vec(&file).expect("history serializes");
        bytes.push(b'\n');
        if let Err(e) = ds_config::write_atomic(&self.history_path, &bytes) {
            warn!(file = %self.history_path.display(), error = %e, "cannot write the alert history");
        }
    }

    /// When [`Outbox::run`] should look again: the earliest retry of a channel's oldest
    /// delivery, or the earliest expiry.
    pub fn next_wakeup(&self, channel_ids: &[String]) -> Option<Timestamp> {
        let st = self.lock();
        let retries = channel_ids.iter().filter_map(|id| {
            st.pending
                .values()
                .find_map(|p| p.file.deliveries.iter().find(|d| &d.channel == id))
                .map(|d| d.next_attempt)
        });
        let expiries = st
            .pending
            .values()
            .map(|p| p.file.alert.raised_at.checked_add(signed(self.max_age)).unwrap_or(Timestamp::MAX));
        retries.chain(expiries).min()
    }

    /// Delivers until `shutdown`: at once after [`Outbox::enqueue`], and when retries fall due.
    pub async fn run(&self, channels: &[Channel], shutdown: &Shutdown) {
        let ids: Vec<String> = channels.iter().map(Channel::id).collect();
        info!(channels = ?ids, "alert delivery started");
        loop {
            tokio::select! {
                r = self.deliver_due(channels, Timestamp::now()) => {
                    if let Err(e) = r {
                        warn!(error = %e, "alert outbox: cannot record a delivery");
                    }
                }
                () = shutdown.wait() => return,
            }
            let wait = self.next_wakeup(&ids).map_or(IDLE_RECHECK, |t| {
                t.duration_since(Timestamp::now()).try_into().unwrap_or(Duration::ZERO).clamp(MIN_RECHECK, IDLE_RECHECK)
            });
            tokio::select! {
                () = shutdown.wait() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Every undelivered (alert id, delivery), oldest first.
    pub fn pending(&self) -> Vec<(String, PendingDelivery)> {
        let st = self.lock();
        st.pending
            .values()
            .flat_map(|p| p.file.deliveries.iter().map(|d| (p.file.alert.id.clone(), d.clone())))
            .collect()
    }

    /// Keeps `alert` in the history without delivering it: the policy held it back, `why`.
    pub fn record_not_sent(&self, alert: &Alert, why: &str) {
        let mut st = self.lock();
        st.record_history(alert, Vec::new());
        if let Some(entry) = st.history.iter_mut().rev().find(|e| e.alert.id == alert.id) {
            entry.not_sent = Some(why.to_owned());
        }
        self.save_history(&st);
    }

    /// Counts a repeat of the newest alert of `kind` that came again within its cooldown.
    pub fn count_repeat(&self, kind: &str) {
        let mut st = self.lock();
        let Some(entry) = st.history.iter_mut().rev().find(|e| e.alert.kind == kind) else { return };
        entry.repeats += 1;
        self.save_history(&st);
    }

    /// The history as kept in memory (the same as [`read_history`] reads).
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.lock().history.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State stays consistent between statements that could panic; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The oldest delivery for `channel`, if it is due.
    fn due_head(&self, channel: &str, now: Timestamp) -> Option<(u64, Alert)> {
        let (seq, p) = self.pending.iter().find(|(_, p)| p.file.deliveries.iter().any(|d| d.channel == channel))?;
        let d = p.file.deliveries.iter().find(|d| d.channel == channel)?;
        (d.next_attempt <= now).then(|| (*seq, p.file.alert.clone()))
    }

    fn record_history(&mut self, alert: &Alert, statuses: Vec<ChannelStatus>) {
        match self.history.iter_mut().rev().find(|e| e.alert.id == alert.id) {
            Some(entry) => {
                for s in statuses {
                    match entry.deliveries.iter_mut().find(|d| d.channel == s.channel) {
                        Some(d) => *d = s,
                        None => entry.deliveries.push(s),
                    }
                }
            }
            None => {
                self.history.push(HistoryEntry {
                    alert: alert.clone(),
                    deliveries: statuses,
                    not_sent: None,
                    repeats: 0,
                });
                let excess = self.history.len().saturating_sub(HISTORY_LIMIT);
                self.history.drain(..excess);
            }
        }
    }

    fn update_history(&mut self, alert_id: &str, channel: &str, status: DeliveryStatus) {
        let Some(entry) = self.history.iter_mut().rev().find(|e| e.alert.id == alert_id) else { return };
        let s = ChannelStatus { channel: channel.to_owned(), status };
        match entry.deliveries.iter_mut().find(|d| d.channel == channel) {
            Some(d) => *d = s,
            None => entry.deliveries.push(s),
        }
    }
}

fn pending_status(d: &PendingDelivery) -> ChannelStatus {
    ChannelStatus {
        channel: d.channel.clone(),
        status: DeliveryStatus::Pending {
            attempts: d.attempts,
            next_attempt: d.next_attempt,
            last_error: d.last_error.clone(),
        },
    }
}

fn write_pending(p: &Pending) -> Result<(), OutboxError> {
    let mut bytes = serde_json::to_vec_pretty(&p.file).expect("an alert serializes");
    bytes.push(b'\n');
    ds_config::write_atomic(&p.path, &bytes).map_err(|source| OutboxError::Write { path: p.path.clone(), source })
}

/// Reads every outbox file; unreadable ones are set aside, leftovers of interrupted writes removed.
fn load_pending(dir: &Path) -> Result<Vec<(PathBuf, PendingFile)>, OutboxError> {
    let entries = fs::read_dir(dir).map_err(|source| OutboxError::ReadDir { path: dir.to_owned(), source })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| OutboxError::ReadDir { path: dir.to_owned(), source })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            // A write that a crash interrupted; the file it was to replace is still whole.
            let _ = fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let parsed = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<PendingFile>(&b).map_err(|e| e.to_string()))
            .and_then(|f| {
                if f.version == FORMAT_VERSION { Ok(f) } else { Err(format!("unknown format version {}", f.version)) }
            });
        match parsed {
            Ok(f) if f.deliveries.is_empty() => {
                let _ = fs::remove_file(&path);
            }
            Ok(f) => found.push((path, f)),
            Err(reason) => set_aside(&path, &reason, "undelivered alert"),
        }
    }
    Ok(found)
}

fn load_history(path: &Path) -> Vec<HistoryEntry> {
    match read_history_file(path) {
        Ok(entries) => entries,
        Err(OutboxError::History { reason, .. }) => {
            set_aside(path, &reason, "alert history");
            Vec::new()
        }
        Err(e) => {
            warn!(error = %e, "starting with an empty alert history");
            Vec::new()
        }
    }
}

fn set_aside(path: &Path, reason: &str, what: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".unreadable");
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => warn!(file = %path.display(), kept_as = %aside.display(), reason, "unreadable {what} set aside"),
        Err(e) => warn!(file = %path.display(), reason, error = %e, "unreadable {what} ignored"),
    }
}

/// Reads the history the watchdog keeps in `state_dir` (for the dashboard): oldest first; empty
/// if there is none yet.
pub fn read_history(state_dir: &Path) -> Result<Vec<HistoryEntry>, OutboxError> {
    read_history_file(&state_dir.join(HISTORY_FILE))
}

fn read_history_file(path: &Path) -> Result<Vec<HistoryEntry>, OutboxError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(OutboxError::History { path: path.to_owned(), reason: e.to_string() }),
    };
    let file: HistoryFile = serde_json::from_slice(&bytes)
        .map_err(|e| OutboxError::History { path: path.to_owned(), reason: format!("not valid JSON: {e}") })?;
    if file.version != FORMAT_VERSION {
        let reason = format!("unknown format version {} (this build reads {FORMAT_VERSION})", file.version);
        return Err(OutboxError::History { path: path.to_owned(), reason });
    }
    Ok(file.entries)
}

/// `000000000007-service_down_desktop-streamer.service-1a2b.json`: ordered, file-safe.
fn file_name(seq: u64, alert_id: &str) -> String {
    let safe: String = alert_id
        .chars()
        .take(80)
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    format!("{seq:012}-{safe}.json")
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// `24 h`, `90 min`, `45 s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    fn alert(id: &str) -> Alert {
        let t: Timestamp = "2025-03-01T10:00:00Z".parse().unwrap();
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

    #[test]
    fn retries_back_off_from_5_s_doubling_to_5_min() {
        let secs: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn an_unreadable_file_is_set_aside_and_the_rest_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
        outbox.enqueue(&alert("a1"), &["email".to_owned()]).unwrap();
        drop(outbox);
        let broken = dir.path().join(OUTBOX_DIR).join("000000000099-x.json");
        fs::write(&broken, "{not json").unwrap();
        fs::write(dir.path().join(OUTBOX_DIR).join(".000000000001-a1.json.abc.tmp"), "half").unwrap();

        let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
        assert_eq!(outbox.pending().len(), 1);
        let mut names: Vec<String> = fs::read_dir(outbox.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["000000000000-a1.json", "000000000099-x.json.unreadable"]);
        // New alerts come after the loaded ones.
        outbox.enqueue(&alert("a2"), &["email".to_owned()]).unwrap();
        assert!(outbox.dir().join("000000000001-a2.json").exists());
    }

    #[test]
    fn enqueueing_again_adds_only_new_channels() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
        outbox.enqueue(&alert("a1"), &["email".to_owned()]).unwrap();
        outbox.enqueue(&alert("a1"), &["email".to_owned(), "webhook:x".to_owned()]).unwrap();
        let channels: Vec<String> = outbox.pending().into_iter().map(|(_, d)| d.channel).collect();
        assert_eq!(channels, ["email", "webhook:x"]);
        let history = read_history(dir.path()).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].deliveries.len(), 2);
    }

    #[test]
    fn the_history_keeps_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
        for i in 0..HISTORY_LIMIT + 3 {
            outbox.enqueue(&alert(&format!("a{i}")), &[]).unwrap();
        }
        let history = read_history(dir.path()).unwrap();
        assert_eq!(history.len(), HISTORY_LIMIT);
        assert_eq!(history[0].alert.id, "a3");
        assert_eq!(history.last().unwrap().alert.id, format!("a{}", HISTORY_LIMIT + 2));
        assert!(outbox.pending().is_empty(), "an alert without channels has nothing to deliver");
    }

    #[test]
    fn durations_read_like_config_values() {
        assert_eq!(human(Duration::from_secs(86_400)), "24 h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90 min");
        assert_eq!(human(Duration::from_secs(45)), "45 s");
    }
}
