//! systemd over D-Bus: the state of the watched units, changes to it as systemd signals them,
//! and restarts.
//!
//! The watchdog this crate replaces ran `systemctl` every 30 s and read a property systemd does
//! not have (`RestartCount`). Here every state comes from systemd's own D-Bus objects: the
//! `org.freedesktop.systemd1.Unit` and `.Service` properties, which systemd announces with
//! `PropertiesChanged` (every property watched here is `emits-change`, values included) once
//! some client on the bus called `Manager.Subscribe`, and not at all before. A unit that fails is
//! therefore seen within milliseconds (about 25 ms in the tests, 20 of them the coalescing
//! below).
//!
//! Two facts of systemd shape this module:
//! - `NRestarts` counts only systemd's own automatic restarts (`Restart=`); restarts asked for
//!   over D-Bus leave it unchanged. A new `MainPID` and `InvocationID` show those.
//! - `Result` becomes `start-limit-hit` only when the unit's previous result was `success`. A
//!   unit that crashed (`signal`, `exit-code`) and is then refused by the start limit keeps its
//!   old result; the only trace is a start job that fails without a new invocation. [`Job::wait`]
//!   checks for exactly that and reports [`SystemdError::StartLimitHit`].

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use serde::{Serialize, Serializer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;
use zbus::{Connection, DBusError as _};

/// The D-Bus bus on which the systemd manager is asked: the machine's (`System`, the
/// services' units) or the calling user's (`Session`, a user manager's units, as the tests run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    System,
    Session,
}

/// systemd's well-known name on the bus.
const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
/// Job mode for starts and restarts: replace any queued job of the unit, as `systemctl` does.
const JOB_MODE: &str = "replace";
/// How long the watch waits after a first change for the rest of the same transition: systemd
/// sends the Unit and the Service properties of one transition as two signals.
const COALESCE: Duration = Duration::from_millis(20);
/// Changes buffered for a slow reader before the watch waits for it.
const WATCH_CHANNEL_CAPACITY: usize = 64;

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_MASKED: &str = "org.freedesktop.systemd1.UnitMasked";
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const INTERACTIVE_AUTH: &str = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

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
    fn verb(self) -> &'static str {
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

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot connect to the {bus}: {source}; is dbus running{}?", session_hint(.bus))]
    Connect { bus: String, source: Box<zbus::Error> },
    #[error("systemd does not answer on the {bus} ({message}); is systemd the init system{}?", user_hint(.bus))]
    NoSystemd { bus: String, message: String },
    #[error(
        "systemd on the {bus} has no unit {unit}: no unit file found; check the name, or install \
         the unit file and run `systemctl daemon-reload`"
    )]
    NoSuchUnit { unit: String, bus: String },
    #[error("cannot {action} {unit} on the {bus}: the unit is masked; `systemctl unmask {unit}` first")]
    Masked { unit: String, bus: String, action: Action },
    #[error(
        "not allowed to {action} {unit} on the {bus}: {message}; run {client} as root, or add a \
         polkit rule that grants its user org.freedesktop.systemd1.manage-units for unit {unit} \
         (verb \"{action}\")"
    )]
    AccessDenied {
        unit: String,
        bus: String,
        action: Action,
        message: String,
        /// The program that was refused (the watchdog or the dashboard), which the fix is for.
        client: String,
    },
    #[error(
        "systemd on the {bus} refused to start {unit}: its start limit was hit ({burst} starts \
         within {interval_s} s); holding back until that interval has passed, or run \
         `systemctl reset-failed {unit}`"
    )]
    StartLimitHit { unit: String, bus: String, burst: u32, interval_s: u64 },
    #[error("systemd on the {bus} could not {action} {unit}: job result {result}; see `journalctl -u {unit}`")]
    JobFailed { unit: String, bus: String, action: Action, result: String },
    #[error("cannot {action} {unit} on the {bus}: {source}")]
    Call { unit: String, bus: String, action: Action, source: Box<zbus::Error> },
    #[error("lost systemd on the {bus}: {reason}")]
    Lost { bus: String, reason: String },
}

