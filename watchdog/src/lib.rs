//! desktop-streamer-watchdog: watches the desktop-streamer units over systemd's D-Bus API,
//! heals them, and alerts people by email and webhooks.

pub mod alert;

/// systemd over D-Bus lives in its own crate, shared with the dashboard.
pub use ds_systemd as systemd;
pub mod channel;
pub mod checks;
pub mod clock;
pub mod conditions;
pub mod daemon;
pub mod delivery;
pub mod email;
pub mod history;
pub mod last_seen;
pub mod outbox;
pub mod policy;
pub mod recovery;
pub mod startup;
mod state_file;
pub mod webhook;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ds_config::WatchdogConfig;
use ds_runtime::{ConfigArgs, Shutdown, check_config, load_or_default};

use crate::conditions::Finding;

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
    /// Send a test alert through every enabled channel now and print each result
    TestAlert,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args.config.path_for::<WatchdogConfig>();
    match args.command.unwrap_or(Command::Run) {
        Command::CheckConfig => Ok(check_config::<WatchdogConfig>(&path, |_| Vec::new())),
        Command::TestAlert => {
            let loaded = load_or_default::<WatchdogConfig>(&args.config)
                .with_context(|| format!("cannot use {}", path.display()))?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(test_alert(loaded.config))
        }
        Command::Run => {
            let _log = ds_runtime::logging::init("desktop-streamer-watchdog");
            let (config, trouble) = startup::config_for_run(&args.config);
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(watch(config, trouble, &args.config))
        }
    }
}

/// Runs the daemon, alerting `trouble` first (the configuration it runs with is not the file's);
/// SIGHUP reloads the configuration: a good file restarts the daemon with it, a bad one is
/// refused (and alerted) while the running configuration stays.
async fn watch(
    mut config: WatchdogConfig,
    mut trouble: Option<Finding>,
    args: &ConfigArgs,
) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    let mut signals = ds_runtime::spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    let path = args.path_for::<WatchdogConfig>();
    loop {
        let run_shutdown = shutdown.child();
        let (refused_tx, refused_rx) = tokio::sync::mpsc::unbounded_channel();
        if let Some(t) = trouble.take() {
            let _ = refused_tx.send(t);
        }
        let mut daemon = tokio::spawn(daemon::run(config.clone(), run_shutdown.clone(), refused_rx));
        let reloaded = loop {
            tokio::select! {
                done = &mut daemon => {
                    done.context("the watchdog panicked")??;
                    return Ok(ExitCode::SUCCESS);
                }
                Some(event) = signals.recv() => {
                    if event != ds_runtime::SignalEvent::Reload {
                        continue;
                    }
                    match ds_config::load_file::<WatchdogConfig>(&path) {
                        Ok(loaded) => {
                            startup::keep_last_good(&path, &loaded.config);
                            break loaded.config;
                        }
                        Err(problems) => {
                            tracing::error!(file = %path.display(), "new configuration refused; the running one stays:\n{problems}");
                            let _ = refused_tx.send(startup::reload_refused(&problems));
                        }
                    }
                }
            }
        };
        tracing::info!(file = %path.display(), "configuration reloaded; restarting the watchdog with it");
        run_shutdown.trigger();
        daemon.await.context("the watchdog panicked")??;
        config = reloaded;
    }
}

/// `test-alert`: one info alert through each enabled channel, directly (not via the outbox),
/// with each result printed, so an operator can check the SMTP and webhook settings at once.
async fn test_alert(config: WatchdogConfig) -> anyhow::Result<ExitCode> {
    let (channels, problems) = match channel::channels_from_config(&config) {
        Ok(c) => (c, Vec::new()),
        Err(e) => (e.usable, e.errors.iter().map(ToString::to_string).collect()),
    };
    for p in &problems {
        println!("unusable: {p}");
    }
    if channels.is_empty() && problems.is_empty() {
        println!("no alert channel is enabled: set email_alerts.enabled or webhook_alerts.enabled");
        return Ok(ExitCode::FAILURE);
    }
    let now = jiff::Timestamp::now();
    let host = daemon::host_name();
    let alert = alert::Alert {
        id: format!("test-{}", now.as_millisecond()),
        kind: "test".into(),
        severity: alert::Severity::Info,
        title: "test alert".into(),
        details: format!(
            "This is a test alert from desktop-streamer-watchdog on {host}. If you read this, alerts reach you."
        ),
        since: now,
        raised_at: now,
        action: None,
        host,
        dashboard_url: Some(config.dashboard().to_owned()),
    };
    let mut ok = problems.is_empty();
    for c in &channels {
        match c.deliver(&alert).await {
            Ok(()) => println!("ok: {}", c.id()),
            Err(e) => {
                ok = false;
                println!("failed: {}: {e}", c.id());
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
