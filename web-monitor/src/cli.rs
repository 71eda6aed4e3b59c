//! `desktop-streamer-monitor`: the command line for operators and scripts.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ds_runtime::ConfigArgs;

use crate::settings;

#[derive(Debug, Parser)]
#[command(name = "desktop-streamer-monitor", version, about = "Command line for a desktop-streamer kiosk")]
pub struct Args {
    /// The web monitor's configuration file, to find the dashboard
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the web monitor's configuration file and the camera list it names
    CheckConfig,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::CheckConfig => Ok(settings::check(&args.config)),
    }
}
