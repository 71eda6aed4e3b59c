use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    ds_runtime::exit_with(desktop_streamer_watchdog::run(desktop_streamer_watchdog::Args::parse()))
}
