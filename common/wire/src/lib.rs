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

/// What an HTTPS port of the services answers (`400 Bad Request`, this body, then it closes)
/// to a request in plain HTTP: a reader that gets it knows its `http://` URL must be
/// `https://`.
pub const PLAIN_HTTP_ON_HTTPS_PORT: &str = "This port speaks HTTPS: open it with https:// in the address.\n";
