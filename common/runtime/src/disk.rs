//! How full a filesystem is, as `df` counts it (blocks reserved for root count as not
//! available), for the streamer's disk-pressure cleanup and the watchdog's disk check.

use std::path::Path;

/// Percentage in use of the filesystem holding `dir`. Walks up to the nearest existing
/// ancestor, so a directory that was removed (or not made yet) still gets an answer.
pub fn usage_percent(dir: &Path) -> Option<f64> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(existing).ok()?;
    let used = st.f_blocks.saturating_sub(st.f_bfree) as f64;
    let usable = used + st.f_bavail as f64;
    (usable > 0.0).then(|| used / usable * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_and_one_not_made_yet() {
        let dir = tempfile::tempdir().unwrap();
        let p = usage_percent(dir.path()).unwrap();
        assert!((0.0..=100.0).contains(&p), "{p}");
        let gone = dir.path().join("hls/not/yet");
        assert_eq!(usage_percent(&gone).map(|v| v.round()), Some(p.round()));
    }
}
