//! What every desktop-streamer binary does the same way: the `--config` and `check-config`
//! command line, logging, the exit path, and the shutdown signal.

pub mod check;
pub mod disk;
pub mod logging;
pub mod shutdown;

pub use check::{ConfigArgs, check_config, load_or_default};
pub use shutdown::{Shutdown, SignalEvent, spawn_signal_handler};

use std::process::ExitCode;

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
