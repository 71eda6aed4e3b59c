//! One shutdown signal for a whole process, created in `main` and cloned into every task.
//!
//! The first SIGTERM or SIGINT triggers it (tasks drain within their time limit); a second one
//! exits at once. SIGHUP is passed on as a reload request, SIGUSR1 as a restart request, SIGUSR2
//! as a cleanup request.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone sees the same trigger.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    /// A shutdown of its own that also follows this one: for stopping one part (a daemon
    /// being reloaded) without stopping the process.
    pub fn child(&self) -> Shutdown {
        Shutdown(self.0.child_token())
    }

    /// Whether shutdown was asked for (usable from non-async threads).
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once shutdown is asked for; race every await against it.
    pub async fn wait(&self) {
        self.0.cancelled().await;
    }

    /// Sleeps for `d` unless shutdown comes first; returns false if it did.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.wait() => false,
        }
    }
}

/// What the signal handler passes on besides shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalEvent {
    /// SIGHUP: read the configuration again.
    Reload,
    /// SIGUSR1: restart the service's work in process (the streamer rebuilds its pipeline).
    Restart,
    /// SIGUSR2: free disk space now (the streamer deletes segments outside its playlist).
    Cleanup,
}

/// Exit status used when a second termination signal cuts the drain short.
pub const FORCED_EXIT_CODE: i32 = 130;

/// Installs SIGTERM/SIGINT/SIGHUP handling on the current tokio runtime.
pub fn spawn_signal_handler(shutdown: Shutdown) -> std::io::Result<mpsc::UnboundedReceiver<SignalEvent>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading configuration");
                    let _ = tx.send(SignalEvent::Reload);
                    continue;
                }
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: restart requested");
                    let _ = tx.send(SignalEvent::Restart);
                    continue;
                }
                _ = usr2.recv() => {
                    tracing::info!("SIGUSR2: cleanup requested");
                    let _ = tx.send(SignalEvent::Cleanup);
                    continue;
                }
            };
            if shutdown.is_triggered() {
                tracing::warn!(signal = name, "second termination signal: exiting now");
                std::process::exit(FORCED_EXIT_CODE);
            }
            tracing::info!(signal = name, "shutting down");
            shutdown.trigger();
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleep_is_cut_short_by_shutdown() {
        let s = Shutdown::new();
        assert!(s.sleep(Duration::from_secs(5)).await, "full sleep without shutdown");
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        s.trigger();
        assert!(!waiter.await.unwrap(), "sleep ends early once shutdown is triggered");
        assert!(s.is_triggered());
    }
}
