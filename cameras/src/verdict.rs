//! Judging a probe against the camera's history: a failure is PENDING until it has happened
//! more times in a row than the camera's `retries`, then DOWN; video that arrives is UP
//! unless its picture has not changed for `frozen_seconds` (DEGRADED/frozen) or the probe
//! found more RTP packets lost than `max_packets_lost` (DEGRADED/packet_loss).
//!
//! Packet loss is judged on the count, which the RTSP probe measures exactly (sequence-number
//! gaps), not on a share of all packets, which it cannot measure (see [`crate::probe::rtsp`]).
//!
//! Time here is the scheduler's monotonic clock (tokio's `Instant`), so a wall-clock jump
//! cannot make a picture frozen, and tests can run on paused time.

use std::time::Duration;

use ds_config::cameras::ProbeSettings;
use tokio::time::Instant;

use crate::probe::{ProbeOutcome, Proof};
use crate::state::{Reason, State};

/// What one heartbeat means for the camera.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub state: State,
    /// `None` exactly when `state` is UP.
    pub reason: Option<Reason>,
    /// For people; no credentials.
    pub message: Option<String>,
}

/// One camera's memory between heartbeats.
#[derive(Debug, Default)]
pub struct Tracker {
    failures: u32,
    picture: Option<PictureSeen>,
}

#[derive(Debug, Clone, Copy)]
struct PictureSeen {
    fingerprint: u64,
    /// Since when the picture has been this one.
    since: Instant,
}

impl Tracker {
    /// Failed probes in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Judges `outcome`, observed at `now`, under `settings`.
    pub fn judge(&mut self, now: Instant, outcome: &ProbeOutcome, settings: &ProbeSettings) -> Verdict {
        match outcome {
            Err(f) => {
                self.failures = self.failures.saturating_add(1);
                let state = if self.failures > settings.retries { State::Down } else { State::Pending };
                Verdict { state, reason: Some(f.reason), message: Some(f.message.clone()) }
            }
            Ok(proof) => {
                self.failures = 0;
                let unchanged = self.unchanged_for(now, proof);
                if settings.frozen_seconds > 0 && unchanged >= Duration::from_secs(settings.frozen_seconds.into()) {
                    Verdict {
                        state: State::Degraded,
                        reason: Some(Reason::Frozen),
                        message: Some(format!(
                            "the picture has not changed for {} s (the limit is {} s)",
                            unchanged.as_secs(),
                            settings.frozen_seconds
                        )),
                    }
                } else if let Some(lost) = proof.packets_lost.filter(|n| *n > settings.max_packets_lost) {
                    Verdict {
                        state: State::Degraded,
                        reason: Some(Reason::PacketLoss),
                        message: Some(format!(
                            "{lost} RTP packets were lost during the probe (the limit is {})",
                            settings.max_packets_lost
                        )),
                    }
                } else {
                    Verdict { state: State::Up, reason: None, message: None }
                }
            }
        }
    }

    /// Updates the picture memory with `proof` and says how long the picture has stood still.
    fn unchanged_for(&mut self, now: Instant, proof: &Proof) -> Duration {
        let p = proof.picture;
        let since = match self.picture {
            _ if p.changed => now,
            Some(seen) if seen.fingerprint == p.fingerprint => seen.since,
            _ => now.checked_sub(p.unchanged_for).unwrap_or(now),
        };
        self.picture = Some(PictureSeen { fingerprint: p.fingerprint, since });
        now - since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Picture, ProbeFailure};

    fn settings() -> ProbeSettings {
        ProbeSettings {
            heartbeat_seconds: 10,
            timeout_seconds: 2,
            retries: 2,
            frozen_seconds: 30,
            max_packets_lost: 0,
            verify_tls: true,
        }
    }

