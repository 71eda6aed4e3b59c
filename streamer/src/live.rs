//! Low-latency HLS as served: the window of the plain playlist ([`crate::playlist`]) with the
//! parts of its newest segments and of the segment being built ([`crate::segmenter`]), shared
//! between the supervisor, which writes it as the feed is cut, and the HTTP handlers, which
//! render [`crate::llhls`] playlists and serve parts from it.
//!
//! Parts have URIs of their own (`run000007-seg00012.part3.ts`) rather than byte ranges of
//! their segment: the segment being built is not on disk yet (segments are written whole, so a
//! crash never leaves half of one), every player and cache handles a plain GET, and a part's
//! name says which segment it belongs to, so a name is never reused. The bytes of the segment
//! being built and of the newest complete ones are kept in memory; a part of an older segment
//! is read from its segment's file, which the playlist keeps for its RFC 8216 lifetime.
//!
//! Blocking requests wait on a [`watch`] channel bumped at every change: a playlist request is
//! answered as soon as the part or segment it names exists, a request for the hinted next part
//! as soon as that part is complete, each within a bounded time.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::llhls::{self, Listed, PartEntry, Parts, Ready};
use crate::playlist::Window;
use crate::segmenter::Part;

/// The low-latency playlist's name beside `playlist.m3u8`.
pub const LL_PLAYLIST_FILE: &str = "ll.m3u8";
/// At most this many complete segments' part lists are kept (their names and byte ranges).
const SEGMENTS_KEPT: usize = 256;
/// Complete segments whose bytes stay in memory (older parts are read from the segment file).
const SEGMENTS_IN_MEMORY: usize = llhls::SEGMENTS_WITH_PARTS + 1;

/// How long parts are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartTiming {
    /// What a part of a steady stream lasts: about a third of a second, a whole number of
    /// frames (so that parts are all the same length).
    pub nominal: Duration,
    /// The longest a part may be, written as PART-TARGET: half a frame more, so that a frame
    /// captured late (a loaded machine) still ends a part within it.
    pub target: Duration,
}

impl PartTiming {
    pub fn for_fps(fps: u32) -> PartTiming {
        let fps = fps.max(1);
        let nominal = Duration::from_secs(1) * fps.div_ceil(3) / fps;
        PartTiming { nominal, target: nominal + Duration::from_secs(1) / (2 * fps) }
    }
}

/// The segment the next parts belong to, before its first part exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upcoming {
    /// Its media sequence number: the plain playlist's next.
    pub msn: u64,
    /// Its file name.
    pub name: String,
    /// Whether a discontinuity comes before it.
    pub discontinuity: bool,
}

#[derive(Debug)]
struct Building {
    upcoming: Upcoming,
    parts: Vec<Part>,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct Complete {
    msn: u64,
    name: String,
    parts: Vec<Part>,
    /// `None` once older than [`SEGMENTS_IN_MEMORY`]: read from the file.
    bytes: Option<Arc<[u8]>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// PART-TARGET as written.
    part_target: f64,
    window: Window,
    upcoming: Option<Upcoming>,
    building: Option<Building>,
    complete: VecDeque<Complete>,
}

/// Where a part's bytes are.
enum PartBytes {
    Memory(Vec<u8>),
    File { name: String, range: Range<usize> },
}

/// What a playlist request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Playlist(String),
    /// 400: the request asks for a segment too far ahead, or is malformed; the reason.
    BadRequest(String),
    /// 503: what was asked for did not come in time.
    Timeout,
}

/// The shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct LiveHls {
    timing: PartTiming,
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
    dir: PathBuf,
}

/// The name of part `index` of the segment file `segment`.
pub fn part_name(segment: &str, index: usize) -> String {
    let stem = segment.strip_suffix(".ts").unwrap_or(segment);
    format!("{stem}.part{index}.ts")
}

