//! Cutting the [feed](crate::feed) into HLS segments and low-latency partial segments
//! (RFC 8216bis §4.4.4.9 `EXT-X-PART`), as MPEG-TS ([`crate::mpegts`]), in the streamer
//! process. Sans I/O: [`Segmenter::push`] takes one access unit and says what became ready; the
//! caller writes segments to disk and keeps parts in memory for the low-latency playlist.
//!
//! The rules:
//! - A segment starts with a keyframe (PAT, PMT, IDR) and ends where the first keyframe at or
//!   after its target duration begins. When a segment starts, the encoder is asked for a
//!   keyframe at the worker's running time of its end ([`Output::KeyframeAt`]): the encoder
//!   makes it on the first frame at or after that time, so a segment ends on time whatever
//!   frames were dropped or keyframes viewers asked for. Should a frame past the target still
//!   not be a keyframe, the encoder is asked for one now ([`Output::WantKeyframe`], once per
//!   segment), so segments stay a few frames over the target, never a GOP.
//! - A keyframe that arrives early (a WebRTC viewer asked for one) does not cut: the segment
//!   goes on, and the part it starts is marked independent.
//! - A part ends at the first unit within half a frame of the part target from its start (so
//!   parts of a steady stream are a whole number of frames, never longer than the target), or
//!   with its segment. A part's duration is known only when the next unit arrives: parts are
//!   announced one unit late, at most one frame interval.
//! - Each part's bytes are a range of its segment's bytes: a segment is exactly its parts.
//! - A new run (another worker: timestamps start afresh) ends the segment being built, with
//!   its last unit lasting as long as the unit before it; the next segment follows a
//!   discontinuity.

use std::ops::Range;
use std::time::Duration;

use crate::feed::AccessUnit;
use crate::mpegts::{TsMuxer, ticks};

/// Presentation times in the stream start this far in (90 kHz), so the PCR, which runs 100 ms
/// ahead of them, never goes below zero.
pub const PTS_ORIGIN: u64 = 90_000;
/// 90 kHz ticks per second.
const HZ: f64 = 90_000.0;

/// Target durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmenterSettings {
    pub segment: Duration,
    /// What a part of a steady stream lasts.
    pub part: Duration,
    /// The longest a part may be (PART-TARGET): a part ends early rather than pass it when the
    /// next frame, as far apart as the last two, would take it beyond.
    pub part_max: Duration,
}

/// One partial segment: a range of its segment's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe: a player can start decoding here.
    pub independent: bool,
    pub bytes: Range<usize>,
}

/// What became ready.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Part `index` of the segment being built, and its bytes (served before the segment is
    /// complete).
    Part { index: usize, part: Part, data: Vec<u8> },
    /// The segment is complete: its bytes and its parts (the last one announced with it).
    Segment {
        bytes: Vec<u8>,
        /// Seconds.
        duration: f64,
        parts: Vec<Part>,
        /// A discontinuity comes before it (the first segment of a new run).
        discontinuity: bool,
    },
    /// Ask the encoder for a keyframe: the segment has reached its target without one.
    WantKeyframe,
    /// Ask the encoder for a keyframe on its first frame at or after this presentation time
    /// (the worker's running time, as [`AccessUnit::pts`]): where the segment just begun ends.
    KeyframeAt(Duration),
}

#[derive(Debug)]
struct Building {
    bytes: Vec<u8>,
    start: u64,
    parts: Vec<Part>,
    part_start: (usize, u64),
    part_independent: bool,
    asked_keyframe: bool,
    discontinuity: bool,
}

