//! Logging to stderr, which systemd's journal collects. `RUST_LOG` selects what is logged
//! (default `info`); under journald the timestamp is left to the journal.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    // systemd sets JOURNAL_STREAM when stderr goes to the journal, which stamps each line itself.
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    let _ = result;
}
