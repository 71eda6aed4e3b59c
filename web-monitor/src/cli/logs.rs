//! `logs [-f]`: the services' log lines through the dashboard. Following polls `/api/logs`
//! every [`FOLLOW_INTERVAL`] and prints only lines not printed before.

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::client::{ApiError, Client};

/// How often `-f` asks for new lines.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// How many printed lines `-f` remembers to avoid printing them twice.
const REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Keep printing new lines until Ctrl-C
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the newest lines to show
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: u32,
    /// Only this level and worse: error, warn, info, debug or trace
    #[arg(long)]
    pub level: Option<String>,
    /// Only lines containing this text
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Only this service, e.g. desktop-streamer
    #[arg(long)]
    pub service: Option<String>,
}

async fn fetch(client: &Client, args: &LogsArgs) -> Result<Value, ApiError> {
    let lines = args.lines.to_string();
    client
        .get(
            "/api/logs",
            &[
                ("lines", Some(&lines)),
                ("level", args.level.as_deref()),
                ("q", args.grep.as_deref()),
                ("service", args.service.as_deref()),
            ],
        )
        .await
}

/// `TIME LEVEL service: message`.
pub fn format_line(l: &Value) -> String {
    format!(
        "{} {:<5} {}: {}",
        l["timestamp"].as_str().unwrap_or("-"),
        l["level"].as_str().unwrap_or("-").to_uppercase(),
        l["service"].as_str().unwrap_or("?"),
        l["message"].as_str().unwrap_or("")
    )
}

fn key(l: &Value) -> (String, String) {
    (l["timestamp"].to_string(), l["message"].to_string())
}

pub async fn run(client: &Client, args: &LogsArgs, json: bool) -> Result<ExitCode, ApiError> {
    let first = fetch(client, args).await?;
    let mut seen = Seen::default();
    let lines = first["lines"].as_array().cloned().unwrap_or_default();
    if json && !args.follow {
        println!("{first}");
        return Ok(ExitCode::SUCCESS);
    }
    let print = |l: &Value| if json { println!("{l}") } else { println!("{}", format_line(l)) };
    for l in &lines {
        seen.insert(key(l));
        print(l);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        match fetch(client, args).await {
            Ok(v) => {
                if failing {
                    eprintln!("logs are available again");
                    failing = false;
                }
                for l in v["lines"].as_array().into_iter().flatten() {
                    if seen.insert(key(l)) {
                        print(l);
                    }
                }
            }
            // Say it once, then keep trying: the web service may be restarting.
            Err(e) if !failing => {
                eprintln!("{e}; retrying every {} s", FOLLOW_INTERVAL.as_secs());
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// The keys of the last [`REMEMBERED`] lines printed.
#[derive(Debug, Default)]
struct Seen {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Seen {
    /// True when `k` is new.
    fn insert(&mut self, k: (String, String)) -> bool {
        if !self.set.insert(k.clone()) {
            return false;
        }
        self.order.push_back(k);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}
