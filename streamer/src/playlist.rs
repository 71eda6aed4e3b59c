//! The HLS playlist the streamer serves, kept by RFC 8216's rules across pipeline and process restarts.
//!
//! Each pipeline run writes its segments under a per-run name this module hands out
//! ([`Playlist::store_segment`] writes a file whole, then lists it), and this module owns
//! `playlist.m3u8`: the window, the sequence numbers, the discontinuities and when a segment
//! file may leave the disk. The low-latency playlist ([`crate::live`]) lists the same window. Everything a restart must not lose is persisted in
//! `.playlist-state.json` beside the segments. Time is passed in (`now`), never read here, so the
//! rules are tested without sleeping.
//!
//! Every lifetime runs on the monotonic clock (`now` is an [`Instant`]): a step of the wall
//! clock (NTP correcting a board that booted without a real-time clock, an operator) neither
//! expires pending deletions at once nor keeps them forever. What must survive a process
//! restart is stored as the lifetime *left* at the last write of the state file and re-based on
//! the monotonic clock at [`Playlist::open`]: the time the process was down does not count, so
//! a segment lives at least its RFC 8216 lifetime whatever the wall clock did meanwhile.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The media playlist players load, relative to the output directory.
pub const PLAYLIST_FILE: &str = "playlist.m3u8";
/// What a restart must not lose: sequence numbers, the run counter, the window, pending deletions.
pub const STATE_FILE: &str = ".playlist-state.json";
const STATE_VERSION: u32 = 1;
const SEGMENT_SUFFIX: &str = ".ts";
/// RFC 8216 §6.2.2: a live playlist must not become shorter than three target durations.
const MIN_WINDOW_TARGET_DURATIONS: f64 = 3.0;
/// EXTINF is written with this many decimals; clients round what is written, so checks do too.
const EXTINF_MILLIS: f64 = 1000.0;
/// Playlist files are read by whatever serves HLS, which may not be this process.
const PLAYLIST_MODE: u32 = 0o644;

/// How the playlist is shaped. Both come from the streamer config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistSettings {
    /// EXT-X-TARGETDURATION in seconds (the configured segment duration); fixed for the playlist's life.
    pub target_duration_secs: u32,
    /// Segments in the window, unless fewer would make the playlist shorter than three target durations.
    pub max_segments: usize,
}

/// Where the segments of one pipeline run are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLocation {
    /// The run number, unique for the life of the output directory.
    pub run: u64,
    /// printf-style pattern of the segment files, e.g. `/…/hls/run000007-seg%05d.ts`.
    pub location: PathBuf,
}

impl RunLocation {
    /// The file of segment `index` of this run.
    pub fn segment_path(&self, index: u32) -> PathBuf {
        let pattern = self.location.to_string_lossy();
        PathBuf::from(pattern.replace("%05d", &format!("{index:05}")))
    }
}

pub use ds_wire::health::PlaylistStats;

#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    #[error("invalid playlist settings: target duration must be at least 1 second (got {0})")]
    InvalidTargetDuration(u32),
    #[error("cannot create the HLS output directory {}: {source}; check its parent's permissions", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot list the HLS output directory {}: {source}", path.display())]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("cannot read the playlist state {}: {source}", path.display())]
    ReadState { path: PathBuf, source: io::Error },
    #[error(
        "the playlist state {} has format version {found}, this streamer understands {STATE_VERSION}; \
         run a newer streamer or move the file away (sequence numbers are then recovered from {PLAYLIST_FILE})",
        path.display()
    )]
    StateVersion { path: PathBuf, found: u32 },
    #[error("cannot write {}: {source}; check free space and permissions of the output directory", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("segment {} is not in the HLS output directory {}", path.display(), dir.display())]
    NotInOutputDir { path: PathBuf, dir: PathBuf },
    #[error("segment {} arrived but no run has begun; call begin_run and write under the location it returns", path.display())]
    NoRun { path: PathBuf },
    #[error("segment {} is not from the current run (names must start with {expected}); it will be deleted", path.display())]
    NotCurrentRun { path: PathBuf, expected: String },
    #[error("segment {} is already listed or awaiting deletion; segment names are never reused", path.display())]
    Duplicate { path: PathBuf },
    #[error("segment {} has duration {duration} s; it must be a finite number of seconds above 0; it will be deleted", path.display())]
    InvalidDuration { path: PathBuf, duration: f64 },
    #[error("segment {} cannot be read: {source}; it is not listed", path.display())]
    SegmentMissing { path: PathBuf, source: io::Error },
}

