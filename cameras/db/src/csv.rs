//! CSV export of heartbeats, for spreadsheets and for users leaving for another tool.
//!
//! Fields are quoted per RFC 4180 when they hold a comma, a quote or a line break, with
//! quotes doubled. Free text that a spreadsheet would run as a formula (starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return — a camera named `=HYPERLINK(…)`) is
//! prefixed with `'`, as OWASP advises against CSV injection.

use std::io::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::params;

use crate::error::{Error, Result};
use crate::store::{Store, camera_key, heartbeat_from_row};
use crate::time::{format_local, format_utc};

/// The header row.
pub const CSV_HEADER: &[&str] = &[
    "camera_id",
    "camera_name",
    "time_utc",
    "time_local",
    "state",
    "reason",
    "message",
    "latency_ms",
    "codec",
    "width",
    "height",
    "last_frame_utc",
    "last_frame_local",
    "clock_synchronized",
];

const EXPORT_CAMERA: &str = "SELECT c.stable_id, h.at, h.state, h.reason, h.message, h.latency_ms, h.codec, \
     h.width, h.height, h.last_frame_at, h.clock_synchronized, c.name FROM heartbeats h JOIN cameras c ON c.id = h.camera \
     WHERE h.camera = ?1 AND h.at >= ?2 AND h.at < ?3 ORDER BY h.at";

/// One CSV field, quoted if it has to be.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// Free text (names, messages) as a CSV field that no spreadsheet runs as a formula.
pub fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { csv_field(&format!("'{text}")) } else { csv_field(text) }
}

impl Store {
    /// Writes the raw heartbeats in `[from, to)` of one camera (or every camera, by id) as
    /// CSV with a header row; times in UTC and in `tz`. Returns the number of rows.
    pub fn export_csv(
        &self,
        out: &mut dyn Write,
        camera_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        tz: &TimeZone,
    ) -> Result<u64> {
        let conn = self.conn();
        let cameras = match camera_id {
            Some(id) => {
                vec![camera_key(&conn, id, self.default_cap_ms())?.ok_or_else(|| Error::UnknownCamera(id.to_owned()))?]
            }
            None => self.camera_keys(&conn)?,
        };
        writeln!(out, "{}", CSV_HEADER.join(","))?;
        let mut stmt = conn.prepare_cached(EXPORT_CAMERA)?;
        let mut n = 0;
        for cam in &cameras {
            let mut rows = stmt.query(params![cam.key, from.as_millisecond(), to.as_millisecond()])?;
            while let Some(row) = rows.next()? {
                let hb = heartbeat_from_row(row)?;
                let name: String = row.get(11)?;
                let num = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
                let fields = [
                    csv_text(&hb.camera_id),
                    csv_text(&name),
                    format_utc(hb.at),
                    format_local(hb.at, tz),
                    hb.state.as_str().to_owned(),
                    hb.reason.map(|r| r.as_str()).unwrap_or_default().to_owned(),
                    csv_text(hb.message.as_deref().unwrap_or_default()),
                    num(hb.latency_ms),
                    csv_text(hb.codec.as_deref().unwrap_or_default()),
                    num(hb.width),
                    num(hb.height),
                    hb.last_frame_at.map(format_utc).unwrap_or_default(),
                    hb.last_frame_at.map(|t| format_local(t, tz)).unwrap_or_default(),
                    hb.clock_synchronized.map(|s| s.to_string()).unwrap_or_default(),
                ];
                writeln!(out, "{}", fields.join(","))?;
                n += 1;
            }
        }
        out.flush()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("-1"), "'-1");
        assert_eq!(csv_text("Gate 1"), "Gate 1");
    }
}
