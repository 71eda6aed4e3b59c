//! `desktop-streamer-monitor`: the command line for operators and scripts. It talks to the
//! dashboard's API (the URL from the web config's `listen`, or `--url` for another kiosk) and,
//! when the dashboard is down, to the streamer's own health API (and, for `status`, to systemd
//! over D-Bus on the bus the web config names), so `status` and `check` still say what they can.

mod cameras;
mod check;
mod client;
mod logs;
mod status;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ds_config::WebConfig;
use ds_runtime::{ConfigArgs, load_or_default};
use ds_wire::alerts::AlertsReply;
use ds_wire::cameras::CameraList;
use ds_wire::health::HealthReport;
use ds_wire::status::{ActionReply, DashboardStatus, UnitStatus};
use ds_wire::system::ClockSync;
use serde_json::{Value, json};

use self::check::{Level, Observed, Thresholds, Verdict};
use self::client::{ApiError, Client};

/// Where the streamer's own HTTP API listens on a kiosk.
pub const DEFAULT_STREAMER_URL: &str = "http://127.0.0.1:8888";
/// The environment variable holding the API token for `restart` and `cleanup`.
pub const TOKEN_ENV: &str = "DESKTOP_STREAMER_TOKEN";

#[derive(Debug, Parser)]
#[command(name = "desktop-streamer-monitor", version, about = "Command line for a desktop-streamer kiosk")]
pub struct Args {
    /// The web monitor's configuration file, to find the dashboard
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The dashboard's URL [default: from `listen` in the web config]
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// A CA certificate (PEM) trusted for an https:// dashboard besides the system's
    /// [default: the web config's `tls_cert_file` when --url is not given]
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The streamer's own API, asked when the dashboard cannot be reached
    #[arg(long, global = true, value_name = "URL", default_value = DEFAULT_STREAMER_URL)]
    pub streamer_url: String,
    /// API token for restart and cleanup (create one with `desktop-streamer-web new-token NAME --scope control`)
    #[arg(long, global = true, env = TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
    /// JSON for scripts instead of text: what the API returned (status, logs, cameras), the
    /// verdict in fields (check)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Services, stream, machine and recent alerts on one screen (the default)
    Status,
    /// Nagios/Icinga plugin: one line with performance data; exit 0 OK, 1 WARNING, 2 CRITICAL,
    /// 3 UNKNOWN
    Check {
        /// Newest segment age in seconds above which the check warns
        #[arg(long, default_value_t = 10.0)]
        warning: f64,
        /// Newest segment age in seconds above which the check is critical
        #[arg(long, default_value_t = 30.0)]
        critical: f64,
    },
    /// The services' log lines: `TIME LEVEL service: message`
    Logs(logs::LogsArgs),
    /// Restart a service through the dashboard (needs a token)
    Restart {
        #[arg(value_enum, default_value_t = Service::Streamer)]
        service: Service,
    },
    /// Remove stale stream files through the dashboard (needs a token)
    Cleanup,
    /// The cameras: state, reason, latency, resolution and uptime
    Cameras,
    /// Check the web monitor's configuration file and the camera list it names
    CheckConfig,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Service {
    Streamer,
    Watchdog,
    Web,
}

impl Service {
    pub fn unit(self) -> &'static str {
        match self {
            Service::Streamer => check::STREAMER_UNIT,
            Service::Watchdog => "desktop-streamer-watchdog.service",
            Service::Web => "desktop-streamer-web.service",
        }
    }
}