/// The published window, for the low-latency playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    pub target_duration_secs: u32,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: Vec<WindowSegment>,
    /// The next segment listed will carry EXT-X-DISCONTINUITY.
    pub discontinuity_pending: bool,
}

impl Window {
    /// The media sequence number the next segment listed will have.
    pub fn next_sequence(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }
}

/// One listed segment.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSegment {
    pub name: String,
    pub duration: f64,
    pub discontinuity: bool,
}

/// The live media playlist in one output directory. One `Playlist` per directory at a time.
#[derive(Debug)]
pub struct Playlist {
    dir: PathBuf,
    settings: PlaylistSettings,
    state: State,
    /// Not persisted: after a process restart there is no run until the caller begins one.
    current_run: Option<u64>,
    overlong_segments: u64,
    /// When the newest listed segment was added, for its age; not persisted (an age from before
    /// a restart would be on another process's clock).
    newest_added: Option<Instant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    version: u32,
    target_duration_secs: u32,
    /// The next run number to hand out; persisted before the run's name is, so no name repeats.
    next_run: u64,
    media_sequence: u64,
    discontinuity_sequence: u64,
    /// The next segment added carries EXT-X-DISCONTINUITY.
    discontinuity_pending: bool,
    window: VecDeque<Segment>,
    pending: Vec<PendingDeletion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Segment {
    name: String,
    duration: f64,
    discontinuity: bool,
    bytes: u64,
    /// Duration of the longest published playlist that listed this segment (RFC 8216 §6.2.2).
    longest_playlist: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingDeletion {
    name: String,
    /// The lifetime counted from `removed_at`; at open, what was left of it (see the module doc).
    lifetime_ms: u64,
    /// The lifetime left when the state file was written; `None` when the playlist without the
    /// segment was not yet published then (its whole lifetime starts at the next open).
    /// Replaces version 1's wall-clock `removed_at_ms`, which is ignored when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remaining_ms: Option<u64>,
    /// When a playlist without the segment was published, on the monotonic clock; `None` until
    /// that write succeeded (a crash in between stamps it at the next open, so the lifetime
    /// never starts early).
    #[serde(skip)]
    removed_at: Option<Instant>,
}

impl PendingDeletion {
    /// The lifetime left at `now`; `None` while it has not started.
    fn left_ms(&self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.removed_at?);
        Some(self.lifetime_ms.saturating_sub(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)))
    }
}

impl State {
    fn new(target_duration_secs: u32) -> Self {
        Self {
            version: STATE_VERSION,
            target_duration_secs,
            next_run: 0,
            media_sequence: 0,
            discontinuity_sequence: 0,
            discontinuity_pending: false,
            window: VecDeque::new(),
            pending: Vec::new(),
        }
    }

    fn window_duration(&self) -> f64 {
        self.window.iter().map(|s| s.duration).sum()
    }

    fn is_known(&self, name: &str) -> bool {
        self.window.iter().any(|s| s.name == name) || self.pending.iter().any(|p| p.name == name)
    }
}

impl Playlist {
    /// Opens (or starts) the playlist in `dir` and at once rewrites `playlist.m3u8` from the
    /// persisted state, listing only segments whose files still exist, so a restarted server
    /// serves the old window instead of a 404. `.ts` files that are neither listed nor awaiting
    /// deletion (left by crashes) are scheduled for deletion after the normal lifetime.
    pub fn open(dir: &Path, settings: PlaylistSettings, now: Instant) -> Result<Self, PlaylistError> {
        if settings.target_duration_secs == 0 {
            return Err(PlaylistError::InvalidTargetDuration(0));
        }
        create_dir(dir)?;
        let mut playlist = Self {
            dir: dir.to_path_buf(),
            settings,
            state: load_state(dir, settings.target_duration_secs)?,
            current_run: None,
            overlong_segments: 0,
            newest_added: None,
        };
        // Re-base the pending deletions on this process's monotonic clock: each keeps the
        // lifetime it had left (or its whole lifetime) from now; `commit` below stamps them.
        for p in &mut playlist.state.pending {
            p.lifetime_ms = p.remaining_ms.take().unwrap_or(p.lifetime_ms);
            p.removed_at = None;
        }
        playlist.adopt_target_duration();
        playlist.drop_missing();
        playlist.adopt_directory(now)?;
        playlist.update_longest_playlist();
        playlist.commit(now)?;
        info!(
            dir = %dir.display(),
            media_sequence = playlist.state.media_sequence,
            segments = playlist.state.window.len(),
            pending_deletions = playlist.state.pending.len(),
            "HLS playlist opened"
        );
        Ok(playlist)
    }

