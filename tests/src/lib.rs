//! The test harness of desktop-streamer: real peers for end-to-end tests (an X server with
//! two monitors, the project's binaries) and helpers to drive and check them.

pub mod bins;
pub mod browser;
pub mod faketime;
pub mod flood;
pub mod hls;
pub mod http;
pub mod kiosk;
pub mod llhls;
pub mod logrotate;
pub mod media;
pub mod mjpeg;
pub mod nspawn;
pub mod procfs;
pub mod pty;
pub mod receiver;
pub mod rtsp;
pub mod rtsp_sim;
pub mod service;
pub mod smtp;
pub mod streamer;
pub mod system_bus;
pub mod systemd;
pub mod tcp_peer;
pub mod wait;
pub mod xorg;

/// A fresh temporary directory for a stream's output, on the RAM-backed `/dev/shm` where the
/// machine has it: a streamer reports disk pressure for the filesystem of its output directory,
/// and the test machine's disk filling up with build artifacts (CI once saw 99.8 %) is not what
/// these tests are about. (The disk-pressure tests mount a small tmpfs of their own.)
pub fn stream_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("ds-test-");
    if shm.is_dir() { builder.tempdir_in(shm) } else { builder.tempdir() }.expect("temporary directory")
}
