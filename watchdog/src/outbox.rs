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
//! # Time
//!
//! A step of the wall clock (NTP on a board without a real-time clock, an operator) never
//! expires an alert nor delays a retry: ages and back-off run on the monotonic clock (see
//! [`crate::clock`]). Across a restart each file carries the age the alert had reached, with the
//! boot id and `CLOCK_BOOTTIME` of that save: loaded in the same boot, the age goes on from
//! `CLOCK_BOOTTIME`; after a reboot it goes on from the stored age (the time the machine was off
//! is not counted: an alert is never dropped for a clock nobody can trust). A file without these
//! fields (written by an older version) gets its age from the wall clock once, never below 0.
//! A retry waiting when the watchdog stopped is due at once after the restart. An alert
//! delivered after the clock stepped says so: its details end with "Raised at … as the clock
//! said then (the system clock has since stepped +366 d)." (`raised_at` itself is kept).
//!
//! # On-disk format (version 1), under the state directory
//!
//! `outbox/<seq:012>-<alert id, file-safe>.json`: one file per alert with undelivered
//! channels, replaced atomically (write + rename) on every change, removed when no channel is
//! left:
//!
//! ```json
//! {"version": 1, "seq": 7, "alert": { ...the Alert's fields... },
//!  "deliveries": [{"channel": "email", "attempts": 2, "next_attempt": "2025-01-01T10:00:10Z",
//!                  "last_error": "SMTP server …: Connection refused (will retry)"}],
//!  "age": {"seconds": 12.5, "boot_id": "a489f2cf-…", "since_boot": 4653.19,
//!          "wall": "2025-01-01T10:00:05Z", "stepped": 0.0}}
//! ```
//!
//! `next_attempt` is for people (the wall time the retry was due when written); the retry
//! itself runs on the monotonic clock. `age` is the age at that save (seconds), the boot and
//! its `CLOCK_BOOTTIME` then, the wall clock then, and how far the wall clock had stepped since
//! the alert was raised (seconds, signed).
//!
//! A file that cannot be read is renamed to `<name>.unreadable` and kept for a person to look at.
//!
//! Every change of a delivery is recorded in the alert [`history`](crate::history) as well.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ds_runtime::Shutdown;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::alert::Alert;
use crate::channel::Channel;
use crate::clock::{At, Boot, STEP_THRESHOLD, human_step, signed};
use crate::delivery::DeliveryError;
use crate::history::{ChannelStatus, DeliveryStatus, History, HistoryEntry};
use crate::state_file::set_aside;

/// Sub-directory of the state directory holding undelivered alerts.
pub const OUTBOX_DIR: &str = "outbox";
/// Wait after the first temporary failure; doubled after each further one ...
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
/// ... up to this.
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// Version of the file format.
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
    /// Not tried before this, as the wall clock said when it was set (for people).
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    /// Not tried before this: the retry's due time on the monotonic clock (`None`: due now,
    /// as after a restart).
    #[serde(skip)]
    pub due: Option<Instant>,
}

/// The age of an alert at the save of its file, with what a later load needs to go on counting
/// (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedAge {
    /// Age reached, in seconds, counted on the monotonic clock.
    seconds: f64,
    boot_id: String,
    /// `CLOCK_BOOTTIME` at the save, in seconds.
    since_boot: f64,
    /// The wall clock at the save.
    wall: Timestamp,
    /// How far the wall clock had stepped since the alert was raised, in seconds.
    stepped: f64,
}

/// An alert's age and the steps of the wall clock since it was raised, counted from `origin`.
#[derive(Clone, Copy, Debug)]
struct Clocked {
    origin: At,
    age: Duration,
    stepped: SignedDuration,
}

impl Clocked {
    fn new(now: At) -> Clocked {
        Clocked { origin: now, age: Duration::ZERO, stepped: SignedDuration::ZERO }
    }

