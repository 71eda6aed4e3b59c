//! desktop-streamer-web: the operator's dashboard on :8080. It runs the camera monitor
//! (`ds-camera-monitor`) in its process and serves what it finds; its HTTP layer is [`http`].

pub mod auth;
pub mod clock_sync;
pub mod history;
pub mod http;
pub mod logs;
pub mod openapi;
pub mod settings;
pub mod snapshot;
pub mod systemd_link;
pub mod upstream;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ds_config::WebConfig;
use ds_runtime::{ConfigArgs, Shutdown};

#[derive(Debug, Parser)]
#[command(name = "desktop-streamer-web", version, about = "Dashboard and camera heartbeat monitor of desktop-streamer")]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address of the dashboard, overriding `listen` in the config
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub listen: Option<SocketAddr>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the dashboard (the default)
    Run,
    /// Check the configuration file and the camera list it names: exit 0 if both are usable,
    /// 1 with every problem printed
    CheckConfig,
    /// Set the dashboard's admin password: asked twice without echo on a terminal, else the first
    /// line of stdin; or --generate one and print it once
    SetPassword {
        /// Generate a random password and print it once
        #[arg(long)]
        generate: bool,
    },
    /// Create an API token for scripts (`Authorization: Bearer …`) and print it once
    NewToken {
        /// A name for the token, e.g. nagios
        label: String,
        /// What it may do: read (everything the dashboard shows), control (also restart the
        /// stream, clean up segments, start, stop and restart the services) or admin (also change
        /// the camera list)
        #[arg(long, default_value = "read", value_parser = parse_scope)]
        scope: auth::Scope,
    },
    /// Revoke the API token with this label
    RevokeToken { label: String },
}

fn parse_scope(s: &str) -> Result<auth::Scope, String> {
    s.parse()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(Command::Run) {
        Command::CheckConfig => Ok(settings::check(&args.config)),
        Command::SetPassword { generate } => {
            let file = settings::load(&args.config)?.web.auth_file;
            let password = if generate { auth::generate_password() } else { auth::read_new_password()? };
            auth::set_password(&file, &password)?;
            if generate {
                println!("{password}");
            }
            eprintln!("admin password set in {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::NewToken { label, scope } => {
            let file = settings::load(&args.config)?.web.auth_file;
            println!("{}", auth::new_token(&file, &label, scope)?);
            eprintln!(
                "token `{label}` (scope {scope}) stored (hashed) in {}; it is shown only this once",
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::RevokeToken { label } => {
            let file = settings::load(&args.config)?.web.auth_file;
            auth::revoke_token(&file, &label)?;
            eprintln!("token `{label}` revoked");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let _log = ds_runtime::logging::init("desktop-streamer-web");
            let mut settings = settings::load(&args.config)?;
            if let Some(listen) = args.listen {
                settings.web.listen = listen;
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(settings.web))
        }
    }
}

async fn serve(config: WebConfig) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    // Before anything is started: a certificate that cannot be used stops the start, naming
    // the file and what is wrong.
    let certificate = settings::certificate(&config)?;
    let signals = ds_runtime::spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    tokio::spawn(reload_on_sighup(signals, certificate.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (set `listen` or --listen to a free address)", config.listen))?;
    let bound = listener.local_addr().context("cannot read the listening address")?;
    let systemd = systemd_link::SystemdLink::start(systemd_bus(config.bus), shutdown.clone()).await;
    let streamer = upstream::Streamer::new(&config.streamer_url, config.streamer_token_file.as_deref());
    let history = history::History::new();
    let machine = ds_runtime::system::SystemMonitor::default();
    tokio::spawn(machine.clone().run(stream_output_dir(&config), shutdown.clone()));
    let clock = clock_sync::ClockWatch::start(shutdown.clone()).await;
    let sources = snapshot::Sources {
        streamer: streamer.clone(),
        systemd: systemd.clone(),
        units: config.units.clone(),
        machine,
        clock: clock.clone(),
    };
    let status = snapshot::StatusCache::start(sources, history.clone(), shutdown.clone()).await;
    let monitor = ds_camera_monitor::CameraMonitor::start(&config, clock.subscribe()).await?;
    let served = std::sync::Arc::new(ds_http::serve::Served::default());
    let state = http::AppState {
        streamer,
        config: std::sync::Arc::new(config),
        systemd,
        status,
        history,
        cameras: http::cameras::Cameras::new(monitor.fleet.clone(), monitor.live.clone(), monitor.store.clone())
            .with_thumbnails(monitor.thumbnails.clone()),
        served: std::sync::Arc::clone(&served),
        logs: http::LogPlaces::default(),
    };
    let (transport, scheme) = match &certificate {
        Some(certificate) => (ds_http::serve::Transport::Https(ds_http::tls::server_config(certificate)), "https"),
        None => (ds_http::serve::Transport::Http, "http"),
    };
    tracing::info!(listen = %bound, scheme, "desktop-streamer-web started");
    let auth = auth::AuthState::new(auth::AuthSettings::from_config(&state.config).public_paths(http::PUBLIC_PATHS));
    let app = http::app(state, auth);
    let drain = shutdown.clone();
    let limits = ds_http::serve::Limits::default();
    let server = ds_http::serve::serve_over(listener, transport, app, limits, served, async move {
        drain.wait().await;
    });
    // Open pages hold endless event streams (status, logs): after SIGTERM they get
    // DRAIN_LIMIT to finish, then the service exits anyway.
    tokio::select! {
        () = server => {}
        () = async { shutdown.wait().await; tokio::time::sleep(DRAIN_LIMIT).await } => {
            tracing::info!(limit_s = DRAIN_LIMIT.as_secs(), "closing the connections still open after the drain limit");
        }
    }
    // Heartbeats still queued for the database are committed before the exit.
    monitor.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: the certificate and key files are read again (a renewed certificate is served
/// without a restart; one that cannot be used is logged and the one in use stays). The rest
/// of the configuration is read at start only.
async fn reload_on_sighup(
    mut signals: tokio::sync::mpsc::UnboundedReceiver<ds_runtime::SignalEvent>,
    certificate: Option<ds_http::tls::Certificate>,
) {
    while let Some(event) = signals.recv().await {
        let (ds_runtime::SignalEvent::Reload, Some(certificate)) = (event, &certificate) else { continue };
        match certificate.reload() {
            Ok(()) => tracing::info!(
                cert_file = %certificate.cert_file().display(),
                "SIGHUP: certificate and key read again; new connections get them"
            ),
            Err(e) => tracing::error!(error = %e, "SIGHUP: the certificate in use stays"),
        }
    }
}

/// Where the streamer writes its stream (its config's `output_dir`), whose filesystem's use
/// the dashboard shows; the default when the streamer's config cannot be read.
fn stream_output_dir(config: &WebConfig) -> std::path::PathBuf {
    match ds_config::load_file::<ds_config::StreamerConfig>(&config.streamer_config) {
        Ok(loaded) => loaded.config.output_dir,
        Err(_) => ds_config::StreamerConfig::default().output_dir,
    }
}

/// How long open connections may delay the exit after SIGTERM.
pub const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The bus the config names, as the systemd client takes it.
pub fn systemd_bus(bus: ds_config::watchdog::Bus) -> ds_systemd::Bus {
    match bus {
        ds_config::watchdog::Bus::System => ds_systemd::Bus::System,
        ds_config::watchdog::Bus::Session => ds_systemd::Bus::Session,
    }
}
