//! Logging to stderr, which systemd's journal collects, and, when `DESKTOP_STREAMER_LOG_DIR` is
//! set, also to a JSON-lines file the dashboard reads (`desktop-streamer-web`'s `logs` module).
//! `RUST_LOG` selects what is logged (default `info`); under journald the timestamp on stderr is
//! left to the journal.
//!
//! Rotation loses no line and stops no service, without signals: the file is opened with
//! `O_APPEND` and reopened by the writer as soon as its path names another file (see
//! [`LogFile`]), so logrotate may rename it (`nocreate`, the shipped configuration: lossless) or
//! copy and truncate it (`copytruncate`: works, but logrotate loses the lines written between its
//! copy and its truncation). Lines are written by a background thread (tracing-appender's
//! non-blocking writer) so a slow disk never delays the streaming work; the [`LogGuard`]
//! returned by [`init`] writes out what is queued when dropped.
//!
//! One line per event:
//!
//! ```text
//! {"timestamp":"2025-01-01T12:00:00.123456Z","level":"WARN","fields":{"message":"restart failed","unit":"desktop-streamer.service"},"target":"desktop_streamer_watchdog::daemon"}
//! ```
//!
//! `timestamp` is RFC 3339 in UTC; `level` is one of `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`;
//! `fields` holds the event's message and its fields; `span` (the current span and its fields)
//! appears when the event happened inside one.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt as _;

use tracing::{Dispatch, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable naming the directory of the JSON log files; the systemd units set
/// it to `/var/log/desktop-streamer` (their `LogsDirectory=`).
pub const LOG_DIR_ENV: &str = "DESKTOP_STREAMER_LOG_DIR";

/// Lines queued for the file before a logging thread waits for the disk. Waiting (rather than
/// dropping lines) keeps the file complete; at this depth the disk is far behind anyway.
const FILE_QUEUE_LINES: usize = 128_000;

/// The log file of `program` in `dir`: `<dir>/<program>.log`. The rotated copies are
/// `<program>.log.1`, `<program>.log.2.gz`, … (logrotate's names).
pub fn log_file_path(dir: &Path, program: &str) -> PathBuf {
    dir.join(format!("{program}.log"))
}

/// Keeps the file writer's background thread alive; dropping it writes out every queued line.
/// Hold it until the program ends: `let _log = ds_runtime::logging::init("desktop-streamer");`.
#[derive(Debug)]
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard {
    file: Option<WorkerGuard>,
}

impl LogGuard {
    /// Whether events also go to a log file.
    pub fn writes_file(&self) -> bool {
        self.file.is_some()
    }
}

/// The log file could not be opened.
#[derive(Debug)]
pub struct FileLogError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for FileLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot write the log file {}: {}; check that the directory exists and is writable by this user \
             (the systemd units create it with LogsDirectory=), or unset {LOG_DIR_ENV}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for FileLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Sets up logging for `program` (the binary's name, e.g. `"desktop-streamer"`): stderr always,
/// and `$DESKTOP_STREAMER_LOG_DIR/<program>.log` when that variable is set. A log file that
/// cannot be opened is reported as a warning on stderr; logging to stderr goes on.
///
/// Calling it again (a test, a second `run`) leaves the first setup in place.
pub fn init(program: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal());
    // systemd sets JOURNAL_STREAM when stderr goes to the journal, which stamps each line itself.
    let stderr =
        if std::env::var_os("JOURNAL_STREAM").is_some() { stderr.without_time().boxed() } else { stderr.boxed() };

    let dir = std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from);
    let (file_layer, guard, problem) = match dir.as_deref().map(|d| open_file(d, program)) {
        None => (None, None, None),
        Some(Ok((writer, guard))) => (Some(json_layer(writer)), Some(guard), None),
        Some(Err(e)) => (None, None, Some(e)),
    };

    let installed = tracing_subscriber::registry().with(filter).with(stderr).with(file_layer).try_init().is_ok();
    if let Some(e) = problem {
        if installed {
            tracing::warn!(error = %e, "logging to stderr only");
        } else {
            eprintln!("warning: {e}; logging to stderr only");
        }
    }
    // A second init keeps the first subscriber; this guard's writer is unused, drop it now.
    LogGuard { file: if installed { guard } else { None } }
}

/// A dispatcher that writes every event, at every level, to `<dir>/<program>.log` in exactly the
/// format [`init`] writes: for tools and tests that must produce the services' log lines
/// (`tracing::dispatcher::with_default(&dispatch, || tracing::info!(...))`).
pub fn file_dispatch(dir: &Path, program: &str) -> Result<(Dispatch, LogGuard), FileLogError> {
    let (writer, guard) = open_file(dir, program)?;
    let subscriber = tracing_subscriber::registry().with(json_layer(writer));
    Ok((Dispatch::new(subscriber), LogGuard { file: Some(guard) }))
}

fn open_file(dir: &Path, program: &str) -> Result<(NonBlocking, WorkerGuard), FileLogError> {
    let path = log_file_path(dir, program);
    let file = LogFile::open(path.clone()).map_err(|source| FileLogError { path, source })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(FILE_QUEUE_LINES)
        .thread_name("log-file")
        .finish(file);
    Ok((writer, guard))
}

