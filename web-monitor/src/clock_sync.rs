//! Whether the machine's wall clock is synchronised, asked of systemd-timedated
//! ([`ds_systemd::Timedate`]) every [`POLL`] and shared: the status document's `clock`, and the
//! mark on every camera heartbeat recorded while the clock was not synchronised.
//!
//! Polled, not watched: timedated announces no change of `NTPSynchronized` (it reads the
//! kernel's state at each call). [`POLL`] is below timedated's idle exit (about 30 s), so the
//! daemon, once activated, stays up instead of being started again at every poll.

use std::time::Duration;

use ds_runtime::Shutdown;
use ds_systemd::Timedate;
use ds_wire::system::ClockSync;
use tokio::sync::watch;

/// How often timedated is asked.
pub const POLL: Duration = Duration::from_secs(15);

/// The latest answer; cheap to clone.
#[derive(Clone, Debug)]
pub struct ClockWatch {
    rx: watch::Receiver<ClockSync>,
}

impl ClockWatch {
    /// Asks once (awaited, so the first status sample has it), then every [`POLL`] until
    /// `shutdown`, connecting again after any failure.
    pub async fn start(shutdown: Shutdown) -> ClockWatch {
        let mut timedate = None;
        let first = ask(&mut timedate).await;
        say(None, &first);
        let (tx, rx) = watch::channel(first);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(POLL) => {}
                }
                let next = tokio::select! {
                    () = shutdown.wait() => return,
                    next = ask(&mut timedate) => next,
                };
                say(Some(&tx.borrow()), &next);
                tx.send_if_modified(|current| {
                    let changed = *current != next;
                    *current = next;
                    changed
                });
            }
        });
        ClockWatch { rx }
    }

    /// A watch that always says `state` (for routers in tests).
    pub fn fixed(state: ClockSync) -> ClockWatch {
        let (_, rx) = watch::channel(state);
        ClockWatch { rx }
    }

    pub fn latest(&self) -> ClockSync {
        self.rx.borrow().clone()
    }

    /// The current state at once, then each change.
    pub fn subscribe(&self) -> watch::Receiver<ClockSync> {
        self.rx.clone()
    }
}

async fn ask(timedate: &mut Option<Timedate>) -> ClockSync {
    if timedate.is_none() {
        match Timedate::connect().await {
            Ok(t) => *timedate = Some(t),
            Err(e) => return ClockSync::unknown(e.to_string()),
        }
    }
    let Some(connected) = timedate.as_ref() else { return ClockSync::unknown("not connected") };
    match connected.read().await {
        Ok(state) => state,
        Err(e) => {
            if e.is_connection_trouble() {
                *timedate = None;
            }
            ClockSync::unknown(e.to_string())
        }
    }
}

/// Logs what changed: the first answer, and every change of the synchronisation after it.
fn say(before: Option<&ClockSync>, now: &ClockSync) {
    if before.is_some_and(|b| b.synchronized == now.synchronized) {
        return;
    }
    match (now.synchronized, &now.error) {
        (Some(true), _) => tracing::info!("the wall clock is synchronised (systemd-timedated)"),
        (Some(false), _) => tracing::warn!(
            "the wall clock is not synchronised (systemd-timedated): camera heartbeats are marked until it is"
        ),
        (None, error) => tracing::warn!(
            error = error.as_deref().unwrap_or("unknown"),
            "cannot tell whether the wall clock is synchronised"
        ),
    }
}
