//! `status`: one screen an operator reads at a glance. Colour only for a terminal, and never
//! with `NO_COLOR` set (https://no-color.org), so pipes and logs stay plain.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use serde_json::Value;

/// How many of the newest alerts the screen shows.
pub const RECENT_ALERTS: usize = 5;

#[derive(Clone, Copy, Debug)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint { on: std::io::stdout().is_terminal() && !no_color }
    }

    /// No colour, whatever stdout is.
    #[cfg(test)]
    pub fn plain() -> Paint {
        Paint { on: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bad(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn heading(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn state(self, text: &str) -> String {
        match text {
            "active" | "healthy" | "streaming" => self.good(text),
            "activating" | "deactivating" | "reloading" | "degraded" | "slate" | "starting" | "restarting" => {
                self.warn(text)
            }
            _ => self.bad(text),
        }
    }
}

fn num(v: &Value, digits: usize, unit: &str) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |n| format!("{n:.digits$}{unit}"))
}

/// The services block from `/api/status`'s `services`.
pub fn services(out: &mut String, p: Paint, services: &[Value]) {
    let _ = writeln!(out, "{}", p.heading("Services"));
    for u in services {
        let state = u["active_state"].as_str().unwrap_or("unknown");
        let sub = u["sub_state"].as_str().unwrap_or("");
        let restarts = u["n_restarts"].as_u64().map(|n| format!(", {n} restarts")).unwrap_or_default();
        let _ = writeln!(out, "  {:<36} {} ({sub}{restarts})", u["name"].as_str().unwrap_or("?"), p.state(state));
    }
}

/// The stream block from the streamer's health report.
pub fn stream(out: &mut String, p: Paint, h: &Value) {
    let _ = writeln!(out, "{}", p.heading("Stream"));
    let state = h["current_state"].as_str().unwrap_or("unknown");
    let health = h["health"].as_str().unwrap_or("unknown");
    let _ = writeln!(out, "  state     {} ({})", p.state(state), p.state(health));
    let _ = writeln!(
        out,
        "  fps       {}   bitrate {}   newest segment {}",
        num(&h["fps"], 1, ""),
        num(&h["bitrate_kbps"], 0, " kbit/s"),
        num(&h["newest_segment_age_seconds"], 1, " s old")
    );
    let m = &h["monitor"];
    let monitor = match m["name"].as_str() {
        Some(name) => format!("{name} {}x{}", m["width"], m["height"]),
        None => "-".into(),
    };
    let _ = writeln!(out, "  encoder   {}   monitor {monitor}", h["encoder"].as_str().unwrap_or("-"));
    let restarts = h["restart_count"].as_u64().unwrap_or(0);
    let _ = writeln!(out, "  restarts  {restarts}");
    if h["frozen"] == true {
        let _ = writeln!(out, "  {}", p.warn("picture frozen"));
    }
    for key in ["source_problem", "disk_pressure", "last_error"] {
        if let Some(text) = h[key].as_str() {
            let _ = writeln!(out, "  {}", p.warn(&format!("{}: {text}", key.replace('_', " "))));
        }
    }
}

/// The machine block from `/api/status`'s `system`.
pub fn machine(out: &mut String, p: Paint, system: &Value) {
    let _ = writeln!(out, "{}", p.heading("Machine"));
    let _ = writeln!(
        out,
        "  cpu {}   memory {}   disk {}",
        num(&system["cpu_percent"], 0, "%"),
        num(&system["memory_percent"], 0, "%"),
        num(&system["disk_usage_percent"], 0, "%")
    );
}

/// The newest [`RECENT_ALERTS`] alerts from `/api/alerts`, newest first.
pub fn alerts(out: &mut String, p: Paint, alerts: &Value) {
    let _ = writeln!(out, "{}", p.heading("Recent alerts"));
    let mut entries: Vec<&Value> = alerts["entries"].as_array().map(|e| e.iter().collect()).unwrap_or_default();
    // RFC 3339 UTC timestamps sort as text.
    entries.sort_by(|a, b| b["alert"]["raised_at"].as_str().cmp(&a["alert"]["raised_at"].as_str()));
    if entries.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in entries.into_iter().take(RECENT_ALERTS) {
        let a = &e["alert"];
        let severity = a["severity"].as_str().unwrap_or("?");
        let severity = if severity == "critical" { p.bad(severity) } else { p.warn(severity) };
        let deliveries: Vec<String> = e["deliveries"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| {
                        format!("{} {}", d["channel"].as_str().unwrap_or("?"), d["status"].as_str().unwrap_or("?"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let outcome = match (e["not_sent"].as_str(), e["repeats"].as_u64().unwrap_or(0)) {
            (Some(_), _) => "held back by the rate limit".to_owned(),
            (None, 0) => deliveries.join(", "),
            (None, n) => format!("{}; came again {n}× within its cooldown", deliveries.join(", ")),
        };
        let _ = writeln!(
            out,
            "  {} {severity} {} [{outcome}]",
            a["raised_at"].as_str().unwrap_or("-"),
            a["title"].as_str().unwrap_or("?"),
        );
    }
}