/// The log file, opened with `O_APPEND` and reopened when its path names another file.
///
/// `O_APPEND` makes `copytruncate` work: after the truncation the next write lands at the new
/// end (offset 0), not at the old offset behind a hole. But `copytruncate` itself loses the lines
/// written between its copy and its truncation, so the shipped rotation renames instead
/// (`nocreate`, no `copytruncate`): lines written before the writer notices stay in the renamed
/// file, and before each write the writer compares the path's inode with its open file's and, if
/// the path was renamed away, creates the file anew. Lines are written by the non-blocking
/// writer's own thread, so the `stat` per line costs the services nothing.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: File,
    id: (u64, u64),
}

impl LogFile {
    fn open(path: PathBuf) -> io::Result<LogFile> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let meta = file.metadata()?;
        Ok(LogFile { path, file, id: (meta.dev(), meta.ino()) })
    }

    fn reopen_if_replaced(&mut self) {
        let same = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if !same {
            // If the new file cannot be created, keep writing to the one we have.
            if let Ok(reopened) = LogFile::open(self.path.clone()) {
                *self = reopened;
            }
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reopen_if_replaced();
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // One check per line: the non-blocking writer hands over whole lines.
        self.reopen_if_replaced();
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn json_layer<S>(writer: NonBlocking) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true)
        .with_current_span(true)
        .with_span_list(false)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// The file's lines; serde_json is not a dependency here, so the JSON is checked by its text
    /// (web-monitor's tests parse the same lines).
    fn lines(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for l in &lines {
            assert!(l.starts_with('{') && l.ends_with('}'), "not a JSON object: {l}");
        }
        lines
    }

    #[test]
    fn writes_one_json_object_per_event_with_timestamp_level_message_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, guard) = file_dispatch(dir.path(), "prog").unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(unit = "desktop-streamer.service", attempt = 3, "restart failed");
            let span = tracing::info_span!("pipeline", encoder = "x264enc");
            span.in_scope(|| tracing::error!("bus error\nsecond line"));
        });
        drop(guard);
        let got = lines(&log_file_path(dir.path(), "prog"));
        assert_eq!(got.len(), 2, "{got:?}");
        let first = &got[0];
        for part in [
            r#""level":"WARN""#,
            r#""fields":{"message":"restart failed","unit":"desktop-streamer.service","attempt":3}"#,
            &format!(r#""target":"{}""#, module_path!()),
        ] {
            assert!(first.contains(part), "{part} missing from {first}");
        }
        let ts = first.strip_prefix(r#"{"timestamp":""#).and_then(|r| r.split('"').next()).unwrap();
        // RFC 3339 in UTC, e.g. 2025-01-01T12:00:00.123456Z
        assert!(ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'), "not RFC 3339 UTC: {ts}");
        let second = &got[1];
        assert!(second.contains(r#""level":"ERROR""#), "{second}");
        assert!(second.contains(r#""message":"bus error\nsecond line""#), "{second}");
        assert!(second.contains(r#""encoder":"x264enc""#), "{second}");
    }

    #[test]
    fn appends_to_an_existing_file_and_continues_at_the_new_end_after_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file_path(dir.path(), "prog");
        std::fs::write(&path, "old line\n").unwrap();
        let (dispatch, guard) = file_dispatch(dir.path(), "prog").unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("first"));
        // Wait for the background writer, then truncate as `logrotate copytruncate` does.
        wait_for_lines(&path, 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("old line\n") && text.contains("\"first\""), "{text}");
        OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("after truncation"));
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        // Without O_APPEND the write would land at the old offset behind a run of NUL bytes.
        assert!(!text.contains('\0'), "hole left by a write at the old offset: {text:?}");
        let got = lines(&path);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains(r#""message":"after truncation""#), "{got:?}");
    }

    #[test]
    fn after_a_rename_the_next_line_goes_to_a_new_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file_path(dir.path(), "prog");
        let (dispatch, guard) = file_dispatch(dir.path(), "prog").unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        wait_for_lines(&path, 1);
        std::fs::rename(&path, dir.path().join("prog.log.1")).unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("after"));
        drop(guard);
        let rotated = lines(&dir.path().join("prog.log.1"));
        let current = lines(&path);
        assert!(rotated.len() == 1 && rotated[0].contains(r#""message":"before""#), "{rotated:?}");
        assert!(current.len() == 1 && current[0].contains(r#""message":"after""#), "{current:?}");
    }

    fn wait_for_lines(path: &Path, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(path).unwrap().lines().count() < n {
            assert!(std::time::Instant::now() < deadline, "the line never reached the file");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the directory should be: fails even for root.
        let not_a_dir = dir.path().join("file");
        File::create(&not_a_dir).unwrap().write_all(b"x").unwrap();
        let err = file_dispatch(&not_a_dir, "prog").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&*not_a_dir.join("prog.log").to_string_lossy()), "{text}");
        assert!(text.contains(LOG_DIR_ENV), "{text}");
    }
}
