//! The camera monitor's API: `GET /api/cameras` ([`CameraList`]), `GET /api/cameras/{id}`
//! ([`CameraDetail`]) and the live part of `/api/cameras/events` ([`CameraLive`]). Written by
//! the dashboard, read by the watchdog's camera check, the CLI and the page.
//!
//! The state and reason words are the API's, the store's and the watchdog's alerts', so their
//! spelling is a contract: states in upper case (`UP`), reasons in snake case (`auth_failed`).

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
    /// Video arrives but something is wrong with it (frozen or black picture, packet loss).
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
    /// Frames arrive but the picture has been almost uniformly dark for longer than allowed
    /// (a covered lens, a failed infrared illuminator, a camera sending black).
    Black,
    /// What arrived is not valid video (broken JPEG, malformed RTP or SDP, …).
    BadData,
    /// The TLS handshake with an `https://` camera failed: its certificate is not trusted
    /// (self-signed, expired, for another host) or it speaks no TLS the prober accepts. The
    /// camera answered, so it is not `unreachable`; nothing was sent, so it is not
    /// `auth_failed`; and the fix (`verify_tls: false`, or a proper certificate) is its own.
    Tls,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
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
        Reason::Black,
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
            Reason::Black => "black",
            Reason::BadData => "bad_data",
            Reason::Tls => "tls",
        }
    }
}

/// A word that is not one of the known states or reasons (reading the store or the API).
#[derive(Debug)]
pub struct UnknownWord {
    pub word: String,
    pub what: &'static str,
    pub allowed: String,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a known {}; expected one of: {}", self.word, self.what, self.allowed)
    }
}

impl std::error::Error for UnknownWord {}

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

/// The camera file could not be used; the previous list is still running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProblem {
    /// Every problem, as `file:line:col: key = value: what is allowed` (secrets masked).
    pub messages: Vec<String>,
    pub noticed_at: jiff::Timestamp,
}

/// `GET /api/cameras`: the list's settings and every camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraList {
    pub heartbeat_seconds: u32,
    /// The IANA zone times are shown in (they are sent in UTC).
    pub timezone: String,
    pub verify_tls: bool,
    /// Why the file on disk is not what runs, if it is not.
    #[serde(default)]
    pub file_problem: Option<FileProblem>,
    /// Why there are no uptime figures (the database cannot be read).
    #[serde(default)]
    pub history_problem: Option<String>,
    /// Set while thumbnails refresh less often than the heartbeat because decoding cannot
    /// keep up with every heartbeat of the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnails_behind: Option<ThumbnailsBehind>,
    pub cameras: Vec<CameraEntry>,
}

/// Thumbnails refresh less often than the heartbeat: the decoder could not keep up with every
/// heartbeat of the last `window_seconds`, and heartbeats went without a decoded picture
/// (their liveness verdict was not delayed; only the picture and its verdicts were left out).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThumbnailsBehind {
    /// About how often a camera's thumbnail refreshes, in seconds (at most the window).
    pub refresh_seconds: u32,
    /// The cameras whose pictures are decoded, among which the decoder shares its time.
    pub cameras: u32,
    /// Heartbeats of the window whose pictures were decoded …
    pub decoded: u32,
    /// … and those that went without, the decoding queue being full.
    pub skipped: u32,
    pub window_seconds: u32,
    /// The share of one core the decoder may spend (`picture_cpu_percent` in the camera
    /// list): raising it lets thumbnails keep up, at that cost in CPU.
    pub picture_cpu_percent: f64,
}

/// What became of the pictures of a camera's heartbeats over the last `window_seconds`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureCounts {
    pub window_seconds: u32,
    /// Heartbeats whose pictures were decoded (the thumbnail was refreshed).
    pub decoded: u32,
    /// Heartbeats whose pictures were not decoded: the decoding queue was full.
    pub skipped: u32,
}

/// One camera in the list: its configuration (URL masked), its live part, its uptime and the
/// last hour's heartbeat bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraEntry {
    #[serde(flatten)]
    pub config: CameraConfig,
    #[serde(flatten)]
    pub live: CameraLive,
    /// The camera's newest thumbnail (`GET /api/cameras/{id}/thumbnail.jpg`); kept on disk, so
    /// a restarted service has it before the camera's first heartbeat. `None` when there is none.
    #[serde(default)]
    pub thumbnail: Option<ThumbnailInfo>,
    pub uptime: UptimeSummary,
    #[serde(default)]
    pub bar: Vec<BarBucket>,
}

/// `GET /api/cameras/{id}`: the list's entry, the list's time zone, and the time spent in each
/// state per window (the camera database's figures, as it writes them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraDetail {
    #[serde(flatten)]
    pub camera: CameraEntry,
    pub timezone: String,
    pub uptime_detail: Option<serde_json::Value>,
}

