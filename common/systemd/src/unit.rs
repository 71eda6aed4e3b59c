//! What systemd says about a unit ([`UnitState`] and its parts), and what was being done to
//! one ([`Action`]) when systemd said no.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// systemd's high-level state of a unit (`ActiveState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Maintenance,
    Refreshing,
    /// A state newer systemd versions may add.
    Other(String),
}

impl ActiveState {
    pub fn as_str(&self) -> &str {
        match self {
            ActiveState::Active => "active",
            ActiveState::Reloading => "reloading",
            ActiveState::Inactive => "inactive",
            ActiveState::Failed => "failed",
            ActiveState::Activating => "activating",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Maintenance => "maintenance",
            ActiveState::Refreshing => "refreshing",
            ActiveState::Other(s) => s,
        }
    }
}

impl From<String> for ActiveState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "active" => ActiveState::Active,
            "reloading" => ActiveState::Reloading,
            "inactive" => ActiveState::Inactive,
            "failed" => ActiveState::Failed,
            "activating" => ActiveState::Activating,
            "deactivating" => ActiveState::Deactivating,
            "maintenance" => ActiveState::Maintenance,
            "refreshing" => ActiveState::Refreshing,
            _ => ActiveState::Other(s),
        }
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ActiveState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What systemd reports about one unit. The service fields stay empty or zero for units that
/// are not services.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub name: String,
    /// `loaded`, `not-found`, `masked`, `error`, …
    pub load_state: String,
    pub active_state: ActiveState,
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
    /// systemd refuses to start the unit until its start limit interval has passed (or
    /// `systemctl reset-failed`): do not try.
    pub start_limit_hit: bool,
    /// A job (start, stop, restart) is queued for the unit: an inactive unit with one is on
    /// its way somewhere, such as between the stop and the start of a restart.
    pub job_pending: bool,
    /// systemd refuses a start once the unit was started `burst` times within `interval`
    /// (StartLimitBurst, StartLimitIntervalUSec); an interval or burst of 0 means no limit.
    pub start_limit: StartLimit,
}

/// A unit's start limit: at most `burst` starts within `interval`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartLimit {
    pub burst: u32,
    #[serde(rename = "interval_s", serialize_with = "serialize_seconds")]
    pub interval: Duration,
}

impl StartLimit {
    /// Whether systemd limits starts at all.
    pub fn applies(&self) -> bool {
        self.burst > 0 && !self.interval.is_zero()
    }
}

fn serialize_seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The unit as the dashboard's status document and its unit actions show it.
impl From<&UnitState> for ds_wire::status::UnitStatus {
    fn from(u: &UnitState) -> Self {
        ds_wire::status::UnitStatus {
            name: u.name.clone(),
            load_state: u.load_state.clone(),
            active_state: u.active_state.as_str().to_owned(),
            sub_state: u.sub_state.clone(),
            result: u.result.clone(),
            n_restarts: u.n_restarts,
            exec_main_code: u.exec_main_code,
            exec_main_status: u.exec_main_status,
            main_pid: u.main_pid,
            invocation_id: u.invocation_id.clone(),
            start_limit_hit: u.start_limit_hit,
            job_pending: u.job_pending,
            start_limit: ds_wire::status::StartLimit {
                burst: u.start_limit.burst,
                interval_s: u.start_limit.interval.as_secs(),
            },
        }
    }
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        self.active_state == ActiveState::Active
    }

    /// Down: failed or inactive, without a job (a start, a restart) on its way.
    pub fn is_down(&self) -> bool {
        matches!(self.active_state, ActiveState::Failed | ActiveState::Inactive) && !self.job_pending
    }

    /// The main process's end, in words: "exited with status 1", "killed by signal 9".
    pub fn exit_description(&self) -> Option<String> {
        match self.exec_main_code {
            1 => Some(format!("exited with status {}", self.exec_main_status)),
            2 => Some(format!("killed by signal {}", self.exec_main_status)),
            3 => Some(format!("dumped core on signal {}", self.exec_main_status)),
            _ => None,
        }
    }
}

/// What the watchdog was doing when systemd said no; it names the polkit verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Watch,
    Start,
    Stop,
    Restart,
    Signal,
}

impl Action {
    /// The verb as polkit's rule and the control helper name it.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Watch => "watch",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Signal => "signal",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dashboard's status document and the CLI show a unit as `ds_wire::status::UnitStatus`;
    /// it is written exactly as this crate's own serialization of the state was.
    #[test]
    fn the_wire_unit_status_is_written_as_the_unit_state() {
        let state = UnitState {
            name: "desktop-streamer.service".into(),
            load_state: "loaded".into(),
            active_state: ActiveState::Other("upgrading".into()),
            sub_state: "running".into(),
            result: "exit-code".into(),
            n_restarts: 3,
            exec_main_code: 1,
            exec_main_status: 2,
            main_pid: 77,
            invocation_id: "ab12".into(),
            start_limit_hit: true,
            job_pending: true,
            start_limit: StartLimit { burst: 5, interval: Duration::from_secs(10) },
        };
        let wire = ds_wire::status::UnitStatus::from(&state);
        assert_eq!(serde_json::to_string(&wire).unwrap(), serde_json::to_string(&state).unwrap());
    }
}
