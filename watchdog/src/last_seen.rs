//! What the clock did while the watchdog was not running (stopped, restarting, the machine off).
//!
//! [`StepWatch`](crate::clock::StepWatch) only sees a step between two looks of one run. So the
//! watchdog keeps a small record in its state directory, [`LAST_SEEN_FILE`]: the boot, its
//! `CLOCK_BOOTTIME` and the wall clock at a moment up to which every step has been judged (the
//! clock is looked at just before each save). It is saved at start, after each step seen
//! live, every [`SAVE_EVERY`] and at shutdown. On the next start, [`judge`]:
//!
//! - **Same boot**: the wall clock should read the saved wall time plus the time since boot
//!   gone by since (`CLOCK_BOOTTIME` runs on while the watchdog is stopped and while the
//!   machine sleeps, and NTP's slewing moves it with the wall clock, so only a step makes the
//!   two part). More than [`STEP_THRESHOLD`] off is a step, alerted like one seen live. How old
//!   the record is does not matter: a SIGKILL between saves leaves an older record, and the
//!   time since boot counts the longer gap just as exactly.
//! - **Another boot** (or a boot that `/proc` does not tell): nobody knows how long the machine
//!   was off, so no step can be told. Only a wall clock now more than [`STEP_THRESHOLD`] before
//!   the saved one is certainly wrong (a board without a real-time clock, not synchronised
//!   yet): alerted, naming both times. After a power cut the record is up to [`SAVE_EVERY`]
//!   old; an older saved time can only hide a small lag, never invent one.
//!
//! The record is saved after the alert it settles is in the outbox: a crash between the two
//! repeats that one alert at the next start rather than losing it. A missing record (the first
//! start) is no news; an unreadable one is set aside with a warning and replaced.
//!
//! ```json
//! {"version": 1, "boot_id": "a489f2cf-…", "since_boot": 4653.19, "wall": "2025-01-01T10:00:05Z"}
//! ```

use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::clock::{Boot, STEP_THRESHOLD, signed};
use crate::state_file::set_aside;

/// In the state directory: the last moment this watchdog saw the clocks.
pub const LAST_SEEN_FILE: &str = "last-seen.json";
/// How often the record is saved while nothing else saves it. Each save is a write and two
/// fsyncs, often on an SD card that wears with every erase: every few minutes is plenty, since
/// within a boot the record's age does not matter at all, and after a power cut it only
/// shortens how far behind a clock must be before the next start can tell.
pub const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Version of the file format.
const FORMAT_VERSION: u32 = 1;

/// One moment as the watchdog saw it: its boot, the time since boot, the wall clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastSeen {
    version: u32,
    /// Empty where `/proc` did not tell the boot.
    pub boot_id: String,
    /// `CLOCK_BOOTTIME` then, in seconds.
    pub since_boot: f64,
    pub wall: Timestamp,
}

impl LastSeen {
    /// The moment `wall` in `boot` (`None`: unknown, never the same boot as another).
    pub fn new(wall: Timestamp, boot: Option<&Boot>) -> LastSeen {
        LastSeen {
            version: FORMAT_VERSION,
            boot_id: boot.map(|b| b.id.clone()).unwrap_or_default(),
            since_boot: boot.map_or(0.0, |b| b.since_boot.as_secs_f64()),
            wall,
        }
    }
}

/// What the clock did while the watchdog was not running, if it is news.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Within one boot the wall clock moved `step` more than the time since boot did.
    Stepped {
        step: SignedDuration,
        /// The wall clock when the watchdog last saw it (as it said then).
        last_seen: Timestamp,
        /// How long ago that was, by the time since boot.
        away: Duration,
    },
    /// After a reboot the wall clock reads `now`, `behind` earlier than `last_seen`.
    Behind { behind: Duration, last_seen: Timestamp, now: Timestamp },
}

/// Judges the wall clock `now` in `boot` against what a previous run `saw`.
pub fn judge(saw: &LastSeen, now: Timestamp, boot: Option<&Boot>) -> Option<Verdict> {
    match boot {
        Some(boot) if !saw.boot_id.is_empty() && boot.id == saw.boot_id => {
            let then = Duration::try_from_secs_f64(saw.since_boot).unwrap_or_default();
            let away = boot.since_boot.saturating_sub(then);
            let step = now.duration_since(saw.wall).saturating_sub(signed(away));
            (step.unsigned_abs() > STEP_THRESHOLD).then_some(Verdict::Stepped { step, last_seen: saw.wall, away })
        }
        _ => {
            let behind = Duration::try_from(saw.wall.duration_since(now)).ok()?;
            (behind > STEP_THRESHOLD).then_some(Verdict::Behind { behind, last_seen: saw.wall, now })
        }
    }
}