/// A camera's configuration as the API shows it: credentials masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraConfig {
    /// Stable across renames.
    pub id: String,
    pub name: String,
    /// The URL with its password masked.
    pub url: String,
    /// The heartbeat in force: the camera's own, else the list's.
    pub heartbeat_seconds: u32,
    /// The camera's own heartbeat, if it has one.
    pub heartbeat_override: Option<u32>,
    pub verify_tls: bool,
    pub verify_tls_override: Option<bool>,
    /// Seconds an unchanged picture may last before the camera is DEGRADED/frozen (0: never),
    /// in force: the camera's own, else the list's.
    #[serde(default)]
    pub frozen_seconds: u32,
    /// The camera's own `frozen_seconds`, if it has one.
    #[serde(default)]
    pub frozen_override: Option<u32>,
    /// Seconds an almost uniformly dark picture may last before the camera is DEGRADED/black
    /// (0: never), in force.
    #[serde(default)]
    pub black_seconds: u32,
    /// The camera's own `black_seconds`, if it has one.
    #[serde(default)]
    pub black_override: Option<u32>,
    /// RTP packets one probe may find lost before the camera is DEGRADED/packet_loss, in force.
    #[serde(default)]
    pub max_packets_lost: u32,
    /// The camera's own `max_packets_lost`, if it has one.
    #[serde(default)]
    pub max_packets_lost_override: Option<u32>,
}

/// The live part of a camera: before the first heartbeat only `state: null` and a message;
/// after it, the state and what the probe measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CameraLive {
    Probed(Probed),
    Waiting(Waiting),
}

/// No heartbeat yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Always `null`.
    pub state: (),
    /// `waiting for the first heartbeat`.
    pub message: String,
}

impl Waiting {
    pub const MESSAGE: &str = "waiting for the first heartbeat";
}

/// The state after the newest heartbeat and what it measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probed {
    pub state: State,
    /// Why the state is not UP; `None` exactly when it is UP.
    pub reason: Option<Reason>,
    /// A sentence for people, credentials masked.
    pub message: Option<String>,
    /// When the current state (and reason) began (RFC 3339, UTC).
    pub since: Option<jiff::Timestamp>,
    /// How long the current state has lasted, on the service's monotonic clock (right whatever
    /// a wall clock did; a state carried over a restart of the service counts what it had
    /// lasted by the earlier run's newest stored heartbeat, not the time the service was down).
    /// What ages and grace periods should use, not `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_age_seconds: Option<f64>,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    pub last_heartbeat_at: Option<jiff::Timestamp>,
    /// From the start of the probe to the first complete frame, in milliseconds.
    pub latency_ms: Option<u32>,
    /// `h264`, `h265`, `jpeg`, …
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// When the newest frame of any heartbeat arrived (kept while the camera is down).
    pub last_frame_at: Option<jiff::Timestamp>,
    /// How long ago that frame arrived, on the service's monotonic clock (right whatever a wall
    /// clock did); absent before the first frame since the service started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame_age_seconds: Option<f64>,
    /// RTP packets missing in the last successful RTSP probe; `None` before one.
    pub packets_lost: Option<u32>,
    /// How many heartbeats of the last minutes brought a decoded picture, and how many went
    /// without for the decoding budget; absent when pictures are not decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pictures: Option<PictureCounts>,
}

impl CameraLive {
    /// The state, `None` before the first heartbeat.
    pub fn state(&self) -> Option<State> {
        match self {
            CameraLive::Probed(p) => Some(p.state),
            CameraLive::Waiting(_) => None,
        }
    }

    /// What the probes measured, `None` before the first heartbeat.
    pub fn probed(&self) -> Option<&Probed> {
        match self {
            CameraLive::Probed(p) => Some(p),
            CameraLive::Waiting(_) => None,
        }
    }

    /// The sentence shown beside the state.
    pub fn message(&self) -> Option<&str> {
        match self {
            CameraLive::Probed(p) => p.message.as_deref(),
            CameraLive::Waiting(w) => Some(&w.message),
        }
    }
}

/// A camera's thumbnail: when the probe that brought it started, and its size. Its address
/// is `/api/cameras/{id}/thumbnail.jpg`; `taken_at` changes with every new picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailInfo {
    pub taken_at: jiff::Timestamp,
    pub width: u32,
    pub height: u32,
}

/// A live update on `/api/cameras/events` (event `camera`): the live part and the camera's id,
/// and its thumbnail when it has one (absent otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraEvent {
    #[serde(flatten)]
    pub live: CameraLive,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<ThumbnailInfo>,
}

/// Percent of known time in which video arrived (UP or DEGRADED), per window; `None` when
/// nothing is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UptimeSummary {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

/// One slice of the heartbeat bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarBucket {
    pub start: jiff::Timestamp,
    /// The worst state with any time in the slice; `None` when nothing is known.
    pub worst: Option<State>,
}

/// `GET /api/streampulse/status`: StreamPulse's `{name: {ts, status, latency, message}}` for
/// integrations written against it, in the list's order, with `state` and `reason` added once
/// a camera has had a heartbeat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamPulseStatus(pub Vec<(String, StreamPulseEntry)>);

/// One camera in StreamPulse's map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamPulseEntry {
    /// The newest heartbeat's time in the list's zone, as StreamPulse wrote it; empty before one.
    pub ts: String,
    /// `ok` when the camera is UP, `fail` otherwise; empty before the first heartbeat.
    pub status: String,
    /// Milliseconds to the first frame.
    pub latency: Option<u32>,
    pub message: String,
    #[serde(flatten, default)]
    pub state: Option<StreamPulseState>,
}

/// What this monitor adds to StreamPulse's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPulseState {
    pub state: State,
    pub reason: Option<Reason>,
}

impl Serialize for StreamPulseStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, entry) in &self.0 {
            map.serialize_entry(name, entry)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StreamPulseStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = StreamPulseStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of camera names to StreamPulse entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StreamPulseStatus, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(StreamPulseStatus(out))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}