    /// Starts a pipeline run (also a switch between live capture and slate that rebuilds the
    /// pipeline): hands out a segment name pattern never used before in this directory and marks
    /// the next segment discontinuous. The run counter is persisted before this returns.
    pub fn begin_run(&mut self, now: Instant) -> Result<RunLocation, PlaylistError> {
        // Files may have appeared since open (rejected segments, copies): step past their names too.
        create_dir(&self.dir)?;
        let files = self.segment_files()?;
        // What the run that just ended left unlisted (a worker stopped mid-segment) goes too.
        for name in &files {
            self.schedule_unlisted(name, now);
        }
        let on_disk = files.iter().chain(self.state.pending.iter().map(|p| &p.name)).filter_map(|n| parse_run(n)).max();
        if let Some(highest) = on_disk {
            self.state.next_run = self.state.next_run.max(highest + 1);
        }
        let run = self.state.next_run;
        self.state.next_run += 1;
        // The first segment ever needs no tag: nothing came before it.
        if self.next_sequence() > 0 {
            self.state.discontinuity_pending = true;
        }
        self.drop_missing();
        self.commit(now)?;
        self.current_run = Some(run);
        info!(run, "HLS run begins");
        Ok(RunLocation { run, location: self.dir.join(format!("{}%05d{SEGMENT_SUFFIX}", run_prefix(run))) })
    }

    /// Marks the next segment discontinuous without a new run, for a source switch (live ↔ slate)
    /// inside a running pipeline that changes timestamps or encoding parameters.
    pub fn mark_discontinuity(&mut self) {
        self.state.discontinuity_pending = true;
    }

    /// Lists a finished segment of the current run and republishes the playlist: the window
    /// slides, segment files whose lifetime is over are deleted. A segment whose EXTINF rounds
    /// above the target duration is left out (the next one is marked discontinuous), warned
    /// about and counted. A rejected or left-out segment is never listed; if its file exists it
    /// is scheduled for deletion.
    pub fn add_segment(&mut self, path: &Path, duration_secs: f64, now: Instant) -> Result<(), PlaylistError> {
        let name = self.name_in_dir(path)?;
        let Some(run) = self.current_run else {
            self.schedule_unlisted(&name, now);
            return Err(PlaylistError::NoRun { path: path.to_path_buf() });
        };
        if self.state.is_known(&name) {
            return Err(PlaylistError::Duplicate { path: path.to_path_buf() });
        }
        if !name.starts_with(&run_prefix(run)) {
            self.schedule_unlisted(&name, now);
            return Err(PlaylistError::NotCurrentRun { path: path.to_path_buf(), expected: run_prefix(run) });
        }
        if !(duration_secs.is_finite() && duration_secs > 0.0) {
            self.schedule_unlisted(&name, now);
            return Err(PlaylistError::InvalidDuration { path: path.to_path_buf(), duration: duration_secs });
        }
        let bytes = match fs::metadata(self.dir.join(&name)) {
            Ok(meta) => meta.len(),
            Err(source) => {
                // The timeline now has a hole; tell players to resynchronise at the next segment.
                self.state.discontinuity_pending = true;
                self.collect_garbage(now)?;
                return Err(PlaylistError::SegmentMissing { path: path.to_path_buf(), source });
            }
        };
        let target = self.state.target_duration_secs;
        if extinf_rounded_secs(duration_secs) > u64::from(target) {
            // RFC 8216 allows no EXTINF above the target duration, and the target never
            // changes; a segment made long by a stalled capture or a late keyframe is left out
            // and the next one marked discontinuous, so players skip it cleanly.
            self.overlong_segments += 1;
            warn!(
                segment = %name,
                duration_secs,
                target_duration_secs = target,
                "segment longer than the target duration left out of the playlist (if this repeats, check the keyframe interval)"
            );
            self.state.discontinuity_pending = true;
            self.schedule_unlisted(&name, now);
            self.commit(now)?;
            return Ok(());
        }
        self.state.window.push_back(Segment {
            name,
            duration: duration_secs,
            discontinuity: std::mem::take(&mut self.state.discontinuity_pending),
            bytes,
            longest_playlist: 0.0,
        });
        self.newest_added = Some(now);
        self.drop_missing();
        self.trim();
        self.update_longest_playlist();
        self.delete_expired(now);
        self.commit(now)
    }

