//! The services' log files, for the dashboard's live log view and `desktop-streamer-monitor logs`.
//!
//! Each service writes one JSON object per line to `<log dir>/<program>.log`
//! (`ds_runtime::logging`); logrotate copies and truncates that file (`copytruncate`), keeping
//! the previous part as `<program>.log.1`. [`recent`] reads the last lines from the end of the
//! files backwards, so a large file costs only what is shown; [`follow`] polls the files' sizes
//! and streams the lines appended since, surviving truncation and rename rotation;
//! [`recent_then_follow`] does both with no line lost or repeated in between.
//!
//! Lines that are not JSON (written by an older version or by hand) are kept as plain messages
//! whose level is unknown.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use ds_runtime::logging::{LOG_DIR_ENV, log_file_path};
use futures_util::Stream;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The programs whose logs the dashboard shows, in the order it lists them.
pub const SERVICES: [&str; 3] = ["desktop-streamer", "desktop-streamer-watchdog", "desktop-streamer-web"];

/// Where the systemd units put the log files (`LogsDirectory=desktop-streamer`).
pub const DEFAULT_LOG_DIR: &str = "/var/log/desktop-streamer";

/// How often [`follow`] looks at the files' sizes.
pub const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How far back [`recent`] reads in one file before giving up on finding more matching lines:
/// bounds the time a rare query takes on a large file.
pub const RECENT_SCAN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Size of one backward read.
const READ_BLOCK_BYTES: u64 = 64 * 1024;

/// At most this much of one file is read per poll; the rest follows at once on the next poll.
const FOLLOW_READ_LIMIT_BYTES: u64 = 1024 * 1024;

/// Bytes kept from the end of the last line read, to recognise the same file content later:
/// if they are no longer there, the file was truncated (and perhaps written again past the old
/// size) since the last poll.
const IDENTITY_TAIL_BYTES: usize = 256;

/// The log directory: `$DESKTOP_STREAMER_LOG_DIR` (set by the systemd units), else
/// [`DEFAULT_LOG_DIR`].
pub fn log_dir() -> PathBuf {
    std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()).map_or_else(|| DEFAULT_LOG_DIR.into(), PathBuf::from)
}

/// Severity of a line, least severe first, so `level >= Level::Warn` means "warn or worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is none of error, warn, info, debug, trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}: use error, warn, info, debug or trace")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Case-insensitive; `warning` is accepted for `warn`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "warning" => Ok(Level::Warn),
            _ => Level::ALL.into_iter().find(|l| l.as_str() == lower).ok_or_else(|| ParseLevelError(s.to_owned())),
        }
    }
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
}

/// One line of a service's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// The program that wrote it, e.g. `desktop-streamer-watchdog`.
    pub service: String,
    /// When it was logged; `None` for a line that is not JSON.
    pub timestamp: Option<jiff::Timestamp>,
    /// Its severity; `None` (serialized as `"unknown"`) for a line that is not JSON.
    #[serde(serialize_with = "level_or_unknown")]
    pub level: Option<Level>,
    pub message: String,
    /// The Rust module that logged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The event's fields other than the message (an object), plus `span` with the fields of
    /// the span it happened in, if any.
    pub fields: Value,
}

fn level_or_unknown<S: Serializer>(level: &Option<Level>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.map_or("unknown", Level::as_str))
}

