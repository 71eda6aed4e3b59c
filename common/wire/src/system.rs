//! The machine as a service measures it: the `system` part of the streamer's detailed health
//! and of the dashboard's status document.

use serde::{Deserialize, Serialize};

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSample {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub process_memory_mb: f64,
    /// Use of the filesystem holding the output directory, `None` if it cannot be read.
    pub disk_usage_percent: Option<f64>,
}

/// One GPU's video memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VramUse {
    pub card: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

impl VramUse {
    pub fn percent(&self) -> f64 {
        if self.total_bytes == 0 { 0.0 } else { self.used_bytes as f64 / self.total_bytes as f64 * 100.0 }
    }
}

/// Whether the machine's wall clock is synchronised, as systemd-timedated tells it
/// (`org.freedesktop.timedate1` on the system bus). Boards without a real-time clock start at
/// an old date until a time service steps the clock: times stamped before that are not to be
/// trusted, and the dashboard and the camera history say so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSync {
    /// `NTPSynchronized`: the kernel's clock is kept by a time service (systemd-timesyncd,
    /// chrony, ntpd). `None` when systemd-timedated cannot be asked.
    pub synchronized: Option<bool>,
    /// `NTP`: a network time service is enabled. `None` when unknown.
    pub ntp_enabled: Option<bool>,
    /// Why the state is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClockSync {
    /// The state when systemd-timedated cannot be asked, and why.
    pub fn unknown(error: impl Into<String>) -> ClockSync {
        ClockSync { synchronized: None, ntp_enabled: None, error: Some(error.into()) }
    }
}