    /// Writes a finished segment of the current run to `path` whole (a temporary file renamed
    /// into place: a crash never leaves part of a segment under its name), then lists it as
    /// [`Playlist::add_segment`] does. The directory is created again if it went away.
    pub fn store_segment(
        &mut self,
        path: &Path,
        bytes: &[u8],
        duration_secs: f64,
        now: Instant,
    ) -> Result<(), PlaylistError> {
        create_dir(&self.dir)?;
        ds_config::write_atomic_with(path, |f| {
            f.set_permissions(fs::Permissions::from_mode(PLAYLIST_MODE))?;
            f.write_all(bytes)
        })
        .map_err(|source| PlaylistError::Write { path: path.to_path_buf(), source })?;
        self.add_segment(path, duration_secs, now)
    }

    /// The window as published: the first media sequence number, the discontinuity sequence
    /// and each segment (name, duration, whether a discontinuity comes before it).
    pub fn window(&self) -> Window {
        Window {
            target_duration_secs: self.state.target_duration_secs,
            media_sequence: self.state.media_sequence,
            discontinuity_sequence: self.state.discontinuity_sequence,
            segments: self
                .state
                .window
                .iter()
                .map(|s| WindowSegment { name: s.name.clone(), duration: s.duration, discontinuity: s.discontinuity })
                .collect(),
            discontinuity_pending: self.state.discontinuity_pending,
        }
    }

    /// Deletes segment files whose lifetime is over and, if listed files vanished or the
    /// directory or playlist is gone, republishes (recreating the directory). Call it
    /// periodically too, so deletions and repairs go on while no segments arrive.
    pub fn collect_garbage(&mut self, now: Instant) -> Result<Vec<PathBuf>, PlaylistError> {
        let dropped = self.drop_missing();
        let playlist_gone = !self.dir.join(PLAYLIST_FILE).exists();
        let deleted = self.delete_expired(now);
        if dropped > 0 || playlist_gone || !deleted.is_empty() {
            self.commit(now)?;
        }
        Ok(deleted)
    }

    /// Changes the window size at run time (e.g. under disk pressure); the playlist still never
    /// becomes shorter than three target durations.
    pub fn set_window(&mut self, max_segments: usize, now: Instant) -> Result<(), PlaylistError> {
        self.settings.max_segments = max_segments;
        let before = self.state.media_sequence;
        self.trim();
        if self.state.media_sequence != before {
            self.commit(now)?;
        }
        Ok(())
    }

