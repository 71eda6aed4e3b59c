//! `cameras`: the camera fleet as a table (state, reason, latency, resolution, uptime), and
//! the one-line summary `status` shows. Reads `GET /api/cameras`.

use std::fmt::Write as _;

use ds_wire::cameras::{CameraEntry, CameraList, Reason, State};

use super::status::Paint;

fn painted(p: Paint, state: &str) -> String {
    match state {
        "UP" => p.good(state),
        "PENDING" | "DEGRADED" => p.warn(state),
        "DOWN" => p.bad(state),
        other => other.to_owned(),
    }
}

fn text(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |n| format!("{n:.1}%"))
}

/// `UP`, `DOWN`, …, or `WAITING` before the first heartbeat.
fn state_word(c: &CameraEntry) -> &'static str {
    c.live.state().map_or("WAITING", State::as_str)
}

/// Pads to `width` characters (not bytes: names may be in any script).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width { s.to_owned() } else { format!("{s}{}", " ".repeat(width - n)) }
}

/// The whole table.
pub fn table(out: &mut String, p: Paint, list: &CameraList) {
    let cameras = &list.cameras;
    let _ = writeln!(out, "{}", p.heading(&format!("Cameras ({})", cameras.len())));
    if let Some(problem) = &list.file_problem {
        let _ = writeln!(out, "  {}", p.bad("the camera list on disk was refused; the previous list runs:"));
        for m in &problem.messages {
            let _ = writeln!(out, "    {m}");
        }
    }
    if cameras.is_empty() {
        let _ = writeln!(out, "  no cameras configured");
        return;
    }
    let width = cameras.iter().map(|c| c.config.name.chars().count()).max().unwrap_or(4).clamp(4, 32);
    let _ = writeln!(
        out,
        "  {} {:<9} {:<15} {:>8} {:<6} {:>10} {:>7} {:>7} {:>7}",
        pad("NAME", width),
        "STATE",
        "REASON",
        "LATENCY",
        "CODEC",
        "SIZE",
        "24H",
        "7D",
        "30D"
    );
    for c in cameras {
        let state = state_word(c);
        // Padded before painting, so colour codes do not upset the columns.
        let state_col = painted(p, state).replace(state, &format!("{state:<9}"));
        let probed = c.live.probed();
        let latency = probed.and_then(|l| l.latency_ms).map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        let size = match probed.map(|l| (l.width, l.height)) {
            Some((Some(w), Some(h))) => format!("{w}x{h}"),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {} {state_col} {:<15} {latency:>8} {:<6} {size:>10} {:>7} {:>7} {:>7}",
            pad(&c.config.name, width),
            text(probed.and_then(|l| l.reason).map(Reason::as_str)),
            text(probed.and_then(|l| l.codec.as_deref())),
            percent(c.uptime.day),
            percent(c.uptime.week),
            percent(c.uptime.month),
        );
    }
}

/// `Cameras: 12 UP, 1 DOWN (Gate: refused)` for the status screen.
pub fn summary(out: &mut String, p: Paint, list: &CameraList) {
    let cameras = &list.cameras;
    if cameras.is_empty() {
        let _ = writeln!(out, "{}\n  no cameras configured", p.heading("Cameras"));
        return;
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in cameras {
        let s = state_word(c);
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    counts.sort_by_key(|(s, _)| ["UP", "DEGRADED", "PENDING", "DOWN"].iter().position(|k| k == s).unwrap_or(4));
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", painted(p, s))).collect();
    let _ = writeln!(out, "{}\n  {}", p.heading("Cameras"), parts.join(", "));
    for c in cameras {
        let Some(l) = c.live.probed().filter(|l| matches!(l.state, State::Down | State::Degraded)) else { continue };
        let why = l.message.as_deref().or(l.reason.map(Reason::as_str)).unwrap_or("no reason given");
        let _ = writeln!(out, "  {} {}: {why}", painted(p, l.state.as_str()), c.config.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> CameraList {
        let config = |id: &str, name: &str| {
            json!({"id": id, "name": name, "url": "rtsp://192.0.2.1/", "heartbeat_seconds": 30,
                "heartbeat_override": null, "verify_tls": true, "verify_tls_override": null})
        };
        let mut gate = config("gate", "Gate");
        gate.as_object_mut().unwrap().extend(
            json!({"state": "UP", "reason": null, "message": null, "since": null, "consecutive_failures": 0,
                "last_heartbeat_at": null, "latency_ms": 180, "codec": "h264", "width": 1280, "height": 720,
                "last_frame_at": null, "packets_lost": null, "uptime": {"24h": 99.5, "7d": 98.25, "30d": null}, "bar": []})
            .as_object()
            .unwrap()
            .clone(),
        );
        let mut lab = config("lab", "Lab <b>");
        lab.as_object_mut().unwrap().extend(
            json!({"state": "DOWN", "reason": "refused", "message": "connection refused", "since": null,
                "consecutive_failures": 4, "last_heartbeat_at": null, "latency_ms": null, "codec": null, "width": null,
                "height": null, "last_frame_at": null, "packets_lost": null, "uptime": {"24h": 10.0}, "bar": []})
            .as_object()
            .unwrap()
            .clone(),
        );
        let mut new = config("new", "New");
        new.as_object_mut().unwrap().extend(
            json!({"state": null, "message": "waiting for the first heartbeat", "uptime": {}})
                .as_object()
                .unwrap()
                .clone(),
        );
        serde_json::from_value(json!({"heartbeat_seconds": 30, "timezone": "UTC", "verify_tls": true,
            "file_problem": null, "history_problem": null, "cameras": [gate, lab, new]}))
        .unwrap()
    }

    #[test]
    fn table_lines_up_and_shows_what_is_known() {
        let mut out = String::new();
        table(&mut out, Paint::plain(), &list());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Cameras (3)");
        assert!(lines[1].starts_with("  NAME    STATE"), "{out}");
        assert!(lines[2].contains("Gate") && lines[2].contains("180 ms") && lines[2].contains("1280x720"), "{out}");
        assert!(lines[2].contains("99.5%") && lines[2].contains("98.2%"), "{out}");
        assert!(lines[3].contains("DOWN") && lines[3].contains("refused"), "{out}");
        let state_col = |l: &str| l.find("UP").or(l.find("DOWN")).unwrap();
        assert_eq!(state_col(lines[2]), state_col(lines[3]), "columns line up:\n{out}");
    }

    #[test]
    fn summary_counts_states_and_names_the_broken() {
        let mut out = String::new();
        summary(&mut out, Paint::plain(), &list());
        assert_eq!(out, "Cameras\n  1 UP, 1 DOWN, 1 WAITING\n  DOWN Lab <b>: connection refused\n");
    }
}
