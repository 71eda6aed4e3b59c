//! What a process costs, read from /proc: CPU time and resident memory.

use std::fs;

/// User + system CPU seconds of a process so far; with `children`, also those of its reaped
/// children.
pub fn cpu_seconds(pid: u32, children: bool) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14..=17 of stat, i.e. 11..=14 here.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let mut total = ticks(11)? + ticks(12)?;
    if children {
        total += ticks(13)? + ticks(14)?;
    }
    Some(total / clock_ticks())
}

/// Peak resident memory (VmHWM) of a process in MiB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// Resident memory now (VmRSS) of a process in MiB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

/// How many threads a process has now.
pub fn threads(pid: u32) -> Option<usize> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// A `… kB` field of /proc/PID/status, in MiB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}