    /// Disk emergency: deletes at once every `.ts` file not in the window, including those still
    /// within their RFC lifetime (a player behind the window may get a 404, which beats a full
    /// disk). Spares the current run's segment still being written. Returns the bytes freed.
    pub fn emergency_cleanup(&mut self, now: Instant) -> Result<u64, PlaylistError> {
        let in_progress = self.current_run.map(run_prefix);
        let mut freed = 0;
        let mut failed = Vec::new();
        for name in self.segment_files()? {
            let listed = self.state.window.iter().any(|s| s.name == name);
            let pending = self.state.pending.iter().any(|p| p.name == name);
            let writing = !pending && in_progress.as_ref().is_some_and(|p| name.starts_with(p.as_str()));
            if listed || writing {
                continue;
            }
            let path = self.dir.join(&name);
            let bytes = fs::metadata(&path).map_or(0, |m| m.len());
            match fs::remove_file(&path) {
                Ok(()) => freed += bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(segment = %path.display(), error = %e, "cannot delete segment in disk emergency");
                    failed.push(name);
                }
            }
        }
        self.state.pending.retain(|p| failed.contains(&p.name));
        warn!(dir = %self.dir.display(), bytes_freed = freed, "deleted every segment outside the playlist window");
        self.commit(now)?;
        Ok(freed)
    }

    pub fn stats(&self, now: Instant) -> PlaylistStats {
        PlaylistStats {
            target_duration_secs: self.state.target_duration_secs,
            media_sequence: self.state.media_sequence,
            discontinuity_sequence: self.state.discontinuity_sequence,
            segment_count: self.state.window.len(),
            window_duration_secs: self.state.window_duration(),
            window_bytes: self.state.window.iter().map(|s| s.bytes).sum(),
            newest_segment_age_secs: self
                .newest_added
                .filter(|_| !self.state.window.is_empty())
                .map(|t| now.saturating_duration_since(t).as_secs_f64()),
            overlong_segments: self.overlong_segments,
            pending_deletions: self.state.pending.len(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_sequence(&self) -> u64 {
        self.state.media_sequence + self.state.window.len() as u64
    }

    fn name_in_dir(&self, path: &Path) -> Result<String, PlaylistError> {
        let parent_ok = match path.parent() {
            None => true,
            Some(p) => p.as_os_str().is_empty() || p == self.dir,
        };
        match path.file_name().and_then(|n| n.to_str()) {
            Some(name) if parent_ok => Ok(name.to_owned()),
            _ => Err(PlaylistError::NotInOutputDir { path: path.to_path_buf(), dir: self.dir.clone() }),
        }
    }

    /// RFC 8216 §6.2.2 allows removing segments only from the start, so a missing file drops
    /// every segment before it as well: the playlist never lists a file that is gone.
    fn drop_missing(&mut self) -> usize {
        let Some(last_missing) = self.state.window.iter().rposition(|s| !self.dir.join(&s.name).exists()) else {
            return 0;
        };
        for _ in 0..=last_missing {
            let segment = self.pop_oldest();
            if self.dir.join(&segment.name).exists() {
                self.retire(segment);
            }
        }
        if self.state.window.is_empty() {
            // Nothing left to continue from (the directory went away): players resynchronise
            // at the next segment, as after a restart.
            self.state.discontinuity_pending = true;
        }
        warn!(dir = %self.dir.display(), dropped = last_missing + 1, "segment files vanished; dropped them from the playlist");
        last_missing + 1
    }

    fn trim(&mut self) {
        let min = MIN_WINDOW_TARGET_DURATIONS * f64::from(self.state.target_duration_secs);
        while self.state.window.len() > self.settings.max_segments {
            let oldest = self.state.window.front().map_or(0.0, |s| s.duration);
            if self.state.window_duration() - oldest < min {
                break;
            }
            let segment = self.pop_oldest();
            self.retire(segment);
        }
    }

    fn pop_oldest(&mut self) -> Segment {
        let segment = self.state.window.pop_front().expect("callers pop only from a non-empty window");
        self.state.media_sequence += 1;
        if segment.discontinuity {
            self.state.discontinuity_sequence += 1;
        }
        segment
    }

    /// RFC 8216 §6.2.2: a removed segment stays available for its duration plus the duration
    /// of the longest playlist that listed it.
    fn retire(&mut self, segment: Segment) {
        let lifetime = segment.duration + segment.longest_playlist;
        self.state.pending.push(PendingDeletion {
            name: segment.name,
            lifetime_ms: secs_to_ms(lifetime),
            remaining_ms: None,
            removed_at: None,
        });
    }

    /// Files never listed (crash leftovers, rejected segments) may have been in a playlist whose
    /// state was lost, so they get the longest lifetime a listed segment could have.
    fn schedule_unlisted(&mut self, name: &str, now: Instant) {
        if self.state.is_known(name) || !self.dir.join(name).exists() {
            return;
        }
        let target = f64::from(self.state.target_duration_secs);
        let window = self.state.window_duration().max(self.settings.max_segments.max(3) as f64 * target);
        self.state.pending.push(PendingDeletion {
            name: name.to_owned(),
            lifetime_ms: secs_to_ms(target + window),
            remaining_ms: None,
            removed_at: Some(now),
        });
    }

    fn update_longest_playlist(&mut self) {
        let total = self.state.window_duration();
        for segment in &mut self.state.window {
            segment.longest_playlist = segment.longest_playlist.max(total);
        }
    }

    fn delete_expired(&mut self, now: Instant) -> Vec<PathBuf> {
        let mut deleted = Vec::new();
        let dir = &self.dir;
        self.state.pending.retain_mut(|p| {
            if p.left_ms(now) != Some(0) {
                return true;
            }
            let path = dir.join(&p.name);
            match fs::remove_file(&path) {
                Ok(()) => {
                    deleted.push(path);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    warn!(segment = %path.display(), error = %e, "cannot delete expired segment; will retry");
                    true
                }
            }
        });
        deleted
    }

    /// On open: a lost state file must not let names repeat, and leftovers get deleted in time.
    fn adopt_directory(&mut self, now: Instant) -> Result<(), PlaylistError> {
        for name in self.segment_files()? {
            if let Some(run) = parse_run(&name) {
                self.state.next_run = self.state.next_run.max(run + 1);
            }
            self.schedule_unlisted(&name, now);
        }
        // A crash inside ds_config::write_atomic leaves its `.NAME.XXXXXX.tmp` (a playlist, the
        // state, a segment being stored); only we write those here.
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = [PLAYLIST_FILE, STATE_FILE].iter().any(|f| name.starts_with(&format!(".{f}.")))
                || (name.starts_with(".run") && name.contains(&format!("{SEGMENT_SUFFIX}.")));
            if ours
                && name.ends_with(".tmp")
                && let Err(e) = fs::remove_file(entry.path())
            {
                warn!(path = %entry.path().display(), error = %e, "cannot remove a stale temporary file");
            }
        }
        Ok(())
    }

    /// A changed segment duration in the config changes the target duration, which RFC 8216
    /// forbids within a playlist; the least harm is to keep the listed segments that still fit.
    fn adopt_target_duration(&mut self) {
        let target = self.settings.target_duration_secs;
        let old = self.state.target_duration_secs;
        if old == target {
            return;
        }
        warn!(old, new = target, "target duration changed; players may need to reload the stream");
        self.state.target_duration_secs = target;
        if let Some(last) = self.state.window.iter().rposition(|s| extinf_rounded_secs(s.duration) > u64::from(target))
        {
            for _ in 0..=last {
                let segment = self.pop_oldest();
                self.retire(segment);
            }
        }
    }

    fn segment_files(&self) -> Result<Vec<String>, PlaylistError> {
        let read_dir_error = |source| PlaylistError::ReadDir { path: self.dir.clone(), source };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_dir_error)? {
            let entry = entry.map_err(read_dir_error)?;
            if let Some(name) = entry.file_name().to_str()
                && name.ends_with(SEGMENT_SUFFIX)
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Persists the state, then publishes the playlist, in that order: after a crash between the
    /// two, reopening republishes from the state, so the served window never moves backwards.
    fn commit(&mut self, now: Instant) -> Result<(), PlaylistError> {
        create_dir(&self.dir)?;
        for p in &mut self.state.pending {
            p.remaining_ms = p.left_ms(now);
        }
        let state_path = self.dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(&self.state).expect("the state serializes: plain data, finite numbers");
        ds_config::write_atomic(&state_path, &json)
            .map_err(|source| PlaylistError::Write { path: state_path, source })?;
        let playlist_path = self.dir.join(PLAYLIST_FILE);
        let text = render(&self.state);
        ds_config::write_atomic_with(&playlist_path, |f| {
            f.set_permissions(fs::Permissions::from_mode(PLAYLIST_MODE))?;
            f.write_all(text.as_bytes())
        })
        .map_err(|source| PlaylistError::Write { path: playlist_path, source })?;
        for p in &mut self.state.pending {
            p.removed_at.get_or_insert(now);
        }
        Ok(())
    }
}

fn render(state: &State) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(128 + 48 * state.window.len());
    // Version 3 is what decimal EXTINF durations need; no tag used here needs more.
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        state.target_duration_secs, state.media_sequence, state.discontinuity_sequence
    );
    for s in &state.window {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = write!(out, "#EXTINF:{:.3},\n{}\n", s.duration, s.name);
    }
    out
}