impl SystemdError {
    /// Whether the error says the connection itself is gone or unusable (connect again), as
    /// opposed to systemd answering about one unit (no such unit, refused, a failed job).
    pub fn is_connection_trouble(&self) -> bool {
        match self {
            SystemdError::Connect { .. } | SystemdError::NoSystemd { .. } | SystemdError::Lost { .. } => true,
            SystemdError::Call { source, .. } => dbus_error(source).is_none(),
            _ => false,
        }
    }
}

fn session_hint(bus: &str) -> &'static str {
    if bus.starts_with("session") { " and DBUS_SESSION_BUS_ADDRESS set" } else { "" }
}

fn user_hint(bus: &str) -> &'static str {
    if bus.starts_with("system") { "" } else { ", and a user manager (systemd --user) running" }
}

/// The D-Bus error name and message of a failed call, if the peer answered with an error.
fn dbus_error(e: &zbus::Error) -> Option<(String, String)> {
    match e {
        zbus::Error::MethodError(name, message, _) => Some((name.to_string(), message.clone().unwrap_or_default())),
        zbus::Error::FDO(fdo) => Some((fdo.name().to_string(), fdo.description().unwrap_or_default().to_owned())),
        _ => None,
    }
}

/// A connection to systemd on one bus. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Systemd {
    connection: Connection,
    manager: ManagerProxy<'static>,
    /// "system bus", "session bus" or "bus at ADDRESS", for messages.
    bus: String,
    version: String,
}

impl Systemd {
    /// Connects to systemd on the system bus, or on the session bus (`DBUS_SESSION_BUS_ADDRESS`)
    /// for a user manager, and subscribes to its signals.
    pub async fn connect(bus: Bus) -> Result<Systemd, SystemdError> {
        let (label, connection) = match bus {
            Bus::System => ("system bus", Connection::system().await),
            Bus::Session => ("session bus", Connection::session().await),
        };
        let connection =
            connection.map_err(|source| SystemdError::Connect { bus: label.to_owned(), source: Box::new(source) })?;
        Systemd::on(connection, label.to_owned()).await
    }

    /// Connects to systemd on the bus at a D-Bus address such as `unix:path=/run/user/0/bus`.
    pub async fn connect_address(address: &str) -> Result<Systemd, SystemdError> {
        let label = format!("bus at {address}");
        let connect = async { zbus::connection::Builder::address(address)?.build().await };
        let connection =
            connect.await.map_err(|source| SystemdError::Connect { bus: label.clone(), source: Box::new(source) })?;
        Systemd::on(connection, label).await
    }

    async fn on(connection: Connection, bus: String) -> Result<Systemd, SystemdError> {
        let lost = |e: zbus::Error| match dbus_error(&e) {
            Some((name, message)) if name == SERVICE_UNKNOWN || name == NAME_HAS_NO_OWNER => {
                SystemdError::NoSystemd { bus: bus.clone(), message }
            }
            _ => SystemdError::Call {
                unit: "the manager".to_owned(),
                bus: bus.clone(),
                action: Action::Read,
                source: Box::new(e),
            },
        };
        let manager =
            ManagerProxy::builder(&connection).cache_properties(CacheProperties::No).build().await.map_err(&lost)?;
        // Without a subscriber systemd sends no PropertiesChanged or JobRemoved signals at all.
        // The subscription lives as long as this connection.
        match manager.subscribe().await {
            Ok(()) => {}
            Err(e) if dbus_error(&e).is_some_and(|(name, _)| name == ALREADY_SUBSCRIBED) => {}
            Err(e) => return Err(lost(e)),
        }
        let version = manager.version().await.map_err(&lost)?;
        Ok(Systemd { connection, manager, bus, version })
    }

    /// systemd's version string, such as `252.39-1~deb12u2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Which bus this connection uses, as messages name it.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// The current state of `unit`. A unit systemd has no file for is [`SystemdError::NoSuchUnit`].
    pub async fn unit(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let proxies = self.proxies(unit, Action::Read, CacheProperties::No).await?;
        proxies.state().await.map_err(|e| self.error(unit, Action::Read, e))
    }

