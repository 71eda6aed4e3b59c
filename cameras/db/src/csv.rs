//! CSV export of heartbeats, for spreadsheets and for users leaving for another tool.
//!
//! Fields are quoted per RFC 4180 when they hold a comma, a quote or a line break, with
//! quotes doubled. Free text that a spreadsheet would run as a formula (starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return — a camera named `=HYPERLINK(…)`) is
//! prefixed with `'`, as OWASP advises against CSV injection.

use std::io::Write;

use ds_cameras::Heartbeat;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::params;

use crate::error::{Error, Result};
use crate::store::{CameraKey, Store, camera_key, heartbeat_from_row};
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

/// One batch of one camera's heartbeats from a cursor on, oldest first: keyset pagination on
/// the table's key `(camera, at)`, so each batch is an index seek, whatever was read before.
const EXPORT_BATCH: &str = "SELECT c.stable_id, h.at, h.state, h.reason, h.message, h.latency_ms, h.codec, \
     h.width, h.height, h.last_frame_at, h.clock_synchronized, c.name FROM heartbeats h JOIN cameras c ON c.id = h.camera \
     WHERE h.camera = ?1 AND h.at >= ?2 AND h.at < ?3 ORDER BY h.at LIMIT ?4";

/// Rows [`Store::export_csv`] writes per batch (each batch takes the read connection once).
pub const EXPORT_BATCH_ROWS: usize = 1000;

/// One CSV field, quoted if it has to be.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// Free text (names, messages) as a CSV field that no spreadsheet runs as a formula.
pub fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { csv_field(&format!("'{text}")) } else { csv_field(text) }
}

/// A CSV export of raw heartbeats read in batches ([`CsvExport::next_batch`]): each batch
/// takes the store's read connection, reads at most so many rows from where the last batch
/// stopped (by camera id, then time), and releases it, so a long export never keeps the other
/// readers waiting and its caller holds one batch in memory at a time. The rows and their
/// order are those of one query over the whole range.
///
/// The cameras are those the store knew when the export started; heartbeats written after it
/// started are outside its range (`to` is fixed), and rows pruned meanwhile are left out.
#[derive(Debug)]
pub struct CsvExport {
    cameras: Vec<CameraKey>,
    /// The camera being read, an index into `cameras`.
    camera: usize,
    /// The first time (ms) of the current camera not exported yet.
    cursor: i64,
    /// The range, in ms since the epoch: `[from, to)`.
    from: i64,
    to: i64,
    tz: TimeZone,
    header_written: bool,
    rows: u64,
}

impl Store {
    /// Starts a CSV export of the raw heartbeats in `[from, to)` of one camera (or every
    /// camera, by id); times in UTC and in `tz`. Nothing is read until
    /// [`CsvExport::next_batch`]. Fails with [`Error::UnknownCamera`] for a camera never
    /// recorded.
    pub fn csv_export(
        &self,
        camera_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        tz: &TimeZone,
    ) -> Result<CsvExport> {
        let conn = self.conn();
        let cameras = match camera_id {
            Some(id) => {
                vec![camera_key(&conn, id, self.default_cap_ms())?.ok_or_else(|| Error::UnknownCamera(id.to_owned()))?]
            }
            None => self.camera_keys(&conn)?,
        };
        Ok(CsvExport {
            cameras,
            camera: 0,
            cursor: from.as_millisecond(),
            from: from.as_millisecond(),
            to: to.as_millisecond(),
            tz: tz.clone(),
            header_written: false,
            rows: 0,
        })
    }

    /// Writes the raw heartbeats in `[from, to)` of one camera (or every camera, by id) as
    /// CSV with a header row; times in UTC and in `tz`. Returns the number of rows. Reads in
    /// batches of [`EXPORT_BATCH_ROWS`] (see [`CsvExport`]).
    pub fn export_csv(
        &self,
        out: &mut dyn Write,
        camera_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        tz: &TimeZone,
    ) -> Result<u64> {
        let mut export = self.csv_export(camera_id, from, to, tz)?;
        while export.next_batch(self, out, EXPORT_BATCH_ROWS)? {}
        out.flush()?;
        Ok(export.rows())
    }
}

impl CsvExport {
    /// Writes the header row (on the first call) and the next at most `max_rows` rows to
    /// `out`, holding the store's read connection for this batch only. Returns whether rows
    /// may be left (`false`: the export is complete).
    pub fn next_batch(&mut self, store: &Store, out: &mut dyn Write, max_rows: usize) -> Result<bool> {
        if !self.header_written {
            writeln!(out, "{}", CSV_HEADER.join(","))?;
            self.header_written = true;
        }
        let max_rows = max_rows.max(1);
        let conn = store.conn();
        let mut stmt = conn.prepare_cached(EXPORT_BATCH)?;
        let mut written = 0;
        while let Some(cam) = self.cameras.get(self.camera) {
            let wanted = max_rows - written;
            let mut rows = stmt.query(params![cam.key, self.cursor, self.to, wanted as i64])?;
            let mut got = 0;
            while let Some(row) = rows.next()? {
                let hb = heartbeat_from_row(row)?;
                let name: String = row.get(11)?;
                self.write_row(out, &hb, &name)?;
                // The key is (camera, at): the next batch starts just after this one.
                self.cursor = hb.at.as_millisecond() + 1;
                got += 1;
            }
            written += got;
            if got < wanted {
                // This camera is done; the next starts at the beginning of the range again.
                self.camera += 1;
                self.cursor = self.from;
            }
            if written == max_rows {
                break;
            }
        }
        self.rows += written as u64;
        Ok(self.camera < self.cameras.len())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn write_row(&self, out: &mut dyn Write, hb: &Heartbeat, name: &str) -> Result<()> {
        let tz = &self.tz;
        let num = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        let fields = [
            csv_text(&hb.camera_id),
            csv_text(name),
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
        Ok(())
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