impl LogLine {
    /// Parses one line of `service`'s log file (without its newline).
    pub fn parse(service: &str, line: &str) -> LogLine {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) if object.get("level").is_some_and(Value::is_string) => {
                Self::from_json(service, object)
            }
            _ => LogLine {
                service: service.to_owned(),
                timestamp: None,
                level: None,
                message: line.to_owned(),
                target: None,
                fields: Value::Object(Map::new()),
            },
        }
    }

    fn from_json(service: &str, mut object: Map<String, Value>) -> LogLine {
        let take_string = |object: &mut Map<String, Value>, key: &str| match object.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let timestamp = take_string(&mut object, "timestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let level = take_string(&mut object, "level").and_then(|l| l.parse().ok());
        let target = take_string(&mut object, "target");
        let mut fields = match object.remove("fields") {
            Some(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        // tracing's JSON puts the message among the fields; a flattened event has it at the top.
        let message = take_string(&mut fields, "message").or_else(|| take_string(&mut object, "message"));
        // Whatever else the line carries (span, a flattened event's fields) is kept as fields.
        fields.extend(object);
        LogLine {
            service: service.to_owned(),
            timestamp,
            level,
            message: message.unwrap_or_default(),
            target,
            fields: Value::Object(fields),
        }
    }

    fn fields_text(&self) -> String {
        match &self.fields {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// Which lines to show: a level and worse, and a case-insensitive text found in the message or
/// the fields (as `key=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    level: Option<Level>,
    query: Option<String>,
}

impl Filter {
    /// An empty query matches every line.
    pub fn new(level: Option<Level>, query: Option<&str>) -> Filter {
        let query = query.filter(|q| !q.is_empty()).map(str::to_lowercase);
        Filter { level, query }
    }

    /// With a level, lines of unknown level (not JSON) are left out: their severity is unknown.
    pub fn matches(&self, line: &LogLine) -> bool {
        if let Some(min) = self.level
            && line.level.is_none_or(|l| l < min)
        {
            return false;
        }
        match &self.query {
            None => true,
            Some(q) => line.message.to_lowercase().contains(q) || line.fields_text().to_lowercase().contains(q),
        }
    }
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

/// The last `lines` lines matching `level` and `query` across the services' files, oldest
/// first, merged by time. Reads each file backwards from its end, and the latest rotated copy
/// (`<program>.log.1`) when the current file has too few. A service without a log file yet has
/// no lines; a line still being written (no newline yet) is left for [`follow`].
///
/// Blocking file I/O: call it from `tokio::task::spawn_blocking` in async code.
pub fn recent(
    log_dir: &Path,
    services: &[&str],
    lines: usize,
    level: Option<Level>,
    query: Option<&str>,
) -> Result<Vec<LogLine>, LogError> {
    check_services(services)?;
    check_dir(log_dir)?;
    let filter = Filter::new(level, query);
    let mut per_service = Vec::with_capacity(services.len());
    for service in services {
        let path = log_file_path(log_dir, service);
        let current = match File::open(&path) {
            Ok(file) => {
                let end = file.metadata().map_err(|source| LogError::Read { path: path.clone(), source })?.len();
                Some((file, end))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(LogError::Read { path, source }),
        };
        per_service.push(recent_of_service(service, &path, current, lines, &filter)?);
    }
    Ok(last_n(merge(per_service), lines))
}

/// The last `lines` matching lines of one service, oldest first: from `current` (the open
/// current file and where to stop reading it), then from the rotated copy if needed.
fn recent_of_service(
    service: &str,
    path: &Path,
    current: Option<(File, u64)>,
    lines: usize,
    filter: &Filter,
) -> Result<Vec<LogLine>, LogError> {
    let mut scan = BackwardScan { service, lines, filter, budget: RECENT_SCAN_LIMIT_BYTES, newest_first: Vec::new() };
    if lines == 0 {
        return Ok(Vec::new());
    }
    if let Some((file, end)) = current {
        scan.scan(path, &file, end, true)?;
    }
    if scan.newest_first.len() < lines && scan.budget > 0 {
        let rotated = rotated_path(path);
        match File::open(&rotated) {
            Ok(file) => {
                let end = file.metadata().map_err(|source| LogError::Read { path: rotated.clone(), source })?.len();
                scan.scan(&rotated, &file, end, false)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(LogError::Read { path: rotated, source }),
        }
    }
    let mut lines = scan.newest_first;
    lines.reverse();
    Ok(lines)
}

/// Collects matching lines of one service going backwards, across its files.
struct BackwardScan<'a> {
    service: &'a str,
    lines: usize,
    filter: &'a Filter,
    /// Bytes that may still be read.
    budget: u64,
    newest_first: Vec<LogLine>,
}

impl BackwardScan<'_> {
    /// Scans `[0, end)` of `file` from the end until enough lines match or the budget is spent.
    fn scan(&mut self, path: &Path, file: &File, end: u64, skip_unterminated: bool) -> Result<(), LogError> {
        let mut reader = BackwardLines::new(file, end);
        let mut first = true;
        while self.newest_first.len() < self.lines {
            let Some(bytes) = reader.next_line().map_err(|source| LogError::Read { path: path.to_owned(), source })?
            else {
                break;
            };
            // The first piece is whatever follows the last newline: a line still being written.
            let unterminated = std::mem::take(&mut first);
            if reader.bytes_read > self.budget {
                break;
            }
            if bytes.is_empty() || (unterminated && skip_unterminated) {
                continue;
            }
            let line = LogLine::parse(self.service, &String::from_utf8_lossy(&bytes));
            if self.filter.matches(&line) {
                self.newest_first.push(line);
            }
        }
        self.budget = self.budget.saturating_sub(reader.bytes_read);
        Ok(())
    }
}

/// The lines of `[0, end)` of a file, last first, read in blocks from the end.
struct BackwardLines<'a> {
    file: &'a File,
    /// Offset in the file of `buf[0]`.
    pos: u64,
    /// The bytes of `[pos, …)` not yet returned.
    buf: Vec<u8>,
    exhausted: bool,
    bytes_read: u64,
}

impl<'a> BackwardLines<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        BackwardLines { file, pos: end, buf: Vec::new(), exhausted: false, bytes_read: 0 }
    }

    /// The next line going backwards, without its newline. The first is the piece after the
    /// last newline (empty when the data ends with a newline).
    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                let line = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                return Ok(Some(line));
            }
            if self.pos == 0 {
                if self.exhausted {
                    return Ok(None);
                }
                self.exhausted = true;
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            let n = self.pos.min(READ_BLOCK_BYTES);
            let mut block = vec![0; usize::try_from(n).expect("block fits in memory")];
            self.file.read_exact_at(&mut block, self.pos - n)?;
            self.pos -= n;
            self.bytes_read += n;
            block.extend_from_slice(&self.buf);
            self.buf = block;
        }
    }
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

/// New lines of the services' files as they are appended, filtered, in time order within each
/// poll. Starts at the current end of each file (a line still being written is delivered once
/// complete). Looks every [`FOLLOW_POLL_INTERVAL`]; after `copytruncate` it first reads the end
/// of the rotated copy it had not read yet, then the file from its start; after a rename it
/// reads the old file to its end, then the new one from its start. A file that does not exist
/// yet is picked up when it appears. File I/O runs on tokio's blocking pool; the stream never
/// ends and stops polling when dropped.
pub async fn follow(
    log_dir: &Path,
    services: &[&str],
    level: Option<Level>,
    query: Option<&str>,
) -> Result<LogFollow, LogError> {
    let (_, follow) = recent_then_follow(log_dir, services, 0, level, query).await?;
    Ok(follow)
}

/// [`recent`] then [`follow`], handing over exactly: the recent lines end where the stream
/// begins, so no line is lost or shown twice. What the dashboard does on load.
pub async fn recent_then_follow(
    log_dir: &Path,
    services: &[&str],
    lines: usize,
    level: Option<Level>,
    query: Option<&str>,
) -> Result<(Vec<LogLine>, LogFollow), LogError> {
    check_services(services)?;
    let log_dir = log_dir.to_owned();
    let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let filter = Filter::new(level, query);
    let task_filter = filter.clone();
    let (recent, files) = tokio::task::spawn_blocking(move || -> Result<_, LogError> {
        check_dir(&log_dir)?;
        let mut per_service = Vec::new();
        let mut files = Vec::new();
        for service in services {
            let path = log_file_path(&log_dir, &service);
            let followed = FollowedFile::at_end(service, path)?;
            let current = match &followed.open {
                Some(open) => Some((
                    open.file.try_clone().map_err(|source| LogError::Read { path: followed.path.clone(), source })?,
                    followed.pos,
                )),
                None => None,
            };
            per_service.push(recent_of_service(&followed.service, &followed.path, current, lines, &task_filter)?);
            files.push(followed);
        }
        Ok((last_n(merge(per_service), lines), files))
    })
    .await
    .expect("reading the log files panicked")?;
    Ok((recent, LogFollow::new(files, filter)))
}

/// The stream returned by [`follow`].
pub struct LogFollow {
    inner: Pin<Box<dyn Stream<Item = LogLine> + Send>>,
}

impl fmt::Debug for LogFollow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFollow").finish_non_exhaustive()
    }
}

