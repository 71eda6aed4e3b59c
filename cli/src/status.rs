//! `status`: one screen an operator reads at a glance. Colour only for a terminal, and never
//! with `NO_COLOR` set (https://no-color.org), so pipes and logs stay plain.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use ds_wire::alerts::{AlertsReply, HistoryEntry, Severity};
use ds_wire::health::HealthReport;
use ds_wire::status::UnitStatus;
use ds_wire::system::{ClockSync, SystemSample};

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

/// An age as shown to a person: never negative (a clock that stepped back, a peer's rounding)
/// and unknown rather than a number when it is not finite.
pub fn age(seconds: Option<f64>) -> Option<f64> {
    seconds.filter(|s| s.is_finite()).map(|s| s.max(0.0))
}

fn num(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "-".to_owned(), |n| format!("{n:.digits$}{unit}"))
}

/// The services block from `/api/status`'s `services`.
pub fn services(out: &mut String, p: Paint, services: &[UnitStatus]) {
    let _ = writeln!(out, "{}", p.heading("Services"));
    for u in services {
        let _ =
            writeln!(out, "  {:<36} {} ({}, {} restarts)", u.name, p.state(&u.active_state), u.sub_state, u.n_restarts);
    }
}

/// The stream block from the streamer's health report.
pub fn stream(out: &mut String, p: Paint, h: &HealthReport) {
    let _ = writeln!(out, "{}", p.heading("Stream"));
    let _ = writeln!(out, "  state     {} ({})", p.state(h.current_state.as_str()), p.state(h.health.as_str()));
    let _ = writeln!(
        out,
        "  fps       {}   bitrate {}   newest segment {}",
        num(h.fps, 1, ""),
        num(h.bitrate_kbps, 0, " kbit/s"),
        num(age(h.newest_segment_age_seconds), 1, " s old")
    );
    let monitor = match &h.monitor {
        Some(m) => format!("{} {}x{}", m.name, m.width, m.height),
        None => "-".into(),
    };
    let _ = writeln!(out, "  encoder   {}   monitor {monitor}", h.encoder.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  restarts  {}", h.restart_count);
    if h.frozen {
        let _ = writeln!(out, "  {}", p.warn("picture frozen"));
    }
    for (key, text) in
        [("source problem", &h.source_problem), ("disk pressure", &h.disk_pressure), ("last error", &h.last_error)]
    {
        if let Some(text) = text {
            let _ = writeln!(out, "  {}", p.warn(&format!("{key}: {text}")));
        }
    }
}

/// The machine block from `/api/status`'s `system`.
pub fn machine(out: &mut String, p: Paint, system: &SystemSample) {
    let _ = writeln!(out, "{}", p.heading("Machine"));
    let _ = writeln!(
        out,
        "  cpu {}   memory {}   disk {}",
        num(Some(system.cpu_percent), 0, "%"),
        num(Some(system.memory_percent), 0, "%"),
        num(system.disk_usage_percent, 0, "%")
    );
}

/// The clock line of the machine block: whether the wall clock is synchronised.
pub fn clock(out: &mut String, p: Paint, clock: &ClockSync) {
    let text = match (clock.synchronized, clock.ntp_enabled) {
        (Some(true), _) => p.good("synchronised"),
        (Some(false), Some(false)) => {
            p.warn("not synchronised, and no network time service is enabled (timedatectl set-ntp true)")
        }
        (Some(false), _) => p.warn("not synchronised: times and camera heartbeats recorded now may be off"),
        (None, _) => p.warn(&format!("unknown ({})", clock.error.as_deref().unwrap_or("not reported"))),
    };
    let _ = writeln!(out, "  clock {text}");
}

/// The newest [`RECENT_ALERTS`] alerts from `/api/alerts`, newest first.
pub fn alerts(out: &mut String, p: Paint, alerts: &AlertsReply) {
    let _ = writeln!(out, "{}", p.heading("Recent alerts"));
    let mut entries: Vec<&HistoryEntry> = alerts.entries.iter().collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.alert.raised_at));
    if entries.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in entries.into_iter().take(RECENT_ALERTS) {
        let a = &e.alert;
        let severity = a.severity.as_str();
        let severity = if a.severity == Severity::Critical { p.bad(severity) } else { p.warn(severity) };
        let deliveries: Vec<String> =
            e.deliveries.iter().map(|d| format!("{} {}", d.channel, d.status.as_str())).collect();
        let outcome = match (&e.not_sent, e.repeats) {
            (Some(_), _) => "held back by the rate limit".to_owned(),
            (None, 0) => deliveries.join(", "),
            (None, n) => format!("{}; came again {n}× within its cooldown", deliveries.join(", ")),
        };
        let _ = writeln!(out, "  {} {severity} {} [{outcome}]", a.raised_at, a.title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_never_negative_nor_a_non_number() {
        assert_eq!(age(Some(-3.5)), Some(0.0));
        assert_eq!(age(Some(-0.0)), Some(0.0));
        assert_eq!(age(Some(2.5)), Some(2.5));
        assert_eq!(age(Some(f64::NAN)), None);
        assert_eq!(age(Some(f64::INFINITY)), None);
        assert_eq!(age(None), None);
    }
}
