//! `cameras`: the camera fleet as a table (state, reason, latency, resolution, uptime), and
//! the one-line summary `status` shows. Reads `GET /api/cameras`.

use std::fmt::Write as _;

use serde_json::Value;

use super::status::Paint;

fn painted(p: Paint, state: &str) -> String {
    match state {
        "UP" => p.good(state),
        "PENDING" | "DEGRADED" => p.warn(state),
        "DOWN" => p.bad(state),
        other => other.to_owned(),
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn percent(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |n| format!("{n:.1}%"))
}

/// Pads to `width` characters (not bytes: names may be in any script).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width { s.to_owned() } else { format!("{s}{}", " ".repeat(width - n)) }
}

/// The whole table.
pub fn table(out: &mut String, p: Paint, list: &Value) {
    let cameras = list["cameras"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(out, "{}", p.heading(&format!("Cameras ({})", cameras.len())));
    if let Some(problems) = list["file_problem"]["messages"].as_array() {
        let _ = writeln!(out, "  {}", p.bad("the camera list on disk was refused; the previous list runs:"));
        for m in problems {
            let _ = writeln!(out, "    {}", text(m));
        }
    }
    if cameras.is_empty() {
        let _ = writeln!(out, "  no cameras configured");
        return;
    }
    let width = cameras.iter().map(|c| text(&c["name"]).chars().count()).max().unwrap_or(4).clamp(4, 32);
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
        let state = c["state"].as_str().unwrap_or("WAITING");
        // Padded before painting, so colour codes do not upset the columns.
        let state_col = painted(p, state).replace(state, &format!("{state:<9}"));
        let latency = c["latency_ms"].as_u64().map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        let size = match (c["width"].as_u64(), c["height"].as_u64()) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {} {state_col} {:<15} {latency:>8} {:<6} {size:>10} {:>7} {:>7} {:>7}",
            pad(text(&c["name"]), width),
            text(&c["reason"]),
            text(&c["codec"]),
            percent(&c["uptime"]["24h"]),
            percent(&c["uptime"]["7d"]),
            percent(&c["uptime"]["30d"]),
        );
    }
}

/// `Cameras: 12 UP, 1 DOWN (Gate: refused)` for the status screen.
pub fn summary(out: &mut String, p: Paint, list: &Value) {
    let cameras = list["cameras"].as_array().map_or(&[][..], Vec::as_slice);
    if cameras.is_empty() {
        let _ = writeln!(out, "{}\n  no cameras configured", p.heading("Cameras"));
        return;
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in cameras {
        let s = c["state"].as_str().unwrap_or("WAITING");
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    counts.sort_by_key(|(s, _)| ["UP", "DEGRADED", "PENDING", "DOWN"].iter().position(|k| k == s).unwrap_or(4));
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", painted(p, s))).collect();
    let _ = writeln!(out, "{}\n  {}", p.heading("Cameras"), parts.join(", "));
    for c in cameras.iter().filter(|c| matches!(c["state"].as_str(), Some("DOWN" | "DEGRADED"))) {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            painted(p, text(&c["state"])),
            text(&c["name"]),
            c["message"].as_str().or(c["reason"].as_str()).unwrap_or("no reason given")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"cameras": [
            {"id": "gate", "name": "Gate", "state": "UP", "latency_ms": 180, "codec": "h264", "width": 1280, "height": 720,
             "uptime": {"24h": 99.5, "7d": 98.25, "30d": null}},
            {"id": "lab", "name": "Lab <b>", "state": "DOWN", "reason": "refused", "message": "connection refused",
             "uptime": {"24h": 10.0}},
        ]})
    }

    #[test]
    fn table_lines_up_and_shows_what_is_known() {
        let mut out = String::new();
        table(&mut out, Paint::plain(), &list());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Cameras (2)");
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
        assert_eq!(out, "Cameras\n  1 UP, 1 DOWN\n  DOWN Lab <b>: connection refused\n");
    }
}