    /// Asks systemd to restart `unit` (mode "replace"). The returned [`Job`] tells how it ended.
    pub async fn restart(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Restart).await
    }

    /// Asks systemd to start `unit` (mode "replace"); a no-op job if it is already active.
    pub async fn start(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Start).await
    }

    /// Sends `signal` to the unit's main process (systemd's KillUnit with `main`): how the
    /// dashboard asks the streamer to rebuild its pipeline (SIGUSR1) or clean up (SIGUSR2)
    /// without an HTTP endpoint of its own that anyone could call.
    pub async fn signal(&self, unit: &str, signal: i32) -> Result<(), SystemdError> {
        self.proxies(unit, Action::Signal, CacheProperties::No).await?;
        self.manager.kill_unit(unit, "main", signal).await.map_err(|e| self.error(unit, Action::Signal, e))
    }

    /// Asks systemd to stop `unit` (mode `replace`).
    pub async fn stop(&self, unit: &str) -> Result<Job, SystemdError> {
        self.enqueue(unit, Action::Stop).await
    }

    async fn enqueue(&self, unit: &str, action: Action) -> Result<Job, SystemdError> {
        let proxies = self.proxies(unit, action, CacheProperties::No).await?;
        let before = hex(&proxies.unit.invocation_id().await.map_err(|e| self.error(unit, action, e))?);
        // Listen before asking, so a job that ends at once is not missed.
        let removed = self.manager.receive_job_removed().await.map_err(|e| self.error(unit, action, e))?;
        let job = match action {
            Action::Start => self.manager.start_unit(unit, JOB_MODE).await,
            Action::Stop => self.manager.stop_unit(unit, JOB_MODE).await,
            _ => self.manager.restart_unit(unit, JOB_MODE).await,
        }
        .map_err(|e| self.error(unit, action, e))?;
        tracing::debug!(unit, job = %job.as_str(), %action, "systemd job queued");
        Ok(Job { systemd: self.clone(), unit: unit.to_owned(), action, path: job, invocation_before: before, removed })
    }

    /// Watches `units`: first sends the state of each, then every change of it, within
    /// milliseconds of systemd's signal. Fails at once if one of them does not exist.
    pub async fn watch(&self, units: &[String]) -> Result<UnitWatch, SystemdError> {
        let mut watched = Vec::with_capacity(units.len());
        let mut streams: Vec<BoxStream<'static, usize>> = Vec::new();
        for (i, name) in units.iter().enumerate() {
            let proxies = self.proxies(name, Action::Watch, CacheProperties::Yes).await?;
            let unit = &proxies.unit;
            streams.push(unit.receive_active_state_changed().await.map(move |_| i).boxed());
            streams.push(unit.receive_sub_state_changed().await.map(move |_| i).boxed());
            if let Some(service) = &proxies.service {
                streams.push(service.receive_result_changed().await.map(move |_| i).boxed());
                streams.push(service.receive_n_restarts_changed().await.map(move |_| i).boxed());
                streams.push(service.receive_exec_main_status_changed().await.map(move |_| i).boxed());
                streams.push(service.receive_main_pid_changed().await.map(move |_| i).boxed());
            }
            watched.push(proxies);
        }
        let dbus = zbus::fdo::DBusProxy::new(&self.connection)
            .await
            .map_err(|e| self.error("the manager", Action::Watch, e))?;
        // Ends when the connection closes; says when systemd leaves or re-executes.
        let owner_changes = dbus
            .receive_name_owner_changed_with_args(&[(0, SYSTEMD_SERVICE)])
            .await
            .map_err(|e| self.error("the manager", Action::Watch, e))?;

        let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY.max(units.len() * 2));
        let mut last = Vec::with_capacity(watched.len());
        for proxies in &watched {
            let state = proxies.state().await.map_err(|e| self.error(&proxies.name, Action::Watch, e))?;
            // Cannot fail: the receiver is still here and the capacity covers every unit.
            let _ = tx.try_send(Ok(state.clone()));
            last.push(state);
        }
        let bus = self.bus.clone();
        let events = stream::select_all(streams);
        let task = tokio::spawn(watch_loop(watched, last, events, owner_changes, tx, bus));
        Ok(UnitWatch { rx, task })
    }

    async fn proxies(&self, unit: &str, action: Action, cache: CacheProperties) -> Result<UnitProxies, SystemdError> {
        let connection = &self.connection;
        let unit_object = async {
            let path = self.manager.load_unit(unit).await?;
            let proxy = UnitProxy::builder(connection).path(path.clone())?.cache_properties(cache).build().await?;
            let load_state = proxy.load_state().await?;
            zbus::Result::Ok((path, proxy, load_state))
        };
        let (path, unit_proxy, load_state) = unit_object.await.map_err(|e| self.error(unit, action, e))?;
        // LoadUnit answers for any name; a unit without a file is "not-found", not an error.
        if load_state == "not-found" {
            return Err(SystemdError::NoSuchUnit { unit: unit.to_owned(), bus: self.bus.clone() });
        }
        let service = if unit.ends_with(".service") {
            let build = async { ServiceProxy::builder(connection).path(path)?.cache_properties(cache).build().await };
            Some(build.await.map_err(|e| self.error(unit, action, e))?)
        } else {
            None
        };
        Ok(UnitProxies { name: unit.to_owned(), unit: unit_proxy, service })
    }

    fn error(&self, unit: &str, action: Action, source: zbus::Error) -> SystemdError {
        classify(&self.bus, unit, action, source)
    }
}

