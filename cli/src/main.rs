use std::process::ExitCode;

fn main() -> ExitCode {
    // `cli::parse` makes a usage error of `check` exit 3 (UNKNOWN), as monitoring expects.
    ds_runtime::exit_with(desktop_streamer_monitor::run(desktop_streamer_monitor::parse()))
}
