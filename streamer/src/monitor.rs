//! Which monitor to capture: RandR monitors, selection by index or output name, and change events.
//!
//! A kiosk's second monitor can be unplugged, switched off, resized or moved, and the X server
//! itself can go away and come back. The capture pipeline must follow: [`MonitorWatcher`] keeps a
//! connection of its own to the X server, listens for RandR change notifications and publishes
//! the selected monitor's [`MonitorState`] on a `tokio::sync::watch` channel, so the supervisor
//! can rebuild the pipeline when the geometry changes and report truthfully when it cannot.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::{ConnectError, ConnectionError, ReplyError};
use x11rb::protocol::Event;
use x11rb::protocol::randr::{self, ConnectionExt as _, NotifyMask};
use x11rb::protocol::xproto::{Atom, ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

/// Wait between attempts to reach an X server that is gone or refuses connections.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(2);
/// Longest the watcher sleeps (waiting for X events or between reconnects) before it looks for
/// a stop request. Events themselves wake it at once.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// After a RandR event, how long to wait for the rest of its burst (`xrandr` sends several for one
/// command) before listing the monitors, so half-applied changes are not reported.
const SETTLE_TIME: Duration = Duration::from_millis(100);
/// Longest a burst of events may delay the listing.
const MAX_SETTLE_TIME: Duration = Duration::from_secs(1);
/// How long dropping a [`MonitorWatcher`] waits for its thread, which can only be stuck in a
/// blocking X call on a hung (not dead) server.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// RandR 1.5 introduced monitors (`RRGetMonitors`).
const RANDR_MONITORS_VERSION: (u32, u32) = (1, 5);

pub use ds_wire::health::Monitor;

/// Which monitor to capture, from the config's `screen` and `monitor` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Index in RandR's monitor list, counted from 0.
    pub screen: u32,
    /// Monitor or output name; wins over `screen` when set.
    pub name: Option<String>,
}

impl Selection {
    /// The selection a streamer config asks for.
    pub fn from_config(config: &ds_config::StreamerConfig) -> Selection {
        Selection { screen: config.screen, name: config.monitor.clone() }
    }

    /// The selected monitor, or why there is none.
    pub fn resolve(&self, display: &str, monitors: &[Monitor]) -> MonitorState {
        match select(monitors, self.screen, self.name.as_deref()) {
            Some(m) => MonitorState::Available(m.clone()),
            None => MonitorState::Missing { reason: self.missing_reason(display, monitors) },
        }
    }

    fn missing_reason(&self, display: &str, monitors: &[Monitor]) -> String {
        let list = if monitors.is_empty() {
            "none".to_owned()
        } else {
            monitors.iter().enumerate().map(|(i, m)| format!("{i}: {m}")).collect::<Vec<_>>().join(", ")
        };
        match &self.name {
            Some(name) => format!("no monitor or output named {name} on X display {display} (monitors: {list})"),
            None => format!(
                "screen {} is selected but X display {display} has {} monitor(s) (monitors: {list}); \
                 set `screen` to an existing index or `monitor` to an output name",
                self.screen,
                monitors.len()
            ),
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "monitor {name}"),
            None => write!(f, "screen {}", self.screen),
        }
    }
}

/// Picks the monitor to capture: the one called `name` (monitor name or one of its output
/// names, exact match first, then ignoring ASCII case) when a name is given, else the
/// `screen`-th in RandR's order.
pub fn select<'a>(monitors: &'a [Monitor], screen: u32, name: Option<&str>) -> Option<&'a Monitor> {
    match name {
        Some(name) => {
            let named = |eq: &dyn Fn(&str) -> bool| {
                monitors
                    .iter()
                    .find(|m| eq(&m.name))
                    .or_else(|| monitors.iter().find(|m| m.outputs.iter().any(|o| eq(o))))
            };
            named(&|n| n == name).or_else(|| named(&|n| n.eq_ignore_ascii_case(name)))
        }
        None => monitors.get(usize::try_from(screen).ok()?),
    }
}

/// What the watcher knows about the selected monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MonitorState {
    /// The watcher has not reached the X server yet.
    Starting,
    /// The selected monitor exists with this geometry.
    Available(Monitor),
    /// The X server runs but the selected monitor is not among its monitors.
    Missing { reason: String },
    /// The X server is gone or refuses connections; the watcher retries every
    /// [`RECONNECT_INTERVAL`].
    XUnavailable { reason: String },
}

impl MonitorState {
    /// The monitor, if it is available.
    pub fn monitor(&self) -> Option<&Monitor> {
        match self {
            MonitorState::Available(m) => Some(m),
            _ => None,
        }
    }

