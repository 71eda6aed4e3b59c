//! A stepped wall clock for one real process: Debian's libfaketime preloaded, reading its
//! offset from a file that the test rewrites while the process runs, with `CLOCK_MONOTONIC`
//! left alone. That is what NTP does to a board without a real-time clock: the wall clock
//! jumps (by a year forward, a day back), monotonic time runs on.
//!
//! ```no_run
//! # use ds_tests::faketime::WallClock;
//! let clock = WallClock::new();
//! // pass clock.env() to the service's environment, then:
//! clock.step("+366d");
//! // libfaketime rereads the file within a second: wait for the process to show it, e.g. a
//! // timestamp it reports whose `offset_from_now` is about +366 days.
//! ```
//!
//! Pitfalls (see shared/recipes/step-the-wall-clock.sh): the threaded build
//! (`libfaketimeMT.so.1`) for tokio and GStreamer programs; `FAKETIME` unset (it wins over the
//! file); `NO_FAKE_STAT=1` keeps file times real; a process killed with SIGKILL leaves its
//! shared-memory files behind ([`WallClock::forget`] removes them).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How often libfaketime rereads the offset file, in seconds.
const CACHE_SECONDS: &str = "1";

/// One offset file, shared by the processes started with [`WallClock::env`].
#[derive(Debug)]
pub struct WallClock {
    dir: tempfile::TempDir,
    library: PathBuf,
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock {
    /// An offset file at `+0` (the real time).
    ///
    /// # Panics
    /// When libfaketime is not installed (`tests/deps.sh` installs the `faketime` package).
    pub fn new() -> WallClock {
        let library = library().unwrap_or_else(|| {
            panic!("libfaketimeMT.so.1 not found: install Debian's faketime package (tests/deps.sh does)")
        });
        let clock = WallClock { dir: tempfile::tempdir().expect("temporary directory"), library };
        clock.step("+0");
        clock
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("offset")
    }

    /// Sets the offset of the wall clock from the real time, e.g. `+366d`, `-1d`, `+0`, written
    /// atomically. The processes see it within a second (libfaketime's cache): wait for a
    /// process to show it (see [`offset_from_now`]).
    pub fn step(&self, offset: &str) {
        let new = self.dir.path().join("offset.new");
        std::fs::write(&new, format!("{offset}\n")).expect("write the offset file");
        std::fs::rename(&new, self.file()).expect("replace the offset file");
    }

    /// The environment that makes a process use this clock; pass it with the process's own.
    /// `LD_PRELOAD` is the whole value: a test needing another preload must combine them.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.file().display().to_string()),
            ("FAKETIME_CACHE_DURATION".into(), CACHE_SECONDS.into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ("NO_FAKE_STAT".into(), "1".into()),
        ]
    }

    /// Removes what libfaketime leaves in /dev/shm for a process that did not exit by itself.
    pub fn forget(pid: u32) {
        for name in [format!("faketime_shm_{pid}"), format!("sem.faketime_sem_{pid}")] {
            let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
        }
    }
}

/// The threaded libfaketime, wherever the architecture's library directory is.
fn library() -> Option<PathBuf> {
    let lib = Path::new("/usr/lib");
    std::fs::read_dir(lib).ok()?.flatten().map(|e| e.path().join("faketime/libfaketimeMT.so.1")).find(|p| p.exists())
}

/// How far `reported` (Unix seconds, as a process under a [`WallClock`] wrote a timestamp) is
/// from the real time now, in seconds: about `366.0 * 86400.0` once a `+366d` step took effect.
pub fn offset_from_now(reported: f64) -> f64 {
    reported - SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `date` under the clock, as Unix seconds.
    fn date(clock: &WallClock) -> f64 {
        let out = std::process::Command::new("date")
            .arg("+%s")
            .env_remove("FAKETIME")
            .envs(clock.env())
            .output()
            .expect("run date");
        String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn a_process_sees_the_offset_the_file_names() {
        const DAY: f64 = 86_400.0;
        let clock = WallClock::new();
        assert!(offset_from_now(date(&clock)).abs() < 60.0);
        clock.step("+366d");
        assert!((offset_from_now(date(&clock)) - 366.0 * DAY).abs() < 60.0);
        clock.step("-1d");
        assert!((offset_from_now(date(&clock)) + DAY).abs() < 60.0);
    }
}
