use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    ds_runtime::exit_with(desktop_streamer::run(desktop_streamer::Args::parse()))
}
