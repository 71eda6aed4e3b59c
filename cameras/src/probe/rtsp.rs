//! RTSP probe through retina: DESCRIBE (credentials as retina `Credentials`, Digest or
//! Basic as the camera asks), pick the video stream, SETUP over TCP (interleaved), PLAY, wait
//! for a keyframe and then a frame with a later timestamp, and TEARDOWN. Each step has its
//! own timeout, and a timeout names the step.
//!
//! Frozen pictures: the probe hashes the first keyframe it receives; the verdict compares
//! that hash across heartbeats. A camera that keeps sending the same picture re-encodes it
//! into the same keyframe bytes when its encoder starts afresh for each session (common) or
//! when it repeats a cached keyframe (a hung image pipeline). Limits: an encoder that keeps
//! running across sessions writes a changing `idr_pic_id`/`frame_num` into each keyframe's
//! slice header, so a frozen picture from such a camera is not recognised; and a scene that
//! truly does not move (a still picture from a synthetic source) is reported frozen. Frames
//! within one probe are not compared: predicted frames never equal the keyframe.
//!
//! Packet loss: retina reports, on each frame, how many RTP packets its sequence numbers show
//! missing before it, but not how many packets a frame took. The received count is estimated
//! as the frame's size over [`ASSUMED_RTP_PAYLOAD_BYTES`] (rounded up), so the percentage is
//! exact in its numerator and approximate in its denominator. Over TCP, loss only shows
//! when the camera itself drops packets (an overloaded sender).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, SessionGroup, SessionOptions, SetupOptions, TcpTransportOptions, TeardownPolicy,
    Transport,
};
use retina::codec::{CodecItem, ParametersRef, VideoFrame};
use tokio::time::{Instant, timeout, timeout_at};

use super::{
    Picture, ProbeFailure, ProbeOutcome, Proof, Target, fingerprint, io_reason, resolve, seconds, timeout_failure,
};
use crate::state::Reason;

const USER_AGENT: &str = "desktop-streamer-web camera probe";
/// Typical RTP payload of a camera (an Ethernet MTU less IP, UDP and RTP headers, rounded
/// down); see the module doc on packet loss.
pub const ASSUMED_RTP_PAYLOAD_BYTES: usize = 1400;
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
    let setup = SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default()));
    run_step("SETUP", step, authed, session.setup(index, setup)).await?;
    let playing = run_step("PLAY", step, authed, session.play(PlayOptions::default())).await?;
    let mut frames = playing.demuxed().map_err(|e| rtsp_failure("PLAY", authed, &e))?;

    let mut counts = Counts::default();
    let deadline = Instant::now() + step;
    let keyframe = loop {
        match next_frame(&mut frames, index, deadline, authed).await? {
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
    let key_fingerprint = fingerprint(keyframe.data());
    let deadline = Instant::now() + step;
    loop {
        match next_frame(&mut frames, index, deadline, authed).await? {
            Some(f) => {
                counts.add(&f);
                if f.timestamp().timestamp() > keyframe.timestamp().timestamp() {
                    break;
                }
            }
            None => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("a keyframe arrived but no later frame within {}", seconds(step)),
                ));
            }
        }
    }
    let last_frame_at = jiff::Timestamp::now();
    let (width, height) = match frames.streams()[index].parameters() {
        Some(ParametersRef::Video(v)) => {
            let (w, h) = v.pixel_dimensions();
            (Some(w), Some(h))
        }
        _ => (None, None),
    };
    drop(frames);
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
        last_frame_at,
        picture: Picture { fingerprint: key_fingerprint, changed: false, unchanged_for: Duration::ZERO },
        packets_lost: counts.lost,
        packets_received: counts.packets,
    })
}

#[derive(Default)]
struct Counts {
    frames: u32,
    lost: u32,
    packets: u32,
}

impl Counts {
    fn add(&mut self, f: &VideoFrame) {
        self.frames += 1;
        self.lost = self.lost.saturating_add(u32::from(f.loss()));
        let packets = f.data().len().div_ceil(ASSUMED_RTP_PAYLOAD_BYTES).max(1);
        self.packets = self.packets.saturating_add(u32::try_from(packets).unwrap_or(u32::MAX));
    }
}

/// The next video frame of stream `index` before `deadline` (`None`: none came in time).
async fn next_frame(
    frames: &mut retina::client::Demuxed,
    index: usize,
    deadline: Instant,
    authed: bool,
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
            Ok(Some(Err(e))) => return Err(rtsp_failure("receiving frames", authed, &e)),
            Ok(Some(Ok(CodecItem::VideoFrame(f)))) if f.stream_id() == index => return Ok(Some(f)),
            Ok(Some(Ok(_))) => {}
        }
    }
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
    fn os_errors_are_read_from_messages() {
        assert_eq!(os_error("Connection refused (os error 111)"), Some(111));
        assert_eq!(os_error("no code here"), None);
        assert_eq!(io_reason(std::io::Error::from_raw_os_error(111).kind()), Reason::Refused);
        assert_eq!(io_reason(std::io::Error::from_raw_os_error(113).kind()), Reason::Unreachable);
    }
}
