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
