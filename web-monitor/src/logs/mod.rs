//! The services' log files, for the dashboard's live log view and `desktop-streamer-monitor logs`.
//!
//! Each service writes one JSON object per line to `<log dir>/<program>.log`
//! (`ds_runtime::logging`). Rotation renames that file to `<program>.log.1` and each service
//! opens a new one before its next line (the shipped logrotate rules, `nocreate` without
//! `copytruncate`); a `copytruncate` rotation, should someone configure one, is survived too.
//!
//! - [`line`]: one line as the dashboard shows it ([`LogLine`]), its [`Level`], and the
//!   [`Filter`] of level and text. Lines that are not JSON (written by an older version or by
//!   hand) are kept as plain messages whose level is unknown.
//! - [`recent`](mod@recent): the last lines, read from the end of the files backwards, so a
//!   large file costs only what is shown.
//! - [`follow`](mod@follow): the lines appended since, by polling the files' sizes (less often
//!   while nothing is written), across rotation; [`recent_then_follow`] does both with no line lost or repeated in between.

mod follow;
mod line;
mod recent;

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ds_runtime::logging::LOG_DIR_ENV;

pub use follow::{
    FOLLOW_IDLE_POLL_INTERVAL, FOLLOW_IDLE_POLLS, FOLLOW_POLL_INTERVAL, LogFollow, follow, recent_then_follow,
};
pub use line::{Filter, Level, LogLine, ParseLevelError};
pub use recent::{RECENT_SCAN_LIMIT_BYTES, recent, search};

/// The programs whose logs the dashboard shows, in the order it lists them.
pub const SERVICES: [&str; 3] = ["desktop-streamer", "desktop-streamer-watchdog", "desktop-streamer-web"];

/// Where the systemd units put the log files (`LogsDirectory=desktop-streamer`).
pub const DEFAULT_LOG_DIR: &str = "/var/log/desktop-streamer";

/// The log directory: `$DESKTOP_STREAMER_LOG_DIR` (set by the systemd units), else
/// [`DEFAULT_LOG_DIR`].
pub fn log_dir() -> PathBuf {
    std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()).map_or_else(|| DEFAULT_LOG_DIR.into(), PathBuf::from)
}

/// What went wrong reading the logs; each names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "log directory {} does not exist: the services write their logs there when {LOG_DIR_ENV} is set \
         (the systemd units set it); until then their logs are in the journal (journalctl -u desktop-streamer*)",
        path.display()
    )]
    NoLogDir { path: PathBuf },
    #[error("cannot read log file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid service name {name:?}: a program name such as desktop-streamer (letters, digits, '-', '_')")]
    InvalidService { name: String },
    #[error("the log search was cancelled after reading {scanned_bytes} bytes: nobody waits for its answer any more")]
    Cancelled { scanned_bytes: u64 },
}

/// What one read of the recent lines may cost, and how it is stopped early.
#[derive(Clone, Debug)]
pub struct ScanLimits {
    /// Bytes it may read over all the services' files. Default [`RECENT_SCAN_LIMIT_BYTES`].
    pub max_bytes: u64,
    /// Once set, the read stops at its next line with [`LogError::Cancelled`] (the request
    /// that asked went away).
    pub cancel: Arc<AtomicBool>,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits { max_bytes: RECENT_SCAN_LIMIT_BYTES, cancel: Arc::default() }
    }
}

/// The lines [`search`] found and what it read for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub lines: Vec<LogLine>,
    /// Bytes read from the files.
    pub scanned_bytes: u64,
    /// The byte limit was reached before enough lines were found or the files' start was
    /// reached: older matching lines may exist.
    pub truncated: bool,
}

fn check_services(services: &[&str]) -> Result<(), LogError> {
    for name in services {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(LogError::InvalidService { name: (*name).to_owned() });
        }
    }
    Ok(())
}

fn check_dir(log_dir: &Path) -> Result<(), LogError> {
    match std::fs::metadata(log_dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(LogError::Read {
            path: log_dir.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LogError::NoLogDir { path: log_dir.to_owned() }),
        Err(source) => Err(LogError::Read { path: log_dir.to_owned(), source }),
    }
}

/// The path of a rotated copy: `<program>.log.1`.
fn rotated_path(current: &Path) -> PathBuf {
    let mut name = current.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Merges each service's lines (each oldest first) by time, keeping each file's own order. A
/// line without a timestamp sorts with the line before it in its file.
fn merge(per_service: Vec<Vec<LogLine>>) -> Vec<LogLine> {
    let mut queues: Vec<VecDeque<(jiff::Timestamp, LogLine)>> = per_service
        .into_iter()
        .map(|lines| {
            // Lines before the first timestamp take the first timestamp found after them.
            let mut last = lines.iter().find_map(|l| l.timestamp).unwrap_or(jiff::Timestamp::MIN);
            lines
                .into_iter()
                .map(|l| {
                    last = l.timestamp.unwrap_or(last);
                    (last, l)
                })
                .collect()
        })
        .collect();
    let mut merged = Vec::with_capacity(queues.iter().map(VecDeque::len).sum());
    loop {
        let next = queues.iter().enumerate().filter_map(|(i, q)| q.front().map(|(t, _)| (*t, i))).min().map(|(_, i)| i);
        let Some(i) = next else { break };
        merged.extend(queues[i].pop_front().map(|(_, l)| l));
    }
    merged
}

fn last_n(mut lines: Vec<LogLine>, n: usize) -> Vec<LogLine> {
    let excess = lines.len().saturating_sub(n);
    lines.drain(..excess);
    lines
}
