//! RFC 8216 rules of the live playlist, checked on a real directory the way a player sees it:
//! every published playlist is parsed and compared with the one before, across pipeline runs,
//! process restarts (drop + reopen), vanished files and disk emergencies. Time is injected.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use desktop_streamer::playlist::{PLAYLIST_FILE, Playlist, PlaylistError, PlaylistSettings, RunLocation, STATE_FILE};
use ds_tests::hls::{Viewer, parse, read};

/// The playlist's monotonic clock, `secs` after a fixed origin.
fn at(secs: f64) -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now) + Duration::from_secs_f64(secs)
}

fn settings(target_duration_secs: u32, max_segments: usize) -> PlaylistSettings {
    PlaylistSettings { target_duration_secs, max_segments }
}

/// Writes fragment `index` of a run as hlssink2 would, with a size that tells segments apart.
fn write_segment(run: &RunLocation, index: u32) -> PathBuf {
    let path = run.segment_path(index);
    fs::write(&path, vec![0x47; 188 * (index as usize + 1)]).unwrap();
    path
}

/// Writes and adds `count` segments of `duration` each, one every `duration` seconds from `*t`.
fn add(pl: &mut Playlist, run: &RunLocation, first: u32, count: u32, duration: f64, t: &mut f64, v: &mut Viewer) {
    for i in first..first + count {
        *t += duration;
        let path = write_segment(run, i);
        pl.add_segment(&path, duration, at(*t)).unwrap();
        v.reload();
    }
}

fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

fn seg(run: &RunLocation, index: u32) -> String {
    run.segment_path(index).file_name().unwrap().to_string_lossy().into_owned()
}

mod playlist {
    use super::*;

