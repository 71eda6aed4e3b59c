//! Simulated cameras for benchmarks and manual tries: `rtsp-sim --mounts N [--port P]
//! [--clip FILE.h264]` serves `rtsp://127.0.0.1:P/cam0` .. `/cam{N-1}` and prints
//! `READY port=P` once it listens. See `ds_tests::rtsp_sim`.

use std::process::ExitCode;

use ds_tests::rtsp_sim::{self, Args};

fn main() -> ExitCode {
    match Args::parse(std::env::args().skip(1)).and_then(|args| rtsp_sim::run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("rtsp-sim: {text}");
            ExitCode::FAILURE
        }
    }
}
