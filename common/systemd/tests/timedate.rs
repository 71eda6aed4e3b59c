//! Reading the clock's synchronisation from systemd-timedated, on a private system bus
//! ([`ds_tests::system_bus`]) where D-Bus activation starts the machine's real daemon.

use ds_systemd::{SystemdError, Timedate};
use ds_tests::system_bus::SystemBus;

/// The real daemon's answer is read as it gives it (compared with `busctl`'s reading of the same
/// property). Whether a time service is enabled stays unknown here: timedated asks systemd's
/// manager for that, and none runs on this bus.
#[tokio::test]
async fn reads_what_the_real_timedated_says() {
    let bus = SystemBus::start().unwrap();
    let timedate = Timedate::connect_address(bus.address()).await.unwrap();
    let read = timedate.read().await.unwrap();
    let truth = tokio::task::spawn_blocking(move || bus.ntp_synchronized().unwrap()).await.unwrap();
    assert_eq!(read.synchronized, Some(truth), "{read:?}");
    assert_eq!((read.ntp_enabled, read.error), (None, None));
}

/// A synchronised clock. The real daemon reports the kernel's own state (`adjtimex`), which a
/// test cannot set without changing this machine's clock discipline; so here the test itself
/// owns `org.freedesktop.timedate1` on the private bus (before anything activates the real one)
/// and answers `NTPSynchronized = true`, as timedated does on a synchronised machine.
#[tokio::test]
async fn reads_a_synchronised_clock() {
    let bus = SystemBus::start_bare().unwrap();
    let _served = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .name("org.freedesktop.timedate1")
        .unwrap()
        .serve_at("/org/freedesktop/timedate1", Synchronised)
        .unwrap()
        .build()
        .await
        .unwrap();
    let timedate = Timedate::connect_address(bus.address()).await.unwrap();
    let read = timedate.read().await.unwrap();
    assert_eq!((read.synchronized, read.ntp_enabled), (Some(true), Some(true)), "{read:?}");
}

/// Without timedated the error says so and what it means, and counts as connection trouble
/// (the reader connects again later: timedated may be installed or started meanwhile).
#[tokio::test]
async fn a_bus_without_timedated_says_the_synchronisation_is_unknown() {
    let bus = SystemBus::start_bare().unwrap();
    let timedate = Timedate::connect_address(bus.address()).await.unwrap();
    let e = timedate.read().await.unwrap_err();
    assert!(matches!(e, SystemdError::NoTimedated { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("systemd-timedated does not answer on the bus at unix:path="), "{text}");
    assert!(text.contains("the clock's synchronisation is unknown"), "{text}");
    assert!(e.is_connection_trouble());
}

struct Synchronised;

#[zbus::interface(name = "org.freedesktop.timedate1")]
impl Synchronised {
    #[zbus(property, name = "NTPSynchronized")]
    fn ntp_synchronized(&self) -> bool {
        true
    }
    #[zbus(property, name = "NTP")]
    fn ntp(&self) -> bool {
        true
    }
}
