//! The dashboard's connection to systemd over D-Bus, kept up for the life of the service.
//!
//! The bus may be missing when the dashboard starts (it is started before the user's bus,
//! or dbus restarts later). Every part that needs systemd (the sampled unit states, service
//! control, the stream tools) asks [`SystemdLink::get`]: the live connection, or why there is
//! none, in words the 503 answers and the status document's `unreachable` pass on. A task
//! connects again with backoff ([`RECONNECT_FIRST`] doubling up to [`RECONNECT_MAX`]) while
//! there is none, and at once when a user of the connection finds it broken
//! ([`SystemdLink::suspect`]).

use std::sync::Arc;
use std::time::Duration;

use ds_runtime::Shutdown;
use ds_systemd::Bus;
use ds_systemd::{Systemd, SystemdError};
use tokio::sync::{Notify, watch};

/// The streamer's unit: its state is the status document's `service`, and the dashboard's
/// stream tools signal it.
pub const STREAMER_UNIT: &str = "desktop-streamer.service";

/// Wait before the first new attempt after a failed connect.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(8);

/// The connection, or the last reason there is none. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SystemdLink {
    rx: watch::Receiver<Link>,
    suspect: Arc<Notify>,
}

#[derive(Clone, Debug)]
enum Link {
    Up(Systemd),
    Down(String),
}

impl SystemdLink {
    /// Connects to systemd on `bus` (the first attempt is awaited, so the first status sample
    /// has it) and keeps connecting again in the background until `shutdown`.
    pub async fn start(bus: Bus, shutdown: Shutdown) -> SystemdLink {
        let first = connect(bus).await;
        let (tx, rx) = watch::channel(first);
        let suspect = Arc::new(Notify::new());
        tokio::spawn(keep_up(bus, tx, suspect.clone(), shutdown));
        SystemdLink { rx, suspect }
    }

    /// A link that never connects, saying `reason` (for a router without systemd in tests).
    pub fn down(reason: impl Into<String>) -> SystemdLink {
        let (_, rx) = watch::channel(Link::Down(reason.into()));
        SystemdLink { rx, suspect: Arc::new(Notify::new()) }
    }

    /// The connection, or why there is none (the connect error, with what to do).
    pub fn get(&self) -> Result<Systemd, String> {
        match &*self.rx.borrow() {
            Link::Up(systemd) => Ok(systemd.clone()),
            Link::Down(why) => Err(format!("no connection to systemd's D-Bus API: {why}")),
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(&*self.rx.borrow(), Link::Up(_))
    }

    /// Tells the link that a call failed as if the connection were gone: it connects again
    /// at once, and reports down (then retries with backoff) if that fails. Errors about one
    /// unit (no such unit, access denied, a failed job) do not count.
    pub fn suspect(&self, error: &SystemdError) {
        if error.is_connection_trouble() {
            self.suspect.notify_one();
        }
    }
}

async fn connect(bus: Bus) -> Link {
    match Systemd::connect(bus).await {
        Ok(systemd) => {
            tracing::info!(bus = systemd.bus(), version = systemd.version(), "connected to systemd");
            Link::Up(systemd)
        }
        Err(e) => Link::Down(e.to_string()),
    }
}

async fn keep_up(bus: Bus, tx: watch::Sender<Link>, suspect: Arc<Notify>, shutdown: Shutdown) {
    let mut wait = RECONNECT_FIRST;
    let mut said: Option<String> = None;
    loop {
        let current = tx.borrow().clone();
        match current {
            Link::Up(_) => {
                wait = RECONNECT_FIRST;
                said = None;
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = suspect.notified() => {}
                }
                tracing::info!("a call to systemd failed as if the connection were gone: connecting again");
            }
            Link::Down(why) => {
                // Once per distinct reason, not at every attempt.
                if said.as_deref() != Some(why.as_str()) {
                    tracing::warn!(error = %why, retry_s = wait.as_secs(), "service states and control are unavailable; connecting again");
                    said = Some(why);
                }
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RECONNECT_MAX);
            }
        }
        let next = tokio::select! {
            () = shutdown.wait() => return,
            link = connect(bus) => link,
        };
        tx.send_replace(next);
    }
}
