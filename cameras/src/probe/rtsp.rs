//! RTSP probe through retina: DESCRIBE (credentials as retina `Credentials`, Digest or
//! Basic as the camera asks), pick the video stream, SETUP over TCP (interleaved), PLAY, wait
//! for a keyframe and then a frame with a later timestamp, and TEARDOWN. Each step has its
//! own timeout, and a timeout names the step.
//!
//! What the picture shows. After the keyframe the probe keeps up to [`LATER_FRAMES`] later
//! frames (each with a later timestamp than the one before; it stops early when the next one
//! is slower than [`frame_wait`] allows, or [`MAX_EXTRA_WAIT`] after the first later frame),
//! and hands the keyframe and every frame it received after it to [`crate::picture`] (in
//! Annex B form with the parameter sets on the keyframe, as decoders take them), which
//! decodes the first and the last picture and judges motion on them. Coded bytes are not
//! compared: a live encoder's frames differ in their headers even when the picture stands
//! still, and an encoder started afresh for each session sends the same first frames of a
//! moving picture every time.
//!
//! Packet loss: retina counts, on each frame, the RTP packets its sequence numbers show
//! missing before it; the probe adds them up ([`Proof::packets_lost`], exact). Only packets
//! lost after the first one received count: the sequence number `PLAY` announces in
//! `RTP-Info` is not trusted ([`InitialSequenceNumberPolicy::Ignore`]), because a server that
//! shares one media among its clients (gst-rtsp-server with a shared factory, MediaMTX,
//! go2rtc) announces where its stream was when it answered, and a client joining mid-stream
//! receives from a later packet on; that gap was never the client's to receive. Joining
//! mid-stream can also start in the middle of a fragmented frame, whose first fragment the
//! probe never sees: retina reports that fragment as an error, which the probe passes over
//! until its first frame ([`is_partial_start`]). retina does not tell how many packets a
//! frame took, so the probe cannot say what share of the packets was lost, and does not
//! guess one. Over TCP, loss only shows when the camera itself drops packets (an overloaded
//! sender).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, PlayOptions, SessionGroup, SessionOptions, SetupOptions,
    TcpTransportOptions, TeardownPolicy, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoFrame};
use tokio::time::{Instant, timeout, timeout_at};

use super::{ProbeFailure, ProbeOutcome, Proof, Target, io_reason, resolve, seconds, timeout_failure};
use crate::picture::Coded;
use crate::state::Reason;

const USER_AGENT: &str = "desktop-streamer-web camera probe";
/// Frames after the keyframe with later timestamps that the probe waits for (see the module
/// doc).
pub const LATER_FRAMES: usize = 3;
/// The least time the probe waits for a further frame once video is proven.
const MIN_FRAME_WAIT: Duration = Duration::from_millis(150);
/// The most time the probe spends on further frames after the first later one: a slow
/// camera (a frame a second) is compared on fewer frames rather than holding its probe's
/// slot for seconds.
const MAX_EXTRA_WAIT: Duration = Duration::from_secs(1);
/// Video encodings retina can turn into frames.
const READABLE_ENCODINGS: &[&str] = &["h264", "h265", "jpeg"];