/// The segment file name and part index of a part name; `None` when it is not one.
pub fn parse_part_name(name: &str) -> Option<(String, usize)> {
    let (stem, index) = name.strip_suffix(".ts")?.rsplit_once(".part")?;
    let ok = !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let digits = !index.is_empty() && index.len() <= 6 && index.chars().all(|c| c.is_ascii_digit());
    (ok && digits).then(|| (format!("{stem}.ts"), index.parse().unwrap_or(0)))
}

impl LiveHls {
    /// Empty, for the output directory `dir`, with parts as `timing` says.
    pub fn new(dir: PathBuf, timing: PartTiming) -> LiveHls {
        // Written with three decimals, rounded up: no part is ever longer than what is written.
        let written = (timing.target.as_secs_f64() * 1000.0).ceil() / 1000.0;
        let inner = Inner { part_target: written, ..Inner::default() };
        LiveHls { timing, inner: Arc::new(Mutex::new(inner)), changed: watch::channel(0).0, dir }
    }

    /// How long parts are.
    pub fn timing(&self) -> PartTiming {
        self.timing
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The plain playlist changed (or a run began or ended): its window, and the segment the
    /// next parts belong to (`None` while no worker runs). The segment being built becomes
    /// complete when the window lists it and is dropped when it was not listed.
    pub fn update(&self, window: Window, upcoming: Option<Upcoming>) {
        let mut inner = self.lock();
        if inner.window == window && inner.upcoming == upcoming {
            return;
        }
        if let Some(b) = inner.building.take() {
            let listed = window.segments.iter().position(|s| s.name == b.upcoming.name);
            if let Some(i) = listed {
                let msn = window.media_sequence + i as u64;
                inner.complete.push_back(Complete {
                    msn,
                    name: b.upcoming.name,
                    parts: b.parts,
                    bytes: Some(b.bytes.into()),
                });
            } else if upcoming.as_ref().is_some_and(|u| *u == b.upcoming) {
                inner.building = Some(b);
            }
        }
        // A part stays available as long as its segment's file (RFC 8216bis 6.2.2: its
        // duration and the longest playlist's after it left): the part lists of the window's
        // segments and of as many before them are kept, the file keeps the bytes.
        let oldest = window.media_sequence.saturating_sub(window.segments.len() as u64);
        while inner.complete.front().is_some_and(|c| c.msn < oldest) || inner.complete.len() > SEGMENTS_KEPT {
            inner.complete.pop_front();
        }
        let in_memory = inner.complete.len().saturating_sub(SEGMENTS_IN_MEMORY);
        for c in inner.complete.iter_mut().take(in_memory) {
            c.bytes = None;
        }
        inner.window = window;
        inner.upcoming = upcoming;
        drop(inner);
        self.bump();
    }

    /// Part `index` of the segment being built is complete, with its bytes.
    pub fn add_part(&self, index: usize, part: Part, data: &[u8]) {
        let mut inner = self.lock();
        if inner.building.is_none() {
            let Some(upcoming) = inner.upcoming.clone() else { return };
            inner.building = Some(Building { upcoming, parts: Vec::new(), bytes: Vec::new() });
        }
        let Some(b) = inner.building.as_mut() else { return };
        // Parts come in order and each continues the bytes before it; anything else is a
        // segment this state missed the start of, which is not announced.
        if index != b.parts.len() || part.bytes.start != b.bytes.len() {
            tracing::debug!(index, have = b.parts.len(), "part out of order; the segment is left without parts");
            inner.building = None;
            return;
        }
        b.bytes.extend_from_slice(data);
        b.parts.push(part);
        drop(inner);
        self.bump();
    }

    /// The low-latency playlist now.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let w = &inner.window;
        let listed: Vec<Listed> = w
            .segments
            .iter()
            .map(|s| Listed { name: s.name.clone(), duration: s.duration, discontinuity: s.discontinuity })
            .collect();
        let entries = |name: &str, parts: &[Part]| -> Vec<PartEntry> {
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| PartEntry { duration: p.duration, independent: p.independent, uri: part_name(name, i) })
                .collect()
        };
        let parts = Parts {
            complete: inner.complete.iter().map(|c| (c.msn, entries(&c.name, &c.parts))).collect(),
            building: inner
                .building
                .as_ref()
                .map(|b| (b.upcoming.msn, b.upcoming.discontinuity, entries(&b.upcoming.name, &b.parts))),
            next_uri: match (&inner.building, &inner.upcoming) {
                (Some(b), _) => Some(part_name(&b.upcoming.name, b.parts.len())),
                (None, Some(u)) => Some(part_name(&u.name, 0)),
                (None, None) => None,
            },
        };
        llhls::render(
            w.target_duration_secs,
            inner.part_target,
            w.media_sequence,
            w.discontinuity_sequence,
            &listed,
            &parts,
        )
    }

    fn ready(&self, msn: u64, part: Option<usize>) -> Ready {
        let inner = self.lock();
        let building = inner.building.as_ref().map(|b| (b.upcoming.msn, b.parts.len()));
        let limit = llhls::advance_part_limit(inner.part_target);
        llhls::ready(inner.window.next_sequence(), building, msn, part, limit)
    }

    /// The playlist for a request with this query: at once without `_HLS_msn`, else once it
    /// holds what the query names, waiting at most `limit`.
    pub async fn playlist(&self, query: &str, limit: Duration) -> Answer {
        let asked = match llhls::blocking_query(query) {
            Ok(a) => a,
            Err(why) => return Answer::BadRequest(why),
        };
        let Some((msn, part)) = asked else { return Answer::Playlist(self.render()) };
        let deadline = Instant::now() + limit;
        let mut changes = self.changed.subscribe();
        loop {
            changes.mark_unchanged();
            match self.ready(msn, part) {
                Ready::Now => return Answer::Playlist(self.render()),
                Ready::TooFar => {
                    let next = self.lock().window.next_sequence();
                    return Answer::BadRequest(match part {
                        Some(p) if msn == next => format!(
                            "_HLS_part={p} is more parts beyond the newest of segment {msn} than the Advance Part Limit; RFC 8216bis 6.2.5.2"
                        ),
                        _ => format!(
                            "_HLS_msn={msn} is more than one segment beyond the newest ({}); RFC 8216bis 6.2.5.2",
                            next.saturating_sub(1)
                        ),
                    });
                }
                Ready::Wait => {}
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return Answer::Timeout;
            }
        }
    }

    /// The bytes of a part by its name; the next part of the segment being built (the preload
    /// hint) is waited for, at most `limit`. `None`: no such part (or it did not come in time).
    pub async fn part(&self, name: &str, limit: Duration) -> Option<Vec<u8>> {
        let (segment, index) = parse_part_name(name)?;
        let deadline = Instant::now() + limit;
        let mut changes = self.changed.subscribe();
        loop {
            changes.mark_unchanged();
            let found = {
                let inner = self.lock();
                match find_part(&inner, &segment, index) {
                    Found::Bytes(b) => Some(b),
                    Found::Missing => return None,
                    Found::Coming => None,
                }
            };
            match found {
                Some(PartBytes::Memory(b)) => return Some(b),
                Some(PartBytes::File { name, range }) => {
                    let bytes = tokio::fs::read(self.dir.join(name)).await.ok()?;
                    return bytes.get(range).map(<[u8]>::to_vec);
                }
                None => {}
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return None;
            }
        }
    }
}