impl Stream for LogFollow {
    type Item = LogLine;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LogLine>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct FollowState {
    files: Vec<FollowedFile>,
    filter: Filter,
    queue: VecDeque<LogLine>,
    interval: tokio::time::Interval,
    /// More data was left unread by the last poll: poll again without waiting.
    behind: bool,
}

impl LogFollow {
    fn new(files: Vec<FollowedFile>, filter: Filter) -> LogFollow {
        let mut interval = tokio::time::interval(FOLLOW_POLL_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let state = FollowState { files, filter, queue: VecDeque::new(), interval, behind: false };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(line) = state.queue.pop_front() {
                    return Some((line, state));
                }
                if !std::mem::take(&mut state.behind) {
                    state.interval.tick().await;
                }
                let files = std::mem::take(&mut state.files);
                // A panic while reading would repeat on every poll: end the stream instead.
                let (files, per_file, behind) = tokio::task::spawn_blocking(move || {
                    let mut files = files;
                    let mut behind = false;
                    let per_file: Vec<Vec<LogLine>> = files
                        .iter_mut()
                        .map(|f| {
                            let (lines, more) = f.poll();
                            behind |= more;
                            lines
                        })
                        .collect();
                    (files, per_file, behind)
                })
                .await
                .ok()?;
                state.files = files;
                state.behind = behind;
                let filter = &state.filter;
                state.queue.extend(merge(per_file).into_iter().filter(|l| filter.matches(l)));
            }
        });
        LogFollow { inner: Box::pin(stream) }
    }
}