pub(crate) async fn probe(target: &Target, step: Duration) -> ProbeOutcome {
    let start = Instant::now();
    resolve(target, step).await?;
    let creds = target.credentials.clone().map(|(username, password)| Credentials { username, password });
    let group = Arc::new(SessionGroup::default());
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(USER_AGENT.to_owned())
        .session_group(group.clone())
        .teardown(TeardownPolicy::Auto);
    let authed = target.credentials.is_some();

    let mut session = run_step(
        "connecting and DESCRIBE",
        step,
        authed,
        retina::client::Session::describe(target.url.clone(), options),
    )
    .await
    .map_err(|f| connect_context(f, target))?;
    let streams = session.streams();
    let Some(index) = streams.iter().position(|s| s.media() == "video") else {
        let media: Vec<_> = streams.iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
        let what = if media.is_empty() { "nothing".to_owned() } else { media.join(", ") };
        return Err(ProbeFailure::new(Reason::NoVideoTrack, format!("the stream describes no video, only {what}")));
    };
    let codec = streams[index].encoding_name().to_owned();
    if !READABLE_ENCODINGS.contains(&codec.as_str()) {
        return Err(ProbeFailure::new(
            Reason::NoVideoTrack,
            format!("the video is {codec}, which the prober cannot read; set the camera to H.264, H.265 or JPEG"),
        ));
    }
    // Annex B with the parameter sets on each keyframe: what a decoder takes as it is.
    let setup = SetupOptions::default()
        .transport(Transport::Tcp(TcpTransportOptions::default()))
        .frame_format(FrameFormat::SIMPLE);
    run_step("SETUP", step, authed, session.setup(index, setup)).await?;
    let play = PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore);
    let playing = run_step("PLAY", step, authed, session.play(play)).await?;
    let mut frames = playing.demuxed().map_err(|e| rtsp_failure("PLAY", authed, &e))?;

    let mut counts = Counts::default();
    let deadline = Instant::now() + step;
    let keyframe = loop {
        match next_frame(&mut frames, index, deadline, authed, counts.frames == 0).await? {
            Some(f) => {
                counts.add(&f);
                if f.is_random_access_point() {
                    break f;
                }
            }
            None if counts.frames == 0 => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("PLAY was answered but no frame arrived within {}", seconds(step)),
                ));
            }
            None => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("{} frames but no keyframe arrived within {}", counts.frames, seconds(step)),
                ));
            }
        }
    };
    let latency = start.elapsed();
    let key_at = Instant::now();
    let mut seen = Seen::new(&keyframe, key_at);
    let key_ts = keyframe.timestamp().timestamp();
    let mut coded = vec![(Duration::ZERO, keyframe.into_data())];
    let deadline = key_at + step;
    // Proof needs one later frame, within the step; the comparison takes a few more if they
    // come about as fast as the first did.
    while seen.later() < LATER_FRAMES {
        let wait_until = match seen.second_at {
            None => deadline,
            Some(second) => (Instant::now() + frame_wait(seen.first_gap())).min(second + MAX_EXTRA_WAIT).min(deadline),
        };
        match next_frame(&mut frames, index, wait_until, authed, false).await {
            Ok(Some(f)) => {
                counts.add(&f);
                seen.add(&f, Instant::now());
                let ticks = u64::try_from(f.timestamp().timestamp() - key_ts).unwrap_or(0);
                // 90 kHz, the clock of H.264, H.265 and JPEG over RTP.
                coded.push((Duration::from_nanos(ticks * 100_000 / 9), f.into_data()));
            }
            Ok(None) if seen.later() == 0 => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("a keyframe arrived but no later frame within {}", seconds(step)),
                ));
            }
            Err(f) if seen.later() == 0 => return Err(f),
            Ok(None) => break,
            // Video is proven; what goes wrong after only ends the comparison early.
            Err(f) => {
                tracing::debug!(camera = %target.url, error = %f, "frames after the proof ended early");
                break;
            }
        }
    }
    let last_frame_at = jiff::Timestamp::now() - (Instant::now() - seen.last_at);
    let (width, height) = match frames.streams()[index].parameters() {
        Some(ParametersRef::Video(v)) => {
            let (w, h) = v.pixel_dimensions();
            (Some(w), Some(h))
        }
        _ => (None, None),
    };
    drop(frames);
    let coded = if codec == "jpeg" {
        Coded::Jpeg(coded.into_iter().map(|(_, data)| data).collect())
    } else {
        Coded::H26x { h265: codec == "h265", frames: coded }
    };
    // TEARDOWN runs in retina's background task; wait for it so the next heartbeat never
    // overlaps this session. Its failure does not undo the proof.
    match timeout(step, group.await_teardown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(camera = %target.url, error = %first_line(&e.to_string()), "TEARDOWN failed"),
        Err(_) => tracing::debug!(camera = %target.url, "TEARDOWN took longer than the step timeout"),
    }
    Ok(Proof {
        latency,
        codec,
        width,
        height,
        last_frame: seen.last_at,
        last_frame_at,
        coded: Some(coded),
        span: seen.last_at - seen.first_at,
        packets_lost: Some(counts.lost),
    })
}