    /// Picks up counting from what a file says, at `now` in `boot`.
    fn load(file: &PendingFile, now: At, boot: Option<&Boot>) -> Clocked {
        let Some(saved) = &file.age else {
            // An older file: its age from the wall clock, this once, never below 0.
            let age = Duration::try_from(now.wall.duration_since(file.alert.raised_at)).unwrap_or_default();
            return Clocked { origin: now, age, stepped: SignedDuration::ZERO };
        };
        let age = Duration::try_from_secs_f64(saved.seconds).unwrap_or_default();
        let stepped = SignedDuration::try_from_secs_f64(saved.stepped).unwrap_or_default();
        match boot {
            Some(boot) if boot.id == saved.boot_id => {
                let then = Duration::try_from_secs_f64(saved.since_boot).unwrap_or_default();
                let gap = boot.since_boot.saturating_sub(then);
                let wall_gap = now.wall.duration_since(saved.wall);
                Clocked {
                    origin: now,
                    age: age + gap,
                    stepped: stepped.saturating_add(wall_gap.saturating_sub(signed(gap))),
                }
            }
            // After a reboot: the time off is not counted, and no step can be told from it.
            _ => Clocked { origin: now, age, stepped },
        }
    }

    fn age(&self, now: At) -> Duration {
        self.age + now.mono.saturating_duration_since(self.origin.mono)
    }

    fn stepped(&self, now: At) -> SignedDuration {
        self.stepped.saturating_add(now.stepped_since(&self.origin))
    }

    fn saved(&self, now: At, boot: Option<&Boot>) -> SavedAge {
        SavedAge {
            seconds: self.age(now).as_secs_f64(),
            boot_id: boot.map(|b| b.id.clone()).unwrap_or_default(),
            since_boot: boot.map_or(0.0, |b| b.since_boot.as_secs_f64()),
            wall: now.wall,
            stepped: self.stepped(now).as_secs_f64(),
        }
    }
}

/// The content of one outbox file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    /// Enqueue order, kept across restarts.
    seq: u64,
    alert: Alert,
    deliveries: Vec<PendingDelivery>,
    /// Missing in files of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age: Option<SavedAge>,
}

#[derive(Debug)]
struct Pending {
    path: PathBuf,
    file: PendingFile,
    clock: Clocked,
}

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

#[derive(Debug)]
struct State {
    /// By enqueue order.
    pending: BTreeMap<u64, Pending>,
    next_seq: u64,
    history: History,
}

/// The outbox of one watchdog. Share it (`Arc`) between the code that raises alerts
/// ([`Outbox::enqueue`]) and one delivery task ([`Outbox::run`]).
#[derive(Debug)]
pub struct Outbox {
    outbox_dir: PathBuf,
    max_age: Duration,
    /// The boot this run is in, stamped on every file.
    boot: Option<Boot>,
    state: Mutex<State>,
    /// Deliveries run one call at a time; enqueueing never waits for them.
    delivering: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

impl Outbox {
    /// Opens the outbox under `state_dir` (creating it) and loads what a previous run left.
    /// Alerts not delivered within `max_age` of being raised are dropped.
    pub fn open(state_dir: &Path, max_age: Duration) -> Result<Outbox, OutboxError> {
        Outbox::open_at(state_dir, max_age, At::now(), Boot::read().as_ref())
    }

