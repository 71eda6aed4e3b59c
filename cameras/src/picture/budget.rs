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

/// Time the decoding threads may spend: `share` of one core over time, with up to `burst`
/// saved up. Jobs are admitted while the balance is positive, and each decode's CPU time is
/// taken from it when it ends.
#[derive(Debug)]
pub struct Budget {
    share: f64,
    burst: Duration,
    /// When the balance was last brought up to date, and the balance in seconds.
    balance: Mutex<(std::time::Instant, f64)>,
}

impl Budget {
    pub fn new(share: f64, burst: Duration) -> Budget {
        Budget { share, burst, balance: Mutex::new((std::time::Instant::now(), burst.as_secs_f64())) }
    }

    /// Whether a decode may start at `now`.
    pub fn admits(&self, now: std::time::Instant) -> bool {
        let mut balance = self.balance.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, left) = *balance;
        let earned = now.saturating_duration_since(since).as_secs_f64() * self.share;
        let left = (left + earned).min(self.burst.as_secs_f64());
        *balance = (now.max(since), left);
        left > 0.0
    }

    /// Takes a decode's time from the balance.
    pub fn spend(&self, spent: Duration) {
        self.balance.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 -= spent.as_secs_f64();
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
/// window itself.
pub fn thumbnails_behind(cameras: impl IntoIterator<Item = (u32, PictureCounts)>) -> Option<ThumbnailsBehind> {
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
    Some(ThumbnailsBehind { refresh_seconds, cameras: n, decoded, skipped, window_seconds: window })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_decodes_while_time_is_left_and_earns_it_back() {
        let budget = Budget::new(0.1, Duration::from_millis(20));
        let t0 = std::time::Instant::now();
        assert!(budget.admits(t0), "the burst is there from the start");
        budget.spend(Duration::from_millis(30));
        assert!(!budget.admits(t0), "10 ms in debt");
        // At a tenth of a second per second, 10 ms take 100 ms to earn back.
        assert!(!budget.admits(t0 + Duration::from_millis(99)));
        assert!(budget.admits(t0 + Duration::from_millis(101)));
        // Saving up stops at the burst.
        assert!(budget.admits(t0 + Duration::from_secs(60)));
        budget.spend(Duration::from_millis(20));
        assert!(!budget.admits(t0 + Duration::from_secs(60)), "no more than the burst was saved");
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
        assert_eq!(thumbnails_behind([counts(20, 0), counts(19, 1)]), None, "one skip in forty");
        let behind = thumbnails_behind([counts(10, 10), counts(10, 10)]).expect("half the pictures skipped");
        assert_eq!((behind.refresh_seconds, behind.cameras, behind.decoded, behind.skipped), (30, 2, 20, 20));
        let none = thumbnails_behind([counts(0, 20)]).expect("nothing decoded");
        assert_eq!(none.refresh_seconds, 300, "not within the window");
        assert_eq!(thumbnails_behind([]), None);
        assert_eq!(thumbnails_behind([counts(0, 0)]), None, "no pictures to decode: decoding is off");
    }
}
