//! What the streamer does when its output filesystem fills up: past
//! `cleanup_threshold_percent`, every segment file outside the playlist window goes at once;
//! past `emergency_cleanup_threshold_percent` the window shrinks to `emergency_segments` too
//! (the playlist still never becomes shorter than three target durations); once the disk has
//! room again the window grows back. The fill level comes in as a number, so the rules are
//! tested without filling a disk.

use std::time::Instant;

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
    now: Instant,
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
    use crate::playlist::{PLAYLIST_FILE, PlaylistSettings, RunLocation};

    fn live() -> LiveStreaming {
        LiveStreaming {
            max_segments: 6,
            emergency_segments: 1,
            cleanup_threshold_percent: 60,
            emergency_cleanup_threshold_percent: 80,
        }
    }

    /// A playlist of 2 s segments (window 6) in a directory of its own, fed ten segments of
    /// one run: four of them left the window and wait for their lifetime.
    struct Fed {
        dir: tempfile::TempDir,
        t0: Instant,
        p: Playlist,
        run: RunLocation,
        added: u32,
    }

    impl Fed {
        fn new() -> Fed {
            let dir = tempfile::tempdir().unwrap();
            let t0 = Instant::now();
            let settings = PlaylistSettings { target_duration_secs: 2, max_segments: 6 };
            let mut p = Playlist::open(dir.path(), settings, t0).unwrap();
            let run = p.begin_run(t0).unwrap();
            let mut fed = Fed { dir, t0, p, run, added: 0 };
            fed.add(10);
            fed
        }

        /// The time just after the last segment was added.
        fn now(&self) -> Instant {
            self.t0 + Duration::from_secs(2 * u64::from(self.added))
        }

        fn add(&mut self, n: u32) {
            for _ in 0..n {
                let path = self.run.segment_path(self.added);
                std::fs::write(&path, vec![0u8; 188]).unwrap();
                self.added += 1;
                let now = self.now();
                self.p.add_segment(&path, 2.0, now).unwrap();
            }
        }

        fn relieve(&mut self, used_percent: f64, under_pressure: bool) -> Option<String> {
            let now = self.now();
            relieve(&mut self.p, used_percent, &live(), under_pressure, now)
        }

        fn segment_files(&self) -> usize {
            segment_files(self.dir.path())
        }

        fn listed(&self) -> usize {
            listed(self.dir.path())
        }
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
        let mut f = Fed::new();
        let before = f.segment_files();
        assert!(before > 6, "segments that left the window wait for their lifetime: {before}");
        assert_eq!(f.relieve(59.0, false), None);
        assert_eq!(f.segment_files(), before);
    }

    #[test]
    fn cleanup_removes_what_left_the_window_and_keeps_the_window() {
        let mut f = Fed::new();
        assert_eq!(f.relieve(70.0, false).as_deref(), Some("cleanup: output filesystem 70% full (>= 60%)"));
        assert_eq!(f.segment_files(), 6, "only the window is left");
        assert_eq!(f.listed(), 6);
    }

    #[test]
    fn emergency_shrinks_the_window_never_below_three_target_durations_and_it_grows_back() {
        let mut f = Fed::new();
        let pressure = f.relieve(90.0, false);
        assert!(
            pressure.as_deref().is_some_and(|m| m.starts_with("emergency: output filesystem 90% full")),
            "{pressure:?}"
        );
        // emergency_segments is 1, but three target durations of 2 s need three segments.
        assert_eq!(f.listed(), 3);
        assert_eq!(f.segment_files(), 3);

        // Room again: the window grows back as segments arrive.
        assert_eq!(f.relieve(10.0, true), None);
        f.add(4);
        assert_eq!(f.listed(), 6);
    }

    #[test]
    fn pressure_that_stays_keeps_the_window_small() {
        let mut f = Fed::new();
        f.relieve(90.0, false);
        f.add(1);
        assert!(f.relieve(90.0, true).is_some());
        assert_eq!(f.listed(), 3);
    }
}
