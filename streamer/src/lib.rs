//! desktop-streamer: captures the kiosk's second monitor into a live HLS stream that heals
//! itself, and serves it with a health API on :8888.

pub mod access;
pub mod encoder;
pub mod feed;
pub mod flow;
pub mod h264;
pub mod health;
pub mod http;
pub mod ladder;
pub mod live;
pub mod llhls;
pub mod metrics;
pub mod monitor;
pub mod mpegts;
pub mod notify;
pub mod pipeline;
pub mod playlist;
pub mod pressure;
pub mod segmenter;
pub mod status;
pub mod supervisor;
pub mod webrtc;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ds_config::StreamerConfig;
use ds_runtime::{ConfigArgs, Shutdown, SignalEvent, check_config, load_or_default};
use status::StatusHandle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

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
    /// Run one pipeline for the streamer (started by the streamer itself; speaks JSON lines)
    #[command(hide = true)]
    Worker,
    /// Print the GStreamer pipeline the streamer would run now, in gst-launch-1.0 syntax, ending
    /// in hlssink2 (the streamer itself cuts segments and parts from h264parse's output)
    PrintPipeline {
        /// Segment file pattern for hlssink2's `location`
        #[arg(long, default_value = "/tmp/desktop-streamer-pipeline/seg%05d.ts")]
        location: PathBuf,
    },
}

/// The X display to capture: `$DISPLAY`, else `:0`.
fn x_display_name() -> String {
    std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| ":0".to_owned())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = args.config.path_for::<StreamerConfig>();
    let command = args.command.unwrap_or(Command::Run);
    match command {
        Command::CheckConfig => return Ok(check_config::<StreamerConfig>(&path, |_| Vec::new())),
        // A worker speaks only its protocol; its parent already loaded the configuration.
        Command::Worker => return Ok(worker::child_main()),
        _ => {}
    }
    let _log = ds_runtime::logging::init("desktop-streamer");
    let loaded =
        load_or_default::<StreamerConfig>(&args.config).with_context(|| format!("cannot use {}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let mut config = loaded.config;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    match command {
        Command::PrintPipeline { location } => print_pipeline(&config, &location),
        _ => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config, args.config))
        }
    }
}

fn print_pipeline(config: &StreamerConfig, location: &std::path::Path) -> anyhow::Result<ExitCode> {
    let x_display = x_display_name();
    let monitors = monitor::list_monitors(&x_display)?;
    let selection = monitor::Selection::from_config(config);
    let source = match selection.resolve(&x_display, &monitors) {
        monitor::MonitorState::Available(m) => pipeline::Source::Screen { display: x_display, monitor: m },
        other => anyhow::bail!("no monitor to capture: {other:?}"),
    };
    let choice = encoder::select_encoder(config, &[])?;
    println!("{}", pipeline::describe(&source, &choice, config, pipeline::Sink::Hlssink2 { location }));
    Ok(ExitCode::SUCCESS)
}

/// How long the HTTP server may take to finish answering after shutdown began.
const HTTP_DRAIN: Duration = Duration::from_secs(2);