    /// [`Outbox::open`] at `now` in `boot` (`None`: unknown, counted as another boot).
    pub fn open_at(state_dir: &Path, max_age: Duration, now: At, boot: Option<&Boot>) -> Result<Outbox, OutboxError> {
        let outbox_dir = state_dir.join(OUTBOX_DIR);
        fs::create_dir_all(&outbox_dir)
            .map_err(|source| OutboxError::CreateDir { path: outbox_dir.clone(), source })?;
        let mut state = State { pending: BTreeMap::new(), next_seq: 0, history: History::open(state_dir) };
        let mut loaded = load_pending(&outbox_dir)?;
        loaded.sort_by_key(|(path, file)| (file.seq, path.clone()));
        for (path, mut file) in loaded {
            // Two files with one seq (copied in by hand?): keep both, the later one after.
            if state.pending.contains_key(&file.seq) {
                file.seq = state.next_seq;
            }
            state.next_seq = state.next_seq.max(file.seq + 1);
            let clock = Clocked::load(&file, now, boot);
            state.pending.insert(file.seq, Pending { path, file, clock });
        }
        let deliveries: usize = state.pending.values().map(|p| p.file.deliveries.len()).sum();
        info!(dir = %outbox_dir.display(), alerts = state.pending.len(), deliveries, "alert outbox opened");
        Ok(Outbox {
            outbox_dir,
            max_age,
            boot: boot.cloned(),
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
        let now = At::now();
        let mut st = self.lock();
        let new = |c: &String| PendingDelivery {
            channel: c.clone(),
            attempts: 0,
            next_attempt: alert.raised_at,
            last_error: None,
            due: None,
        };
        let seq = match st.pending.iter().find(|(_, p)| p.file.alert.id == alert.id) {
            Some((seq, _)) => *seq,
            None => {
                let seq = st.next_seq;
                st.next_seq += 1;
                let path = self.outbox_dir.join(file_name(seq, &alert.id));
                let file = PendingFile {
                    version: FORMAT_VERSION,
                    seq,
                    alert: alert.clone(),
                    deliveries: Vec::new(),
                    age: None,
                };
                st.pending.insert(seq, Pending { path, file, clock: Clocked::new(now) });
                seq
            }
        };
        // A channel that already finished with this alert (delivered, refused, expired) is not
        // tried again: enqueueing the same alert twice must not deliver it twice.
        let finished = st.history.finished_channels(&alert.id);
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
            write_pending(pending, now, self.boot.as_ref())
        };
        st.history.record(alert, statuses);
        st.history.save();
        drop(st);
        self.wake.notify_one();
        result
    }

    /// Attempts every delivery that is due at `now` on the given channels (oldest first per
    /// channel, channels in parallel), after dropping deliveries older than the maximum age.
    /// Deliveries for channel ids not in `channels` wait (and expire).
    pub async fn deliver_due(&self, channels: &[Channel], now: At) -> Result<DeliveryReport, OutboxError> {
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

    async fn deliver_channel(&self, channel: &Channel, now: At) -> Result<DeliveryReport, OutboxError> {
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

    fn record(&self, seq: u64, channel: &str, result: Result<(), DeliveryError>, now: At) -> Result<(), OutboxError> {
        let mut st = self.lock();
        let Some(pending) = st.pending.get_mut(&seq) else { return Ok(()) };
        let Some(i) = pending.file.deliveries.iter().position(|d| d.channel == channel) else { return Ok(()) };
        let alert_id = pending.file.alert.id.clone();
        let d = &mut pending.file.deliveries[i];
        d.attempts += 1;
        let status = match result {
            Ok(()) => {
                info!(alert = %alert_id, channel, attempts = d.attempts, "alert delivered");
                DeliveryStatus::Delivered { at: now.wall, attempts: d.attempts }
            }
            Err(DeliveryError::Temporary(reason)) => {
                let delay = retry_delay(d.attempts);
                d.next_attempt = now.wall + delay;
                d.due = Some(now.mono + delay);
                warn!(alert = %alert_id, channel, attempts = d.attempts, retry_in_s = delay.as_secs(), reason = %reason,
                    "alert delivery failed; will retry");
                d.last_error = Some(reason);
                pending_status(d).status
            }
            Err(DeliveryError::Permanent(reason)) => {
                warn!(alert = %alert_id, channel, attempts = d.attempts, reason = %reason,
                    "alert delivery refused for good; dropped");
                DeliveryStatus::Failed { at: now.wall, attempts: d.attempts, reason }
            }
        };
        if !matches!(status, DeliveryStatus::Pending { .. }) {
            pending.file.deliveries.remove(i);
        }
        let saved = self.persist(&mut st, seq, now);
        st.history.update(&alert_id, channel, status);
        st.history.save();
        saved
    }

    /// Drops every delivery older than the maximum age (on the monotonic clock), with its reason
    /// in the log and history.
    fn expire(&self, now: At, report: &mut DeliveryReport) -> Result<(), OutboxError> {
        let mut st = self.lock();
        let mut first_error = None;
        let expired: Vec<u64> =
            st.pending.iter().filter(|(_, p)| p.clock.age(now) > self.max_age).map(|(seq, _)| *seq).collect();
        for seq in expired {
            let pending = st.pending.get_mut(&seq).expect("listed above");
            let alert_id = pending.file.alert.id.clone();
            let gone = std::mem::take(&mut pending.file.deliveries);
            if let Err(e) = self.persist(&mut st, seq, now) {
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
                let status = DeliveryStatus::Expired { at: now.wall, attempts: d.attempts, reason };
                st.history.update(&alert_id, &d.channel, status);
            }
        }
        if report.expired > 0 {
            st.history.save();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes the alert's file, or removes it (and the entry) when no delivery is left.
    fn persist(&self, st: &mut State, seq: u64, now: At) -> Result<(), OutboxError> {
        let Some(pending) = st.pending.get_mut(&seq) else { return Ok(()) };
        if !pending.file.deliveries.is_empty() {
            return write_pending(pending, now, self.boot.as_ref());
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

    /// When [`Outbox::run`] should look again (monotonic): the earliest retry of a channel's
    /// oldest delivery, or the earliest expiry.
    pub fn next_wakeup(&self, channel_ids: &[String], now: At) -> Option<Instant> {
        let st = self.lock();
        let retries = channel_ids.iter().filter_map(|id| {
            st.pending
                .values()
                .find_map(|p| p.file.deliveries.iter().find(|d| &d.channel == id))
                .map(|d| d.due.unwrap_or(now.mono))
        });
        let expiries = st.pending.values().map(|p| now.mono + self.max_age.saturating_sub(p.clock.age(now)));
        retries.chain(expiries).min()
    }

    /// Delivers until `shutdown`: at once after [`Outbox::enqueue`], and when retries fall due.
    pub async fn run(&self, channels: &[Channel], shutdown: &Shutdown) {
        let ids: Vec<String> = channels.iter().map(Channel::id).collect();
        info!(channels = ?ids, "alert delivery started");
        loop {
            tokio::select! {
                r = self.deliver_due(channels, At::now()) => {
                    if let Err(e) = r {
                        warn!(error = %e, "alert outbox: cannot record a delivery");
                    }
                }
                () = shutdown.wait() => return,
            }
            let wait = self
                .next_wakeup(&ids, At::now())
                .map_or(IDLE_RECHECK, |t| t.saturating_duration_since(Instant::now()).clamp(MIN_RECHECK, IDLE_RECHECK));
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
        st.history.record_not_sent(alert, why);
        st.history.save();
    }

    /// Counts a repeat of the newest alert of `kind` that came again within its cooldown.
    pub fn count_repeat(&self, kind: &str) {
        let mut st = self.lock();
        if st.history.count_repeat(kind) {
            st.history.save();
        }
    }

    /// The history as kept in memory (the same as [`crate::history::read_history`] reads).
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.lock().history.entries().to_vec()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State stays consistent between statements that could panic; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The oldest delivery for `channel`, if it is due, as it goes out: with a note when the
    /// wall clock has stepped since it was raised.
    fn due_head(&self, channel: &str, now: At) -> Option<(u64, Alert)> {
        let (seq, p) = self.pending.iter().find(|(_, p)| p.file.deliveries.iter().any(|d| d.channel == channel))?;
        let d = p.file.deliveries.iter().find(|d| d.channel == channel)?;
        if d.due.is_some_and(|due| due > now.mono) {
            return None;
        }
        let mut alert = p.file.alert.clone();
        let stepped = p.clock.stepped(now);
        if stepped.unsigned_abs() > STEP_THRESHOLD {
            let note = format!(
                "Raised at {} as the clock said then (the system clock has since stepped {}).",
                alert.raised_at,
                human_step(stepped)
            );
            alert.details = if alert.details.is_empty() { note } else { format!("{}\n\n{note}", alert.details) };
        }
        Some((*seq, alert))
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

fn write_pending(p: &mut Pending, now: At, boot: Option<&Boot>) -> Result<(), OutboxError> {
    p.file.age = Some(p.clock.saved(now, boot));
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

/// `000000000007-service_down_desktop-streamer.service-1a2b.json`: ordered, file-safe.
fn file_name(seq: u64, alert_id: &str) -> String {
    let safe: String = alert_id
        .chars()
        .take(80)
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    format!("{seq:012}-{safe}.json")
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
    use crate::alert::sample as alert;
    use crate::history::read_history;

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
    fn an_alert_without_channels_is_only_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), Duration::from_secs(3600)).unwrap();
        outbox.enqueue(&alert("a1"), &[]).unwrap();
        assert!(outbox.pending().is_empty(), "an alert without channels has nothing to deliver");
        let history = read_history(dir.path()).unwrap();
        assert_eq!(history.len(), 1);
        assert!(history[0].deliveries.is_empty());
    }

    #[test]
    fn durations_read_like_config_values() {
        assert_eq!(human(Duration::from_secs(86_400)), "24 h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90 min");
        assert_eq!(human(Duration::from_secs(45)), "45 s");
    }
}