fn load_state(dir: &Path, target_duration_secs: u32) -> Result<State, PlaylistError> {
    /// Read first, so a newer streamer's state is refused rather than mistaken for corruption.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(PlaylistError::ReadState { path, source }),
    };
    if let Ok(Version { version }) = serde_json::from_slice(&bytes)
        && version != STATE_VERSION
    {
        return Err(PlaylistError::StateVersion { path, found: version });
    }
    match serde_json::from_slice::<State>(&bytes) {
        Ok(state) => Ok(state),
        Err(e) => {
            if !bytes.is_empty() {
                warn!(path = %path.display(), error = %e, "playlist state unreadable; recovering from the playlist");
            }
            Ok(recover_from_playlist(dir).unwrap_or_else(|| State::new(target_duration_secs)))
        }
    }
}

/// Without a state file, sequence numbers come from the playlist this module last published,
/// so they never go back to 0 while players may hold the old numbers.
fn recover_from_playlist(dir: &Path) -> Option<State> {
    let text = fs::read_to_string(dir.join(PLAYLIST_FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "#EXTM3U" {
        return None;
    }
    let mut state = State::new(0);
    let mut discontinuity = false;
    let mut duration = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            state.target_duration_secs = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            state.media_sequence = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            state.discontinuity_sequence = v.trim().parse().ok()?;
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = Some(v.split(',').next()?.trim().parse::<f64>().ok()?);
        } else if !line.is_empty() && !line.starts_with('#') {
            let name = line.trim().to_owned();
            let bytes = fs::metadata(dir.join(&name)).map_or(0, |m| m.len());
            let duration = duration.take()?;
            state.window.push_back(Segment {
                name,
                duration,
                discontinuity: std::mem::take(&mut discontinuity),
                bytes,
                longest_playlist: 0.0,
            });
        }
    }
    (state.target_duration_secs > 0).then_some(state)
}

