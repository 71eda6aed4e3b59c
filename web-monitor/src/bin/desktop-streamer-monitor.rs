use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    ds_runtime::exit_with(desktop_streamer_web::cli::run(desktop_streamer_web::cli::Args::parse()))
}
