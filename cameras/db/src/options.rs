//! How a [`Store`](crate::Store) is opened: the heartbeat interval assumed for cameras
//! registered without one, and how long history is kept ([`Retention`], which the roll-up and
//! pruning in `retention` apply).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Heartbeat interval assumed for a camera the store has no interval for (StreamPulse's
/// default `heartbeat_seconds`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// How the store is opened.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interval assumed for cameras registered without one. Default 30 s.
    pub default_heartbeat: Duration,
    /// How long raw heartbeats and roll-ups are kept. Default 7 days and 365 days.
    pub retention: Retention,
}

impl Default for Options {
    fn default() -> Self {
        Options { default_heartbeat: DEFAULT_HEARTBEAT, retention: Retention::default() }
    }
}

/// How long history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Days raw heartbeats are kept. Default 7.
    pub raw_days: u32,
    /// Days hourly roll-ups (and state changes) are kept. Default 365.
    pub rollup_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { raw_days: 7, rollup_days: 365 }
    }
}
