//! Batched heartbeat writes on a thread of their own.
//!
//! A probe must never wait for the disk: [`Writer::record`] hands the heartbeat to a
//! bounded queue and returns at once. The writer thread commits in batches (every
//! [`Batching::max_records`] heartbeats or [`Batching::max_delay`], whichever comes first),
//! which turns thousands of fsyncs a minute into a few. It also derives the state changes:
//! a heartbeat whose state differs from the camera's previous heartbeat is a change (the
//! first heartbeat of a camera is one too, from nothing). A different reason within the
//! same state (DOWN: timeout → DOWN: auth_failed) is not a change.
//!
//! A camera's stored timeline never goes backwards, whatever the wall clock does. A heartbeat
//! whose time is not after the camera's newest stored one (the wall clock stepped back, or a
//! forward excursion of the clock was corrected) is stored after it instead: at the newest
//! time plus the time that passed since that heartbeat on the monotonic clock (at least 1 ms;
//! after a restart, when that is not known, 1 ms). So after a backward step the camera's
//! history runs on from where it was, at its real pace, ahead of the wall clock, until the
//! clock catches up; its state changes keep being recorded in order, and no stored heartbeat
//! is ever replaced (the insert is a plain `INSERT`). Nothing is stored in an hour already
//! rolled up either (before `rolled_until`): the roll-up would never see it. Readers measure
//! "now" on the same timeline ([`Store::data_now`](crate::Store::data_now)). The heartbeat's
//! other times (`last_frame_at`) are stored as the clock said them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ds_cameras::{Heartbeat, State};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::schema;
use crate::store::Store;

/// How long to wait before retrying a batch whose commit failed (disk full, locked).
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Attempts to commit what is left when shutting down.
const SHUTDOWN_ATTEMPTS: u32 = 3;

/// When the writer commits.
#[derive(Clone, Debug)]
pub struct Batching {
    /// Commit when this many heartbeats wait. Default 500.
    pub max_records: usize,
    /// Commit when the oldest waiting heartbeat is this old. Default 1 s.
    pub max_delay: Duration,
    /// Heartbeats that may wait (in the queue and in a failing batch) before new ones are
    /// dropped. Default 100 000 (over 20 minutes of 1000 cameras at 15 s).
    pub queue: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_records: 500, max_delay: Duration::from_secs(1), queue: 100_000 }
    }
}

/// What the writer has done, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    pub written: u64,
    pub state_changes: u64,
    pub batches: u64,
    pub dropped: u64,
    pub failed_commits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    state_changes: AtomicU64,
    batches: AtomicU64,
    dropped: AtomicU64,
    failed_commits: AtomicU64,
}

#[derive(Debug)]
enum Msg {
    /// A heartbeat and when it was recorded on the monotonic clock.
    Heartbeat(Box<Heartbeat>, Instant),
    Flush(oneshot::Sender<Result<(), String>>),
    Shutdown,
}

#[derive(Debug)]
struct Shared {
    counters: Counters,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Sends heartbeats to the writer thread. Clone it into every task that records; call
/// [`Writer::shutdown`] once when the service stops. If every clone is dropped without
/// it, the thread still commits what it holds, but nobody waits for it.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

const INSERT_HEARTBEAT: &str = "INSERT INTO heartbeats \
     (camera, at, state, reason, message, latency_ms, codec, width, height, last_frame_at, clock_synchronized) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const INSERT_CHANGE: &str =
    "INSERT INTO state_changes (camera, at, from_state, to_state, reason, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const FIND_CAMERA: &str = "SELECT id FROM cameras WHERE stable_id = ?1";
const ADD_CAMERA: &str = "INSERT INTO cameras (stable_id, name, first_seen) VALUES (?1, ?1, ?2)";
const LAST_HEARTBEAT: &str = "SELECT state, at FROM heartbeats WHERE camera = ?1 ORDER BY at DESC LIMIT 1";

impl Store {
    /// Starts the writer thread on a connection of its own.
    pub fn writer(&self, batching: Batching) -> Result<Writer> {
        let conn = schema::connect(self.path())?;
        let (tx, rx) = mpsc::sync_channel(batching.queue.max(1));
        let shared = Arc::new(Shared { counters: Counters::default(), thread: Mutex::new(None) });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("camera-db-writer".into())
            .spawn(move || WriterThread::new(conn, batching, thread_shared).run(&rx))
            .map_err(Error::Write)?;
        *shared.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(Writer { tx, shared })
    }
}

impl Writer {
    /// Queues a heartbeat; never blocks. Fails only when the queue is full (the disk is
    /// far behind) or the writer has stopped; the heartbeat is then dropped and counted.
    pub fn record(&self, heartbeat: Heartbeat) -> Result<()> {
        self.record_at(heartbeat, Instant::now())
    }

