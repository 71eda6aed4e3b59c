//! A system bus of the test's own on which D-Bus activation starts the machine's real
//! `systemd-timedated`, as on a systemd machine: the clock-synchronisation state the services
//! read is then the real daemon's answer about this machine's kernel clock.
//!
//! Services under test are pointed at it with `DBUS_SYSTEM_BUS_ADDRESS` ([`SystemBus::env`]).
//! The bus is a `dbus-daemon` with a configuration of its own (its type is `session` because
//! a `system` bus would activate services through the setuid helper, as a fixed user); the
//! activated daemon gets `DBUS_SYSTEM_BUS_ADDRESS` from it and so registers here. Needs the
//! Debian packages `dbus` and `systemd`.

use std::fs;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::systemd::{descendants, kill_survivors, run_short, wait_child};

/// Where Debian installs the daemon.
pub const TIMEDATED: &str = "/lib/systemd/systemd-timedated";
/// How long dbus-daemon may take to listen, and to exit.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A running private bus. Dropping it kills the bus and every daemon it started.
#[derive(Debug)]
pub struct SystemBus {
    _dir: TempDir,
    daemon: Child,
    address: String,
}

impl SystemBus {
    /// Starts the bus, with systemd-timedated activatable on it; returns once it listens.
    pub fn start() -> io::Result<SystemBus> {
        SystemBus::start_with(true)
    }

    /// Starts a bus on which no daemon is activatable, as on a machine without systemd.
    pub fn start_bare() -> io::Result<SystemBus> {
        SystemBus::start_with(false)
    }

    fn start_with(timedated: bool) -> io::Result<SystemBus> {
        let dir = tempfile::Builder::new().prefix("ds-system-bus").tempdir()?;
        let services = dir.path().join("services");
        fs::create_dir(&services)?;
        if timedated {
            fs::write(
                services.join("org.freedesktop.timedate1.service"),
                format!("[D-BUS Service]\nName=org.freedesktop.timedate1\nExec={TIMEDATED}\n"),
            )?;
        }
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        fs::write(&config, bus_config(&socket, &services))?;
        let address = format!("unix:path={}", socket.display());
        // Its output and the activated daemons' (which inherit it) go to a file, not to the
        // test's own pipes, which they could outlive.
        let log = fs::File::create(dir.path().join("bus.log"))?;
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run dbus-daemon (Debian package dbus): {e}")))?;
        let listening = crate::wait::try_wait_until("the private system bus listening", TIMEOUT, || {
            UnixStream::connect(&socket).is_ok()
        });
        if let Err(e) = listening {
            let _ = daemon.kill();
            let said = fs::read_to_string(dir.path().join("bus.log")).unwrap_or_default();
            return Err(io::Error::other(format!("{e}; dbus-daemon said: {said}")));
        }
        Ok(SystemBus { _dir: dir, daemon, address })
    }

    /// The bus's address, `unix:path=…`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The environment variable that points a service at this bus as its system bus.
    pub fn env(&self) -> (&'static str, String) {
        ("DBUS_SYSTEM_BUS_ADDRESS", self.address.clone())
    }

    /// What systemd-timedated answers for `NTPSynchronized` now, asked with `busctl`: the
    /// truth a service's report is compared with.
    pub fn ntp_synchronized(&self) -> io::Result<bool> {
        let mut busctl = Command::new("busctl");
        busctl.args(["--address", &self.address, "get-property", "org.freedesktop.timedate1"]).args([
            "/org/freedesktop/timedate1",
            "org.freedesktop.timedate1",
            "NTPSynchronized",
        ]);
        let output = run_short(busctl)?;
        match String::from_utf8_lossy(&output.stdout).trim() {
            "b true" => Ok(true),
            "b false" => Ok(false),
            other => Err(io::Error::other(format!(
                "busctl said {other:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))),
        }
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let started = descendants(self.daemon.id());
        let _ = self.daemon.kill();
        wait_child(&mut self.daemon, TIMEOUT);
        kill_survivors(&started);
    }
}

fn bus_config(socket: &Path, services: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <servicedir>{}</servicedir>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display(),
        services.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real daemon is activated on the private bus and answers as busctl sees it.
    #[test]
    fn activates_the_real_timedated() {
        let bus = SystemBus::start().unwrap();
        let first = bus.ntp_synchronized().unwrap();
        assert_eq!(bus.ntp_synchronized().unwrap(), first);
    }
}