async fn serve(config: StreamerConfig, config_args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    let mut signals = ds_runtime::spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    let status = StatusHandle::new(config.monitoring.error_events_history_size as usize);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (set `listen` or --listen to a free address)", config.listen))?;
    let bound = listener.local_addr().context("cannot read the listening address")?;
    let playlist = supervisor::open_playlist(&config)
        .with_context(|| format!("cannot use the output directory {}", config.output_dir.display()))?;
    let x_display = x_display_name();
    let (watcher, monitor_rx) = monitor::MonitorWatcher::spawn(&x_display, monitor::Selection::from_config(&config))
        .context("cannot start the monitor watcher")?;
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let system = ds_runtime::system::SystemMonitor::default();
    let mut tasks = JoinSet::new();
    tasks.spawn(system.clone().run(config.output_dir.clone(), shutdown.clone()));
    // The one encoder's output: the worker writes it, the WebRTC viewers read it.
    let feed = feed::Feed::new();
    let viewers = match webrtc::Viewers::start(feed.clone(), config_rx.clone(), shutdown.clone()).await {
        Ok(v) => {
            tracing::info!(media = ?v.media_addrs(), "WebRTC (WHEP) ready at /whep/desktop");
            Some(v)
        }
        Err(e) => {
            // HLS goes on without it; WHEP answers 503 and says so.
            tracing::error!(error = %e, "WebRTC viewers are off");
            None
        }
    };
    // Low-latency HLS: the supervisor cuts parts into it, HTTP serves them.
    let live = live::LiveHls::new(config.output_dir.clone(), live::PartTiming::for_fps(config.fps));
    let served = Arc::new(ds_http::serve::Served::default());
    let app = http::app(http::AppState {
        status: status.clone(),
        config: config_rx.clone(),
        system,
        viewers,
        live: live.clone(),
        served: Arc::clone(&served),
    });
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        ds_http::serve::serve(listener, app, ds_http::serve::Limits::default(), served, async move {
            http_shutdown.wait().await;
        })
        .await;
    });
    tracing::info!(listen = %bound, display = %x_display, output_dir = %config.output_dir.display(), "desktop-streamer started");

    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    let exe = worker::current_exe().context("cannot find this program to start capture processes")?;
    let sup = supervisor::Supervisor::new(
        config_rx,
        status,
        monitor_rx,
        x_display,
        requests_rx,
        shutdown.clone(),
        playlist,
        worker::WorkerProcesses::new(exe, feed.clone()),
        feed,
        live,
    );
    let mut supervised = tokio::spawn(sup.run());
    let exit = loop {
        tokio::select! {
            exit = &mut supervised => break exit.context("the supervisor panicked")?,
            Some(event) = signals.recv() => match event {
                SignalEvent::Restart => { let _ = requests_tx.send(supervisor::Request::Restart("SIGUSR1".into())); }
                SignalEvent::Cleanup => { let _ = requests_tx.send(supervisor::Request::Cleanup); }
                SignalEvent::Reload => reload(&config_args, &config_tx),
            },
        }
    };
    shutdown.trigger();
    drop(watcher);
    let _ = tokio::time::timeout(HTTP_DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    match exit {
        supervisor::Exit::Shutdown => Ok(ExitCode::SUCCESS),
        supervisor::Exit::Escalate(why) => {
            anyhow::bail!("giving up in this process so that systemd starts a fresh one: {why}")
        }
    }
}

/// SIGHUP: load the file again; a bad file is refused and the running configuration stays.
/// Keys that shape the running process itself take effect at the next start.
fn reload(args: &ConfigArgs, config_tx: &watch::Sender<Arc<StreamerConfig>>) {
    let path = args.path_for::<StreamerConfig>();
    let mut new = match ds_config::load_file::<StreamerConfig>(&path) {
        Ok(loaded) => loaded.config,
        Err(problems) => {
            tracing::error!(file = %path.display(), "new configuration refused; the running one stays:\n{problems}");
            return;
        }
    };
    let old = config_tx.borrow().clone();
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($field:ident).+) => {
            if new.$($field).+ != old.$($field).+ {
                new.$($field).+ = old.$($field).+.clone();
                kept.push(stringify!($($field).+));
            }
        };
    }
    keep!(listen);
    keep!(output_dir);
    keep!(segment_duration);
    keep!(screen);
    keep!(monitor);
    keep!(webrtc_udp_port);
    keep!(webrtc_tcp_port);
    keep!(webrtc_addresses);
    if !kept.is_empty() {
        tracing::warn!(keys = ?kept, "these keys take effect at the next start (systemctl restart desktop-streamer)");
    }
    if *old == new {
        tracing::info!("configuration unchanged");
    } else {
        tracing::info!(file = %path.display(), "configuration reloaded");
        config_tx.send_replace(Arc::new(new));
    }
}