    /// Whether going from `self` to `new` is worth telling anyone: the kind of state changed, or
    /// the available monitor moved or was resized. A new wording of the same problem is not.
    fn differs_from(&self, new: &MonitorState) -> bool {
        match (self, new) {
            (MonitorState::Available(a), MonitorState::Available(b)) => a != b,
            _ => std::mem::discriminant(self) != std::mem::discriminant(new),
        }
    }
}

/// Errors talking to an X server about monitors. Each names the display.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot connect to X display {display}: {source}")]
    Connect {
        display: String,
        #[source]
        source: ConnectError,
    },
    #[error(
        "X display {display} has RandR {major}.{minor}; monitors need RandR {}.{} or newer",
        RANDR_MONITORS_VERSION.0,
        RANDR_MONITORS_VERSION.1
    )]
    RandrTooOld { display: String, major: u32, minor: u32 },
    #[error("X display {display} does not support the RandR extension, so monitors cannot be listed")]
    NoRandr { display: String },
    #[error("lost the connection to X display {display}: {source}")]
    Connection {
        display: String,
        #[source]
        source: ConnectionError,
    },
    #[error("X display {display} refused {request}: {source}")]
    Request {
        display: String,
        request: &'static str,
        #[source]
        source: ReplyError,
    },
}

/// Lists the monitors of `display` (such as `:0`) once, in RandR's order.
pub fn list_monitors(display: &str) -> Result<Vec<Monitor>, MonitorError> {
    Session::open(display, false)?.monitors()
}

/// A connection to one X server with RandR checked.
struct Session {
    display: String,
    conn: RustConnection,
    root: Window,
    /// Names of atoms and outputs never change while a connection lives.
    atom_names: HashMap<Atom, String>,
    output_names: HashMap<randr::Output, String>,
}

impl Session {
    fn open(display: &str, watch: bool) -> Result<Session, MonitorError> {
        let (conn, screen) = x11rb::connect(Some(display))
            .map_err(|source| MonitorError::Connect { display: display.into(), source })?;
        let root = conn.setup().roots[screen].root;
        let session = Session {
            display: display.to_owned(),
            conn,
            root,
            atom_names: HashMap::new(),
            output_names: HashMap::new(),
        };
        let request = "RRQueryVersion";
        match session.conn.extension_information(randr::X11_EXTENSION_NAME) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(MonitorError::NoRandr { display: display.into() }),
            Err(source) => return Err(session.request_error(request, source.into())),
        }
        let (major, minor) = RANDR_MONITORS_VERSION;
        let version = session
            .conn
            .randr_query_version(major, minor)
            .map_err(|e| session.request_error(request, e.into()))?
            .reply()
            .map_err(|e| session.request_error(request, e))?;
        if (version.major_version, version.minor_version) < RANDR_MONITORS_VERSION {
            return Err(MonitorError::RandrTooOld {
                display: display.into(),
                major: version.major_version,
                minor: version.minor_version,
            });
        }
        if watch {
            let mask = NotifyMask::SCREEN_CHANGE | NotifyMask::CRTC_CHANGE | NotifyMask::OUTPUT_CHANGE;
            let request = "RRSelectInput";
            session
                .conn
                .randr_select_input(root, mask)
                .map_err(|e| session.request_error(request, e.into()))?
                .check()
                .map_err(|e| session.request_error(request, e))?;
        }
        Ok(session)
    }

    fn monitors(&mut self) -> Result<Vec<Monitor>, MonitorError> {
        let request = "RRGetMonitors";
        let reply = self
            .conn
            .randr_get_monitors(self.root, true)
            .map_err(|e| self.request_error(request, e.into()))?
            .reply()
            .map_err(|e| self.request_error(request, e))?;
        let mut monitors = Vec::with_capacity(reply.monitors.len());
        for info in reply.monitors {
            let outputs = info.outputs.iter().map(|&o| self.output_name(o)).collect::<Result<Vec<_>, _>>()?;
            monitors.push(Monitor {
                name: self.atom_name(info.name)?,
                x: i32::from(info.x),
                y: i32::from(info.y),
                width: u32::from(info.width),
                height: u32::from(info.height),
                primary: info.primary,
                outputs,
            });
        }
        Ok(monitors)
    }

    fn atom_name(&mut self, atom: Atom) -> Result<String, MonitorError> {
        if let Some(name) = self.atom_names.get(&atom) {
            return Ok(name.clone());
        }
        let request = "GetAtomName";
        let reply = self
            .conn
            .get_atom_name(atom)
            .map_err(|e| self.request_error(request, e.into()))?
            .reply()
            .map_err(|e| self.request_error(request, e))?;
        let name = String::from_utf8_lossy(&reply.name).into_owned();
        self.atom_names.insert(atom, name.clone());
        Ok(name)
    }

    fn output_name(&mut self, output: randr::Output) -> Result<String, MonitorError> {
        if let Some(name) = self.output_names.get(&output) {
            return Ok(name.clone());
        }
        let request = "RRGetOutputInfo";
        let reply = self
            .conn
            .randr_get_output_info(output, x11rb::CURRENT_TIME)
            .map_err(|e| self.request_error(request, e.into()))?
            .reply()
            .map_err(|e| self.request_error(request, e))?;
        let name = String::from_utf8_lossy(&reply.name).into_owned();
        self.output_names.insert(output, name.clone());
        Ok(name)
    }

    /// Sleeps until the X server sends something or `timeout` passes. Call after
    /// [`drain_events`](Self::drain_events), which leaves nothing buffered on our side.
    fn wait_for_input(&self, timeout: Duration) {
        let fd = self.conn.stream().as_fd();
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        // An interrupted or failed wait just ends early; the next drain tells what happened.
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
    }

    /// Takes every queued event; `Ok(true)` if any was a RandR change.
    fn drain_events(&self) -> Result<bool, MonitorError> {
        let mut changed = false;
        while let Some(event) = self
            .conn
            .poll_for_event()
            .map_err(|source| MonitorError::Connection { display: self.display.clone(), source })?
        {
            match event {
                Event::RandrScreenChangeNotify(_) | Event::RandrNotify(_) => changed = true,
                Event::Error(e) => {
                    tracing::warn!(display = %self.display, error = ?e, "X error on the monitor watcher's connection");
                }
                _ => {}
            }
        }
        Ok(changed)
    }

    fn request_error(&self, request: &'static str, source: ReplyError) -> MonitorError {
        match source {
            ReplyError::ConnectionError(source) => MonitorError::Connection { display: self.display.clone(), source },
            source => MonitorError::Request { display: self.display.clone(), request, source },
        }
    }
}

