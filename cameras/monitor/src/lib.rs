//! The camera monitor as it runs: the camera list and its file watch ([`fleet`]), the prober's
//! live states ([`live`]), and the tasks that tie the list, the prober and the history
//! database together ([`monitor`]). The dashboard starts it and serves what it knows.

pub mod fleet;
pub mod live;
pub mod monitor;

pub use fleet::{EditError, FileProblem, Fleet};
pub use live::Live;
pub use monitor::CameraMonitor;
