//! What a heartbeat found: the camera's state, why it is not up, and the facts measured
//! on the way (latency to the first frame, codec, resolution). These are the words of the
//! API, the store, the page and the watchdog's camera alerts, so their spelling is a
//! contract: states in upper case (`UP`), reasons in snake case (`auth_failed`).

use serde::{Deserialize, Serialize};

pub use ds_wire::cameras::{Reason, State, UnknownWord};

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
    /// Whether the wall clock was synchronised when the heartbeat was recorded (systemd-timedated's
    /// `NTPSynchronized`): `false` marks a time that may be far off (a board without a
    /// real-time clock before NTP stepped it); `None` where that was not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_synchronized: Option<bool>,
}