fn classify(bus: &str, unit: &str, action: Action, source: zbus::Error) -> SystemdError {
    let (unit, bus) = (unit.to_owned(), bus.to_owned());
    match dbus_error(&source) {
        Some((name, _)) if name == NO_SUCH_UNIT => SystemdError::NoSuchUnit { unit, bus },
        Some((name, _)) if name == UNIT_MASKED => SystemdError::Masked { unit, bus, action },
        Some((name, message)) if name == ACCESS_DENIED || name == INTERACTIVE_AUTH => {
            SystemdError::AccessDenied { unit, bus, action, message, client: client_name() }
        }
        Some((name, message)) if name == SERVICE_UNKNOWN || name == NAME_HAS_NO_OWNER => {
            SystemdError::NoSystemd { bus, message }
        }
        _ => SystemdError::Call { unit, bus, action, source: Box::new(source) },
    }
}

/// This program's name (`desktop-streamer-watchdog`, `desktop-streamer-web`), for messages
/// that tell the operator what to change for it.
fn client_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "this service".to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The proxies of one unit's objects.
#[derive(Debug)]
struct UnitProxies {
    name: String,
    unit: UnitProxy<'static>,
    service: Option<ServiceProxy<'static>>,
}

impl UnitProxies {
    /// Reads the state; from the cache when the proxies cache properties.
    async fn state(&self) -> zbus::Result<UnitState> {
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

/// A start or restart systemd has queued.
#[derive(Debug)]
pub struct Job {
    systemd: Systemd,
    unit: String,
    action: Action,
    path: OwnedObjectPath,
    /// The unit's InvocationID (hex) before the job was queued.
    invocation_before: String,
    removed: JobRemovedStream,
}

impl Job {
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Waits until systemd finished the job and returns the unit's state then. A job that did
    /// not complete is [`SystemdError::JobFailed`], or [`SystemdError::StartLimitHit`] when
    /// systemd refused to start the unit at all. Not bounded in time: a `Type=notify` unit may
    /// take up to its `TimeoutStartSec`; wrap it in `tokio::time::timeout`.
    pub async fn wait(mut self) -> Result<UnitState, SystemdError> {
        let (systemd, unit, action) = (self.systemd.clone(), self.unit.clone(), self.action);
        let result = loop {
            let Some(signal) = self.removed.next().await else {
                return Err(SystemdError::Lost {
                    bus: systemd.bus.clone(),
                    reason: format!("the connection closed while waiting for the {action} job of {unit}"),
                });
            };
            let args = signal.args().map_err(|e| systemd.error(&unit, action, e))?;
            if args.job.as_str() == self.path.as_str() {
                break args.result.to_owned();
            }
        };
        let proxies = systemd.proxies(&unit, action, CacheProperties::No).await?;
        let state = proxies.state().await.map_err(|e| systemd.error(&unit, action, e))?;
        match result.as_str() {
            "done" => Ok(state),
            "failed" if action != Action::Stop => {
                // A start that ran has a new invocation; a refused one has not.
                let refused = state.invocation_id == self.invocation_before && state.is_down();
                if state.start_limit_hit || refused {
                    let burst = proxies.unit.start_limit_burst().await.unwrap_or_default();
                    let interval = proxies.unit.start_limit_interval_usec().await.unwrap_or_default();
                    Err(SystemdError::StartLimitHit { unit, bus: systemd.bus, burst, interval_s: interval / 1_000_000 })
                } else {
                    Err(SystemdError::JobFailed { unit, bus: systemd.bus, action, result })
                }
            }
            _ => Err(SystemdError::JobFailed { unit, bus: systemd.bus, action, result }),
        }
    }
}

/// The states of watched units as systemd changes them. Dropping it ends the watch.
#[derive(Debug)]
pub struct UnitWatch {
    rx: mpsc::Receiver<Result<UnitState, SystemdError>>,
    task: JoinHandle<()>,
}

impl UnitWatch {
    /// The next state: first the current state of every unit, then each change. An `Err` is
    /// the last item (systemd left the bus or the connection broke: connect again); `None`
    /// follows it. Cancel-safe, so it can sit in a `select!`.
    pub async fn recv(&mut self) -> Option<Result<UnitState, SystemdError>> {
        self.rx.recv().await
    }
}

impl Drop for UnitWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_loop(
    units: Vec<UnitProxies>,
    mut last: Vec<UnitState>,
    mut events: stream::SelectAll<BoxStream<'static, usize>>,
    mut owner_changes: zbus::fdo::NameOwnerChangedStream,
    tx: mpsc::Sender<Result<UnitState, SystemdError>>,
    bus: String,
) {
    let lost = |reason: String| Err(SystemdError::Lost { bus: bus.clone(), reason });
    loop {
        let first = tokio::select! {
            event = events.next() => event,
            change = owner_changes.next() => {
                let reason = match change.as_ref().map(|c| c.args()) {
                    None => "the bus connection closed".to_owned(),
                    Some(Ok(args)) => match (args.old_owner().as_ref(), args.new_owner().as_ref()) {
                        (Some(old), Some(new)) => {
                            format!("systemd re-executed (bus name {old} became {new}); its subscription is gone")
                        }
                        (Some(old), None) => format!("systemd ({old}) left the bus"),
                        (None, Some(new)) => format!("systemd appeared on the bus as {new} after the watch began"),
                        (None, None) => "systemd's bus name changed owner".to_owned(),
                    },
                    Some(Err(e)) => format!("unreadable NameOwnerChanged signal: {e}"),
                };
                let _ = tx.send(lost(reason)).await;
                return;
            }
            () = tx.closed() => return,
        };
        let Some(first) = first else {
            let _ = tx.send(lost("the property streams ended".to_owned())).await;
            return;
        };
        let mut dirty = BTreeSet::from([first]);
        tokio::time::sleep(COALESCE).await;
        while let Some(Some(i)) = events.next().now_or_never() {
            dirty.insert(i);
        }
        for i in dirty {
            let state = match units[i].state().await {
                Ok(state) => state,
                Err(e) => {
                    let _ = tx.send(Err(classify(&bus, &units[i].name, Action::Watch, e))).await;
                    return;
                }
            };
            if state != last[i] {
                last[i] = state.clone();
                if tx.send(Ok(state)).await.is_err() {
                    return;
                }
            }
        }
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

    /// A refusal names the program to fix: the dashboard uses this crate too, and once was told
    /// to run "the watchdog" as root.
    #[test]
    fn a_refusal_names_the_program_that_was_refused() {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert_eq!(client_name(), name);
        let e = SystemdError::AccessDenied {
            unit: "desktop-streamer.service".into(),
            bus: "system bus".into(),
            action: Action::Restart,
            message: "Interactive authentication required.".into(),
            client: "desktop-streamer-web".into(),
        };
        let text = e.to_string();
        assert!(text.contains("; run desktop-streamer-web as root, or add a polkit rule"), "{text}");
        assert!(!text.contains("watchdog"), "{text}");
    }
}
