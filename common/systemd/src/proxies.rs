//! The D-Bus proxies of the systemd objects this crate talks to, for just the calls and
//! properties it uses, and the reading of one unit's state from them.

use std::time::Duration;

use zbus::zvariant::OwnedObjectPath;

use crate::unit::{ActiveState, StartLimit, UnitState};

/// systemd's well-known name on the bus.
pub(crate) const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
pub trait Manager {
    /// Loads the unit if needed (a unit not in memory is not an error) and returns its object.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    /// Asks systemd to send signals to this connection until it closes.
    fn subscribe(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: zbus::zvariant::ObjectPath<'_>, unit: &str, result: &str) -> zbus::Result<()>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
pub trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    /// 16 random bytes, new for every start that actually runs.
    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> zbus::Result<Vec<u8>>;
    /// The job queued for the unit: (id, path); id 0 when there is none.
    #[zbus(property)]
    fn job(&self) -> zbus::Result<(u32, OwnedObjectPath)>;
    #[zbus(property)]
    fn start_limit_burst(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "StartLimitIntervalUSec")]
    fn start_limit_interval_usec(&self) -> zbus::Result<u64>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
pub trait Service {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    /// Automatic restarts only (`Restart=`), not those asked for over D-Bus.
    #[zbus(property)]
    fn n_restarts(&self) -> zbus::Result<u32>;
    /// `CLD_EXITED` (1), `CLD_KILLED` (2) or `CLD_DUMPED` (3); 0 before the first exit.
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
    /// The exit status, or the signal number when killed.
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
}

/// The proxies of one unit's objects.
#[derive(Debug)]
pub(crate) struct UnitProxies {
    pub(crate) name: String,
    pub(crate) unit: UnitProxy<'static>,
    pub(crate) service: Option<ServiceProxy<'static>>,
}

impl UnitProxies {
    /// Reads the state; from the cache when the proxies cache properties.
    pub(crate) async fn state(&self) -> zbus::Result<UnitState> {
        let unit = &self.unit;
        let result = match &self.service {
            Some(s) => s.result().await?,
            None => String::new(),
        };
        let service = match &self.service {
            Some(s) => {
                (s.n_restarts().await?, s.exec_main_code().await?, s.exec_main_status().await?, s.main_pid().await?)
            }
            None => (0, 0, 0, 0),
        };
        let invocation_id = hex(&unit.invocation_id().await?);
        let start_limit = StartLimit {
            burst: unit.start_limit_burst().await?,
            interval: Duration::from_micros(unit.start_limit_interval_usec().await?),
        };
        Ok(UnitState {
            name: self.name.clone(),
            load_state: unit.load_state().await?,
            active_state: ActiveState::from(unit.active_state().await?),
            sub_state: unit.sub_state().await?,
            start_limit_hit: result == "start-limit-hit",
            result,
            n_restarts: service.0,
            exec_main_code: service.1,
            exec_main_status: service.2,
            main_pid: service.3,
            invocation_id,
            job_pending: unit.job().await?.0 != 0,
            start_limit,
        })
    }
}

/// An InvocationID as text.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
