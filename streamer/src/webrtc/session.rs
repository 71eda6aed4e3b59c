//! One viewer: its `Rtc` (ICE, DTLS, SRTP, RTCP, packetizing) driven by its datagrams from the
//! shared port, the feed's access units and str0m's timers, until the viewer leaves (DELETE),
//! its ICE times out, or the streamer stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ds_runtime::Shutdown;
use ds_wire::health::{WebrtcViewer, WebrtcViewerState};
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::Receive;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::{broadcast, mpsc};

use super::SocketsRef;
use super::route::Datagram;
use crate::feed::{AccessUnit, Feed};

/// How often str0m reports a viewer's figures (RTT, loss, bytes).
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// The least gap put between the last picture of one worker run and the first of the next, so
/// the viewer's RTP clock runs on without stepping back. The gap is otherwise the time that
/// passed between them (see [`RunClock`]).
const RUN_GAP: Duration = Duration::from_millis(40);
/// RTP clock of video, per second.
const RTP_HZ: u128 = 90_000;

/// A viewer being set up; [`Session::run`] drives it.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub rtc: Rtc,
    pub mid: Mid,
    pub pt: Pt,
    pub inbox: mpsc::Receiver<Datagram>,
    pub units: broadcast::Receiver<Arc<AccessUnit>>,
    pub feed: Feed,
    pub stats: Arc<Mutex<WebrtcViewer>>,
    pub shutdown: Shutdown,
}

impl Session {
    /// Runs until the viewer is gone; why it ended.
    pub async fn run(mut self, sockets: &SocketsRef) -> String {
        let mut clock = RunClock::default();
        let mut connected = false;
        let mut waiting_keyframe = true;
        // The worker run of the last picture this viewer was given.
        let mut seen_run = None::<u64>;
        let mut last_peer = None::<(Instant, u64)>;
        self.set_state(WebrtcViewerState::Connecting);
        loop {
            // Everything str0m has to send or say, until it names its next deadline.
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => sockets.send(t.proto, t.source, t.destination, &t.contents),
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            connected = true;
                            self.feed.request_keyframe();
                            self.set_state(WebrtcViewerState::WaitingForKeyframe);
                            tracing::info!(viewer = %self.id, "WebRTC viewer connected");
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            return "its ICE connection timed out or was closed".to_owned();
                        }
                        Event::IceConnectionStateChange(state) => {
                            tracing::debug!(viewer = %self.id, ?state, "ICE state");
                        }
                        Event::KeyframeRequest(req) => {
                            tracing::debug!(viewer = %self.id, kind = ?req.kind, "keyframe request from the viewer");
                            self.stats().keyframe_requests += 1;
                            self.feed.request_keyframe();
                        }
                        Event::PeerStats(p) => {
                            let mut s = self.stats();
                            if let Some((at, bytes)) = last_peer {
                                let secs = p.timestamp.saturating_duration_since(at).as_secs_f64();
                                if secs > 0.0 {
                                    s.bitrate_kbps = p.bytes_tx.saturating_sub(bytes) as f64 * 8.0 / 1000.0 / secs;
                                }
                            }
                            last_peer = Some((p.timestamp, p.bytes_tx));
                            s.bytes_sent = p.bytes_tx;
                            if let Some(rtt) = p.rtt {
                                s.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                            }
                            if let Some(pair) = p.selected_candidate_pair {
                                s.peer = Some(pair.remote.addr.to_string());
                            }
                        }
                        Event::MediaEgressStats(m) => {
                            let mut s = self.stats();
                            if let Some(rtt) = m.rtt {
                                s.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                            }
                            if let Some(loss) = m.loss {
                                s.loss_percent = Some(f64::from(loss) * 100.0);
                            }
                            s.nacks = m.nacks;
                        }
                        _ => {}
                    },
                    Err(e) => return format!("its WebRTC session failed: {e}"),
                }
            };
            if !self.rtc.is_alive() {
                return "its session closed".to_owned();
            }
            let input_at = tokio::select! {
                _ = self.shutdown.wait() => {
                    self.rtc.disconnect();
                    return "the streamer is stopping".to_owned();
                }
                d = self.inbox.recv() => {
                    let Some(d) = d else {
                        self.rtc.disconnect();
                        return "it was ended (DELETE)".to_owned();
                    };
                    let Ok(contents) = d.data.as_slice().try_into() else { continue };
                    let input = Input::Receive(d.at, Receive {
                        proto: d.proto,
                        source: d.source,
                        destination: d.destination,
                        contents,
                    });
                    if let Err(e) = self.rtc.handle_input(input) {
                        tracing::debug!(viewer = %self.id, error = %e, "datagram refused");
                    }
                    continue;
                }
                u = self.units.recv() => {
                    match u {
                        Ok(unit) => {
                            if !connected {
                                continue;
                            }
                            if seen_run.is_some_and(|r| r != unit.run) {
                                // A new worker (a rebuild, a crash, the slate, X back): its
                                // first picture is a keyframe; should it have been lost on the
                                // way, the viewer waits for one and asks for it at once.
                                tracing::info!(
                                    viewer = %self.id, run = unit.run, keyframe = unit.keyframe,
                                    "WebRTC viewer: the pictures of a new worker run arrive"
                                );
                                if !unit.keyframe {
                                    waiting_keyframe = true;
                                    self.set_state(WebrtcViewerState::WaitingForKeyframe);
                                    self.feed.request_keyframe();
                                }
                            }
                            seen_run = Some(unit.run);
                            if waiting_keyframe && !unit.keyframe {
                                continue;
                            }
                            if waiting_keyframe {
                                waiting_keyframe = false;
                                self.set_state(WebrtcViewerState::Playing);
                            }
                            let t = clock.next(&unit, Instant::now());
                            let ticks = (t.as_nanos() * RTP_HZ / 1_000_000_000) as u64;
                            let Some(writer) = self.rtc.writer(self.mid) else {
                                return "its video was removed".to_owned();
                            };
                            if let Err(e) = writer.write(self.pt, Instant::now(), MediaTime::from_90khz(ticks), unit.data.as_slice()) {
                                return format!("its video could not be written: {e}");
                            }
                            self.stats().frames_sent += 1;
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(viewer = %self.id, skipped = n, "viewer lagged; waiting for a keyframe");
                            self.stats().frames_skipped += n;
                            waiting_keyframe = true;
                            self.set_state(WebrtcViewerState::WaitingForKeyframe);
                            self.feed.request_keyframe();
                        }
                        Err(broadcast::error::RecvError::Closed) => return "the feed ended".to_owned(),
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Instant::now(),
            };
            if let Err(e) = self.rtc.handle_input(Input::Timeout(input_at)) {
                return format!("its WebRTC session failed: {e}");
            }
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, WebrtcViewer> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, state: WebrtcViewerState) {
        self.stats().state = state;
    }
}

