//! `logs [-f]`: the services' log lines through the dashboard. `-f` reads the dashboard's
//! stream (`/api/logs/stream`: the last lines, then each new one as it is written), and after
//! a lost connection opens it again every [`RETRY_INTERVAL`], printing only lines it has not
//! printed and none from before the last line it printed of each service.
//!
//! Lines are told apart by what they are, never by their timestamps: the wall clock that
//! stamped them may step back (NTP, an operator), and a line stamped before the newest one
//! printed is still new. After a reconnect, each service's lines are matched by position: those
//! up to the last line printed of that service (found by its exact identity) were printed or
//! came before the follow began; those after it are new. See [`Follower`].

use std::collections::{HashMap, HashSet, VecDeque};
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
/// After a reconnect, the backlog is taken to be over when the stream is quiet this long.
const BACKLOG_QUIET: Duration = Duration::from_millis(300);

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

/// A line's identity: the whole line as the dashboard sent it (service, time, level, message,
/// fields), so two different lines with the same time and message are both printed.
fn identity(l: &Value) -> String {
    l.to_string()
}

fn service(l: &Value) -> String {
    l["service"].as_str().unwrap_or("?").to_owned()
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
    let mut follower = Follower::default();
    let mut lines = args.lines;
    let mut connected_before = false;
    let mut failing = false;
    let print = |line: &Value| if json { println!("{line}") } else { println!("{}", format_line(line)) };
    loop {
        let q = query(args, &lines.to_string());
        match client.open_stream("/api/logs/stream", &borrowed(&q)).await {
            Ok(mut response) => {
                if !connected_before {
                    eprintln!("following the logs at {} (Ctrl-C to stop)", client.base());
                } else if failing {
                    eprintln!("logs are available again");
                }
                follower.connected(connected_before);
                (connected_before, failing) = (true, false);
                let mut events = EventReader::default();
                loop {
                    let chunk = tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                        chunk = response.chunk() => chunk,
                        // The backlog came in one burst; quiet means what follows is new.
                        () = tokio::time::sleep(BACKLOG_QUIET), if follower.catching_up() => {
                            follower.backlog_over().iter().for_each(print);
                            continue;
                        }
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
                        follower.line(line).iter().for_each(print);
                    }
                }
                follower.backlog_over().iter().for_each(print);
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
        lines = if follower.printed_any() { RECONNECT_LINES } else { 0 };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
    }
}

/// Decides which lines `-f` prints, without reading their timestamps.
///
/// On the first connection every line is printed (once). After a reconnect the dashboard sends
/// its last [`RECONNECT_LINES`] lines again, each service's in the order of its file: a
/// service's lines are held until its last printed line shows up (what was held came before it
/// and is dropped) or the backlog is over (the gap was longer than the backlog: all held lines
/// are new and printed). Lines already printed are never printed again.
#[derive(Debug, Default)]
struct Follower {
    seen: Seen,
    /// Each service's last printed line, by identity.
    last_printed: HashMap<String, String>,
    /// Services whose last printed line the reconnect's backlog has not shown yet, with the
    /// lines held meanwhile.
    held: HashMap<String, Vec<Value>>,
    /// Lines received since the reconnect, to know when the backlog is over.
    received: u32,
}

impl Follower {
    /// A connection opened; `again` when lines may have been printed before it.
    fn connected(&mut self, again: bool) {
        self.received = 0;
        self.held =
            if again { self.last_printed.keys().map(|s| (s.clone(), Vec::new())).collect() } else { HashMap::new() };
    }

    fn catching_up(&self) -> bool {
        !self.held.is_empty()
    }

    fn printed_any(&self) -> bool {
        !self.last_printed.is_empty()
    }

    /// A line arrived: the lines to print now, oldest first.
    fn line(&mut self, line: Value) -> Vec<Value> {
        self.received = self.received.saturating_add(1);
        let svc = service(&line);
        let mut out = Vec::new();
        match self.held.get_mut(&svc) {
            Some(_) if self.last_printed.get(&svc) == Some(&identity(&line)) => {
                // Everything held came before the last printed line of this service.
                self.held.remove(&svc);
            }
            Some(held) => held.push(line),
            None => out.push(line),
        }
        if self.received >= RECONNECT_LINES {
            out.extend(self.release());
        }
        self.printable(out)
    }

    /// The reconnect's backlog is over: what is still held is new.
    fn backlog_over(&mut self) -> Vec<Value> {
        let held = self.release();
        self.printable(held)
    }

    fn release(&mut self) -> Vec<Value> {
        self.held.drain().flat_map(|(_, lines)| lines).collect()
    }

    fn printable(&mut self, lines: Vec<Value>) -> Vec<Value> {
        lines
            .into_iter()
            .filter(|l| {
                let id = identity(l);
                let new = self.seen.insert(id.clone());
                if new {
                    self.last_printed.insert(service(l), id);
                }
                new
            })
            .collect()
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

/// The identities of the last [`REMEMBERED`] lines printed.
#[derive(Debug, Default)]
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// True when `k` is new.
    fn insert(&mut self, k: String) -> bool {
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

    fn line(service: &str, at: &str, message: &str) -> Value {
        serde_json::json!({"service": service, "timestamp": at, "level": "info", "message": message, "fields": {}})
    }

    fn messages(lines: &[Value]) -> Vec<&str> {
        lines.iter().map(|l| l["message"].as_str().unwrap()).collect()
    }

    fn feed(f: &mut Follower, lines: &[Value]) -> Vec<Value> {
        let mut out: Vec<Value> = lines.iter().flat_map(|l| f.line(l.clone())).collect();
        out.extend(f.backlog_over());
        out
    }

    /// The wall clock stepped back a day between two lines: the later line, stamped earlier
    /// than every line printed so far, is printed after a reconnect all the same (it used to be
    /// hidden for the length of the step), and nothing is printed twice.
    #[test]
    fn a_backward_step_hides_no_line_and_a_reconnect_repeats_none() {
        let mut f = Follower::default();
        f.connected(false);
        let a = line("desktop-streamer", "2026-12-07T04:00:00Z", "a");
        let b = line("desktop-streamer", "2026-12-07T04:00:01Z", "b");
        let w = line("desktop-streamer-web", "2026-12-07T04:00:02Z", "w");
        assert_eq!(messages(&feed(&mut f, &[a.clone(), b.clone(), w.clone()])), ["a", "b", "w"]);
        // Stepped back a day; written while the dashboard was away, then within the stream.
        let c = line("desktop-streamer", "2026-12-06T04:00:03Z", "c");
        let x = line("desktop-streamer-web", "2026-12-06T04:00:04Z", "x");
        // The dashboard keeps each file's order when it merges the services by time.
        f.connected(true);
        let out = feed(&mut f, &[a.clone(), b.clone(), c.clone(), w.clone(), x.clone()]);
        assert_eq!(messages(&out), ["c", "x"]);
        let d = line("desktop-streamer", "2026-12-06T04:00:05Z", "d");
        assert_eq!(messages(&f.line(d)), ["d"], "a line after the backlog is printed at once");
    }

    /// After a reconnect, lines from before the follow began are not printed: each service's
    /// lines up to the last one printed are skipped; a service whose last printed line is no
    /// longer in the backlog (the gap was longer) has all its backlog lines printed.
    #[test]
    fn a_reconnect_prints_only_what_came_after_each_services_last_printed_line() {
        let mut f = Follower::default();
        f.connected(false);
        let s = |m: &str| line("desktop-streamer", "2026-12-07T04:00:00Z", m);
        let w = |m: &str| line("desktop-streamer-web", "2026-12-07T04:00:00Z", m);
        // `-n 2` showed s2 and w2; s1 was written before and never printed.
        assert_eq!(messages(&feed(&mut f, &[s("s2"), w("w2")])), ["s2", "w2"]);
        f.connected(true);
        let out = feed(&mut f, &[s("s1"), s("s2"), s("s3"), w("w3"), w("w4")]);
        assert_eq!(messages(&out), ["s3", "w3", "w4"]);
        // The same line identity twice is one line; a different message at the same time is another.
        f.connected(true);
        assert_eq!(messages(&feed(&mut f, &[s("s3"), s("s3b")])), ["s3b"]);
    }

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