enum Found {
    Bytes(PartBytes),
    /// The next part of the segment being built (or of the upcoming one).
    Coming,
    Missing,
}

fn find_part(inner: &Inner, segment: &str, index: usize) -> Found {
    if let Some(b) = inner.building.as_ref().filter(|b| b.upcoming.name == segment) {
        return match b.parts.get(index) {
            Some(p) => Found::Bytes(PartBytes::Memory(b.bytes[p.bytes.clone()].to_vec())),
            None if index == b.parts.len() => Found::Coming,
            None => Found::Missing,
        };
    }
    if let Some(c) = inner.complete.iter().find(|c| c.name == segment) {
        let Some(p) = c.parts.get(index) else { return Found::Missing };
        return Found::Bytes(match &c.bytes {
            Some(bytes) => PartBytes::Memory(bytes[p.bytes.clone()].to_vec()),
            None => PartBytes::File { name: c.name.clone(), range: p.bytes.clone() },
        });
    }
    if index == 0 && inner.upcoming.as_ref().is_some_and(|u| u.name == segment) {
        return Found::Coming;
    }
    Found::Missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::WindowSegment;

    /// Parts of 333 ms, written as such.
    const THIRD: PartTiming = PartTiming { nominal: Duration::from_millis(333), target: Duration::from_millis(333) };

    fn part(range: Range<usize>, independent: bool) -> Part {
        Part { duration: 1.0 / 3.0, independent, bytes: range }
    }

    fn window(first: u64, names: &[&str]) -> Window {
        Window {
            target_duration_secs: 2,
            media_sequence: first,
            discontinuity_sequence: 0,
            segments: names
                .iter()
                .map(|n| WindowSegment { name: (*n).to_owned(), duration: 2.0, discontinuity: false })
                .collect(),
            discontinuity_pending: false,
        }
    }

    fn upcoming(msn: u64, name: &str) -> Option<Upcoming> {
        Some(Upcoming { msn, name: name.to_owned(), discontinuity: false })
    }

    #[test]
    fn parts_are_whole_frames_of_about_a_third_of_a_second() {
        let third = Duration::from_secs(1) * 5 / 15;
        assert_eq!(PartTiming::for_fps(15), PartTiming { nominal: third, target: third + Duration::from_secs(1) / 30 });
        assert_eq!(PartTiming::for_fps(25).nominal, Duration::from_millis(360));
        assert_eq!(PartTiming::for_fps(25).target, Duration::from_millis(380));
        assert_eq!(PartTiming::for_fps(30).nominal, Duration::from_secs(1) * 10 / 30);
        assert_eq!(PartTiming::for_fps(1).nominal, Duration::from_secs(1));
    }

    #[test]
    fn part_names_carry_their_segment_and_index() {
        assert_eq!(part_name("run000007-seg00012.ts", 3), "run000007-seg00012.part3.ts");
        assert_eq!(parse_part_name("run000007-seg00012.part3.ts"), Some(("run000007-seg00012.ts".into(), 3)));
        for bad in ["run1-seg1.ts", "../x.part1.ts", ".part1.ts", "a.partx.ts", "a.part1.ts.bak", "a b.part1.ts"] {
            assert_eq!(parse_part_name(bad), None, "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocking_reload_is_answered_when_the_part_appears() {
        let live = LiveHls::new(PathBuf::from("/nonexistent"), THIRD);
        live.update(window(5, &["a.ts", "b.ts"]), upcoming(7, "c.ts"));
        assert!(live.render().ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"c.part0.ts\"\n"), "{}", live.render());
        let waiting = {
            let live = live.clone();
            tokio::spawn(async move { live.playlist("_HLS_msn=7&_HLS_part=1", Duration::from_secs(6)).await })
        };
        tokio::task::yield_now().await;
        live.add_part(0, part(0..3, true), &[1, 2, 3]);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "part 1 is not there yet");
        let t0 = Instant::now();
        live.add_part(1, part(3..5, false), &[4, 5]);
        let Answer::Playlist(text) = waiting.await.unwrap() else { panic!("not a playlist") };
        assert_eq!(Instant::now(), t0, "answered at once");
        assert!(text.contains("URI=\"c.part1.ts\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"c.part2.ts\"\n"), "{text}");
        assert_eq!(live.part("c.part1.ts", Duration::ZERO).await, Some(vec![4, 5]));
        assert_eq!(live.part("c.part5.ts", Duration::from_secs(1)).await, None, "not the next part: no wait");
        // Too far ahead: 400 at once; not in time: 503 after the limit.
        assert!(matches!(live.playlist("_HLS_msn=9", Duration::from_secs(6)).await, Answer::BadRequest(_)));
        assert!(matches!(live.playlist("_HLS_msn=x", Duration::from_secs(6)).await, Answer::BadRequest(_)));
        let Answer::BadRequest(why) = live.playlist("_HLS_msn=7&_HLS_part=12", Duration::from_secs(6)).await else {
            panic!("ten parts beyond the newest (three seconds of 0.333 s parts) is refused")
        };
        assert!(why.contains("Advance Part Limit"), "{why}");
        assert_eq!(live.playlist("_HLS_msn=8", Duration::from_secs(6)).await, Answer::Timeout);
        assert_eq!(Instant::now(), t0 + Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn the_hinted_part_is_served_when_it_is_complete_and_a_listed_segment_keeps_its_parts() {
        let live = LiveHls::new(PathBuf::from("/nonexistent"), THIRD);
        live.update(window(0, &[]), upcoming(0, "a.ts"));
        let fetch = {
            let live = live.clone();
            tokio::spawn(async move { live.part("a.part0.ts", Duration::from_secs(2)).await })
        };
        tokio::task::yield_now().await;
        live.add_part(0, part(0..2, true), &[7, 8]);
        assert_eq!(fetch.await.unwrap(), Some(vec![7, 8]));
        live.add_part(1, part(2..3, false), &[9]);
        live.update(window(0, &["a.ts"]), upcoming(1, "b.ts"));
        let text = live.render();
        assert!(text.contains("#EXT-X-PART:DURATION=0.333,URI=\"a.part1.ts\"\n#EXTINF:2.000,\na.ts\n"), "{text}");
        assert_eq!(live.part("a.part1.ts", Duration::ZERO).await, Some(vec![9]));
        assert!(matches!(live.playlist("_HLS_msn=0&_HLS_part=5", Duration::ZERO).await, Answer::Playlist(_)));
    }

    /// Parts of a segment that left the low-latency playlist are still served, from its file,
    /// while its segment is in the window (and a window's length after).
    #[tokio::test]
    async fn older_parts_are_read_from_their_segment_file() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveHls::new(dir.path().to_path_buf(), THIRD);
        let names: Vec<String> = (0..8).map(|i| format!("s{i}.ts")).collect();
        for (i, name) in names.iter().enumerate() {
            let msn = i as u64;
            let first = msn.saturating_sub(5);
            let listed: Vec<&str> = names[first as usize..i].iter().map(String::as_str).collect();
            live.update(window(first, &listed), upcoming(msn, name));
            let bytes = [i as u8; 4];
            live.add_part(0, part(0..2, true), &bytes[..2]);
            live.add_part(1, part(2..4, false), &bytes[2..]);
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let listed: Vec<&str> = names[3..8].iter().map(String::as_str).collect();
        live.update(window(3, &listed), upcoming(8, "s8.ts"));
        assert!(!live.render().contains("s3.part"), "parts of three segments only");
        assert_eq!(live.part("s3.part1.ts", Duration::ZERO).await, Some(vec![3, 3]), "from the file");
        assert_eq!(live.part("s7.part0.ts", Duration::ZERO).await, Some(vec![7, 7]), "from memory");
        std::fs::remove_file(dir.path().join("s7.ts")).unwrap();
        assert_eq!(live.part("s7.part0.ts", Duration::ZERO).await, Some(vec![7, 7]), "from memory");
        // The window moved on by more than its length past s3: its parts are gone with it.
        live.update(window(6, &["s6.ts", "s7.ts"]), upcoming(8, "s8.ts"));
        assert_eq!(live.part("s3.part1.ts", Duration::ZERO).await, None);
        assert_eq!(live.part("s4.part1.ts", Duration::ZERO).await, Some(vec![4, 4]));
    }

    #[test]
    fn a_segment_the_playlist_did_not_list_loses_its_parts() {
        let live = LiveHls::new(PathBuf::from("/nonexistent"), THIRD);
        live.update(window(0, &[]), upcoming(0, "a.ts"));
        live.add_part(0, part(0..1, true), &[1]);
        // Left out (too long): the next segment takes its number.
        live.update(window(0, &[]), upcoming(0, "b.ts"));
        let text = live.render();
        assert!(!text.contains("a.part0.ts"), "{text}");
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"b.part0.ts\"\n"), "{text}");
    }
}
