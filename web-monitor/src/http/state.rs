//! What the dashboard's handlers share: the handles of the domain parts they read.

use std::sync::Arc;

use ds_config::WebConfig;

use crate::history::History;
use crate::snapshot::StatusCache;
use crate::systemd_link::SystemdLink;
use crate::upstream::Streamer;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<WebConfig>,
    pub streamer: Streamer,
    /// systemd over D-Bus, or why it cannot be reached.
    pub systemd: SystemdLink,
    /// The status, sampled in the background.
    pub status: StatusCache,
    /// The last hour of the machine's figures.
    pub history: History,
    /// The camera monitor.
    pub cameras: super::cameras::Cameras,
    /// What the HTTP server did with its connections, for `/metrics`.
    pub served: Arc<ds_http::serve::Served>,
    /// The places for log searches and streams.
    pub logs: super::logs::LogPlaces,
}
