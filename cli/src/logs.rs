//! `logs [-f]`: the services' log lines through the dashboard. `-f` reads the dashboard's
//! stream (`/api/logs/stream`: the last lines, then each new one as it is written), and after
//! a lost connection opens it again every [`RETRY_INTERVAL`], printing only lines it has not
//! printed and none older than the newest it had.

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::client::{ApiError, Client};

/// How often `-f` tries again after losing the dashboard.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Lines asked for again after a lost connection, to fill the gap (those already printed are
/// skipped).
const RECONNECT_LINES: u32 = 200;
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

fn query(args: &LogsArgs, lines: &str) -> [(&'static str, Option<String>); 4] {
    [
        ("lines", Some(lines.to_owned())),
        ("level", args.level.clone()),
        ("q", args.grep.clone()),
        ("service", args.service.clone()),
    ]
}

fn borrowed<'a>(q: &'a [(&'static str, Option<String>)]) -> Vec<(&'static str, Option<&'a str>)> {
    q.iter().map(|(k, v)| (*k, v.as_deref())).collect()
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
    if args.follow {
        return follow(client, args, json).await;
    }
    let q = query(args, &args.lines.to_string());
    let answer: Value = client.get("/api/logs", &borrowed(&q)).await?;
    if json {
        println!("{answer}");
    } else {
        for l in answer["lines"].as_array().into_iter().flatten() {
            println!("{}", format_line(l));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn follow(client: &Client, args: &LogsArgs, json: bool) -> Result<ExitCode, ApiError> {
    let mut seen = Seen::default();
    let mut lines = args.lines;
    // After a reconnection: the newest line had before it; older ones are not printed.
    let mut newest: Option<jiff::Timestamp> = None;
    let mut floor: Option<jiff::Timestamp> = None;
    let mut connected_before = false;
    let mut failing = false;
    loop {
        let q = query(args, &lines.to_string());
        match client.open_stream("/api/logs/stream", &borrowed(&q)).await {
            Ok(mut response) => {
                if !connected_before {
                    eprintln!("following the logs at {} (Ctrl-C to stop)", client.base());
                } else if failing {
                    eprintln!("logs are available again");
                }
                (connected_before, failing) = (true, false);
                let mut events = EventReader::default();
                loop {
                    let chunk = tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                        chunk = response.chunk() => chunk,
                    };
                    let bytes = match chunk {
                        Ok(Some(bytes)) => bytes,
                        Ok(None) => break,
                        Err(e) => {
                            eprintln!("the log stream broke: {}", ds_runtime::error_chain(&e.without_url()));
                            failing = true;
                            break;
                        }
                    };
                    for data in events.push(&bytes) {
                        let Ok(line) = serde_json::from_str::<Value>(&data) else { continue };
                        let at = line["timestamp"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
                        if floor.is_some() && at < floor {
                            continue;
                        }
                        newest = newest.max(at);
                        if seen.insert(key(&line)) {
                            if json { println!("{line}") } else { println!("{}", format_line(&line)) }
                        }
                    }
                }
            }
            // The dashboard refused the request itself (a bad --level, say): trying again
            // would not help.
            Err(e @ ApiError::Refused { status, .. }) if status.is_client_error() => return Err(e),
            // Say it once, then keep trying: the web service may be restarting.
            Err(e) if !failing => {
                eprintln!("{e}; retrying every {} s", RETRY_INTERVAL.as_secs());
                failing = true;
            }
            Err(_) => {}
        }
        // Ask for the lines written meanwhile; with none had yet, there is no gap to fill.
        (lines, floor) = if newest.is_some() { (RECONNECT_LINES, newest) } else { (0, None) };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
    }
}

/// Splits server-sent events as they arrive; gives the data of each `log` event.
#[derive(Debug, Default)]
struct EventReader {
    pending: String,
}

impl EventReader {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.push_str(&String::from_utf8_lossy(bytes));
        self.pending = self.pending.replace("\r\n", "\n");
        let mut out = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let block: String = self.pending.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = Vec::new();
            for l in block.lines() {
                if let Some(v) = l.strip_prefix("event:") {
                    event = v.trim_start();
                } else if let Some(v) = l.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if event == "log" && !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_log_events_split_anywhere_and_skips_the_rest() {
        let mut r = EventReader::default();
        assert!(r.push(b"event: log\ndata: {\"a\"").is_empty());
        assert_eq!(
            r.push(b":1}\n\n: keep-alive\n\nevent: status\ndata: {}\n\nevent:log\r\ndata:{}\r\n\r\n"),
            ["{\"a\":1}", "{}"]
        );
    }
}
