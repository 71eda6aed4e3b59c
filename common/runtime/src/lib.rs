//! What every desktop-streamer binary does the same way: the `--config` and `check-config`
//! command line, logging, the exit path, and the shutdown signal.

pub mod check;
pub mod disk;
pub mod gpu;
pub mod logging;
pub mod prometheus;
pub mod shutdown;
pub mod system;

pub use check::{ConfigArgs, check_config, load_or_default};
pub use shutdown::{Shutdown, SignalEvent, spawn_signal_handler};

use std::process::ExitCode;

/// An error and its causes on one line. Libraries such as reqwest put only "error sending
/// request" at the top; the cause (connection refused, timed out) is what a person needs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The edge of every `main`: runs `run`, logs an error with its whole cause chain, and turns
/// the outcome into an exit code.
pub fn exit_with(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            // Logging may not be set up yet (bad arguments, unreadable config).
            if !tracing::dispatcher::has_been_set() {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