    #[test]
    fn media_sequence_and_names_never_repeat_across_pipeline_and_process_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run_a = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run_a, 0, 5, 2.0, &mut t, &mut v);
        let run_b = pl.begin_run(at(t)).unwrap();
        assert!(run_b.run > run_a.run);
        add(&mut pl, &run_b, 0, 4, 2.0, &mut t, &mut v);
        let before_restart = v.reload();
        drop(pl);

        let mut pl = Playlist::open(dir, settings(2, 3), at(t + 30.0)).unwrap();
        assert_eq!(v.reload(), before_restart, "a restarted process serves the old window at once");
        let run_c = pl.begin_run(at(t)).unwrap();
        assert!(run_c.run > run_b.run, "run numbers survive a process restart");
        add(&mut pl, &run_c, 0, 4, 2.0, &mut t, &mut v);
        let last = v.reload();
        assert_eq!(last.media_sequence, 13 - 3);
        assert_eq!(last.names(), [seg(&run_c, 1), seg(&run_c, 2), seg(&run_c, 3)]);
        assert_eq!(v.names_seen(), 13, "13 segments, 13 distinct names");

        let stats = pl.stats(at(t + 1.5));
        assert_eq!((stats.media_sequence, stats.segment_count), (10, 3));
        assert_eq!(stats.window_duration_secs, 6.0);
        assert_eq!(stats.window_bytes, 188 * (2 + 3 + 4));
        assert_eq!(stats.newest_segment_age_secs, Some(1.5));
    }

    #[test]
    fn discontinuity_marks_each_restart_and_its_sequence_counts_tags_that_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(1, 3), at(t)).unwrap();
        let r0 = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &r0, 0, 2, 1.0, &mut t, &mut v);
        assert!(!v.reload().segments[0].discontinuity, "the very first segment continues nothing");
        let r1 = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &r1, 0, 2, 1.0, &mut t, &mut v);
        let p = v.reload();
        assert_eq!(p.segments.iter().map(|s| s.discontinuity).collect::<Vec<_>>(), [false, true, false]);
        pl.mark_discontinuity(); // live -> slate inside the running pipeline
        add(&mut pl, &r1, 2, 2, 1.0, &mut t, &mut v);
        let p = v.reload();
        assert_eq!(p.segments.iter().map(|s| s.discontinuity).collect::<Vec<_>>(), [false, true, false]);
        assert_eq!(p.discontinuity_sequence, 1, "run 1's tag left the window");
        drop(pl);

        let mut pl = Playlist::open(dir, settings(1, 3), at(t)).unwrap();
        let r2 = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &r2, 0, 1, 1.0, &mut t, &mut v);
        assert!(v.reload().segments[2].discontinuity, "first segment after a process restart");
        add(&mut pl, &r2, 1, 2, 1.0, &mut t, &mut v);
        let p = v.reload();
        assert_eq!(p.segments.iter().map(|s| s.discontinuity).collect::<Vec<_>>(), [true, false, false]);
        assert_eq!(p.discontinuity_sequence, 2, "run 1 and slate tags left, run 2's is still listed");
        assert_eq!(pl.stats(at(t)).discontinuity_sequence, 2);
    }

    #[test]
    fn target_duration_never_changes_and_overlong_segments_are_left_out_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut pl = Playlist::open(dir, settings(2, 10), at(0.0)).unwrap();
        let run = pl.begin_run(at(0.0)).unwrap();
        let durations = [2.0, 2.4994, 2.4996, 1.2, 3.7];
        for (i, d) in (0..).zip(durations) {
            pl.add_segment(&write_segment(&run, i), d, at(f64::from(i) * 3.0)).unwrap();
            assert_eq!(read(dir).target, 2);
        }
        let p = read(dir);
        let extinfs: Vec<_> = p.segments.iter().map(|s| s.extinf.as_str()).collect();
        assert_eq!(extinfs, ["2.000", "2.499", "1.200"], "every EXTINF rounds to at most the target");
        let marks: Vec<_> = p.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(marks, [false, false, true], "the segment after a left-out one is discontinuous");
        assert_eq!(pl.stats(at(15.0)).overlong_segments, 2, "2.4996 is written 2.500, which players round to 3");
        assert!(run.segment_path(4).exists(), "a left-out segment is deleted later, not at once");
        pl.collect_garbage(at(60.0)).unwrap();
        assert!(!run.segment_path(4).exists(), "and then deleted");
        drop(pl);
        Playlist::open(dir, settings(2, 10), at(20.0)).unwrap();
        assert_eq!(read(dir).target, 2);
    }

    #[test]
    fn window_never_shorter_than_three_target_durations_whatever_max_segments_says() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(4, 2), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        for i in 0..20 {
            add(&mut pl, &run, i, 1, 1.5, &mut t, &mut v);
            let p = v.reload();
            assert!(p.duration() >= 12.0 || p.media_sequence == 0, "{p:?} is shorter than 3 x 4 s");
        }
        assert_eq!(v.reload().segments.len(), 8, "12 s of 1.5 s segments, and not one more");
        pl.set_window(0, at(t)).unwrap();
        assert_eq!(v.reload().segments.len(), 8);
    }

    #[test]
    fn window_follows_max_segments_and_set_window() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 5), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 10, 2.0, &mut t, &mut v);
        assert_eq!(v.reload().segments.len(), 5);
        pl.set_window(3, at(t)).unwrap();
        assert_eq!(v.reload().segments.len(), 3);
        pl.set_window(2, at(t)).unwrap();
        assert_eq!(v.reload().segments.len(), 3, "3 x 2 s is the floor");
        add(&mut pl, &run, 10, 2, 2.0, &mut t, &mut v);
        assert_eq!(v.reload().segments.len(), 3);
    }

    #[test]
    fn segment_file_outlives_its_removal_by_its_duration_plus_the_playlist_duration() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 4, 2.0, &mut t, &mut v);
        let removed_at = t;
        assert_eq!(v.reload().media_sequence, 1);
        // 2 s segment + a 6 s playlist = 8 s.
        assert!(pl.collect_garbage(at(removed_at + 7.999)).unwrap().is_empty());
        assert!(exists(dir, &seg(&run, 0)), "deleted before its lifetime");
        assert_eq!(pl.collect_garbage(at(removed_at + 8.0)).unwrap(), [run.segment_path(0)]);
        assert!(!exists(dir, &seg(&run, 0)), "kept after its lifetime");
        assert_eq!(pl.stats(at(t)).pending_deletions, 0);

        // The longest playlist that listed a segment counts, not the one left after removal.
        pl.set_window(5, at(t)).unwrap();
        add(&mut pl, &run, 4, 2, 2.0, &mut t, &mut v);
        assert_eq!(v.reload().segments.len(), 5);
        pl.set_window(3, at(t)).unwrap();
        let shrunk_at = t;
        assert_eq!(v.reload().names(), [seg(&run, 3), seg(&run, 4), seg(&run, 5)]);
        pl.collect_garbage(at(shrunk_at + 11.999)).unwrap();
        assert!(exists(dir, &seg(&run, 1)) && exists(dir, &seg(&run, 2)), "2 s + 10 s not over yet");
        pl.collect_garbage(at(shrunk_at + 12.0)).unwrap();
        assert!(!exists(dir, &seg(&run, 1)) && !exists(dir, &seg(&run, 2)));
    }

    #[test]
    fn pending_deletions_survive_a_process_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 4, 2.0, &mut t, &mut v); // seg 0 leaves at t = 8
        add(&mut pl, &run, 4, 1, 2.0, &mut t, &mut v); // seg 1 leaves at t = 10
        assert_eq!(pl.stats(at(t)).pending_deletions, 2);
        drop(pl);

        let mut pl = Playlist::open(dir, settings(2, 3), at(11.0)).unwrap();
        assert_eq!(pl.stats(at(11.0)).pending_deletions, 2, "the restart forgot pending deletions");
        // Seg 0 had 6 s left when the state was last written (t = 10); the reopen (11 s)
        // re-bases that on the new process's clock: the time the process was down never counts.
        pl.collect_garbage(at(16.999)).unwrap();
        assert!(exists(dir, &seg(&run, 0)) && exists(dir, &seg(&run, 1)));
        pl.collect_garbage(at(17.0)).unwrap();
        assert!(!exists(dir, &seg(&run, 0)), "seg 0: 6 s left at the last write, re-based at 11 s");
        // Seg 1's removal was published but not yet persisted when the process stopped, so its
        // lifetime conservatively starts at the reopen (11 s), never earlier than the removal.
        pl.collect_garbage(at(18.999)).unwrap();
        assert!(exists(dir, &seg(&run, 1)));
        pl.collect_garbage(at(19.0)).unwrap();
        assert!(!exists(dir, &seg(&run, 1)));
        assert_eq!(pl.stats(at(19.0)).pending_deletions, 0);
        drop(pl);
        assert_eq!(Playlist::open(dir, settings(2, 3), at(20.0)).unwrap().stats(at(20.0)).pending_deletions, 0);
    }

    /// A restart after the clock moved a year (a board that booted without a real-time clock and
    /// was stepped by NTP, or an instant a year on): each pending deletion keeps the lifetime it
    /// had left, so a player still inside the window it last loaded gets no 404. Version 1 of the
    /// state stored wall-clock removal times and deleted every pending segment at once here.
    #[test]
    fn a_restart_a_year_later_keeps_each_pending_deletion_for_the_lifetime_it_had_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        // Seg 0 leaves at 8, seg 1 at 10, when the state is last written: seg 0 has 6 s left.
        add(&mut pl, &run, 0, 5, 2.0, &mut t, &mut v);
        drop(pl);

        let year = 366.0 * 86_400.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(year)).unwrap();
        assert_eq!(v.reload().media_sequence, 2, "the reopen kept the media sequence");
        assert!(pl.collect_garbage(at(year + 5.999)).unwrap().is_empty(), "deleted before its lifetime ended");
        assert!(exists(dir, &seg(&run, 0)) && exists(dir, &seg(&run, 1)));
        assert_eq!(pl.collect_garbage(at(year + 6.0)).unwrap(), [run.segment_path(0)]);
        // Seg 1's removal was published but not yet written to the state: its whole 8 s.
        assert!(pl.collect_garbage(at(year + 7.999)).unwrap().is_empty());
        assert_eq!(pl.collect_garbage(at(year + 8.0)).unwrap(), [run.segment_path(1)]);
    }

    /// `/metrics` and the health API age the newest segment on the monotonic clock of the
    /// process that listed it: never negative, and after a restart (a year later, or under a
    /// stepped clock) unknown until a segment comes, not "31 million seconds".
    #[test]
    fn the_newest_segment_age_is_monotonic_and_unknown_after_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 2, 2.0, &mut t, &mut v);
        assert_eq!(pl.stats(at(t + 1.5)).newest_segment_age_secs, Some(1.5));
        assert_eq!(pl.stats(at(t - 1.0)).newest_segment_age_secs, Some(0.0), "never negative");
        drop(pl);
        let year = 366.0 * 86_400.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(year)).unwrap();
        assert_eq!(pl.stats(at(year)).segment_count, 2);
        assert_eq!(pl.stats(at(year)).newest_segment_age_secs, None);
        let run = pl.begin_run(at(year)).unwrap();
        let mut t = year;
        add(&mut pl, &run, 0, 1, 2.0, &mut t, &mut v);
        assert_eq!(pl.stats(at(t + 0.5)).newest_segment_age_secs, Some(0.5));
    }

    #[test]
    fn reopen_republishes_the_window_and_skips_files_that_are_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(1, 5), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 5, 1.0, &mut t, &mut v);
        let served = v.reload();
        drop(pl);

        fs::remove_file(dir.join(PLAYLIST_FILE)).unwrap();
        let pl = Playlist::open(dir, settings(1, 5), at(t)).unwrap();
        assert_eq!(v.reload(), served, "reopen writes the persisted window at once");
        drop(pl);

        // Only removal from the start keeps sequence numbers meaningful, so a missing middle
        // file takes the ones before it out too (they stay on disk for their lifetime).
        fs::remove_file(run.segment_path(2)).unwrap();
        let pl = Playlist::open(dir, settings(1, 5), at(t)).unwrap();
        let p = v.reload();
        assert_eq!(p.names(), [seg(&run, 3), seg(&run, 4)]);
        assert_eq!(p.media_sequence, 3);
        assert!(exists(dir, &seg(&run, 0)) && exists(dir, &seg(&run, 1)));
        assert_eq!(pl.stats(at(t)).pending_deletions, 2);
    }

    #[test]
    fn removed_output_directory_is_recreated_and_no_gone_segment_is_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hls");
        let mut v = Viewer::new(&dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(&dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 4, 2.0, &mut t, &mut v);

        fs::remove_dir_all(&dir).unwrap();
        pl.collect_garbage(at(t)).unwrap();
        let p = v.reload();
        assert!(p.segments.is_empty());
        assert_eq!(p.media_sequence, 4, "the gone segments still count");

        fs::remove_dir_all(&dir).unwrap();
        let next = pl.begin_run(at(t)).unwrap();
        assert!(dir.is_dir(), "begin_run recreates the directory");
        add(&mut pl, &next, 0, 2, 2.0, &mut t, &mut v);
        let p = v.reload();
        assert_eq!(p.media_sequence, 4);
        assert!(p.segments[0].discontinuity);

        fs::remove_dir_all(&dir).unwrap();
        let err = pl.add_segment(&next.segment_path(2), 2.0, at(t)).unwrap_err();
        assert!(matches!(err, PlaylistError::SegmentMissing { .. }), "{err}");
        assert!(v.reload().segments.is_empty(), "a failed add still unlists the gone files");

        // The same run goes on: its next segment, stored whole into the recreated directory,
        // begins the emptied playlist after a discontinuity.
        pl.store_segment(&next.segment_path(3), &[0x47; 188], 2.0, at(t)).unwrap();
        let p = v.reload();
        assert_eq!(p.names(), ["run000001-seg00003.ts"]);
        assert!(p.segments[0].discontinuity, "players resynchronise after the gone segments");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn orphans_are_deleted_after_the_lifetime_and_their_names_are_never_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("run000099-seg00003.ts"), b"old run").unwrap();
        fs::write(dir.join("stray.ts"), b"crash leftover").unwrap();
        fs::write(dir.join("notes.txt"), b"not ours").unwrap();
        let stale_tmp = dir.join(format!(".{PLAYLIST_FILE}.Xq3ZpA.tmp"));
        fs::write(&stale_tmp, b"#EXTM3U\n#EXT-X-VERS").unwrap();
        // A segment being stored when the process was killed: never under its own name.
        let stale_segment = dir.join(".run000099-seg00004.ts.k2JdQz.tmp");
        fs::write(&stale_segment, [0x47u8; 188]).unwrap();
        let mut pl = Playlist::open(dir, settings(2, 5), at(0.0)).unwrap();
        assert!(!stale_tmp.exists(), "a crashed atomic write's temporary file is cleaned up at open");
        assert!(!stale_segment.exists(), "so is a segment's");
        assert!(!exists(dir, "run000099-seg00004.ts"), "and it never appears under its name");
        assert_eq!(pl.stats(at(0.0)).pending_deletions, 2);
        assert!(read(dir).segments.is_empty());
        assert_eq!(pl.begin_run(at(0.0)).unwrap().run, 100, "run numbers skip past names on disk");
        // Never listed here, but maybe by a lost state: 2 s + a full 5 x 2 s window.
        pl.collect_garbage(at(11.999)).unwrap();
        assert!(exists(dir, "run000099-seg00003.ts") && exists(dir, "stray.ts"));
        pl.collect_garbage(at(12.0)).unwrap();
        assert!(!exists(dir, "run000099-seg00003.ts") && !exists(dir, "stray.ts"));
        assert!(exists(dir, "notes.txt"), "only segment files are ours to delete");
    }

    #[test]
    fn emergency_cleanup_frees_all_outside_the_window_but_the_segment_being_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 6, 2.0, &mut t, &mut v);
        fs::write(dir.join("stray.ts"), vec![0; 1000]).unwrap();
        let writing = write_segment(&run, 6);
        let freed = pl.emergency_cleanup(at(t)).unwrap();
        assert_eq!(freed, 188 * (1 + 2 + 3) + 1000, "bytes of segments 0-2 and the stray file");
        for i in 0..3 {
            assert!(!exists(dir, &seg(&run, i)));
        }
        assert!(writing.exists(), "the file hlssink2 is still writing survives");
        assert_eq!(v.reload().names(), [seg(&run, 3), seg(&run, 4), seg(&run, 5)]);
        assert_eq!(pl.stats(at(t)).pending_deletions, 0);
        pl.add_segment(&writing, 2.0, at(t + 2.0)).unwrap();
        v.reload();
    }

    #[test]
    fn playlist_rewrites_are_atomic_and_leave_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // A window that never slides: the reader checks listed files exist, and deletions would
        // race with its reads because injected time runs far ahead of the wall clock here.
        let mut pl = Playlist::open(&dir, settings(1, 1000), at(0.0)).unwrap();
        let run = pl.begin_run(at(0.0)).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (dir, done) = (dir.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = fs::read_to_string(dir.join(PLAYLIST_FILE)).expect("never missing");
                    let p = parse(&dir, &text);
                    assert!(p.target == 1, "partial playlist seen:\n{text}");
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..150 {
            pl.add_segment(&write_segment(&run, i), 1.0, at(f64::from(i))).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("the reader saw only whole playlists") > 0);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".ts") && n != PLAYLIST_FILE && n != STATE_FILE)
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn rejected_segments_say_why_and_are_never_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut pl = Playlist::open(dir, settings(2, 5), at(0.0)).unwrap();
        let early = dir.join("run000000-seg00000.ts");
        fs::write(&early, b"x").unwrap();
        let err = pl.add_segment(&early, 2.0, at(0.0)).unwrap_err();
        assert!(
            err.to_string().contains(&early.display().to_string()) && err.to_string().contains("begin_run"),
            "{err}"
        );

        let run = pl.begin_run(at(0.0)).unwrap();
        let foreign = dir.join("run000999-seg00000.ts");
        fs::write(&foreign, b"x").unwrap();
        let err = pl.add_segment(&foreign, 2.0, at(1.0)).unwrap_err();
        assert!(err.to_string().contains("run000001-seg"), "{err}");

        let first = write_segment(&run, 0);
        pl.add_segment(&first, 2.0, at(2.0)).unwrap();
        let err = pl.add_segment(&first, 2.0, at(3.0)).unwrap_err();
        assert!(matches!(err, PlaylistError::Duplicate { .. }), "{err}");
        let err = pl.add_segment(&write_segment(&run, 1), f64::NAN, at(3.0)).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
        let err = pl.add_segment(&tmp.path().join("elsewhere").join("x.ts"), 2.0, at(3.0)).unwrap_err();
        assert!(matches!(err, PlaylistError::NotInOutputDir { .. }), "{err}");
        let err = pl.add_segment(&run.segment_path(2), 2.0, at(4.0)).unwrap_err();
        assert!(err.to_string().contains("seg00002.ts"), "{err}");
        pl.add_segment(&write_segment(&run, 3), 2.0, at(6.0)).unwrap();

        let p = read(dir);
        assert_eq!(p.names(), [seg(&run, 0), seg(&run, 3)]);
        assert!(p.segments[1].discontinuity, "a skipped segment leaves a hole in the timeline");
        // Rejected files are not listed but do not stay on disk forever either.
        assert_eq!(pl.stats(at(6.0)).pending_deletions, 3);
        pl.collect_garbage(at(100.0)).unwrap();
        assert!(!early.exists() && !foreign.exists() && !run.segment_path(1).exists());
    }

    #[test]
    fn lost_state_file_recovers_sequence_numbers_from_the_playlist() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut t = 0.0;
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 6, 2.0, &mut t, &mut v);
        let served = v.reload();
        drop(pl);

        fs::write(dir.join(STATE_FILE), b"{ truncated").unwrap();
        let mut pl = Playlist::open(dir, settings(2, 3), at(t)).unwrap();
        assert_eq!(v.reload(), served);
        let next = pl.begin_run(at(t)).unwrap();
        assert!(next.run > run.run);
        add(&mut pl, &next, 0, 2, 2.0, &mut t, &mut v);
        assert_eq!(v.reload().media_sequence, 5);
    }

    #[test]
    fn a_shorter_configured_target_duration_unlists_segments_that_no_longer_fit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut v = Viewer::new(dir);
        let mut pl = Playlist::open(dir, settings(2, 10), at(0.0)).unwrap();
        let run = pl.begin_run(at(0.0)).unwrap();
        for (i, d) in (0..).zip([2.0, 1.0, 2.0, 1.0, 1.0, 1.0]) {
            pl.add_segment(&write_segment(&run, i), d, at(f64::from(i) * 2.0)).unwrap();
        }
        let before = v.reload();
        drop(pl);

        Playlist::open(dir, settings(1, 10), at(20.0)).unwrap();
        let after = read(dir);
        assert_eq!(after.target, 1);
        assert_eq!(after.names(), [seg(&run, 3), seg(&run, 4), seg(&run, 5)], "only a prefix may leave");
        assert_eq!(after.media_sequence, before.media_sequence + 3);
        assert!(after.segments.iter().all(|s| s.rounded_secs() <= 1));
    }

    #[test]
    fn a_state_file_from_a_newer_streamer_is_refused_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let state = dir.join(STATE_FILE);
        fs::write(&state, br#"{"version": 99, "media_sequence": 123456}"#).unwrap();
        let err = Playlist::open(dir, settings(2, 5), at(0.0)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&state.display().to_string()) && text.contains("version 99"), "{text}");
        assert_eq!(fs::read_to_string(&state).unwrap(), r#"{"version": 99, "media_sequence": 123456}"#);
    }

    #[test]
    fn a_segment_left_unfinished_by_an_ended_run_is_deleted_in_time_without_a_process_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut pl = Playlist::open(dir.path(), settings(2, 5), at(0.0)).unwrap();
        let mut v = Viewer::new(dir.path());
        let mut t = 0.0;
        let run = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &run, 0, 3, 2.0, &mut t, &mut v);
        // The worker died while hlssink2 wrote fragment 3: the file exists, never listed.
        let partial = write_segment(&run, 3);
        let next = pl.begin_run(at(t)).unwrap();
        add(&mut pl, &next, 0, 1, 2.0, &mut t, &mut v);
        assert!(partial.exists(), "kept while a player could still hold an older playlist");
        pl.collect_garbage(at(t + 60.0)).unwrap();
        assert!(!partial.exists(), "the unfinished segment of the ended run is deleted, not left forever");
        assert!(!v.reload().names().contains(&partial.file_name().unwrap().to_str().unwrap()));
    }
}
