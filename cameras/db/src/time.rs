//! Timestamps are stored in UTC; people read them in the configured `timezone`. These
//! helpers do that conversion at the edges (API, page, CSV).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::{Error, Result};

/// `2026-11-21T10:53:23.000Z`
const UTC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
/// `2026-11-21T16:23:23.000+05:30`
const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";

/// The IANA time zone named `name` (`cameras.yaml`'s `timezone`).
pub fn time_zone(name: &str) -> Result<TimeZone> {
    TimeZone::get(name).map_err(|_| Error::TimeZone(name.to_owned()))
}

/// A UTC instant as RFC 3339 in UTC, milliseconds shown.
pub fn format_utc(t: Timestamp) -> String {
    t.strftime(UTC_FORMAT).to_string()
}

/// A UTC instant as RFC 3339 local time in `tz`, with its offset.
pub fn format_local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime(LOCAL_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc_and_local_time() {
        let t: Timestamp = "2026-03-01T23:30:00.25Z".parse().unwrap();
        assert_eq!(format_utc(t), "2026-03-01T23:30:00.250Z");
        assert_eq!(format_local(t, &time_zone("Asia/Kolkata").unwrap()), "2026-03-02T05:00:00.250+05:30");
        let e = time_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(e.contains("`Mars/Olympus` is not a known IANA time zone"), "{e}");
    }
}