/// The record a previous run left at `path`: `None` when there is none (the first start) or it
/// cannot be read (set aside with a warning; the caller saves a new one).
pub fn read(path: &Path) -> Option<LastSeen> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read when the watchdog last ran; clock steps while it was stopped are not judged this time");
            return None;
        }
    };
    let parsed = serde_json::from_slice::<LastSeen>(&bytes).map_err(|e| e.to_string()).and_then(|s| {
        if s.version == FORMAT_VERSION { Ok(s) } else { Err(format!("unknown format version {}", s.version)) }
    });
    parsed.inspect_err(|reason| set_aside(path, reason, "record of when the watchdog last ran")).ok()
}

/// Replaces the record at `path` (atomically: a crash leaves the old one or the new one).
pub fn write(path: &Path, seen: &LastSeen) {
    let mut bytes = serde_json::to_vec(seen).expect("the record serializes");
    bytes.push(b'\n');
    if let Err(e) = ds_config::write_atomic(path, &bytes) {
        warn!(file = %path.display(), error = %e, "cannot save when the watchdog last ran");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const MIN: Duration = Duration::from_secs(60);

    fn boot(id: &str, since_boot: Duration) -> Boot {
        Boot { id: id.into(), since_boot }
    }

    fn t0() -> Timestamp {
        "2026-03-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn within_a_boot_the_wall_clock_should_have_moved_as_the_time_since_boot() {
        let saw = LastSeen::new(t0(), Some(&boot("b1", 100 * MIN)));
        // Stopped for 10 min: the wall clock moved 10 min, or 4 s more (not a step).
        let later = boot("b1", 110 * MIN);
        assert_eq!(judge(&saw, t0() + 10 * MIN, Some(&later)), None);
        assert_eq!(judge(&saw, t0() + 10 * MIN + Duration::from_secs(4), Some(&later)), None);
        // NTP stepped it a year forward meanwhile.
        let verdict = judge(&saw, t0() + 10 * MIN + DAY * 366, Some(&later));
        assert_eq!(verdict, Some(Verdict::Stepped { step: signed(DAY * 366), last_seen: t0(), away: 10 * MIN }));
        // An operator set it back a day (and a SIGKILL left a record 4 min older: same verdict).
        let older = LastSeen::new(t0() - 4 * MIN, Some(&boot("b1", 96 * MIN)));
        let back = t0() + 10 * MIN - DAY;
        for saw in [&saw, &older] {
            let Some(Verdict::Stepped { step, .. }) = judge(saw, back, Some(&later)) else { panic!("a step") };
            assert_eq!(step, -signed(DAY));
        }
    }

    #[test]
    fn after_a_reboot_only_a_clock_behind_the_last_run_is_news() {
        let saw = LastSeen::new(t0(), Some(&boot("b1", 100 * MIN)));
        let rebooted = boot("b2", MIN);
        // Off for a day or a year: nobody can tell, and it is not a step.
        assert_eq!(judge(&saw, t0() + DAY, Some(&rebooted)), None);
        assert_eq!(judge(&saw, t0() + DAY * 366, Some(&rebooted)), None);
        assert_eq!(judge(&saw, t0() - Duration::from_secs(4), Some(&rebooted)), None, "within the threshold");
        // A board without a real-time clock, up at its build date, not synchronised yet.
        let build: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let behind = Duration::try_from(t0().duration_since(build)).unwrap();
        assert_eq!(judge(&saw, build, Some(&rebooted)), Some(Verdict::Behind { behind, last_seen: t0(), now: build }));
        // A boot /proc did not tell, now or then, counts as another boot.
        assert_eq!(judge(&saw, t0() + DAY * 366, None), None);
        let unknown = LastSeen::new(t0(), None);
        assert_eq!(judge(&unknown, t0() + DAY * 366, Some(&boot("", 110 * MIN))), None);
        assert!(matches!(judge(&unknown, build, None), Some(Verdict::Behind { .. })));
    }

    #[test]
    fn the_record_survives_a_save_and_a_broken_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAST_SEEN_FILE);
        assert_eq!(read(&path), None, "the first start");
        let saw = LastSeen::new(t0(), Some(&boot("b1", Duration::from_millis(6_000_250))));
        write(&path, &saw);
        assert_eq!(read(&path), Some(saw));

        std::fs::write(&path, "{\"version\": 1, \"boot_id\": \"b1\", \"since_bo").unwrap();
        assert_eq!(read(&path), None);
        assert!(!path.exists());
        assert!(dir.path().join("last-seen.json.unreadable").exists(), "kept for a person to look at");
        std::fs::write(
            &path,
            "{\"version\": 9, \"boot_id\": \"b1\", \"since_boot\": 1, \"wall\": \"2026-03-01T10:00:00Z\"}",
        )
        .unwrap();
        assert_eq!(read(&path), None, "a format this build does not know");
    }
}
