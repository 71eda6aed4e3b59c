//! The test harness of desktop-streamer: real peers for end-to-end tests (an X server with
//! two monitors, the project's binaries) and helpers to drive and check them.

pub mod bins;
pub mod browser;
pub mod hls;
pub mod http;
pub mod kiosk;
pub mod logrotate;
pub mod media;
pub mod mjpeg;
pub mod nspawn;
pub mod procfs;
pub mod receiver;
pub mod rtsp;
pub mod rtsp_sim;
pub mod service;
pub mod smtp;
pub mod streamer;
pub mod systemd;
pub mod xorg;
