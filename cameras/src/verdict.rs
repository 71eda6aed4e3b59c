//! Judging a probe against the camera's history: a failure is PENDING until it has happened
//! more times in a row than the camera's `retries`, then DOWN; video that arrives is UP
//! unless its picture has been almost uniformly dark for `black_seconds` (DEGRADED/black),
//! has not changed for `frozen_seconds` (DEGRADED/frozen), or the probe found more RTP
//! packets lost than `max_packets_lost` (DEGRADED/packet_loss), in that order: a black
//! picture also stands still, and black says more.
//!
//! Whether the picture changed is judged on decoded pictures ([`crate::picture`]): it
//! changed when it moved within the probe, or when its keyframe shows another scene than the
//! previous heartbeat's. A heartbeat without pictures (decoding was skipped because its
//! budget was spent, or failed) leaves the picture memory as it was and keeps the picture
//! verdict (frozen, black, or neither) of the camera's last decoded heartbeat, so that a fleet
//! whose pictures are decoded on some heartbeats only does not flap between DEGRADED and UP;
//! after a failed probe nothing is known of the picture until it is decoded again.
//!
//! Packet loss is judged on the count, which the RTSP probe measures exactly (sequence-number
//! gaps), not on a share of all packets, which it cannot measure (see [`crate::probe::rtsp`]).
//!
//! Time here is the scheduler's monotonic clock (tokio's `Instant`), so a wall-clock jump
//! cannot make a picture frozen, and tests can run on paused time.

use std::time::Duration;

use ds_config::cameras::ProbeSettings;
use tokio::time::Instant;

use crate::picture::{Pictures, Scene};
use crate::probe::ProbeOutcome;
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
    /// Since when every picture decoded was black.
    dark_since: Option<Instant>,
    /// How long the picture had been unchanged and dark at the last heartbeat whose pictures
    /// were decoded (carried to heartbeats without pictures); `None` after a failed probe.
    last_look: Option<(Duration, Duration)>,
}

#[derive(Debug, Clone)]
struct PictureSeen {
    /// The newest keyframe's scene.
    keyframe: Scene,
    /// Since when the picture has not changed.
    since: Instant,
}

