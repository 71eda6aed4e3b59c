//! The dashboard's status document: `GET /api/status` of desktop-streamer-web, and each
//! `status` event of `/api/events`. The seed's shape (service, stream, health, system) with the
//! streamer's parts embedded as the streamer wrote them, plus every watched unit, the GPUs'
//! memory, what could not be reached, and when it was sampled. Read by the CLI and the page.

use serde::{Deserialize, Serialize};

use crate::health::{HealthReport, ServiceReport, StreamReport};
use crate::system::{ClockSync, SystemSample, VramUse};

/// `GET /api/status` of the dashboard. A part that could not be had is `null` and named in
/// `unreachable`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardStatus {
    /// The streamer's unit as systemd reports it, else as the streamer reports itself.
    pub service: Option<ServiceReport>,
    pub stream: Option<StreamReport>,
    pub health: Option<HealthReport>,
    /// The machine as the dashboard measures it (so it stays visible while the streamer is
    /// down).
    pub system: Option<SystemSample>,
    #[serde(default)]
    pub gpu: Vec<VramUse>,
    /// Whether the wall clock is synchronised (systemd-timedated); absent from dashboards
    /// older than this field.
    #[serde(default)]
    pub clock: Option<ClockSync>,
    /// Every watched unit, as systemd reports it.
    #[serde(default)]
    pub services: Vec<UnitStatus>,
    #[serde(default)]
    pub unreachable: Vec<Unreachable>,
    pub sampled_at: jiff::Timestamp,
}

/// A part of the status that could not be asked, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// `streamer` or `systemd`.
    pub part: String,
    pub error: String,
}

/// What systemd reports about one unit. The service fields stay empty or zero for units that
/// are not services; a reader takes a missing field as empty or zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitStatus {
    pub name: String,
    /// `loaded`, `not-found`, `masked`, `error`, …
    pub load_state: String,
    /// `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`, …
    pub active_state: String,
    /// The type-specific state, such as `running`, `dead`, `failed` or `auto-restart`.
    pub sub_state: String,
    /// Why the service last stopped: `success`, `exit-code`, `signal`, `core-dump`, `timeout`,
    /// `watchdog`, `start-limit-hit`, …
    pub result: String,
    /// Automatic restarts by systemd (`Restart=`) since the unit was last started by hand.
    pub n_restarts: u32,
    /// 1 exited, 2 killed, 3 dumped core; 0 before the first exit.
    pub exec_main_code: i32,
    /// The main process's exit status, or its signal number when killed.
    pub exec_main_status: i32,
    /// 0 when no main process runs.
    pub main_pid: u32,
    /// Hex; changes with every start that actually ran.
    pub invocation_id: String,
    /// systemd refuses to start the unit until its start limit interval has passed.
    pub start_limit_hit: bool,
    /// A job (start, stop, restart) is queued for the unit.
    pub job_pending: bool,
    pub start_limit: StartLimit,
}

/// A unit's start limit: at most `burst` starts within `interval_s` seconds; 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLimit {
    pub burst: u32,
    pub interval_s: u64,
}

/// The reply to the dashboard's unit actions (`POST /api/service/{action}`): the unit's state
/// after the action, or a message when there is none to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UnitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
