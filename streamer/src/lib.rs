//! desktop-streamer: captures the kiosk's second monitor into a live HLS stream that heals
//! itself, and serves it with a health API on :8888.

pub mod encoder;
pub mod monitor;
pub mod playlist;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ds_config::StreamerConfig;
use ds_runtime::{ConfigArgs, Shutdown, check_config, load_or_default};

#[derive(Debug, Parser)]
#[command(name = "desktop-streamer", version, about = "Streams a kiosk's second monitor as self-healing live HLS")]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address of the health API and HLS server, overriding `listen` in the config
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub listen: Option<SocketAddr>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the streamer (the default)
    Run,
    /// Check the configuration file: exit 0 if it is usable, 1 with every problem printed
    CheckConfig,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args.config.path_for::<StreamerConfig>();
    match args.command.unwrap_or(Command::Run) {
        Command::CheckConfig => Ok(check_config::<StreamerConfig>(&path, |_| Vec::new())),
        Command::Run => {
            ds_runtime::logging::init();
            let loaded = load_or_default::<StreamerConfig>(&args.config)
                .with_context(|| format!("cannot use {}", path.display()))?;
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            let mut config = loaded.config;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

async fn serve(config: StreamerConfig) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    let _signals = ds_runtime::spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    tracing::info!(listen = %config.listen, output_dir = %config.output_dir.display(), "desktop-streamer started");
    shutdown.wait().await;
    Ok(ExitCode::SUCCESS)
}