impl Tracker {
    /// Failed probes in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Judges `outcome`, observed at `now`, with the pictures decoded from it (if they were),
    /// under `settings`.
    pub fn judge(
        &mut self,
        now: Instant,
        outcome: &ProbeOutcome,
        pictures: Option<&Pictures>,
        settings: &ProbeSettings,
    ) -> Verdict {
        match outcome {
            Err(f) => {
                self.failures = self.failures.saturating_add(1);
                self.last_look = None;
                let state = if self.failures > settings.retries { State::Down } else { State::Pending };
                Verdict { state, reason: Some(f.reason), message: Some(f.message.clone()) }
            }
            Ok(proof) => {
                self.failures = 0;
                let (unchanged, dark) = match pictures {
                    Some(p) => {
                        let look = (self.unchanged_for(now, proof.span, p), self.dark_for(now, p));
                        *self.last_look.insert(look)
                    }
                    None => self.last_look.unwrap_or_default(),
                };
                if settings.black_seconds > 0 && dark >= Duration::from_secs(settings.black_seconds.into()) {
                    Verdict {
                        state: State::Degraded,
                        reason: Some(Reason::Black),
                        message: Some(format!(
                            "the picture has been almost uniformly dark for {} s (the limit is {} s): \
                             is the lens covered, or the infrared light off?",
                            dark.as_secs(),
                            settings.black_seconds
                        )),
                    }
                } else if settings.frozen_seconds > 0
                    && unchanged >= Duration::from_secs(settings.frozen_seconds.into())
                {
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

    /// Notes whether the probe's last picture is black and says how long every picture has
    /// been.
    fn dark_for(&mut self, now: Instant, pictures: &Pictures) -> Duration {
        if pictures.last.is_black() {
            now - *self.dark_since.get_or_insert(now)
        } else {
            self.dark_since = None;
            Duration::ZERO
        }
    }

    /// Updates the picture memory with a probe's pictures, `span` apart, and says how long the
    /// picture has stood still.
    fn unchanged_for(&mut self, now: Instant, span: Duration, pictures: &Pictures) -> Duration {
        let since = match &self.picture {
            _ if pictures.moved() => now,
            Some(seen) if seen.keyframe.same_as(&pictures.first.scene()) => seen.since,
            // Still within the probe, and a new scene (or the first look): still since the
            // probe's first frame.
            _ => now.checked_sub(span).unwrap_or(now),
        };
        self.picture = Some(PictureSeen { keyframe: pictures.first.scene(), since });
        now - since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::Look;
    use crate::probe::{ProbeFailure, Proof};

    fn settings() -> ProbeSettings {
        ProbeSettings {
            heartbeat_seconds: 10,
            timeout_seconds: 2,
            retries: 2,
            frozen_seconds: 30,
            black_seconds: 30,
            max_packets_lost: 0,
            verify_tls: true,
        }
    }

    fn proof(span: Duration) -> ProbeOutcome {
        Ok(Proof {
            latency: Duration::from_millis(200),
            codec: "h264".into(),
            width: Some(640),
            height: Some(480),
            last_frame: Instant::now(),
            last_frame_at: jiff::Timestamp::UNIX_EPOCH,
            coded: None,
            span,
            packets_lost: Some(0),
        })
    }

    /// A 64×36 picture of grey `level` with a bright 8×8 square at `x`.
    fn scene(level: u8, x: usize) -> Look {
        let mut luma = vec![level; 64 * 36];
        for row in 8..16 {
            luma[row * 64 + x..row * 64 + x + 8].fill(250);
        }
        Look { width: 64, height: 36, luma }
    }

    /// Pictures of a probe: the square at `from`, then at `to`.
    fn pictures(level: u8, from: usize, to: usize) -> Pictures {
        Pictures { first: scene(level, from), last: scene(level, to), thumbnail: None }
    }

    fn fail() -> ProbeOutcome {
        Err(ProbeFailure::new(Reason::Refused, "the camera refused the connection"))
    }

    #[test]
    fn retries_keep_a_camera_pending_then_down_and_one_success_brings_it_up() {
        let (mut t, s, now) = (Tracker::default(), settings(), Instant::now());
        let states: Vec<State> = (0..4).map(|_| t.judge(now, &fail(), None, &s).state).collect();
        assert_eq!(states, [State::Pending, State::Pending, State::Down, State::Down]);
        assert_eq!(t.judge(now, &proof(Duration::ZERO), None, &s).state, State::Up);
        assert_eq!(t.judge(now, &fail(), None, &s).state, State::Pending, "the count starts again");
        let no_retries = ProbeSettings { retries: 0, ..s };
        assert_eq!(Tracker::default().judge(now, &fail(), None, &no_retries).state, State::Down);
    }

    #[test]
    fn a_picture_unchanged_for_frozen_seconds_is_degraded() {
        let (mut t, s, t0) = (Tracker::default(), settings(), Instant::now());
        let at = |secs| t0 + Duration::from_secs(secs);
        let ok = proof(Duration::from_millis(200));
        let still = pictures(40, 8, 8);
        assert_eq!(t.judge(at(0), &ok, Some(&still), &s).state, State::Up);
        assert_eq!(t.judge(at(20), &ok, Some(&still), &s).state, State::Up);
        let v = t.judge(at(30), &ok, Some(&still), &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::Frozen)));
        assert!(v.message.unwrap().contains("not changed for 30 s"));
        // A heartbeat whose pictures were not decoded keeps the verdict of the last that were.
        let v = t.judge(at(33), &ok, None, &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::Frozen)), "no flapping for want of pictures");
        // A failure in between does not make the picture new, nor does a heartbeat whose
        // pictures were not decoded; but after it nothing is known of the picture.
        t.judge(at(35), &fail(), None, &s);
        assert_eq!(t.judge(at(38), &ok, None, &s).state, State::Up, "no pictures, no frozen verdict");
        assert_eq!(t.judge(at(40), &ok, Some(&still), &s).reason, Some(Reason::Frozen));
        // Another scene at the next heartbeat (the square is elsewhere): a new picture.
        assert_eq!(t.judge(at(50), &ok, Some(&pictures(40, 32, 32)), &s).state, State::Up, "a new scene");
        assert_eq!(t.judge(at(79), &ok, Some(&pictures(40, 32, 32)), &s).state, State::Up);
        // Movement within the probe: a moving picture, whatever the keyframes look like.
        let mut t = Tracker::default();
        for secs in [100, 110, 120, 130, 140] {
            assert_eq!(t.judge(at(secs), &ok, Some(&pictures(40, 8, 16)), &s).state, State::Up, "{secs}");
        }
        // Still within one long probe counts from its first frame.
        let long = proof(Duration::from_secs(30));
        assert_eq!(Tracker::default().judge(at(200), &long, Some(&still), &s).reason, Some(Reason::Frozen));
        let off = ProbeSettings { frozen_seconds: 0, ..s };
        assert_eq!(Tracker::default().judge(at(200), &long, Some(&still), &off).state, State::Up);
    }

    #[test]
    fn a_picture_dark_for_black_seconds_is_degraded_black() {
        let (mut t, s, t0) = (Tracker::default(), settings(), Instant::now());
        let at = |secs| t0 + Duration::from_secs(secs);
        let ok = proof(Duration::from_millis(200));
        let black = Pictures {
            first: scene(16, 0),
            last: Look { width: 64, height: 36, luma: vec![16; 64 * 36] },
            thumbnail: None,
        };
        assert_eq!(t.judge(at(0), &ok, Some(&black), &s).state, State::Up);
        let v = t.judge(at(30), &ok, Some(&black), &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::Black)), "black, not frozen: {v:?}");
        assert!(v.message.unwrap().contains("almost uniformly dark for 30 s (the limit is 30 s)"));
        // A dark scene with detail (the bright square) is not black.
        let dim = pictures(16, 8, 8);
        assert_eq!(t.judge(at(40), &ok, Some(&dim), &s).reason, None);
        assert_eq!(t.judge(at(50), &ok, Some(&black), &s).state, State::Up, "dark afresh");
        let off = ProbeSettings { black_seconds: 0, frozen_seconds: 0, ..s };
        assert_eq!(t.judge(at(500), &ok, Some(&black), &off).state, State::Up, "0 turns it off");
    }

    #[test]
    fn more_lost_packets_than_the_limit_make_a_camera_degraded() {
        let (mut t, s, now) = (Tracker::default(), settings(), Instant::now());
        let lossy = |n| {
            let mut p = proof(Duration::ZERO).unwrap();
            p.packets_lost = Some(n);
            Ok(p)
        };
        let v = t.judge(now, &lossy(3), None, &s);
        assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::PacketLoss)));
        assert_eq!(v.message.as_deref(), Some("3 RTP packets were lost during the probe (the limit is 0)"));
        assert_eq!(t.judge(now, &lossy(0), None, &s).state, State::Up, "a clean probe is UP again");
        let tolerant = ProbeSettings { max_packets_lost: 3, ..s };
        assert_eq!(t.judge(now, &lossy(3), None, &tolerant).state, State::Up, "up to the limit");
        // MJPEG has no packets to count.
        let mut mjpeg = proof(Duration::ZERO).unwrap();
        mjpeg.packets_lost = None;
        assert_eq!(t.judge(now, &Ok(mjpeg), None, &s).state, State::Up);
    }
}