    /// [`Writer::record`] of a heartbeat recorded at `recorded` on the monotonic clock (what
    /// spaces heartbeats stored after a backward step of the wall clock; tests pass it).
    pub fn record_at(&self, heartbeat: Heartbeat, recorded: Instant) -> Result<()> {
        match self.tx.try_send(Msg::Heartbeat(Box::new(heartbeat), recorded)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Err(Error::Backlog)
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::WriterStopped),
        }
    }

    /// Waits until everything recorded before this call is committed. Fails with the
    /// commit's error if the database refuses the batch (it stays queued and is retried).
    pub async fn flush(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send_waiting(Msg::Flush(reply)).await?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Commit(e)),
            Err(_) => Err(Error::WriterStopped),
        }
    }

    /// Commits what is queued and stops the thread, waiting for it. Later calls return at
    /// once; later `record`s fail with [`Error::WriterStopped`].
    pub async fn shutdown(&self) {
        // An error means the thread is already gone.
        let _ = self.send_waiting(Msg::Shutdown).await;
        let handle = self.shared.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the camera database writer thread panicked");
            }
        }
    }

    pub fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            written: c.written.load(Ordering::Relaxed),
            state_changes: c.state_changes.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
        }
    }

    /// Sends a control message even when the queue is full, waiting for room off the
    /// async threads.
    async fn send_waiting(&self, msg: Msg) -> Result<()> {
        let tx = self.tx.clone();
        match tokio::task::spawn_blocking(move || tx.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::WriterStopped),
        }
    }
}

/// What the writer remembers of a camera between batches.
#[derive(Clone, Copy, Debug)]
struct Known {
    key: i64,
    /// The newest stored heartbeat's state and time.
    last: Option<(State, i64)>,
    /// When the newest stored heartbeat was recorded, if by this writer.
    last_recorded: Option<Instant>,
}

impl Known {
    /// Where a heartbeat the clock put at `at`, recorded at `recorded`, is stored: at `at`
    /// when that is after the camera's newest heartbeat and not in a rolled-up hour, and
    /// otherwise after both (see the module doc).
    fn stored_at(&self, at: i64, recorded: Instant, rolled_until: i64) -> i64 {
        let Some((_, newest)) = self.last else { return at.max(rolled_until) };
        if at > newest && at >= rolled_until {
            return at;
        }
        let elapsed = self
            .last_recorded
            .map_or(0, |r| i64::try_from(recorded.saturating_duration_since(r).as_millis()).unwrap_or(i64::MAX));
        newest.saturating_add(elapsed.max(1)).max(rolled_until)
    }
}

struct WriterThread {
    conn: Connection,
    batching: Batching,
    shared: Arc<Shared>,
    pending: VecDeque<(Heartbeat, Instant)>,
    known: HashMap<String, Known>,
    last_error: Option<String>,
}