/// How long to wait for a further frame, given the time from the keyframe to the first later
/// frame: twice that (a camera's frame interval jitters), at least [`MIN_FRAME_WAIT`].
fn frame_wait(first_gap: Duration) -> Duration {
    (first_gap * 2).max(MIN_FRAME_WAIT)
}

#[derive(Default)]
struct Counts {
    frames: u32,
    /// Packets the RTP sequence numbers show missing (retina's count on each frame).
    lost: u32,
}

impl Counts {
    fn add(&mut self, f: &VideoFrame) {
        self.frames += 1;
        self.lost = self.lost.saturating_add(u32::from(f.loss()));
    }
}

/// The frames a probe waits for: the keyframe and the later frames, when they arrived.
#[derive(Debug)]
struct Seen {
    /// Frames kept after the keyframe.
    later: usize,
    /// The RTP timestamp of the newest frame kept; a frame must be later to count.
    timestamp: i64,
    first_at: Instant,
    second_at: Option<Instant>,
    last_at: Instant,
}

impl Seen {
    fn new(keyframe: &VideoFrame, at: Instant) -> Seen {
        Seen::start(keyframe.timestamp().timestamp(), at)
    }

    fn start(timestamp: i64, at: Instant) -> Seen {
        Seen { later: 0, timestamp, first_at: at, second_at: None, last_at: at }
    }

    fn add(&mut self, f: &VideoFrame, at: Instant) {
        self.push(f.timestamp().timestamp(), at);
    }

    /// Keeps a frame whose timestamp is later than the last one kept; ignores others.
    fn push(&mut self, timestamp: i64, at: Instant) {
        if timestamp <= self.timestamp {
            return;
        }
        self.later += 1;
        self.timestamp = timestamp;
        self.second_at.get_or_insert(at);
        self.last_at = at;
    }

    /// Frames kept after the keyframe.
    fn later(&self) -> usize {
        self.later
    }

    fn first_gap(&self) -> Duration {
        self.second_at.map_or(Duration::ZERO, |at| at - self.first_at)
    }
}

/// The next video frame of stream `index` before `deadline` (`None`: none came in time).
/// `first`: no frame has arrived yet, so the rest of a frame the session joined in its middle
/// is passed over (see the module doc).
async fn next_frame(
    frames: &mut retina::client::Demuxed,
    index: usize,
    deadline: Instant,
    authed: bool,
    first: bool,
) -> Result<Option<VideoFrame>, ProbeFailure> {
    loop {
        match timeout_at(deadline, frames.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    "the camera ended the session while frames were awaited",
                ));
            }
            Ok(Some(Err(e))) if first && is_partial_start(&e.to_string()) => {
                tracing::debug!(error = %first_line(&e.to_string()), "joined in the middle of a frame; skipping its rest");
            }
            Ok(Some(Err(e))) => return Err(rtsp_failure("receiving frames", authed, &e)),
            Ok(Some(Ok(CodecItem::VideoFrame(f)))) if f.stream_id() == index => return Ok(Some(f)),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Whether retina's error is a fragment of a frame whose first fragment never arrived (H.264
/// FU-A or H.265 FU without a start bit, and no packet lost before it: the session began in
/// the middle of the frame). retina's error is opaque, so its description is read.
fn is_partial_start(error: &str) -> bool {
    first_line(error).ends_with("has start bit unset while no frag in progress")
}