/// The segmenter of one stream.
#[derive(Debug)]
pub struct Segmenter {
    settings: SegmenterSettings,
    muxer: TsMuxer,
    building: Option<Building>,
    run: Option<u64>,
    /// The first unit's time of the current run, and where the run starts in the stream.
    run_origin: (u64, u64),
    /// The last unit's time in the stream, and the interval before it.
    last: Option<(u64, u64)>,
    /// The next segment follows a discontinuity (a run after the first began).
    discontinuity: bool,
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings) -> Segmenter {
        Segmenter {
            settings,
            muxer: TsMuxer::new(),
            building: None,
            run: None,
            run_origin: (0, 0),
            last: None,
            discontinuity: false,
        }
    }

    /// Takes the next unit of the feed.
    pub fn push(&mut self, unit: &AccessUnit) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(pts) = unit.pts.map(ticks) else { return out };
        let new_run = self.run != Some(unit.run);
        if new_run {
            // The old run ends with its last unit lasting as long as the one before it.
            if let Some((last, interval)) = self.last {
                self.finish(last + interval.max(1), &mut out);
            }
            let resume = self.last.map_or(PTS_ORIGIN, |(last, interval)| last + interval.max(1));
            self.discontinuity = self.run.is_some();
            self.run = Some(unit.run);
            self.run_origin = (pts, resume);
        }
        // Times in the stream: continuous across runs (a player sees a discontinuity anyway).
        let at = self.run_origin.1 + pts.saturating_sub(self.run_origin.0);
        if let Some((last, _)) = self.last {
            self.last = Some((at, at.saturating_sub(last)));
        } else {
            self.last = Some((at, 0));
        }
        let segment_ticks = ticks(self.settings.segment);
        let part_ticks = ticks(self.settings.part);
        let part_max_ticks = ticks(self.settings.part_max);
        if let Some(b) = &self.building {
            // Half a frame of slack: a keyframe a tick early still ends the segment.
            let elapsed = at.saturating_sub(b.start);
            let slack = self.frame_slack();
            let due = elapsed + slack >= segment_ticks;
            let late = elapsed >= segment_ticks + slack;
            if unit.keyframe && due {
                self.finish(at, &mut out);
            } else if late && !unit.keyframe && !b.asked_keyframe {
                out.push(Output::WantKeyframe);
                if let Some(b) = &mut self.building {
                    b.asked_keyframe = true;
                }
            }
        }
        if self.building.is_none() {
            if !unit.keyframe {
                // Wait for a keyframe: a segment must start with one.
                return out;
            }
            if let Some(pts) = unit.pts {
                out.push(Output::KeyframeAt(pts + self.settings.segment));
            }
            self.building = Some(Building {
                bytes: Vec::new(),
                start: at,
                parts: Vec::new(),
                part_start: (0, at),
                part_independent: true,
                asked_keyframe: false,
                discontinuity: std::mem::take(&mut self.discontinuity),
            });
        }
        let slack = self.frame_slack();
        let interval = self.last.map_or(0, |(_, interval)| interval);
        let Some(b) = &mut self.building else { return out };
        // End the part before this unit when it is long enough, or when this unit is an early
        // keyframe (a part that starts with it is independent).
        let part_elapsed = at.saturating_sub(b.part_start.1);
        let has_units = b.bytes.len() > b.part_start.0;
        let full = part_elapsed + slack >= part_ticks || part_elapsed + interval > part_max_ticks;
        if has_units && (full || unit.keyframe) {
            let part = Part {
                duration: part_elapsed as f64 / HZ,
                independent: b.part_independent,
                bytes: b.part_start.0..b.bytes.len(),
            };
            let data = b.bytes[part.bytes.clone()].to_vec();
            out.push(Output::Part { index: b.parts.len(), part: part.clone(), data });
            b.parts.push(part);
            b.part_start = (b.bytes.len(), at);
            b.part_independent = unit.keyframe;
        }
        self.muxer.write_unit(&mut b.bytes, at, unit.keyframe, &unit.data);
        out
    }

    /// Ends the segment being built now, its last unit lasting as long as the one before it:
    /// the worker ended (what it had sent is listed, and the parts already announced stay
    /// true), or units were lost. The next segment starts at the next keyframe.
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some((last, interval)) = self.last {
            self.finish(last + interval.max(1), &mut out);
        }
        out
    }

    /// Half the interval between the last two units: slack for "has reached the target".
    fn frame_slack(&self) -> u64 {
        self.last.map_or(0, |(_, interval)| interval / 2)
    }

    /// Ends the segment being built at stream time `end`.
    fn finish(&mut self, end: u64, out: &mut Vec<Output>) {
        let Some(mut b) = self.building.take() else { return };
        if b.bytes.len() > b.part_start.0 {
            let part = Part {
                duration: end.saturating_sub(b.part_start.1) as f64 / HZ,
                independent: b.part_independent,
                bytes: b.part_start.0..b.bytes.len(),
            };
            let data = b.bytes[part.bytes.clone()].to_vec();
            out.push(Output::Part { index: b.parts.len(), part: part.clone(), data });
            b.parts.push(part);
        }
        out.push(Output::Segment {
            duration: end.saturating_sub(b.start) as f64 / HZ,
            bytes: b.bytes,
            parts: b.parts,
            discontinuity: b.discontinuity,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_nanos(1_000_000_000 / 15);

    fn settings() -> SegmenterSettings {
        SegmenterSettings {
            segment: Duration::from_secs(2),
            part: Duration::from_millis(333),
            part_max: Duration::from_millis(367),
        }
    }

    fn unit(run: u64, n: u32, keyframe: bool) -> AccessUnit {
        let nal = if keyframe { 0x65 } else { 0x41 };
        AccessUnit {
            run,
            pts: Some(FRAME * n + Duration::from_secs(5)),
            keyframe,
            data: vec![0, 0, 0, 1, nal, 1, 2, 3],
        }
    }

    /// Pushes `units`; what came out, and the durations of the parts announced.
    fn push_all(s: &mut Segmenter, units: impl IntoIterator<Item = AccessUnit>) -> (Vec<Output>, Vec<f64>) {
        let out: Vec<Output> = units.into_iter().flat_map(|u| s.push(&u)).collect();
        let parts = out
            .iter()
            .filter_map(|o| match o {
                Output::Part { part, .. } => Some(part.duration),
                _ => None,
            })
            .collect();
        (out, parts)
    }

    fn segments(out: &[Output]) -> Vec<(f64, usize, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Segment { duration, parts, discontinuity, .. } => {
                    Some((*duration, parts.len(), *discontinuity))
                }
                _ => None,
            })
            .collect()
    }

    /// A GOP of exactly the target: 2 s segments of six parts (five frames, a third of a
    /// second, each; the last, of the 30 frames, five too), each segment exactly its parts.
    #[test]
    fn segments_end_at_the_keyframe_after_the_target_and_are_their_parts() {
        let mut s = Segmenter::new(settings());
        let mut out = Vec::new();
        for n in 0..=90 {
            out.extend(s.push(&unit(1, n, n % 30 == 0)));
        }
        let segs = segments(&out);
        assert_eq!(segs.len(), 3, "{segs:?}");
        for (duration, parts, _) in &segs {
            assert!((duration - 2.0).abs() < 1e-3, "{segs:?}");
            assert_eq!(*parts, 6);
        }
        for o in &out {
            if let Output::Segment { bytes, parts, .. } = o {
                assert_eq!(parts.first().unwrap().bytes.start, 0);
                assert_eq!(parts.last().unwrap().bytes.end, bytes.len());
                assert!(parts.windows(2).all(|w| w[0].bytes.end == w[1].bytes.start));
                assert!(parts[0].independent && parts[1..].iter().all(|p| !p.independent));
                let total: f64 = parts.iter().map(|p| p.duration).sum();
                assert!((total - 2.0).abs() < 1e-3);
            }
        }
        assert!(!out.contains(&Output::WantKeyframe), "keyframes came on time");
        let asked: Vec<&Output> = out.iter().filter(|o| matches!(o, Output::KeyframeAt(_))).collect();
        let at = |n: u32| Output::KeyframeAt(unit(1, n, true).pts.unwrap() + Duration::from_secs(2));
        assert_eq!(asked, [&at(0), &at(30), &at(60), &at(90)], "each segment asks for its end's keyframe as it starts");
    }

    /// A GOP longer than the target (keyframes every 4 s): the encoder is asked once per
    /// segment, and the segment ends at the keyframe that follows (here three frames later).
    #[test]
    fn a_late_keyframe_is_asked_for_once_and_cuts_where_it_comes() {
        let mut s = Segmenter::new(settings());
        let mut out = Vec::new();
        for n in 0..=40 {
            // Frame 30 is not a keyframe: asked at frame 31, the first one past the target; the
            // encoder delivers at 33.
            out.extend(s.push(&unit(1, n, n == 0 || n == 33)));
        }
        assert_eq!(out.iter().filter(|o| **o == Output::WantKeyframe).count(), 1);
        let segs = segments(&out);
        assert_eq!(segs.len(), 1);
        assert!((segs[0].0 - 33.0 / 15.0).abs() < 1e-3, "{segs:?}");
    }

    /// An early keyframe (a viewer asked) starts an independent part and no segment.
    #[test]
    fn an_early_keyframe_starts_an_independent_part_not_a_segment() {
        let mut s = Segmenter::new(settings());
        let mut parts = Vec::new();
        let mut out = Vec::new();
        for n in 0..=30 {
            for o in s.push(&unit(1, n, n == 0 || n == 12 || n == 30)) {
                if let Output::Part { part, .. } = &o {
                    parts.push(part.clone());
                }
                out.push(o);
            }
        }
        assert_eq!(segments(&out).len(), 1, "one segment, cut at frame 30");
        let independent: Vec<bool> = parts.iter().map(|p| p.independent).collect();
        // Parts: 0-4, 5-9, 10-11 (ended early by the keyframe), 12-16, 17-21, 22-26, 27-29.
        assert_eq!(independent, [true, false, false, true, false, false, false], "{parts:?}");
    }

    /// A new worker: the segment being built ends, the next follows a discontinuity, and the
    /// stream's times run on (no unit is dropped, no time goes back).
    #[test]
    fn a_new_run_ends_the_segment_and_starts_after_a_discontinuity() {
        let mut s = Segmenter::new(settings());
        let mut out = Vec::new();
        for n in 0..20 {
            out.extend(s.push(&unit(1, n, n == 0)));
        }
        // The new worker's clock starts elsewhere.
        for n in 0..=30 {
            let mut u = unit(2, n, n % 30 == 0);
            u.pts = u.pts.map(|p| p + Duration::from_secs(1000));
            out.extend(s.push(&u));
        }
        let segs = segments(&out);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert!((segs[0].0 - 20.0 / 15.0).abs() < 1e-3 && !segs[0].2, "{segs:?}");
        assert!((segs[1].0 - 2.0).abs() < 1e-3 && segs[1].2, "{segs:?}");
    }

    /// A worker that ends mid-segment: what it sent is a segment, its parts those announced.
    #[test]
    fn a_flush_ends_the_segment_with_the_parts_already_announced() {
        let mut s = Segmenter::new(settings());
        let mut announced = Vec::new();
        for n in 0..12 {
            for o in s.push(&unit(1, n, n == 0)) {
                if let Output::Part { part, data, .. } = o {
                    announced.push((part, data));
                }
            }
        }
        assert_eq!(announced.len(), 2, "frames 0-4 and 5-9");
        let out = s.flush();
        let Some(Output::Segment { bytes, duration, parts, .. }) = out.last() else { panic!("{out:?}") };
        assert!((duration - 12.0 / 15.0).abs() < 1e-3, "{duration}");
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[..2], &announced.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()[..]);
        let joined: Vec<u8> = announced.iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(&bytes[..joined.len()], &joined[..], "each part's data is its range of the segment");
        assert!(s.flush().is_empty(), "nothing is left");
    }

    /// A capture's first frames come unevenly (here the second 128 ms after the first): parts
    /// end where the next frame would take them past the target, never after it.
    #[test]
    fn uneven_frames_make_no_part_longer_than_the_target() {
        let mut s = Segmenter::new(settings());
        let units = (0..40).map(|n| {
            let u = unit(1, n, n == 0 || n == 31);
            AccessUnit { pts: u.pts.map(|p| if n == 0 { p } else { p + Duration::from_millis(61) }), ..u }
        });
        let (_, parts) = push_all(&mut s, units);
        assert!(parts.iter().all(|d| *d <= 0.334), "{parts:?}");
        assert!((parts[0] - (4.0 / 15.0 + 0.061)).abs() < 1e-3, "{parts:?}");
    }

    /// A loaded machine captures frames late (here every third by 25 ms): parts stay within
    /// the longest allowed, a segment is still exactly its parts.
    #[test]
    fn late_frames_keep_parts_within_the_longest_allowed() {
        let mut s = Segmenter::new(settings());
        let units = (0..=60).map(|n| {
            let u = unit(1, n, n % 30 == 0);
            AccessUnit { pts: u.pts.map(|p| if n % 3 == 1 { p + Duration::from_millis(25) } else { p }), ..u }
        });
        let (out, parts) = push_all(&mut s, units);
        assert!(parts.iter().all(|d| *d <= 0.367), "{parts:?}");
        assert_eq!(segments(&out).len(), 2);
    }

    /// A capture slower than configured (a frame every 130 ms instead of 67): a part ends
    /// before the frame that would take it past the longest allowed.
    #[test]
    fn a_slow_capture_ends_parts_before_they_pass_the_longest_allowed() {
        let mut s = Segmenter::new(settings());
        let units = (0..40u32).map(|n| AccessUnit { pts: Some(Duration::from_millis(130) * n), ..unit(1, n, n == 0) });
        let (_, parts) = push_all(&mut s, units);
        assert!(!parts.is_empty() && parts.iter().all(|d| *d <= 0.367), "{parts:?}");
    }

    /// A feed that starts mid-GOP waits for its first keyframe.
    #[test]
    fn nothing_is_cut_before_the_first_keyframe() {
        let mut s = Segmenter::new(settings());
        for n in 0..10 {
            assert!(s.push(&unit(1, n, false)).is_empty());
        }
        let mut out = Vec::new();
        for n in 10..=40 {
            out.extend(s.push(&unit(1, n, n == 10 || n == 40)));
        }
        assert!((segments(&out)[0].0 - 2.0).abs() < 1e-3);
    }
}