struct OpenFile {
    file: File,
    /// (device, inode): a different pair at the path means the file was replaced.
    id: (u64, u64),
}

/// One followed file: where reading stopped, always just after a newline.
struct FollowedFile {
    service: String,
    path: PathBuf,
    open: Option<OpenFile>,
    pos: u64,
    /// The last bytes before `pos`, to notice that the content there changed.
    tail: Vec<u8>,
    /// The last problem reported, so a lasting one is logged once.
    last_error: Option<String>,
}

impl FollowedFile {
    /// Positioned after the last complete line of the file at `path`, if it exists.
    fn at_end(service: String, path: PathBuf) -> Result<FollowedFile, LogError> {
        let mut followed = FollowedFile { service, path, open: None, pos: 0, tail: Vec::new(), last_error: None };
        let open = match open_followed(&followed.path) {
            Ok(open) => open,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(followed),
            Err(source) => return Err(LogError::Read { path: followed.path, source }),
        };
        let read = |e| LogError::Read { path: followed.path.clone(), source: e };
        let len = open.file.metadata().map_err(read)?.len();
        let mut back = BackwardLines::new(&open.file, len);
        let fragment = back.next_line().map_err(read)?.unwrap_or_default();
        followed.pos = len - fragment.len() as u64;
        followed.tail = read_tail(&open.file, followed.pos).map_err(read)?;
        followed.open = Some(open);
        Ok(followed)
    }

    /// Reads what was appended since the last poll. Returns the lines and whether more is
    /// waiting. Problems are logged (once) and retried on the next poll.
    fn poll(&mut self) -> (Vec<LogLine>, bool) {
        let mut lines = Vec::new();
        match self.try_poll(&mut lines) {
            Ok(more) => {
                self.last_error = None;
                (lines, more)
            }
            Err((path, e)) => {
                let text = e.to_string();
                if self.last_error.as_ref() != Some(&text) {
                    tracing::warn!(file = %path.display(), error = %text, "cannot follow log file");
                    self.last_error = Some(text);
                }
                (lines, false)
            }
        }
    }

    fn try_poll(&mut self, lines: &mut Vec<LogLine>) -> Result<bool, (PathBuf, io::Error)> {
        let at_path = match open_followed(&self.path) {
            Ok(open) => Some(open),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err((self.path.clone(), e)),
        };
        let replaced = match (&self.open, &at_path) {
            (Some(old), Some(new)) => old.id != new.id,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if replaced {
            // Rename rotation: what the old file got after our last read comes first.
            if let Some(old) = self.open.take() {
                let end = old.file.metadata().map_err(|e| (self.path.clone(), e))?.len();
                self.read_lines(&old.file, end, true, lines).map_err(|e| (self.path.clone(), e))?;
            }
            self.open = at_path;
            self.pos = 0;
            self.tail.clear();
        }
        let Some(open) = self.open.take() else { return Ok(false) };
        let result = self.read_current(&open.file, lines);
        self.open = Some(open);
        result.map_err(|e| (self.path.clone(), e))
    }

    fn read_current(&mut self, file: &File, lines: &mut Vec<LogLine>) -> io::Result<bool> {
        let size = file.metadata()?.len();
        let truncated = size < self.pos || (size > self.pos && read_tail(file, self.pos)? != self.tail);
        if truncated {
            self.catch_up_from_rotated_copy(lines);
            self.pos = 0;
            self.tail.clear();
        }
        let limit = size.min(self.pos + FOLLOW_READ_LIMIT_BYTES);
        self.read_lines(file, limit, false, lines)?;
        Ok(limit < size)
    }

    /// After `copytruncate`: the lines written between our last read and the copy are only in
    /// `<program>.log.1`. Read them if that file is the copy of what we were reading.
    fn catch_up_from_rotated_copy(&mut self, lines: &mut Vec<LogLine>) {
        if self.tail.is_empty() {
            return;
        }
        let rotated = rotated_path(&self.path);
        let Ok(file) = File::open(&rotated) else { return };
        let Ok(meta) = file.metadata() else { return };
        if meta.len() < self.pos || read_tail(&file, self.pos).ok().as_ref() != Some(&self.tail) {
            return;
        }
        if let Err(e) = self.read_lines(&file, meta.len(), true, lines) {
            tracing::warn!(file = %rotated.display(), error = %e, "cannot read the end of the rotated log file");
        }
    }

    /// Parses the complete lines of `[pos, end)` of `file` and moves `pos` past them. With
    /// `to_end`, a final piece without newline is a line too (the file will not grow again).
    fn read_lines(&mut self, file: &File, end: u64, to_end: bool, lines: &mut Vec<LogLine>) -> io::Result<()> {
        if end <= self.pos {
            return Ok(());
        }
        let mut buf = vec![0; usize::try_from(end - self.pos).expect("bounded read fits in memory")];
        let n = read_at_most(file, &mut buf, self.pos)?;
        buf.truncate(n);
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            _ if to_end => buf.len(),
            Some(i) => i + 1,
            // A single line longer than a whole read: show it in pieces rather than stall.
            None if buf.len() as u64 >= FOLLOW_READ_LIMIT_BYTES => buf.len(),
            None => 0,
        };
        for line in buf[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines.push(LogLine::parse(&self.service, &String::from_utf8_lossy(line)));
        }
        self.pos += complete as u64;
        // The same bytes read_tail() finds before the new position, if the file is unchanged.
        self.tail.extend_from_slice(&buf[..complete]);
        let excess = self.tail.len().saturating_sub(IDENTITY_TAIL_BYTES);
        self.tail.drain(..excess);
        Ok(())
    }
}