/// Follows the selected monitor of one X display on a thread of its own. Dropping it (or
/// calling [`MonitorWatcher::stop`]) stops the thread within [`POLL_INTERVAL`]; the thread also
/// stops when every receiver is gone.
#[derive(Debug)]
pub struct MonitorWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MonitorWatcher {
    /// Starts watching `display` (such as `:0`) for the monitor `selection` picks. The receiver
    /// starts at [`MonitorState::Starting`] and changes only when the selected monitor's state
    /// really changes (see [`MonitorState`]).
    pub fn spawn(display: &str, selection: Selection) -> io::Result<(MonitorWatcher, watch::Receiver<MonitorState>)> {
        let (tx, rx) = watch::channel(MonitorState::Starting);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker { display: display.to_owned(), selection, tx, stop: stop.clone() };
        let thread = thread::Builder::new().name("monitor-watcher".into()).spawn(move || worker.run())?;
        Ok((MonitorWatcher { stop, thread: Some(thread) }, rx))
    }

    /// Stops the watcher and waits for its thread (at most [`STOP_TIMEOUT`]).
    pub fn stop(self) {
        // Drop does the work; this names it at call sites.
    }
}

impl Drop for MonitorWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else { return };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !thread.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            // Only a blocking call to a hung X server can hold it; it ends when the server
            // answers or its socket closes.
            tracing::warn!("monitor watcher thread did not stop within {STOP_TIMEOUT:?}; leaving it behind");
        }
    }
}

