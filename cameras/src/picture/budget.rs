//! The decoding budget: the time the decoding threads may spend ([`Budget`]), and what it
//! costs people: for each camera, how many heartbeats of the last [`WINDOW`] brought a decoded
//! picture and how many went without one because the queue was full or the budget spent
//! ([`PictureLog`]), and for the fleet, whether thumbnails therefore refresh less often than
//! the heartbeat ([`thumbnails_behind`]). Decoding that cannot keep up costs thumbnails and
//! fresh picture verdicts on some heartbeats, never a heartbeat: the decoder answers at once
//! ([`super::DecodeError::Busy`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use ds_wire::cameras::{PictureCounts, ThumbnailsBehind};
use tokio::time::Instant;

/// How far back a camera's heartbeats are counted.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Thumbnails are behind when at least this share of the heartbeats that had pictures went
/// without decoding (a skip now and then is not worth a notice).
pub const BEHIND_SHARE: f64 = 0.1;

/// Seconds of its share the budget saves up while idle: at the default 4 % of a core, half a
/// second of decoding (about 150 decodes), so the first heartbeats after a start, and bursts
/// of them, are decoded; a smaller share saves up less.
pub const BURST_SECONDS: f64 = 12.5;

/// Time the decoding threads may spend: `share` of one core over time, with up to
/// [`BURST_SECONDS`] of it saved up. Jobs are admitted while the balance is positive, and each
/// decode's CPU time is taken from it when it ends. The share may change at any time (the
/// camera list's `picture_cpu_percent`).
#[derive(Debug)]
pub struct Budget(Mutex<Balance>);

#[derive(Debug)]
struct Balance {
    share: f64,
    /// When the balance was last brought up to date …
    since: std::time::Instant,
    /// … and the balance then, in seconds of CPU time.
    left: f64,
}

impl Balance {
    fn burst(&self) -> f64 {
        self.share * BURST_SECONDS
    }
}

impl Budget {
    /// A budget of `share` of one core (0.04: 4 %), its burst saved up from the start.
    pub fn new(share: f64) -> Budget {
        let balance = Balance { share, since: std::time::Instant::now(), left: 0.0 };
        let left = balance.burst();
        Budget(Mutex::new(Balance { left, ..balance }))
    }

    fn balance(&self) -> std::sync::MutexGuard<'_, Balance> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a decode may start at `now`.
    pub fn admits(&self, now: std::time::Instant) -> bool {
        let mut b = self.balance();
        let earned = now.saturating_duration_since(b.since).as_secs_f64() * b.share;
        b.left = (b.left + earned).min(b.burst());
        b.since = now.max(b.since);
        b.left > 0.0
    }

    /// Takes a decode's time from the balance.
    pub fn spend(&self, spent: Duration) {
        self.balance().left -= spent.as_secs_f64();
    }

    /// From now on, `share` of one core; what was saved up stays, within the new burst.
    pub fn set_share(&self, share: f64) {
        let mut b = self.balance();
        b.share = share;
        b.left = b.left.min(b.burst());
    }

    pub fn share(&self) -> f64 {
        self.balance().share
    }
}

/// What became of one heartbeat's pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Decoded,
    /// Not decoded: the queue was full or the budget spent.
    Skipped,
}

/// One camera's heartbeats of the last [`WINDOW`] that had pictures to decode.
#[derive(Debug, Default)]
pub struct PictureLog(VecDeque<(Instant, Fate)>);

impl PictureLog {
    /// Notes the fate of the pictures of a heartbeat at `now`.
    pub fn note(&mut self, now: Instant, fate: Fate) {
        self.0.push_back((now, fate));
        while self.0.front().is_some_and(|(at, _)| now.duration_since(*at) > WINDOW) {
            self.0.pop_front();
        }
    }

    /// The counts of the window ending at `now`.
    pub fn counts(&self, now: Instant) -> PictureCounts {
        let recent = self.0.iter().filter(|(at, _)| now.duration_since(*at) <= WINDOW);
        let (decoded, skipped) = recent.fold((0, 0), |(d, s), (_, fate)| match fate {
            Fate::Decoded => (d + 1, s),
            Fate::Skipped => (d, s + 1),
        });
        PictureCounts { window_seconds: WINDOW.as_secs() as u32, decoded, skipped }
    }
}

