//! The JSON documents the desktop-streamer programs exchange over HTTP, typed once and used
//! by the writer and every reader: a renamed field is a compile error, not a silent `null`.
//!
//! Only serde, serde_json and jiff: the CLI and the watchdog depend on this crate, so it
//! carries no GStreamer, axum, database or D-Bus.

pub mod alerts;
pub mod cameras;
pub mod health;
pub mod status;
pub mod system;
