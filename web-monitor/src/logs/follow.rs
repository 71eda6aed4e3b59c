//! New lines of the services' files as they are written, across rotation.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ds_runtime::logging::log_file_path;
use futures_util::Stream;

use super::recent::{BackwardLines, Scanned, recent_of_service};
use super::{Filter, Level, LogError, LogLine, ScanLimits, check_dir, check_services, last_n, merge, rotated_path};

/// How often [`follow`] looks at the files' sizes while lines come.
pub const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often it looks once [`FOLLOW_IDLE_POLLS`] looks in a row found nothing new: an idle
/// dashboard's streams reopen the files less often, and the next line shows within this.
pub const FOLLOW_IDLE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Looks without a new byte after which [`follow`] polls every [`FOLLOW_IDLE_POLL_INTERVAL`].
pub const FOLLOW_IDLE_POLLS: u32 = 8;

/// At most this much of one file is read per poll; the rest follows at once on the next poll.
const FOLLOW_READ_LIMIT_BYTES: u64 = 1024 * 1024;

/// Bytes kept from the end of the last line read, to recognise the same file content later:
/// if they are no longer there, the file was truncated (and perhaps written again past the old
/// size) since the last poll.
const IDENTITY_TAIL_BYTES: usize = 256;

/// New lines of the services' files as they are appended, filtered, in time order within each
/// poll. Starts at the current end of each file (a line still being written is delivered once
/// complete). Looks every [`FOLLOW_POLL_INTERVAL`] (every [`FOLLOW_IDLE_POLL_INTERVAL`] once
/// [`FOLLOW_IDLE_POLLS`] looks in a row found nothing); after `copytruncate` it first reads the end
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
    let (_, follow) = recent_then_follow(log_dir, services, 0, level, query, &ScanLimits::default()).await?;
    Ok(follow)
}

/// [`recent`](super::recent()) then [`follow`], handing over exactly: the recent lines end where the stream
/// begins, so no line is lost or shown twice. What the dashboard does on load. The recent
/// lines are read within `limits` (see [`search`](super::search())).
pub async fn recent_then_follow(
    log_dir: &Path,
    services: &[&str],
    lines: usize,
    level: Option<Level>,
    query: Option<&str>,
    limits: &ScanLimits,
) -> Result<(Vec<LogLine>, LogFollow), LogError> {
    check_services(services)?;
    let log_dir = log_dir.to_owned();
    let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let filter = Filter::new(level, query);
    let task_filter = filter.clone();
    let limits = limits.clone();
    let (recent, files) = tokio::task::spawn_blocking(move || -> Result<_, LogError> {
        check_dir(&log_dir)?;
        let mut per_service = Vec::new();
        let mut files = Vec::new();
        let mut scanned = Scanned::new(&limits, services.len());
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
            per_service.push(recent_of_service(
                &followed.service,
                &followed.path,
                current,
                lines,
                &task_filter,
                &mut scanned,
            )?);
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
    /// Looks in a row that found nothing new.
    idle_polls: u32,
    /// More data was left unread by the last poll: poll again without waiting.
    behind: bool,
}

impl LogFollow {
    fn new(files: Vec<FollowedFile>, filter: Filter) -> LogFollow {
        let state = FollowState { files, filter, queue: VecDeque::new(), idle_polls: 0, behind: false };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(line) = state.queue.pop_front() {
                    return Some((line, state));
                }
                if !std::mem::take(&mut state.behind) {
                    tokio::time::sleep(poll_interval(state.idle_polls)).await;
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
                let new = per_file.iter().any(|lines| !lines.is_empty());
                state.idle_polls = if new { 0 } else { state.idle_polls.saturating_add(1) };
                let filter = &state.filter;
                state.queue.extend(merge(per_file).into_iter().filter(|l| filter.matches(l)));
            }
        });
        LogFollow { inner: Box::pin(stream) }
    }
}

/// The wait before the next look, after `idle_polls` looks in a row found nothing new.
fn poll_interval(idle_polls: u32) -> Duration {
    if idle_polls >= FOLLOW_IDLE_POLLS { FOLLOW_IDLE_POLL_INTERVAL } else { FOLLOW_POLL_INTERVAL }
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
