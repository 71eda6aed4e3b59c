//! desktop-streamer-watchdog: watches the desktop-streamer units over systemd's D-Bus API,
//! heals them, and alerts people by email and webhooks.

pub mod alert;
pub mod checks;
pub mod conditions;
pub mod policy;
pub mod recovery;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ds_config::WatchdogConfig;
use ds_runtime::{ConfigArgs, Shutdown, check_config, load_or_default};

#[derive(Debug, Parser)]
#[command(
    name = "desktop-streamer-watchdog",
    version,
    about = "Keeps the desktop-streamer services alive and tells people when they are not"
)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the watchdog (the default)
    Run,
    /// Check the configuration file: exit 0 if it is usable, 1 with every problem printed
    CheckConfig,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args.config.path_for::<WatchdogConfig>();
    match args.command.unwrap_or(Command::Run) {
        Command::CheckConfig => Ok(check_config::<WatchdogConfig>(&path, |_| Vec::new())),
        Command::Run => {
            ds_runtime::logging::init();
            let loaded = load_or_default::<WatchdogConfig>(&args.config)
                .with_context(|| format!("cannot use {}", path.display()))?;
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(watch(loaded.config))
        }
    }
}

async fn watch(config: WatchdogConfig) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    let _signals = ds_runtime::spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    tracing::info!(units = ?config.units, "desktop-streamer-watchdog started");
    shutdown.wait().await;
    Ok(ExitCode::SUCCESS)
}