struct Worker {
    display: String,
    selection: Selection,
    tx: watch::Sender<MonitorState>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        tracing::debug!(display = %self.display, selection = %self.selection, "monitor watcher started");
        while !self.stopping() {
            let error = match Session::open(&self.display, true) {
                Ok(mut session) => match self.watch(&mut session) {
                    Ok(()) => break,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            self.publish(MonitorState::XUnavailable { reason: error.to_string() });
            self.sleep(RECONNECT_INTERVAL);
        }
        tracing::debug!(display = %self.display, "monitor watcher stopped");
    }

    /// Publishes the selected monitor on every change until asked to stop (`Ok`) or the
    /// connection fails.
    fn watch(&self, session: &mut Session) -> Result<(), MonitorError> {
        self.publish(self.selection.resolve(&self.display, &session.monitors()?));
        while !self.stopping() {
            if !session.drain_events()? {
                session.wait_for_input(POLL_INTERVAL);
                continue;
            }
            let burst_end = Instant::now() + MAX_SETTLE_TIME;
            while Instant::now() < burst_end && !self.stopping() {
                thread::sleep(SETTLE_TIME);
                if !session.drain_events()? {
                    break;
                }
            }
            self.publish(self.selection.resolve(&self.display, &session.monitors()?));
        }
        Ok(())
    }

    /// Stores `new`; wakes receivers only if it [differs](MonitorState::differs_from).
    fn publish(&self, new: MonitorState) {
        self.tx.send_if_modified(|current| {
            let notify = current.differs_from(&new);
            if notify {
                match &new {
                    MonitorState::Available(m) => {
                        tracing::info!(display = %self.display, selection = %self.selection, monitor = %m, "monitor available");
                    }
                    MonitorState::Missing { reason } | MonitorState::XUnavailable { reason } => {
                        tracing::warn!(display = %self.display, selection = %self.selection, %reason, "monitor unavailable");
                    }
                    MonitorState::Starting => {}
                }
            }
            *current = new;
            notify
        });
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    fn sleep(&self, duration: Duration) {
        let end = Instant::now() + duration;
        while !self.stopping() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            thread::sleep(POLL_INTERVAL.min(end - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str, x: i32, outputs: &[&str]) -> Monitor {
        Monitor {
            name: name.into(),
            x,
            y: 0,
            width: 1280,
            height: 720,
            primary: x == 0,
            outputs: outputs.iter().map(|&o| o.into()).collect(),
        }
    }

    #[test]
    fn select_by_index_then_by_name() {
        let monitors = [monitor("DUMMY0", 0, &["DUMMY0"]), monitor("kiosk", 1280, &["HDMI-1"])];
        assert_eq!(select(&monitors, 1, None).map(|m| m.name.as_str()), Some("kiosk"));
        assert_eq!(select(&monitors, 0, None).map(|m| m.name.as_str()), Some("DUMMY0"));
        assert_eq!(select(&monitors, 2, None), None);
        // A name wins over the index, matches outputs too, and ignores case only as a fallback.
        assert_eq!(select(&monitors, 1, Some("DUMMY0")).map(|m| m.x), Some(0));
        assert_eq!(select(&monitors, 0, Some("HDMI-1")).map(|m| m.x), Some(1280));
        assert_eq!(select(&monitors, 0, Some("hdmi-1")).map(|m| m.x), Some(1280));
        assert_eq!(select(&monitors, 0, Some("DP-1")), None);
    }

    #[test]
    fn missing_reason_names_the_selection_and_the_monitors() {
        let monitors = [monitor("DUMMY0", 0, &["DUMMY0"])];
        let state = Selection { screen: 1, name: None }.resolve(":7", &monitors);
        let MonitorState::Missing { reason } = state else { panic!("expected Missing, got {state:?}") };
        assert_eq!(
            reason,
            "screen 1 is selected but X display :7 has 1 monitor(s) (monitors: 0: DUMMY0 1280x720+0+0); \
             set `screen` to an existing index or `monitor` to an output name"
        );
        let state = Selection { screen: 0, name: Some("HDMI-1".into()) }.resolve(":7", &[]);
        assert_eq!(
            state,
            MonitorState::Missing {
                reason: "no monitor or output named HDMI-1 on X display :7 (monitors: none)".into()
            }
        );
    }

    #[test]
    fn only_kind_or_geometry_changes_are_worth_a_notification() {
        let a = MonitorState::Available(monitor("DUMMY1", 1920, &["DUMMY1"]));
        let moved = MonitorState::Available(monitor("DUMMY1", 0, &["DUMMY1"]));
        let gone = |r: &str| MonitorState::XUnavailable { reason: r.into() };
        assert!(a.differs_from(&moved));
        assert!(!a.differs_from(&a.clone()));
        assert!(a.differs_from(&gone("x")));
        assert!(!gone("lost the connection").differs_from(&gone("cannot connect")));
        assert!(MonitorState::Starting.differs_from(&gone("x")));
    }

    #[test]
    fn state_serializes_with_a_tag() {
        let json = serde_json::to_value(MonitorState::Available(monitor("DUMMY1", 1920, &["DUMMY1"]))).unwrap();
        assert_eq!(json["state"], "available");
        assert_eq!(json["x"], 1920);
        let json = serde_json::to_value(MonitorState::XUnavailable { reason: "gone".into() }).unwrap();
        assert_eq!(json, serde_json::json!({"state": "x_unavailable", "reason": "gone"}));
    }
}
