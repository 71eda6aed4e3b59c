//! Camera heartbeats: probes that count a camera as up only when video arrived (RTSP
//! through retina, MJPEG and snapshots through reqwest), and the scheduler that runs them
//! for a fleet. Storage is `ds-camera-db`; the API and pages are `desktop-streamer-web`.

pub mod picture;
pub mod preview;
pub mod probe;
pub mod scheduler;
pub mod state;
pub mod verdict;

pub use picture::{Decoder, Pictures};
pub use probe::{NetworkProber, ProbeFailure, ProbeOutcome, Prober, Proof};
pub use scheduler::{
    Beat, CameraStatus, CameraThumbnail, Decoding, Event, Scheduler, SchedulerOptions, StatusBoard, Thumbnails,
    Transition,
};
pub use state::{Heartbeat, Reason, State};
