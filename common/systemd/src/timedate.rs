//! [`Timedate`]: systemd-timedated (`org.freedesktop.timedate1`), which tells whether the
//! machine's wall clock is synchronised.
//!
//! timedated lives on the system bus whichever bus the units are watched on, and is started by
//! D-Bus activation on the first call; it exits again after about 30 s without calls.
//! `NTPSynchronized` is the kernel's own word (`adjtimex`: no `STA_UNSYNC`, a small maximum
//! error), so it holds whichever time service (systemd-timesyncd, chrony, ntpd) keeps the clock.

use std::time::Duration;

use ds_wire::system::ClockSync;
use zbus::Connection;
use zbus::proxy::CacheProperties;

use crate::error::{NAME_HAS_NO_OWNER, SERVICE_UNKNOWN, SystemdError, dbus_error};
use crate::unit::Action;

/// The longest a read waits: an activation that hangs must not hold the caller for D-Bus's
/// default 25 s.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

const TIMEDATED: &str = "systemd-timedated";

#[zbus::proxy(
    interface = "org.freedesktop.timedate1",
    default_service = "org.freedesktop.timedate1",
    default_path = "/org/freedesktop/timedate1",
    gen_blocking = false
)]
pub trait Timedate1 {
    #[zbus(property, name = "NTPSynchronized")]
    fn ntp_synchronized(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "NTP")]
    fn ntp(&self) -> zbus::Result<bool>;
}

/// A connection to systemd-timedated. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Timedate {
    proxy: Timedate1Proxy<'static>,
    bus: String,
}

impl Timedate {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set). Asks nothing yet:
    /// timedated is started by the first [`Timedate::read`].
    pub async fn connect() -> Result<Timedate, SystemdError> {
        let bus = "system bus".to_owned();
        let connection = Connection::system()
            .await
            .map_err(|source| SystemdError::Connect { bus: bus.clone(), source: Box::new(source) })?;
        Timedate::on(connection, bus).await
    }

    /// Connects to the bus at a D-Bus address such as `unix:path=/run/dbus/system_bus_socket`.
    pub async fn connect_address(address: &str) -> Result<Timedate, SystemdError> {
        let (connection, bus) = crate::client::connect_to(address).await?;
        Timedate::on(connection, bus).await
    }

    async fn on(connection: Connection, bus: String) -> Result<Timedate, SystemdError> {
        let build = Timedate1Proxy::builder(&connection).cache_properties(CacheProperties::No).build();
        let proxy = build.await.map_err(|e| call_error(&bus, e))?;
        Ok(Timedate { proxy, bus })
    }

    /// Whether the clock is synchronised and a network time service is enabled, as timedated
    /// says now. `NTP` needs systemd's manager on the same bus (timedated asks it for the time
    /// service's unit); where that fails, only that part is unknown.
    pub async fn read(&self) -> Result<ClockSync, SystemdError> {
        let ask = async {
            let synchronized = self.proxy.ntp_synchronized().await?;
            let ntp = self.proxy.ntp().await;
            if let Err(e) = &ntp {
                tracing::debug!(error = %e, "{TIMEDATED} does not tell whether a time service is enabled");
            }
            zbus::Result::Ok(ClockSync { synchronized: Some(synchronized), ntp_enabled: ntp.ok(), error: None })
        };
        match tokio::time::timeout(READ_TIMEOUT, ask).await {
            Ok(read) => read.map_err(|e| call_error(&self.bus, e)),
            Err(_) => Err(SystemdError::Lost {
                bus: self.bus.clone(),
                reason: format!("{TIMEDATED} did not answer within {} s", READ_TIMEOUT.as_secs()),
            }),
        }
    }
}

fn call_error(bus: &str, source: zbus::Error) -> SystemdError {
    match dbus_error(&source) {
        Some((name, message)) if name == SERVICE_UNKNOWN || name == NAME_HAS_NO_OWNER => {
            SystemdError::NoTimedated { bus: bus.to_owned(), message }
        }
        _ => SystemdError::Call {
            unit: TIMEDATED.to_owned(),
            bus: bus.to_owned(),
            action: Action::Read,
            source: Box::new(source),
        },
    }
}
