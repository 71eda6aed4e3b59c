//! [`SystemdError`]: what went wrong, on which bus and unit, and what to do about it; and the
//! mapping of systemd's D-Bus error replies onto it.

use zbus::DBusError as _;

use crate::unit::Action;

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_MASKED: &str = "org.freedesktop.systemd1.UnitMasked";
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const INTERACTIVE_AUTH: &str = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
pub(crate) const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
pub(crate) const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

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
    #[error(
        "systemd-timedated does not answer on the {bus} ({message}); without it the clock's \
         synchronisation is unknown (Debian ships it in the `systemd` package)"
    )]
    NoTimedated { bus: String, message: String },
    #[error(
        "polkit does not allow this program to {action} {unit}, and the control helper at {socket} \
         refused or failed: {why}"
    )]
    Helper { unit: String, action: Action, socket: String, why: String },
    #[error("lost systemd on the {bus}: {reason}")]
    Lost { bus: String, reason: String },
}

impl SystemdError {
    /// Whether the error says the connection itself is gone or unusable (connect again), as
    /// opposed to systemd answering about one unit (no such unit, refused, a failed job).
    pub fn is_connection_trouble(&self) -> bool {
        match self {
            SystemdError::Connect { .. }
            | SystemdError::NoSystemd { .. }
            | SystemdError::NoTimedated { .. }
            | SystemdError::Lost { .. } => true,
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
pub(crate) fn dbus_error(e: &zbus::Error) -> Option<(String, String)> {
    match e {
        zbus::Error::MethodError(name, message, _) => Some((name.to_string(), message.clone().unwrap_or_default())),
        zbus::Error::FDO(fdo) => Some((fdo.name().to_string(), fdo.description().unwrap_or_default().to_owned())),
        _ => None,
    }
}

pub(crate) fn classify(bus: &str, unit: &str, action: Action, source: zbus::Error) -> SystemdError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
