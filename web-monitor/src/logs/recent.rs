//! The last lines of the services' files, read backwards from their ends (and into the
//! rotated copy when the current file has too few).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ds_runtime::logging::log_file_path;

use super::{
    Filter, Found, Level, LogError, LogLine, ScanLimits, check_dir, check_services, last_n, merge, rotated_path,
};

/// How much [`recent`] reads over all the services' files before giving up on finding more
/// matching lines: bounds the time a rare query takes on large files. Shared between the
/// services read (what one leaves unread goes to the next).
pub const RECENT_SCAN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Size of one backward read.
const READ_BLOCK_BYTES: u64 = 64 * 1024;

/// The last `lines` lines matching `level` and `query` across the services' files, oldest
/// first, merged by time. Reads each file backwards from its end, and the latest rotated copy
/// (`<program>.log.1`) when the current file has too few. A service without a log file yet has
/// no lines; a line still being written (no newline yet) is left for [`follow`](super::follow()).
/// Reads at most [`RECENT_SCAN_LIMIT_BYTES`]; [`search`] says whether it stopped there.
///
/// Blocking file I/O: call it from `tokio::task::spawn_blocking` in async code.
pub fn recent(
    log_dir: &Path,
    services: &[&str],
    lines: usize,
    level: Option<Level>,
    query: Option<&str>,
) -> Result<Vec<LogLine>, LogError> {
    search(log_dir, services, lines, level, query, &ScanLimits::default()).map(|found| found.lines)
}

/// [`recent`] within `limits`: reads at most `limits.max_bytes` over all the files and stops
/// with [`LogError::Cancelled`] soon after `limits.cancel` is set. Says how much it read and
/// whether it stopped at the byte limit before finding enough lines.
pub fn search(
    log_dir: &Path,
    services: &[&str],
    lines: usize,
    level: Option<Level>,
    query: Option<&str>,
    limits: &ScanLimits,
) -> Result<Found, LogError> {
    check_services(services)?;
    check_dir(log_dir)?;
    let filter = Filter::new(level, query);
    let mut per_service = Vec::with_capacity(services.len());
    let mut scanned = Scanned::new(limits, services.len());
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
        per_service.push(recent_of_service(service, &path, current, lines, &filter, &mut scanned)?);
    }
    Ok(Found { lines: last_n(merge(per_service), lines), scanned_bytes: scanned.bytes, truncated: scanned.truncated })
}

/// What a search over several services has read so far, and what it may still read.
pub(super) struct Scanned<'a> {
    cancel: &'a AtomicBool,
    /// Bytes not yet given to a service.
    left: u64,
    /// Services not yet read.
    services_left: usize,
    pub(super) bytes: u64,
    pub(super) truncated: bool,
}

impl<'a> Scanned<'a> {
    pub(super) fn new(limits: &'a ScanLimits, services: usize) -> Self {
        Scanned { cancel: &limits.cancel, left: limits.max_bytes, services_left: services, bytes: 0, truncated: false }
    }

    /// The next service's share of what is left.
    fn share(&mut self) -> u64 {
        let share = self.left / self.services_left.max(1) as u64;
        self.services_left = self.services_left.saturating_sub(1);
        share
    }
}

/// The last `lines` matching lines of one service, oldest first: from `current` (the open
/// current file and where to stop reading it), then from the rotated copy if needed.
pub(super) fn recent_of_service(
    service: &str,
    path: &Path,
    current: Option<(File, u64)>,
    lines: usize,
    filter: &Filter,
    scanned: &mut Scanned<'_>,
) -> Result<Vec<LogLine>, LogError> {
    let share = scanned.share();
    let mut scan = BackwardScan {
        service,
        lines,
        filter,
        cancel: scanned.cancel,
        budget: share,
        truncated: false,
        read: 0,
        newest_first: Vec::new(),
    };
    if lines == 0 {
        return Ok(Vec::new());
    }
    let result = scan_service(&mut scan, path, current);
    // Read or not, what this service did not use goes to the next one.
    let used = share - scan.budget;
    scanned.left -= used;
    scanned.bytes += scan.read;
    scanned.truncated |= scan.truncated;
    if let Err(LogError::Cancelled { .. }) = result {
        return Err(LogError::Cancelled { scanned_bytes: scanned.bytes });
    }
    result?;
    let mut lines = scan.newest_first;
    lines.reverse();
    Ok(lines)
}

fn scan_service(scan: &mut BackwardScan<'_>, path: &Path, current: Option<(File, u64)>) -> Result<(), LogError> {
    let lines = scan.lines;
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
    Ok(())
}

/// Collects matching lines of one service going backwards, across its files.
struct BackwardScan<'a> {
    service: &'a str,
    lines: usize,
    filter: &'a Filter,
    /// Set when the search is no longer wanted.
    cancel: &'a AtomicBool,
    /// Bytes that may still be read.
    budget: u64,
    /// The budget ran out before enough lines were found or the files' start was reached.
    truncated: bool,
    /// Bytes read (the last block read may pass the budget).
    read: u64,
    newest_first: Vec<LogLine>,
}

impl BackwardScan<'_> {
    /// Scans `[0, end)` of `file` from the end until enough lines match or the budget is spent.
    fn scan(&mut self, path: &Path, file: &File, end: u64, skip_unterminated: bool) -> Result<(), LogError> {
        let mut reader = BackwardLines::new(file, end);
        let mut first = true;
        while self.newest_first.len() < self.lines {
            if self.cancel.load(Ordering::Relaxed) {
                self.budget = self.budget.saturating_sub(reader.bytes_read);
                self.read += reader.bytes_read;
                return Err(LogError::Cancelled { scanned_bytes: self.read });
            }
            let Some(bytes) = reader.next_line().map_err(|source| LogError::Read { path: path.to_owned(), source })?
            else {
                break;
            };
            // The first piece is whatever follows the last newline: a line still being written.
            let unterminated = std::mem::take(&mut first);
            if reader.bytes_read > self.budget {
                self.truncated = true;
                break;
            }
            if bytes.is_empty() || (unterminated && skip_unterminated) || !self.filter.may_match_raw(&bytes) {
                continue;
            }
            let line = LogLine::parse(self.service, &String::from_utf8_lossy(&bytes));
            if self.filter.matches(&line) {
                self.newest_first.push(line);
            }
        }
        self.budget = self.budget.saturating_sub(reader.bytes_read);
        self.read += reader.bytes_read;
        Ok(())
    }
}

/// The lines of `[0, end)` of a file, last first, read in blocks from the end.
pub(super) struct BackwardLines<'a> {
    file: &'a File,
    /// Offset in the file of `buf[0]`.
    pos: u64,
    /// The bytes of `[pos, …)` not yet returned.
    buf: Vec<u8>,
    exhausted: bool,
    bytes_read: u64,
}

impl<'a> BackwardLines<'a> {
    pub(super) fn new(file: &'a File, end: u64) -> Self {
        BackwardLines { file, pos: end, buf: Vec::new(), exhausted: false, bytes_read: 0 }
    }

    /// The next line going backwards, without its newline. The first is the piece after the
    /// last newline (empty when the data ends with a newline).
    pub(super) fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

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
