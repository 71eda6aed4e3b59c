//! systemd over D-Bus: the state of the watched units, changes to it as systemd signals them,
//! and restarts; and whether the wall clock is synchronised (systemd-timedated).
//!
//! The watchdog this crate replaces ran `systemctl` every 30 s and read a property systemd does
//! not have (`RestartCount`). Here every state comes from systemd's own D-Bus objects: the
//! `org.freedesktop.systemd1.Unit` and `.Service` properties, which systemd announces with
//! `PropertiesChanged` (every property watched here is `emits-change`, values included) once
//! some client on the bus called `Manager.Subscribe`, and not at all before. A unit that fails is
//! therefore seen within milliseconds (about 25 ms in the tests, 20 of them the coalescing
//! below).
//!
//! Two facts of systemd shape this module:
//! - `NRestarts` counts only systemd's own automatic restarts (`Restart=`); restarts asked for
//!   over D-Bus leave it unchanged. A new `MainPID` and `InvocationID` show those.
//! - `Result` becomes `start-limit-hit` only when the unit's previous result was `success`. A
//!   unit that crashed (`signal`, `exit-code`) and is then refused by the start limit keeps its
//!   old result; the only trace is a start job that fails without a new invocation. [`Job::wait`]
//!   checks for exactly that and reports [`SystemdError::StartLimitHit`].

mod client;
pub mod control;
mod error;
mod job;
mod proxies;
mod timedate;
mod unit;
mod watch;

pub use client::{Bus, Systemd};
pub use error::SystemdError;
pub use job::Job;
/// The generated proxies (`ManagerProxy`, `UnitProxy`, `ServiceProxy` and their signal types).
pub use proxies::*;
pub use timedate::{READ_TIMEOUT, Timedate, Timedate1Proxy};
pub use unit::{Action, ActiveState, StartLimit, UnitState};
pub use watch::UnitWatch;