/// The viewer's media clock across worker runs: each run's timestamps start afresh, so a new
/// run is placed after the last picture of the one before by the time that passed between
/// them (at least [`RUN_GAP`]). The RTP clock then keeps pace with the wall clock across a
/// restart, so the browser's jitter buffer sees pictures arrive when their timestamps say,
/// instead of seconds "late", and does not grow its delay after each restart.
#[derive(Debug, Default)]
pub struct RunClock {
    run: Option<u64>,
    /// Session time of the run's first picture, and that picture's pts.
    base: Duration,
    run_start: Duration,
    last: Duration,
    /// When the last picture was given its time.
    last_at: Option<Instant>,
}

impl RunClock {
    /// The session time of `unit`, handed over at `now`; never before the one before it.
    pub fn next(&mut self, unit: &AccessUnit, now: Instant) -> Duration {
        let pts = unit.pts.unwrap_or(self.run_start + self.last.saturating_sub(self.base) + RUN_GAP);
        if self.run != Some(unit.run) {
            self.base = match (self.run, self.last_at) {
                (Some(_), Some(at)) => self.last + now.saturating_duration_since(at).max(RUN_GAP),
                (Some(_), None) => self.last + RUN_GAP,
                (None, _) => Duration::ZERO,
            };
            self.run_start = pts;
            self.run = Some(unit.run);
        }
        let t = (self.base + pts.saturating_sub(self.run_start)).max(self.last);
        self.last = t;
        self.last_at = Some(now);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(run: u64, pts_ms: u64) -> AccessUnit {
        AccessUnit { run, pts: Some(Duration::from_millis(pts_ms)), keyframe: false, data: Vec::new() }
    }

    #[test]
    fn a_new_run_continues_the_clock_by_the_time_that_passed() {
        let mut c = RunClock::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(c.next(&unit(1, 5000), at(0))), 0, "the first picture is time zero");
        assert_eq!(ms(c.next(&unit(1, 5066), at(66))), 66);
        // A new worker 3 s later: its pts start at 0 again, its pictures are placed 3 s on.
        assert_eq!(ms(c.next(&unit(2, 0), at(3066))), 66 + 3000);
        assert_eq!(ms(c.next(&unit(2, 66), at(3132))), 66 + 3000 + 66);
        // A picture whose pts steps back within a run does not move the clock back.
        assert_eq!(ms(c.next(&unit(2, 10), at(3140))), 66 + 3000 + 66);
        // A new run at once (the pipe held its first picture already) is still put after.
        assert_eq!(ms(c.next(&unit(3, 700), at(3140))), 66 + 3000 + 66 + 40);
    }
}