fn create_dir(dir: &Path) -> Result<(), PlaylistError> {
    fs::create_dir_all(dir).map_err(|source| PlaylistError::CreateDir { path: dir.to_path_buf(), source })
}

fn run_prefix(run: u64) -> String {
    format!("run{run:06}-seg")
}

fn parse_run(name: &str) -> Option<u64> {
    name.strip_prefix("run")?.split_once("-seg")?.0.parse().ok()
}

/// What a player gets when it rounds the EXTINF as written (three decimals) to the nearest second.
fn extinf_rounded_secs(duration_secs: f64) -> u64 {
    let written_ms = (duration_secs * EXTINF_MILLIS).round() as u64;
    (written_ms + 500) / 1000
}

fn secs_to_ms(secs: f64) -> u64 {
    (secs * EXTINF_MILLIS).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extinf_rounding_follows_the_written_value() {
        assert_eq!(extinf_rounded_secs(2.0), 2);
        assert_eq!(extinf_rounded_secs(2.4994), 2);
        // Written as 2.500, which players round up to 3.
        assert_eq!(extinf_rounded_secs(2.4996), 3);
        assert_eq!(extinf_rounded_secs(0.4), 0);
    }

    #[test]
    fn run_numbers_parse_back_from_names() {
        assert_eq!(parse_run("run000042-seg00017.ts"), Some(42));
        assert_eq!(parse_run("run1234567-seg00000.ts"), Some(1_234_567));
        assert_eq!(parse_run("segment00001.ts"), None);
        let loc = RunLocation { run: 3, location: PathBuf::from(format!("/x/{}%05d.ts", run_prefix(3))) };
        assert_eq!(loc.segment_path(12), PathBuf::from("/x/run000003-seg00012.ts"));
    }

    #[test]
    fn render_then_recover_round_trips_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::new(4);
        state.media_sequence = 41;
        state.discontinuity_sequence = 3;
        for (i, disc) in [(0, false), (1, true)] {
            state.window.push_back(Segment {
                name: format!("run000002-seg{i:05}.ts"),
                duration: 3.5,
                discontinuity: disc,
                bytes: 0,
                longest_playlist: 0.0,
            });
        }
        fs::write(dir.path().join(PLAYLIST_FILE), render(&state)).unwrap();
        let back = recover_from_playlist(dir.path()).unwrap();
        assert_eq!(render(&back), render(&state));
        assert_eq!((back.media_sequence, back.discontinuity_sequence, back.target_duration_secs), (41, 3, 4));
    }

    #[test]
    fn a_playlist_that_is_not_ours_recovers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(PLAYLIST_FILE), "garbage\n").unwrap();
        assert!(recover_from_playlist(dir.path()).is_none());
    }
}