async fn run_step<T>(
    step: &str,
    limit: Duration,
    authed: bool,
    fut: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, ProbeFailure> {
    match timeout(limit, fut).await {
        Err(_) => Err(timeout_failure(step, limit)),
        Ok(Err(e)) => Err(rtsp_failure(step, authed, &e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Adds the address to connection failures, which otherwise do not say where.
fn connect_context(f: ProbeFailure, target: &Target) -> ProbeFailure {
    if matches!(f.reason, Reason::Refused | Reason::Unreachable) {
        ProbeFailure { message: format!("{} ({})", f.message, target.authority()), ..f }
    } else {
        f
    }
}

/// Maps a retina error to a reason. retina's error is opaque apart from the RTSP status, so
/// the kind of the other failures is read from the start of its message.
fn rtsp_failure(step: &str, authed: bool, e: &retina::Error) -> ProbeFailure {
    let text = e.to_string();
    let first = first_line(&text);
    if let Some(status) = e.status_code() {
        let (reason, message) = match status {
            401 if authed => {
                (Reason::AuthFailed, format!("the camera refused the credentials (401 Unauthorized after {step})"))
            }
            401 => (
                Reason::AuthFailed,
                format!(
                    "the camera asks for credentials (401 Unauthorized after {step}); put them in the URL: rtsp://user:password@host/…"
                ),
            ),
            403 => (
                Reason::AuthFailed,
                format!("the camera forbids this stream to these credentials (403 Forbidden after {step})"),
            ),
            404 => (Reason::NotFound, format!("the camera has no stream at this path (404 Not Found after {step})")),
            454 => (
                Reason::NotFound,
                format!("the camera lost or never had this session (454 Session Not Found after {step})"),
            ),
            _ => (Reason::BadData, format!("the camera answered {status} to {step}: {first}")),
        };
        return ProbeFailure::new(reason, message);
    }
    if let Some(rest) = text.strip_prefix("Unable to connect to RTSP server: ") {
        let reason = os_error(rest)
            .map_or(Reason::Unreachable, |code| io_reason(std::io::Error::from_raw_os_error(code).kind()));
        let what = if reason == Reason::Refused {
            "the camera refused the connection"
        } else {
            "cannot connect to the camera"
        };
        return ProbeFailure::new(reason, format!("{what}: {}", first_line(rest)));
    }
    if text.starts_with("Error reading from RTSP peer") || text.starts_with("Error writing to RTSP peer") {
        return ProbeFailure::new(Reason::Unreachable, format!("the connection broke during {step}: {first}"));
    }
    ProbeFailure::new(Reason::BadData, format!("{step} failed: {first}"))
}

/// `Connection refused (os error 111)` → 111.
fn os_error(text: &str) -> Option<i32> {
    let start = text.rfind("(os error ")? + "(os error ".len();
    text[start..].split(')').next()?.parse().ok()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frames_with_later_timestamps_count() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut seen = Seen::start(0, ms(0));
        seen.push(0, ms(10));
        assert_eq!(seen.later(), 0, "the same timestamp again");
        seen.push(6000, ms(66));
        seen.push(12_000, ms(133));
        assert_eq!((seen.later(), seen.first_gap(), seen.last_at), (2, Duration::from_millis(66), ms(133)));
    }

    #[test]
    fn further_frames_are_awaited_for_about_two_frame_intervals() {
        assert_eq!(frame_wait(Duration::from_millis(66)), Duration::from_millis(150));
        assert_eq!(frame_wait(Duration::from_millis(500)), Duration::from_secs(1));
    }

    #[test]
    fn the_rest_of_a_frame_joined_midway_is_recognised() {
        // retina 0.4's descriptions for H.264 and H.265, followed by its context lines.
        assert!(is_partial_start("FU-A has start bit unset while no frag in progress\n\nconn: 127.0.0.1:1"));
        assert!(is_partial_start("FU has start bit unset while no frag in progress\n\nconn: 127.0.0.1:1"));
        assert!(!is_partial_start("FU-A with start bit while frag in progress\n\nconn: 127.0.0.1:1"));
        assert!(!is_partial_start("Error reading from RTSP peer: EOF"));
    }

    #[test]
    fn os_errors_are_read_from_messages() {
        assert_eq!(os_error("Connection refused (os error 111)"), Some(111));
        assert_eq!(os_error("no code here"), None);
        assert_eq!(io_reason(std::io::Error::from_raw_os_error(111).kind()), Reason::Refused);
        assert_eq!(io_reason(std::io::Error::from_raw_os_error(113).kind()), Reason::Unreachable);
    }
}
