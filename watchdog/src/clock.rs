//! The two clocks the watchdog reads, and which one it trusts for what.
//!
//! Boards without a real-time clock boot at an old date and NTP steps the wall clock by months
//! once the network is up; operators step it back. So every age, retry, back-off, expiry and
//! grace period runs on the monotonic clock ([`At::mono`], tokio's `Instant`, which tests can
//! pause); the wall clock ([`At::wall`]) is only what people are shown ("raised at").
//!
//! A step is what the wall clock moved against the monotonic clock between two looks: more than
//! [`STEP_THRESHOLD`] (5 s, far above the drift NTP slews away and the jitter between reading
//! the two clocks) is a step, alerted once ([`StepWatch`]).
//! A step while the watchdog was not running is judged at the next start against what the last
//! run saw ([`crate::last_seen`]).
//!
//! What must outlive the process (an undelivered alert's age) is counted on `CLOCK_BOOTTIME`
//! (`/proc/uptime`, which also runs during suspend) together with the boot id
//! ([`Boot`]): within one boot the time between a save and a load is counted from it, across a
//! reboot it is not (the machine was off, and no clock tells for how long we could trust).

use std::ops::Add;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The wall clock moving this much more (or less) than the monotonic clock between two looks
/// is a step.
pub const STEP_THRESHOLD: Duration = Duration::from_secs(5);

/// One moment on both clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub mono: Instant,
    pub wall: Timestamp,
}

impl At {
    pub fn now() -> At {
        At { mono: Instant::now(), wall: Timestamp::now() }
    }

    /// How much further the wall clock moved than the monotonic clock since `earlier`:
    /// zero when nobody stepped it.
    pub fn stepped_since(&self, earlier: &At) -> SignedDuration {
        let wall = self.wall.duration_since(earlier.wall);
        let mono = signed(self.mono.saturating_duration_since(earlier.mono));
        wall.saturating_sub(mono)
    }
}

/// Both clocks moved on by the same time: what happens when nobody steps the wall clock.
impl Add<Duration> for At {
    type Output = At;
    fn add(self, d: Duration) -> At {
        At { mono: self.mono + d, wall: self.wall + d }
    }
}

/// The boot this process runs in, and how long since it started (`CLOCK_BOOTTIME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// `/proc/sys/kernel/random/boot_id`: new at every boot.
    pub id: String,
    pub since_boot: Duration,
}

impl Boot {
    /// The current boot, or `None` where `/proc` does not tell (then nothing counts across a
    /// restart but the stored age).
    pub fn read() -> Option<Boot> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?.trim().to_owned();
        // The first field of /proc/uptime is CLOCK_BOOTTIME in seconds (no preloaded library
        // fakes a file read).
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
        Some(Boot { id, since_boot: Duration::try_from_secs_f64(seconds).ok()? })
    }
}

/// Notices steps of the wall clock between two looks.
#[derive(Debug, Default)]
pub struct StepWatch {
    last: Option<At>,
}

impl StepWatch {
    /// The step since the previous look, if the wall clock moved more than [`STEP_THRESHOLD`]
    /// against the monotonic clock; each step is reported once.
    pub fn look(&mut self, now: At) -> Option<SignedDuration> {
        let step = self.last.replace(now).map(|last| now.stepped_since(&last))?;
        (step.unsigned_abs() > STEP_THRESHOLD).then_some(step)
    }
}

/// `+366 d`, `−1 d`, `+3 h`, `−20 min`, `+12 s`: the step in the largest unit that fits, rounded.
pub fn human_step(step: SignedDuration) -> String {
    let sign = if step.is_negative() { '−' } else { '+' };
    format!("{sign}{}", human_duration(step.unsigned_abs()))
}

/// `366 d`, `3 h`, `20 min`, `12 s`: in the largest unit that fits, rounded.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    // A second's slack: a step measured between two readings of two clocks is a few
    // microseconds off, and −86 399.9999 s is still a day.
    let (value, unit) = if s + 1.0 >= 86_400.0 {
        (s / 86_400.0, "d")
    } else if s + 1.0 >= 3600.0 {
        (s / 3600.0, "h")
    } else if s + 1.0 >= 60.0 {
        (s / 60.0, "min")
    } else {
        (s, "s")
    };
    format!("{} {unit}", value.round())
}

/// `2026-03-01 10:00:00 UTC`: a wall time for people, to the second.
pub fn human_wall(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(crate) fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn steps_read_in_human_units() {
        assert_eq!(human_step(signed(DAY * 366)), "+366 d");
        assert_eq!(human_step(-signed(DAY)), "−1 d");
        assert_eq!(human_step(signed(Duration::from_secs(3 * 3600 + 100))), "+3 h");
        assert_eq!(human_step(-signed(Duration::from_secs(20 * 60))), "−20 min");
        assert_eq!(human_step(signed(Duration::from_secs(12))), "+12 s");
        assert_eq!(human_step(-signed(DAY - Duration::from_micros(3))), "−1 d");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(human_wall("2026-03-01T10:00:00.75Z".parse().unwrap()), "2026-03-01 10:00:00 UTC");
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_seen_once_and_drift_is_not_a_step() {
        let mut watch = StepWatch::default();
        let t0 = At::now();
        assert_eq!(watch.look(t0), None, "the first look has nothing to compare");
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(watch.look(At { wall: t1.wall + Duration::from_secs(4), ..t1 }), None, "4 s is not a step");
        let t2 = t1 + Duration::from_secs(10);
        let forward = At { wall: t2.wall + DAY * 366 + Duration::from_secs(4), ..t2 };
        assert_eq!(watch.look(forward).map(human_step).as_deref(), Some("+366 d"));
        let t3 = forward + Duration::from_secs(10);
        assert_eq!(watch.look(t3), None, "said once");
        let back = At { wall: t3.wall - DAY, ..t3 + Duration::from_secs(1) };
        assert_eq!(watch.look(back).map(human_step).as_deref(), Some("−1 d"));
    }

    #[test]
    fn the_boot_is_read_from_proc() {
        let boot = Boot::read().expect("/proc tells the boot id and the uptime");
        assert_eq!(boot.id.len(), 36, "{boot:?}");
        assert!(boot.since_boot > Duration::ZERO);
    }
}