/// Parses the command line. A usage error in `check` exits 3 (UNKNOWN), not clap's 2, which
/// monitoring would read as CRITICAL.
pub fn parse() -> Args {
    Args::try_parse().unwrap_or_else(|e| {
        if e.use_stderr() && std::env::args().skip(1).any(|a| a == "check") {
            let _ = e.print();
            std::process::exit(i32::from(Level::Unknown as u8));
        }
        e.exit()
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let command = args.command.as_ref().unwrap_or(&Command::Status);
    if let Command::CheckConfig = command {
        let path = args.config.path_for::<WebConfig>();
        return Ok(ds_runtime::check_config::<WebConfig>(&path, |web| web.camera_list_problems(&path)));
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let check_limits = match *command {
        Command::Check { warning, critical } if warning > critical => {
            println!("{}", Verdict::unknown(format!("--warning {warning} is above --critical {critical}")));
            return Ok(Level::Unknown.exit_code());
        }
        Command::Check { warning, critical } => Some(Thresholds { warning, critical }),
        _ => None,
    };
    let web = match web_url(&args) {
        Ok(Dashboard { url, ca_file }) => Client::new(&url, args.token.clone(), ca_file.as_deref()),
        Err(e) if check_limits.is_some() => {
            println!("{}", Verdict::unknown(format!("{e:#}")));
            return Ok(Level::Unknown.exit_code());
        }
        Err(e) => return Err(e),
    };
    let streamer = Client::new(&args.streamer_url, None, None);
    let (web, streamer) = match (web, streamer) {
        (Ok(w), Ok(s)) => (w, s),
        (Err(e), _) | (_, Err(e)) => {
            if check_limits.is_some() {
                println!("{}", Verdict::unknown(e.to_string()));
                return Ok(Level::Unknown.exit_code());
            }
            return Err(e.into());
        }
    };
    runtime.block_on(async {
        match command {
            Command::Status => status(&web, &streamer, &args.config, args.json).await,
            Command::Check { .. } => {
                Ok(check(&web, &streamer, check_limits.unwrap_or(DEFAULT_LIMITS), args.json).await)
            }
            Command::Logs(l) => Ok(logs::run(&web, l, args.json).await?),
            Command::Restart { service } => {
                control(&web, "restart", "/api/service/restart", json!({"unit": service.unit()})).await
            }
            Command::Cleanup => control(&web, "cleanup", "/api/stream/cleanup", json!({})).await,
            Command::Cameras => cameras(&web, args.json).await,
            Command::CheckConfig => Ok(ExitCode::SUCCESS),
        }
    })
}

const DEFAULT_LIMITS: Thresholds = Thresholds { warning: 10.0, critical: 30.0 };

/// Where the dashboard is and which CA file to trust for it.
struct Dashboard {
    url: String,
    ca_file: Option<std::path::PathBuf>,
}

/// `--url` and `--ca-file`, or the web config's `listen` with a wildcard address replaced by
/// loopback (the CLI runs on the kiosk itself): `https://` trusting its `tls_cert_file` (unless
/// `--ca-file` names another) when the config has one, else `http://`.
fn web_url(args: &Args) -> anyhow::Result<Dashboard> {
    if let Some(url) = &args.url {
        return Ok(Dashboard { url: url.clone(), ca_file: args.ca_file.clone() });
    }
    let path = args.config.path_for::<WebConfig>();
    let mut web = load_or_default::<WebConfig>(&args.config)
        .with_context(|| format!("cannot find the dashboard's address in {} (or pass --url)", path.display()))?
        .config;
    web.resolve_paths(&path);
    let url = listen_url(web.listen);
    Ok(match web.tls_files() {
        Some((cert, _)) => Dashboard {
            url: url.replacen("http://", "https://", 1),
            ca_file: Some(args.ca_file.clone().unwrap_or_else(|| cert.to_owned())),
        },
        None => Dashboard { url, ca_file: args.ca_file.clone() },
    })
}

fn listen_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

async fn status(web: &Client, streamer: &Client, config: &ConfigArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (doc, alerts, cams) = tokio::join!(
        web.get::<DashboardStatus>("/api/status", &[]),
        web.get::<AlertsReply>("/api/alerts", &[]),
        web.get::<CameraList>("/api/cameras", &[])
    );
    let p = status::Paint::for_stdout();
    let mut out = String::new();
    match doc {
        Ok(doc) => {
            if json {
                println!("{}", json!({"status": doc, "alerts": alerts.ok(), "cameras": cams.ok()}));
                return Ok(ExitCode::SUCCESS);
            }
            status::services(&mut out, p, &doc.services);
            match &doc.health {
                None => out.push_str(&format!("{}\n", p.heading("Stream"))),
                Some(h) => status::stream(&mut out, p, h),
            }
            for u in &doc.unreachable {
                out.push_str(&format!("  {}\n", p.bad(&format!("{} unreachable: {}", u.part, u.error))));
            }
            if let Some(system) = &doc.system {
                status::machine(&mut out, p, system);
            }
            if let Some(clock) = &doc.clock {
                if doc.system.is_none() {
                    out.push_str(&format!("{}\n", p.heading("Machine")));
                }
                status::clock(&mut out, p, clock);
            }
            match cams {
                Ok(c) => cameras::summary(&mut out, p, &c),
                Err(e) => out.push_str(&format!("{}\n  {}\n", p.heading("Cameras"), p.warn(&e.to_string()))),
            }
            match alerts {
                Ok(a) => status::alerts(&mut out, p, &a),
                Err(e) => out.push_str(&format!("{}\n  {}\n", p.heading("Recent alerts"), p.warn(&e.to_string()))),
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Err(web_error) => {
            // The dashboard is down: still say what systemd and the streamer itself report.
            let (health, units, clock) =
                tokio::join!(streamer.get::<HealthReport>("/api/health", &[]), unit_states(config), clock_sync());
            if json {
                let health = health.as_ref().ok();
                let doc = json!({
                    "web_unreachable": {"url": web.base(), "error": web_error.to_string()},
                    "health": health,
                    "services": units.as_ref().ok().map(|(_, u)| u),
                    "systemd_unreachable": units.as_ref().err(),
                    "clock": clock,
                });
                println!("{doc}");
                return Ok(if health.is_some() || units.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            out.push_str(&format!("{}\n", p.bad(&format!("web service unreachable at {}: {web_error}", web.base()))));
            let units_answered = units.is_ok();
            match units {
                Ok((bus, u)) => {
                    out.push_str(&format!("(from systemd on the {bus})\n"));
                    status::services(&mut out, p, &u);
                }
                Err(e) => out.push_str(&format!("{}\n  {}\n", p.heading("Services"), p.bad(&format!("systemd: {e}")))),
            }
            let health_answered = health.is_ok();
            match health {
                Ok(h) => {
                    out.push_str(&format!("(from the streamer's own API at {})\n", streamer.base()));
                    status::stream(&mut out, p, &h);
                }
                Err(e) => out.push_str(&format!("{}\n  {}\n", p.heading("Stream"), p.bad(&format!("streamer: {e}")))),
            }
            out.push_str(&format!("{}\n", p.heading("Machine")));
            status::clock(&mut out, p, &clock);
            print!("{out}");
            Ok(if health_answered || units_answered { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// Whether the wall clock is synchronised, straight from systemd-timedated (while the dashboard,
/// which normally tells, is down).
async fn clock_sync() -> ClockSync {
    let ask = async { ds_systemd::Timedate::connect().await?.read().await };
    ask.await.unwrap_or_else(|e| ClockSync::unknown(e.to_string()))
}

/// The watched units' states straight from systemd, on the bus and for the units the web
/// config names (its defaults without one): what `status` shows while the dashboard is down.
/// The bus's name for messages, and the states as `/api/status` lists them.
async fn unit_states(config: &ConfigArgs) -> Result<(String, Vec<UnitStatus>), String> {
    let web = load_or_default::<WebConfig>(config)
        .map_err(|e| format!("cannot read the web config {}: {e}", config.path_for::<WebConfig>().display()))?
        .config;
    let ask = async {
        let systemd = ds_systemd::Systemd::connect(match web.bus {
            ds_config::watchdog::Bus::System => ds_systemd::Bus::System,
            ds_config::watchdog::Bus::Session => ds_systemd::Bus::Session,
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut states = Vec::with_capacity(web.units.len());
        for unit in &web.units {
            let state = systemd.unit(unit).await.map_err(|e| e.to_string())?;
            states.push(UnitStatus::from(&state));
        }
        Ok((systemd.bus().to_owned(), states))
    };
    tokio::time::timeout(client::REQUEST_TIMEOUT, ask)
        .await
        .unwrap_or_else(|_| Err(format!("systemd did not answer within {} s", client::REQUEST_TIMEOUT.as_secs())))
}

async fn cameras(web: &Client, json: bool) -> anyhow::Result<ExitCode> {
    match web.get::<CameraList>("/api/cameras", &[]).await {
        Ok(list) if json => println!("{}", serde_json::to_string(&list).unwrap_or_default()),
        Ok(list) => {
            let mut out = String::new();
            cameras::table(&mut out, status::Paint::for_stdout(), &list);
            print!("{out}");
        }
        Err(e) => {
            eprintln!("cannot list the cameras: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(web: &Client, streamer: &Client, limits: Thresholds, json: bool) -> ExitCode {
    let (verdict, source) = match web.get::<DashboardStatus>("/api/status", &[]).await {
        Ok(doc) => (check::evaluate(&Observed::from_status(&doc), limits), Some(web.base())),
        Err(web_error) => match streamer.get::<HealthReport>("/api/health", &[]).await {
            Ok(h) => {
                let services = Err(format!("web service unreachable at {}: {web_error}", web.base()));
                (check::evaluate(&Observed { health: Ok(&h), services }, limits), Some(streamer.base()))
            }
            Err(e) => {
                (Verdict::unknown(format!("neither the web service nor the streamer answers: {web_error}; {e}")), None)
            }
        },
    };
    if json {
        let mut doc = verdict.to_json();
        doc["source"] = json!(source);
        println!("{doc}");
    } else {
        println!("{verdict}");
    }
    verdict.level.exit_code()
}

async fn control(web: &Client, what: &str, path: &str, body: Value) -> anyhow::Result<ExitCode> {
    if web.token().is_none() {
        eprintln!(
            "{what} needs an API token: pass --token or set {TOKEN_ENV} \
             (create one with `desktop-streamer-web new-token NAME --scope control`)"
        );
        return Ok(ExitCode::FAILURE);
    }
    match web.post(path, &body).await {
        Ok(reply) => {
            println!("{}", describe_reply(what, &reply));
            Ok(ExitCode::SUCCESS)
        }
        Err(ApiError::Refused { status, message, .. }) => {
            eprintln!("{what} refused ({status}): {message}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("{what} failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `desktop-streamer.service: active (running)` for a unit action, else the reply's message.
fn describe_reply(what: &str, reply: &ActionReply) -> String {
    if let (Some(unit), Some(state)) = (&reply.unit, &reply.state) {
        return format!("{unit}: {what} done, now {} ({})", state.active_state, state.sub_state);
    }
    match &reply.message {
        Some(m) => format!("{what}: {m}"),
        None => format!("{what}: {}", serde_json::to_string(reply).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        assert_eq!(listen_url("0.0.0.0:8080".parse().unwrap()), "http://127.0.0.1:8080");
        assert_eq!(listen_url("[::]:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(listen_url("192.168.1.5:8080".parse().unwrap()), "http://192.168.1.5:8080");
    }
}