/// Whether thumbnails refresh less often than the heartbeat, from each camera's heartbeat
/// interval (seconds) and counts: `None` while at most [`BEHIND_SHARE`] of the heartbeats went
/// without a picture. The refresh interval is the heartbeat's, averaged over the heartbeats
/// counted, times heartbeats per decoded picture; with no picture at all in the window, the
/// window itself. `picture_cpu_percent` is the list's share of a core for decoding, which the
/// notice names as the remedy.
pub fn thumbnails_behind(
    cameras: impl IntoIterator<Item = (u32, PictureCounts)>,
    picture_cpu_percent: f64,
) -> Option<ThumbnailsBehind> {
    let (mut n, mut decoded, mut skipped, mut seconds, mut window) = (0u32, 0u32, 0u32, 0f64, 0u32);
    for (heartbeat_seconds, c) in cameras {
        n += 1;
        decoded += c.decoded;
        skipped += c.skipped;
        seconds += f64::from(heartbeat_seconds) * f64::from(c.decoded + c.skipped);
        window = window.max(c.window_seconds);
    }
    let beats = decoded + skipped;
    if beats == 0 || f64::from(skipped) < BEHIND_SHARE * f64::from(beats) {
        return None;
    }
    let refresh_seconds =
        if decoded == 0 { window } else { (seconds / f64::from(decoded)).round().min(f64::from(window)) as u32 };
    Some(ThumbnailsBehind {
        refresh_seconds,
        cameras: n,
        decoded,
        skipped,
        window_seconds: window,
        picture_cpu_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_decodes_while_time_is_left_and_earns_it_back() {
        // 0.16 % of a core saves up 20 ms (12.5 s of its share).
        let budget = Budget::new(0.0016);
        let t0 = std::time::Instant::now();
        assert!(budget.admits(t0), "the burst is there from the start");
        budget.spend(Duration::from_millis(30));
        assert!(!budget.admits(t0), "10 ms in debt");
        // At 1.6 ms per second, 10 ms take 6.25 s to earn back.
        assert!(!budget.admits(t0 + Duration::from_millis(6200)));
        assert!(budget.admits(t0 + Duration::from_millis(6300)));
        // Saving up stops at the burst.
        assert!(budget.admits(t0 + Duration::from_secs(60)));
        budget.spend(Duration::from_millis(21));
        assert!(!budget.admits(t0 + Duration::from_secs(60)), "no more than the burst was saved");
    }

    #[test]
    fn a_new_share_applies_at_once_and_keeps_the_balance_within_its_burst() {
        let budget = Budget::new(0.04);
        let t0 = std::time::Instant::now();
        assert!(budget.admits(t0));
        // Half a second saved up at 4 %; at 0.08 % only 10 ms of it stays.
        budget.set_share(0.0008);
        assert!((budget.share() - 0.0008).abs() < f64::EPSILON);
        budget.spend(Duration::from_millis(11));
        assert!(!budget.admits(t0), "the saved half second did not survive the smaller share");
        // 1 ms of debt at 0.8 ms per second: earned back after 1.25 s.
        assert!(!budget.admits(t0 + Duration::from_millis(1200)));
        assert!(budget.admits(t0 + Duration::from_millis(1300)));
    }

    #[test]
    fn heartbeats_older_than_the_window_are_not_counted() {
        let t0 = Instant::now();
        let mut log = PictureLog::default();
        log.note(t0, Fate::Skipped);
        log.note(t0 + Duration::from_secs(15), Fate::Decoded);
        let counts = log.counts(t0 + Duration::from_secs(30));
        assert_eq!((counts.decoded, counts.skipped, counts.window_seconds), (1, 1, 300));
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!((log.counts(later).decoded, log.counts(later).skipped), (1, 0));
        log.note(later + WINDOW, Fate::Decoded);
        assert_eq!(log.0.len(), 1, "the log keeps only its window");
    }

    #[test]
    fn thumbnails_are_behind_when_a_tenth_of_the_pictures_are_skipped() {
        let counts = |decoded, skipped| (15, PictureCounts { window_seconds: 300, decoded, skipped });
        assert_eq!(thumbnails_behind([counts(20, 0), counts(19, 1)], 4.0), None, "one skip in forty");
        let behind = thumbnails_behind([counts(10, 10), counts(10, 10)], 4.0).expect("half the pictures skipped");
        assert_eq!((behind.refresh_seconds, behind.cameras, behind.decoded, behind.skipped), (30, 2, 20, 20));
        let none = thumbnails_behind([counts(0, 20)], 4.0).expect("nothing decoded");
        assert_eq!(none.refresh_seconds, 300, "not within the window");
        assert_eq!(thumbnails_behind([], 4.0), None);
        assert_eq!(thumbnails_behind([counts(0, 0)], 4.0), None, "no pictures to decode: decoding is off");
    }
}