    fn proof(fingerprint: u64, changed: bool, unchanged_for: Duration) -> ProbeOutcome {
        Ok(Proof {
            latency: Duration::from_millis(200),
            codec: "h264".into(),
            width: Some(640),
            height: Some(480),
            last_frame: Instant::now(),
            last_frame_at: jiff::Timestamp::UNIX_EPOCH,
            picture: Picture { fingerprint, changed, unchanged_for },
            packets_lost: Some(0),
        })
    }

    fn fail() -> ProbeOutcome {
        Err(ProbeFailure::new(Reason::Refused, "the camera refused the connection"))
    }

    #[test]
    fn retries_keep_a_camera_pending_then_down_and_one_success_brings_it_up() {
        let (mut t, s, now) = (Tracker::default(), settings(), Instant::now());
        let states: Vec<State> = (0..4).map(|_| t.judge(now, &fail(), &s).state).collect();
        assert_eq!(states, [State::Pending, State::Pending, State::Down, State::Down]);
        assert_eq!(t.judge(now, &proof(1, true, Duration::ZERO), &s).state, State::Up);
        assert_eq!(t.judge(now, &fail(), &s).state, State::Pending, "the count starts again");
        let no_retries = ProbeSettings { retries: 0, ..s };
        assert_eq!(Tracker::default().judge(now, &fail(), &no_retries).state, State::Down);
    }

    #[test]
    fn a_picture_unchanged_for_frozen_seconds_is_degraded() {
        let (mut t, s, t0) = (Tracker::default(), settings(), Instant::now());
        let at = |secs| t0 + Duration::from_secs(secs);
        assert_eq!(t.judge(at(0), &proof(7, false, Duration::ZERO), &s).state, State::Up);
        assert_eq!(t.judge(at(20), &proof(7, false, Duration::ZERO), &s).state, State::Up);
        let v = t.judge(at(30), &proof(7, false, Duration::ZERO), &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::Frozen)));
        assert!(v.message.unwrap().contains("not changed for 30 s"));
        // A failure in between does not make the picture new.
        t.judge(at(35), &fail(), &s);
        assert_eq!(t.judge(at(40), &proof(7, false, Duration::ZERO), &s).reason, Some(Reason::Frozen));
        assert_eq!(t.judge(at(50), &proof(8, false, Duration::ZERO), &s).state, State::Up, "a new picture");
        // Identical frames within one probe count from the first of them.
        let mut t = Tracker::default();
        assert_eq!(t.judge(at(100), &proof(9, false, Duration::from_secs(30)), &s).reason, Some(Reason::Frozen));
        assert_eq!(t.judge(at(110), &proof(9, true, Duration::ZERO), &s).state, State::Up, "it moves again");
        let off = ProbeSettings { frozen_seconds: 0, ..s };
        assert_eq!(Tracker::default().judge(at(0), &proof(9, false, Duration::from_secs(999)), &off).state, State::Up);
    }

    #[test]
    fn more_lost_packets_than_the_limit_make_a_camera_degraded() {
        let (mut t, s, now) = (Tracker::default(), settings(), Instant::now());
        let lossy = |n| {
            let mut p = proof(1, true, Duration::ZERO).unwrap();
            p.packets_lost = Some(n);
            Ok(p)
        };
        let v = t.judge(now, &lossy(3), &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::PacketLoss)));
        assert_eq!(v.message.as_deref(), Some("3 RTP packets were lost during the probe (the limit is 0)"));
        assert_eq!(t.judge(now, &lossy(0), &s).state, State::Up, "a clean probe is UP again");
        let tolerant = ProbeSettings { max_packets_lost: 3, ..s };
        assert_eq!(t.judge(now, &lossy(3), &tolerant).state, State::Up, "up to the limit");
        // MJPEG has no packets to count.
        let mut mjpeg = proof(1, true, Duration::ZERO).unwrap();
        mjpeg.packets_lost = None;
        assert_eq!(t.judge(now, &Ok(mjpeg), &s).state, State::Up);
    }
}
