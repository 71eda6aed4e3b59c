//! The last lines of the services' files, read backwards from their ends (and into the
//! rotated copy when the current file has too few).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use ds_runtime::logging::log_file_path;

use super::{Filter, Level, LogError, LogLine, check_dir, check_services, last_n, merge, rotated_path};

/// How far back [`recent`] reads in one file before giving up on finding more matching lines:
/// bounds the time a rare query takes on a large file.
pub const RECENT_SCAN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Size of one backward read.
const READ_BLOCK_BYTES: u64 = 64 * 1024;

/// The last `lines` lines matching `level` and `query` across the services' files, oldest
/// first, merged by time. Reads each file backwards from its end, and the latest rotated copy
/// (`<program>.log.1`) when the current file has too few. A service without a log file yet has
/// no lines; a line still being written (no newline yet) is left for [`follow`](super::follow()).
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
pub(super) fn recent_of_service(
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