fn open_followed(path: &Path) -> io::Result<OpenFile> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    Ok(OpenFile { file, id: (meta.dev(), meta.ino()) })
}

/// The up to [`IDENTITY_TAIL_BYTES`] bytes before `pos`.
fn read_tail(file: &File, pos: u64) -> io::Result<Vec<u8>> {
    let start = pos.saturating_sub(IDENTITY_TAIL_BYTES as u64);
    let mut buf = vec![0; usize::try_from(pos - start).expect("small")];
    let n = read_at_most(file, &mut buf, start)?;
    buf.truncate(n);
    Ok(buf)
}

/// Like `read_exact_at`, but a file that shrank meanwhile gives a short read, not an error.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_order_by_severity() {
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warn));
        assert_eq!(" Error ".parse::<Level>(), Ok(Level::Error));
        let err = "loud".parse::<Level>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown log level "loud": use error, warn, info, debug or trace"#);
        assert!(Level::Error > Level::Warn && Level::Warn > Level::Info && Level::Debug > Level::Trace);
    }

    #[test]
    fn a_line_that_is_not_json_is_a_plain_message_of_unknown_level() {
        for text in ["plain text", "{\"not\": \"a log line\"}", "[1,2]", "{broken"] {
            let line = LogLine::parse("svc", &format!("{text}\r"));
            assert_eq!((line.level, line.timestamp, line.message.as_str()), (None, None, text));
            assert!(Filter::new(None, None).matches(&line));
            assert!(!Filter::new(Some(Level::Trace), None).matches(&line), "unknown level passed a level filter");
        }
    }

    #[test]
    fn backward_lines_cross_block_boundaries_and_read_only_the_end_of_a_large_file() {
        let mut file = tempfile::tempfile().unwrap();
        let lines: Vec<String> = (0..200_000).map(|i| format!("line number {i:06} {}", "x".repeat(i % 50))).collect();
        for l in &lines {
            writeln!(file, "{l}").unwrap();
        }
        let len = file.metadata().unwrap().len();
        let mut back = BackwardLines::new(&file, len);
        assert_eq!(back.next_line().unwrap(), Some(Vec::new()), "the piece after the last newline");
        for expected in lines.iter().rev().take(10) {
            assert_eq!(back.next_line().unwrap().unwrap(), expected.as_bytes());
        }
        assert!(len > 10 * READ_BLOCK_BYTES && back.bytes_read == READ_BLOCK_BYTES, "read {}", back.bytes_read);
        let mut count = 10;
        while let Some(line) = back.next_line().unwrap() {
            assert_eq!(line, lines[lines.len() - 1 - count].as_bytes());
            count += 1;
            if count == lines.len() {
                break;
            }
        }
        assert_eq!(count, lines.len());
        assert_eq!(back.next_line().unwrap(), None);
    }
}
