//! What the streamer does when its output filesystem fills up: past
//! `cleanup_threshold_percent`, every segment file outside the playlist window goes at once;
//! past `emergency_cleanup_threshold_percent` the window shrinks to `emergency_segments` too
//! (the playlist still never becomes shorter than three target durations); once the disk has
//! room again the window grows back. The fill level comes in as a number, so the rules are
//! tested without filling a disk.

use std::time::SystemTime;

use ds_config::streamer::LiveStreaming;

use crate::playlist::Playlist;

/// How full the output filesystem is, against the thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Normal,
    /// At or past `cleanup_threshold_percent`.
    Cleanup,
    /// At or past `emergency_cleanup_threshold_percent`.
    Emergency,
}

impl Level {
    pub fn of(used_percent: f64, ls: &LiveStreaming) -> Level {
        if used_percent >= f64::from(ls.emergency_cleanup_threshold_percent) {
            Level::Emergency
        } else if used_percent >= f64::from(ls.cleanup_threshold_percent) {
            Level::Cleanup
        } else {
            Level::Normal
        }
    }
}

/// Applies the policy to `playlist` with the filesystem `used_percent` full; `under_pressure`
/// says whether the last call found pressure. Returns the pressure to report (the health
/// API's `disk_pressure`), `None` when there is none.
pub fn relieve(
    playlist: &mut Playlist,
    used_percent: f64,
    ls: &LiveStreaming,
    under_pressure: bool,
    now: SystemTime,
) -> Option<String> {
    let used = used_percent;
    let pressure = match Level::of(used, ls) {
        Level::Emergency => {
            let _ = playlist.set_window(ls.emergency_segments as usize, now);
            Some(format!(
                "emergency: output filesystem {used:.0}% full (>= {}%); window shrunk to {} segments",
                ls.emergency_cleanup_threshold_percent, ls.emergency_segments
            ))
        }
        Level::Cleanup => {
            let _ = playlist.set_window(ls.max_segments as usize, now);
            Some(format!("cleanup: output filesystem {used:.0}% full (>= {}%)", ls.cleanup_threshold_percent))
        }
        Level::Normal => None,
    };
    if pressure.is_some() {
        match playlist.emergency_cleanup(now) {
            Ok(freed) if freed > 0 => {
                tracing::warn!(
                    bytes = freed,
                    used_percent = used,
                    "disk pressure: removed segments outside the window"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "disk pressure cleanup failed"),
        }
    } else if under_pressure {
        let _ = playlist.set_window(ls.max_segments as usize, now);
    }
    pressure
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::playlist::{PLAYLIST_FILE, PlaylistSettings};

    fn live() -> LiveStreaming {
        LiveStreaming {
            max_segments: 6,
            emergency_segments: 1,
            cleanup_threshold_percent: 60,
            emergency_cleanup_threshold_percent: 80,
        }
    }

    /// A playlist of 2 s segments (window 6) in `dir`, fed `n` segments of one run.
    fn fed(dir: &Path, n: u32, t0: SystemTime) -> (Playlist, crate::playlist::RunLocation) {
        let settings = PlaylistSettings { target_duration_secs: 2, max_segments: 6 };
        let mut p = Playlist::open(dir, settings, t0).unwrap();
        let run = p.begin_run(t0).unwrap();
        for i in 0..n {
            add(&mut p, &run, i, t0);
        }
        (p, run)
    }

    fn add(p: &mut Playlist, run: &crate::playlist::RunLocation, i: u32, t0: SystemTime) {
        let path = run.segment_path(i);
        std::fs::write(&path, vec![0u8; 188]).unwrap();
        p.add_segment(&path, 2.0, t0 + Duration::from_secs(2 * u64::from(i) + 2)).unwrap();
    }

    fn segment_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "ts"))
            .count()
    }

    fn listed(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join(PLAYLIST_FILE)).unwrap().lines().filter(|l| l.starts_with("#EXTINF")).count()
    }

    #[test]
    fn levels_follow_the_thresholds() {
        let ls = live();
        assert_eq!(Level::of(59.9, &ls), Level::Normal);
        assert_eq!(Level::of(60.0, &ls), Level::Cleanup);
        assert_eq!(Level::of(79.9, &ls), Level::Cleanup);
        assert_eq!(Level::of(80.0, &ls), Level::Emergency);
        assert_eq!(Level::of(100.0, &ls), Level::Emergency);
    }

    #[test]
    fn below_the_cleanup_threshold_nothing_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let (mut p, _) = fed(dir.path(), 10, t0);
        let before = segment_files(dir.path());
        assert!(before > 6, "segments that left the window wait for their lifetime: {before}");
        assert_eq!(relieve(&mut p, 59.0, &live(), false, t0 + Duration::from_secs(22)), None);
        assert_eq!(segment_files(dir.path()), before);
    }

    #[test]
    fn cleanup_removes_what_left_the_window_and_keeps_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let (mut p, _) = fed(dir.path(), 10, t0);
        let pressure = relieve(&mut p, 70.0, &live(), false, t0 + Duration::from_secs(22));
        assert_eq!(pressure.as_deref(), Some("cleanup: output filesystem 70% full (>= 60%)"));
        assert_eq!(segment_files(dir.path()), 6, "only the window is left");
        assert_eq!(listed(dir.path()), 6);
    }

    #[test]
    fn emergency_shrinks_the_window_never_below_three_target_durations_and_it_grows_back() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let (mut p, run) = fed(dir.path(), 10, t0);
        let pressure = relieve(&mut p, 90.0, &live(), false, t0 + Duration::from_secs(22));
        assert!(
            pressure.as_deref().is_some_and(|m| m.starts_with("emergency: output filesystem 90% full")),
            "{pressure:?}"
        );
        // emergency_segments is 1, but three target durations of 2 s need three segments.
        assert_eq!(listed(dir.path()), 3);
        assert_eq!(segment_files(dir.path()), 3);

        // Room again: the window grows back as segments arrive.
        assert_eq!(relieve(&mut p, 10.0, &live(), true, t0 + Duration::from_secs(22)), None);
        for i in 10..14 {
            add(&mut p, &run, i, t0);
        }
        assert_eq!(listed(dir.path()), 6);
    }

    #[test]
    fn pressure_that_stays_keeps_the_window_small() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let (mut p, run) = fed(dir.path(), 10, t0);
        relieve(&mut p, 90.0, &live(), false, t0 + Duration::from_secs(22));
        add(&mut p, &run, 10, t0);
        assert!(relieve(&mut p, 90.0, &live(), true, t0 + Duration::from_secs(24)).is_some());
        assert_eq!(listed(dir.path()), 3);
    }
}