impl WriterThread {
    fn new(conn: Connection, batching: Batching, shared: Arc<Shared>) -> Self {
        WriterThread { conn, batching, shared, pending: VecDeque::new(), known: HashMap::new(), last_error: None }
    }

    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let msg = match deadline {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Heartbeat(hb, recorded)) => {
                    self.push(*hb, recorded);
                    deadline.get_or_insert_with(|| Instant::now() + self.batching.max_delay);
                    if self.pending.len() >= self.batching.max_records {
                        deadline = self.commit();
                    }
                }
                Ok(Msg::Flush(reply)) => {
                    deadline = self.commit();
                    let outcome = match &self.last_error {
                        Some(e) if !self.pending.is_empty() => Err(e.clone()),
                        _ => Ok(()),
                    };
                    let _ = reply.send(outcome);
                }
                Err(RecvTimeoutError::Timeout) => deadline = self.commit(),
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for attempt in 1..=SHUTDOWN_ATTEMPTS {
            if self.commit().is_none() {
                return;
            }
            if attempt < SHUTDOWN_ATTEMPTS {
                std::thread::sleep(RETRY_DELAY);
            }
        }
        tracing::error!(lost = self.pending.len(), error = ?self.last_error, "heartbeats not saved at shutdown");
    }

    fn push(&mut self, hb: Heartbeat, recorded: Instant) {
        if self.pending.len() >= self.batching.queue {
            self.pending.pop_front();
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.pending.push_back((hb, recorded));
    }

    /// Commits the pending heartbeats; returns when to try again if that failed.
    fn commit(&mut self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        match self.write_batch() {
            Ok(changes) => {
                let c = &self.shared.counters;
                c.written.fetch_add(self.pending.len() as u64, Ordering::Relaxed);
                c.state_changes.fetch_add(changes, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                self.pending.clear();
                self.last_error = None;
                None
            }
            Err(e) => {
                // The rolled-back batch may have updated the cache; start it afresh.
                self.known.clear();
                self.shared.counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, pending = self.pending.len(), "heartbeat batch not committed; retrying");
                self.last_error = Some(e.to_string());
                Some(Instant::now() + RETRY_DELAY)
            }
        }
    }

    /// Writes the batch in one transaction; returns the number of state changes.
    fn write_batch(&mut self) -> rusqlite::Result<u64> {
        let tx = self.conn.transaction()?;
        let mut changes = 0;
        {
            let rolled_until = crate::retention::read_marks(&tx)?.map_or(i64::MIN, |m| m.rolled_until);
            let mut insert = tx.prepare_cached(INSERT_HEARTBEAT)?;
            let mut insert_change = tx.prepare_cached(INSERT_CHANGE)?;
            for (hb, recorded) in &self.pending {
                let clock_at = hb.at.as_millisecond();
                let known = match self.known.get_mut(&hb.camera_id) {
                    Some(k) => k,
                    None => {
                        let k = lookup(&tx, &hb.camera_id, clock_at)?;
                        self.known.entry(hb.camera_id.clone()).or_insert(k)
                    }
                };
                let at = known.stored_at(clock_at, *recorded, rolled_until);
                if at != clock_at {
                    tracing::debug!(camera = %hb.camera_id, clock = clock_at, stored = at, "heartbeat stored after the camera's newest one (the wall clock stepped back)");
                }
                insert.execute(params![
                    known.key,
                    at,
                    hb.state.as_str(),
                    hb.reason.map(|r| r.as_str()),
                    hb.message,
                    hb.latency_ms,
                    hb.codec,
                    hb.width,
                    hb.height,
                    hb.last_frame_at.map(|t| t.as_millisecond()),
                    hb.clock_synchronized,
                ])?;
                let changed = match known.last {
                    None => Some(None),
                    Some((prev, _)) if prev != hb.state => Some(Some(prev)),
                    Some(_) => None,
                };
                if let Some(from) = changed {
                    insert_change.execute(params![
                        known.key,
                        at,
                        from.map(State::as_str),
                        hb.state.as_str(),
                        hb.reason.map(|r| r.as_str()),
                        hb.message,
                    ])?;
                    changes += 1;
                }
                known.last = Some((hb.state, at));
                known.last_recorded = Some(*recorded);
            }
        }
        tx.commit()?;
        Ok(changes)
    }
}

/// Finds (or adds, named by its id until the configuration names it) a camera and its
/// newest stored heartbeat.
fn lookup(conn: &Connection, stable_id: &str, at: i64) -> rusqlite::Result<Known> {
    let key = match conn.prepare_cached(FIND_CAMERA)?.query_row([stable_id], |r| r.get(0)).optional()? {
        Some(key) => key,
        None => {
            conn.prepare_cached(ADD_CAMERA)?.execute(params![stable_id, at])?;
            conn.last_insert_rowid()
        }
    };
    let last = conn
        .prepare_cached(LAST_HEARTBEAT)?
        .query_row([key], |r| Ok((crate::store::word::<State>(r, 0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    Ok(Known { key, last, last_recorded: None })
}
