//! What a heartbeat found: the camera's state, why it is not up, and the facts measured
//! on the way (latency to the first frame, codec, resolution). These are the words of the
//! API, the store, the page and the watchdog's camera alerts, so their spelling is a
//! contract: states in upper case (`UP`), reasons in snake case (`auth_failed`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A camera's state after a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Video arrived: a keyframe and a following frame with an advancing timestamp (RTSP),
    /// or two complete JPEG frames (MJPEG, snapshots).
    Up,
    /// The last probes failed, but fewer times in a row than the camera's retry count.
    Pending,
    /// Failed more times in a row than the retry count.
    Down,
    /// Video arrives but something is wrong with it (frozen picture, packet loss).
    Degraded,
}

impl State {
    pub const ALL: [State; 4] = [State::Up, State::Pending, State::Down, State::Degraded];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "UP",
            State::Pending => "PENDING",
            State::Down => "DOWN",
            State::Degraded => "DEGRADED",
        }
    }
}

/// Why a camera is not up. Every non-UP state carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No route to the host, or the connection broke.
    Unreachable,
    /// The host name does not resolve.
    Dns,
    /// The host refused the connection (nothing listens on the port).
    Refused,
    /// A step (connect, DESCRIBE, SETUP, PLAY, first frame, …) took longer than its timeout.
    Timeout,
    /// The camera refused the credentials (or asked for some and none were given).
    AuthFailed,
    /// The camera has no such stream or path (RTSP or HTTP 404).
    NotFound,
    /// The stream describes no video (RTSP), or the HTTP answer is not a picture or MJPEG.
    NoVideoTrack,
    /// The session started but no frame came before the timeout.
    NoFrames,
    /// Frames arrive but the picture has not changed for longer than allowed.
    Frozen,
    /// Frames arrive but more packets are lost than allowed.
    PacketLoss,
    /// What arrived is not valid video (broken JPEG, malformed RTP or SDP, …).
    BadData,
    /// The TLS handshake with an `https://` camera failed: its certificate is not trusted
    /// (self-signed, expired, for another host) or it speaks no TLS the prober accepts. The
    /// camera answered, so it is not `unreachable`; nothing was sent, so it is not
    /// `auth_failed`; and the fix (`verify_tls: false`, or a proper certificate) is its own.
    Tls,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Unreachable,
        Reason::Dns,
        Reason::Refused,
        Reason::Timeout,
        Reason::AuthFailed,
        Reason::NotFound,
        Reason::NoVideoTrack,
        Reason::NoFrames,
        Reason::Frozen,
        Reason::PacketLoss,
        Reason::BadData,
        Reason::Tls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unreachable => "unreachable",
            Reason::Dns => "dns",
            Reason::Refused => "refused",
            Reason::Timeout => "timeout",
            Reason::AuthFailed => "auth_failed",
            Reason::NotFound => "not_found",
            Reason::NoVideoTrack => "no_video_track",
            Reason::NoFrames => "no_frames",
            Reason::Frozen => "frozen",
            Reason::PacketLoss => "packet_loss",
            Reason::BadData => "bad_data",
            Reason::Tls => "tls",
        }
    }
}

/// A word that is not one of the known states or reasons (reading the store or the API).
#[derive(Debug, thiserror::Error)]
#[error("`{word}` is not a known {what}; expected one of: {allowed}")]
pub struct UnknownWord {
    pub word: String,
    pub what: &'static str,
    pub allowed: String,
}

fn parse_word<T: Copy>(
    word: &str,
    what: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownWord> {
    all.iter().copied().find(|v| name(*v).eq_ignore_ascii_case(word)).ok_or_else(|| UnknownWord {
        word: word.to_owned(),
        what,
        allowed: all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", "),
    })
}

impl FromStr for State {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        parse_word(s, "camera state", &State::ALL, State::as_str)
    }
}

impl FromStr for Reason {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        parse_word(s, "reason", &Reason::ALL, Reason::as_str)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One heartbeat of one camera: what the store keeps and the API shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The camera's stable id (`Camera::stable_id`), which survives renames.
    pub camera_id: String,
    /// When the probe started (UTC).
    pub at: jiff::Timestamp,
    pub state: State,
    /// Why the state is not UP; `None` exactly when it is UP.
    pub reason: Option<Reason>,
    /// A sentence for people, credentials masked (`401 Unauthorized after DESCRIBE`).
    pub message: Option<String>,
    /// From the start of the probe to the first complete frame, in milliseconds.
    pub latency_ms: Option<u32>,
    /// `h264`, `h265`, `jpeg`, …
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// When the newest frame arrived (UTC), if any did.
    pub last_frame_at: Option<jiff::Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        let e = "sideways".parse::<State>().unwrap_err().to_string();
        assert_eq!(e, "`sideways` is not a known camera state; expected one of: UP, PENDING, DOWN, DEGRADED");
    }
}
