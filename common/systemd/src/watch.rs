//! [`UnitWatch`]: the states of watched units as systemd changes them, from its
//! `PropertiesChanged` signals, coalesced per transition.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zbus::proxy::CacheProperties;

use crate::client::Systemd;
use crate::error::{SystemdError, classify};
use crate::proxies::{SYSTEMD_SERVICE, UnitProxies};
use crate::unit::{Action, UnitState};

/// How long the watch waits after a first change for the rest of the same transition: systemd
/// sends the Unit and the Service properties of one transition as two signals.
const COALESCE: Duration = Duration::from_millis(20);
/// Changes buffered for a slow reader before the watch waits for it.
const WATCH_CHANNEL_CAPACITY: usize = 64;

impl Systemd {
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
