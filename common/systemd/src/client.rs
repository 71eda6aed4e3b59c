//! [`Systemd`], a connection to the systemd manager on one bus: connecting, subscribing to
//! its signals, reading a unit's state and signalling its main process.

use zbus::Connection;
use zbus::proxy::CacheProperties;

use crate::error::{NAME_HAS_NO_OWNER, SERVICE_UNKNOWN, SystemdError, classify, dbus_error};
use crate::proxies::{ManagerProxy, ServiceProxy, UnitProxies, UnitProxy};
use crate::unit::{Action, UnitState};

/// The D-Bus bus on which the systemd manager is asked: the machine's (`System`, the
/// services' units) or the calling user's (`Session`, a user manager's units, as the tests run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    System,
    Session,
}

/// A connection to the bus at `address`, and the bus's name for messages ("bus at ADDRESS").
pub(crate) async fn connect_to(address: &str) -> Result<(Connection, String), SystemdError> {
    let label = format!("bus at {address}");
    let connect = async { zbus::connection::Builder::address(address)?.build().await };
    match connect.await {
        Ok(connection) => Ok((connection, label)),
        Err(source) => Err(SystemdError::Connect { bus: label, source: Box::new(source) }),
    }
}

const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// A connection to systemd on one bus. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Systemd {
    pub(crate) connection: Connection,
    pub(crate) manager: ManagerProxy<'static>,
    /// "system bus", "session bus" or "bus at ADDRESS", for messages.
    pub(crate) bus: String,
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
        let (connection, label) = connect_to(address).await?;
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

    /// Sends `signal` to the unit's main process (systemd's KillUnit with `main`): how the
    /// dashboard asks the streamer to rebuild its pipeline (SIGUSR1) or clean up (SIGUSR2)
    /// without an HTTP endpoint of its own that anyone could call.
    pub async fn signal(&self, unit: &str, signal: i32) -> Result<(), SystemdError> {
        self.proxies(unit, Action::Signal, CacheProperties::No).await?;
        match self.manager.kill_unit(unit, "main", signal).await.map_err(|e| self.error(unit, Action::Signal, e)) {
            Err(refused @ SystemdError::AccessDenied { .. }) => self.by_helper_signal(unit, signal, refused).await,
            other => other,
        }
    }

    /// What polkit refused, asked of the control helper when it is installed
    /// ([`crate::control`]); `refused` itself when it is not. The helper's own refusal or
    /// failure is named with the unit and the action.
    pub(crate) async fn by_helper(
        &self,
        unit: &str,
        action: Action,
        refused: SystemdError,
    ) -> Result<crate::control::Answer, SystemdError> {
        let Some(socket) = crate::control::available() else { return Err(refused) };
        if !matches!(action, Action::Start | Action::Stop | Action::Restart) {
            return Err(refused);
        }
        self.helper(socket, action.verb(), unit, action).await
    }

    async fn by_helper_signal(&self, unit: &str, signal: i32, refused: SystemdError) -> Result<(), SystemdError> {
        let Some(socket) = crate::control::available() else { return Err(refused) };
        let verb = match signal {
            10 => "usr1",
            12 => "usr2",
            _ => return Err(refused),
        };
        self.helper(socket, verb, unit, Action::Signal).await.map(|_| ())
    }

    async fn helper(
        &self,
        socket: &std::path::Path,
        verb: &str,
        unit: &str,
        action: Action,
    ) -> Result<crate::control::Answer, SystemdError> {
        let answer = crate::control::ask(socket, verb, unit).await;
        tracing::debug!(unit, %action, ?answer, "asked the control helper (polkit refused)");
        answer.map_err(|why| SystemdError::Helper {
            unit: unit.to_owned(),
            action,
            socket: socket.display().to_string(),
            why,
        })
    }

    pub(crate) async fn proxies(
        &self,
        unit: &str,
        action: Action,
        cache: CacheProperties,
    ) -> Result<UnitProxies, SystemdError> {
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

    pub(crate) fn error(&self, unit: &str, action: Action, source: zbus::Error) -> SystemdError {
        classify(&self.bus, unit, action, source)
    }
}
