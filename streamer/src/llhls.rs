//! The low-latency playlist (RFC 8216bis: `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-SERVER-CONTROL` with blocking reloads), rendered from the plain playlist's window and
//! the parts of its newest segments ([`crate::segmenter`]).
//!
//! Plain HLS stays exactly as it is at `playlist.m3u8`; the low-latency playlist is a separate
//! URL, so a player that does not know parts (VLC, older ffmpeg, TVs) is never handed one. Its
//! full segments are the same files; a part is a byte range of its segment, served from memory.
//!
//! Blocking reloads: a request with `_HLS_msn=M` (and `_HLS_part=P`) is answered once the
//! playlist holds segment M complete (part P of segment M), or any later one ([`ready`]);
//! more than one segment, or more than the Advance Part Limit of parts, beyond what exists is
//! refused (§6.2.5.2).

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Segments whose parts are listed: parts older than three target durations are left out
/// (§4.4.4.9), which at one target per segment is the last three complete segments.
pub const SEGMENTS_WITH_PARTS: usize = 3;

/// A complete segment as the plain playlist lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub name: String,
    pub duration: f64,
    pub discontinuity: bool,
}

/// One part as the playlist names it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartEntry {
    pub duration: f64,
    pub independent: bool,
    pub uri: String,
}

/// The parts of the newest segments, by media sequence number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parts {
    /// Complete segments' parts, oldest first.
    pub complete: VecDeque<(u64, Vec<PartEntry>)>,
    /// The segment being built: its number, whether a discontinuity comes before it, its parts.
    pub building: Option<(u64, bool, Vec<PartEntry>)>,
    /// The URI the next part will have (the preload hint).
    pub next_uri: Option<String>,
}

/// Whether a blocking reload can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    Now,
    Wait,
    /// More than one segment beyond the newest: a 400 (§6.2.5.2).
    TooFar,
}

/// The Advance Part Limit (§6.2.5.2): how many parts beyond the newest a blocking reload may
/// ask for before it is refused: three seconds' worth of parts when they are shorter than a
/// second, three otherwise.
pub fn advance_part_limit(part_target: f64) -> usize {
    if part_target < 1.0 { (3.0 / part_target).ceil() as usize } else { 3 }
}

/// Whether the playlist holds segment `msn` complete, or part `part` of it, or later, given
/// that segments up to `next_msn - 1` are complete and `building` (its number, its parts so
/// far) is being built. A request more than one segment beyond the newest, or more than
/// `part_limit` parts beyond the newest part, is [`Ready::TooFar`].
pub fn ready(next_msn: u64, building: Option<(u64, usize)>, msn: u64, part: Option<usize>, part_limit: usize) -> Ready {
    let built = building.filter(|(n, _)| *n == next_msn).map_or(0, |(_, count)| count);
    match part {
        _ if msn < next_msn => Ready::Now,
        Some(p) if msn == next_msn && built > p => Ready::Now,
        Some(p) if msn == next_msn && p >= built + part_limit => Ready::TooFar,
        _ if msn > next_msn + 1 => Ready::TooFar,
        _ => Ready::Wait,
    }
}

/// The low-latency playlist: the plain window (`listed`, numbered from `media_sequence`) with
/// the parts of its newest segments and of the one being built.
pub fn render(
    target_duration: u32,
    part_target: f64,
    media_sequence: u64,
    discontinuity_sequence: u64,
    listed: &[Listed],
    parts: &Parts,
) -> String {
    let mut out = String::with_capacity(256 + 64 * listed.len());
    // Three part targets back from the live edge: what the draft recommends.
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target_duration}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
         #EXT-X-PART-INF:PART-TARGET={part_target:.3}\n\
         #EXT-X-MEDIA-SEQUENCE:{media_sequence}\n#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}\n",
        3.0 * part_target
    );
    let next_msn = media_sequence + listed.len() as u64;
    let first_with_parts = next_msn.saturating_sub(SEGMENTS_WITH_PARTS as u64);
    for (i, s) in listed.iter().enumerate() {
        let msn = media_sequence + i as u64;
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if msn >= first_with_parts
            && let Some((_, entries)) = parts.complete.iter().find(|(n, _)| *n == msn)
        {
            write_parts(&mut out, entries);
        }
        let _ = write!(out, "#EXTINF:{:.3},\n{}\n", s.duration, s.name);
    }
    if let Some((msn, discontinuity, entries)) = &parts.building
        && *msn == next_msn
    {
        if *discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        write_parts(&mut out, entries);
    }
    if let Some(uri) = &parts.next_uri {
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"");
    }
    out
}

fn write_parts(out: &mut String, entries: &[PartEntry]) {
    for p in entries {
        let independent = if p.independent { ",INDEPENDENT=YES" } else { "" };
        let _ = writeln!(out, "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{independent}", p.duration, p.uri);
    }
}

/// `_HLS_msn` and `_HLS_part` of a playlist request's query; `Err` names what is wrong.
pub fn blocking_query(query: &str) -> Result<Option<(u64, Option<usize>)>, String> {
    let (mut msn, mut part) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                msn = Some(value.parse::<u64>().map_err(|_| format!("_HLS_msn={value} is not a segment number"))?);
            }
            "_HLS_part" => {
                part = Some(value.parse::<usize>().map_err(|_| format!("_HLS_part={value} is not a part number"))?);
            }
            // Other directives (_HLS_skip) and cache busters are not blocking.
            _ => {}
        }
    }
    match (msn, part) {
        (Some(m), p) => Ok(Some((m, p))),
        (None, Some(_)) => Err("_HLS_part needs _HLS_msn (RFC 8216bis 6.2.5.2)".to_owned()),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(uri: &str, independent: bool) -> PartEntry {
        PartEntry { duration: 1.0 / 3.0, independent, uri: uri.to_owned() }
    }

    fn six(msn: u64) -> Vec<PartEntry> {
        (0..6).map(|i| part(&format!("part-{msn}-{i}.ts"), i == 0)).collect()
    }

    fn listed(n: usize) -> Vec<Listed> {
        (0..n).map(|i| Listed { name: format!("seg{i}.ts"), duration: 2.0, discontinuity: i == 2 }).collect()
    }

    #[test]
    fn the_newest_segments_carry_their_parts_and_the_one_being_built_its_own() {
        // Segments 10..=14 listed; 12..=14 have parts; 15 is being built with two parts.
        let mut parts = Parts::default();
        for msn in 10..=14 {
            parts.complete.push_back((msn, six(msn)));
        }
        parts.building = Some((15, false, vec![part("part-15-0.ts", true), part("part-15-1.ts", false)]));
        parts.next_uri = Some("part-15-2.ts".into());
        let text = render(2, 1.0 / 3.0, 10, 4, &listed(5), &parts);
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n"), "{text}");
        assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000\n"), "{text}");
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.333\n"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:4\n"), "{text}");
        assert!(!text.contains("part-11-"), "parts older than three segments are left out: {text}");
        assert!(
            text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=0.333,URI=\"part-12-0.ts\",INDEPENDENT=YES\n")
        );
        assert!(text.contains("#EXT-X-PART:DURATION=0.333,URI=\"part-14-5.ts\"\n#EXTINF:2.000,\nseg4.ts\n"), "{text}");
        assert!(
            text.ends_with(
                "seg4.ts\n#EXT-X-PART:DURATION=0.333,URI=\"part-15-0.ts\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.333,URI=\"part-15-1.ts\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-15-2.ts\"\n"
            ),
            "{text}"
        );
        // What a plain player reads is the same window.
        let segments: Vec<&str> = text.lines().filter(|l| l.starts_with("seg")).collect();
        assert_eq!(segments, ["seg0.ts", "seg1.ts", "seg2.ts", "seg3.ts", "seg4.ts"]);
    }

    #[test]
    fn a_new_run_puts_the_discontinuity_before_its_first_part() {
        let parts = Parts {
            building: Some((3, true, vec![part("part-3-0.ts", true)])),
            next_uri: Some("part-3-1.ts".into()),
            ..Parts::default()
        };
        let text = render(2, 0.333, 0, 0, &listed(2)[..], &parts);
        assert!(text.contains("seg1.ts\n"), "{text}");
        // Segment 2 is not listed: the one being built must be 2 for its parts to show.
        assert!(!text.contains("part-3-0"), "{text}");
        let parts = Parts { building: Some((2, true, vec![part("part-2-0.ts", true)])), ..parts };
        let text = render(2, 0.333, 0, 0, &listed(2)[..], &parts);
        assert!(
            text.contains("seg1.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=0.333,URI=\"part-2-0.ts\""),
            "{text}"
        );
    }

    #[test]
    fn blocking_reloads_wait_for_the_part_or_segment_asked_for() {
        // Segments up to 14 are complete; 15 has two parts.
        let has = |msn, part| ready(15, Some((15, 2)), msn, part, 9);
        assert_eq!(has(14, None), Ready::Now);
        assert_eq!(has(14, Some(5)), Ready::Now);
        assert_eq!(has(15, Some(1)), Ready::Now);
        assert_eq!(has(15, Some(2)), Ready::Wait);
        assert_eq!(has(15, None), Ready::Wait, "segment 15 is not complete");
        assert_eq!(has(16, Some(0)), Ready::Wait);
        assert_eq!(has(17, None), Ready::TooFar);
        assert_eq!(has(15, Some(10)), Ready::Wait, "eight parts ahead: within the limit");
        assert_eq!(has(15, Some(11)), Ready::TooFar, "nine parts ahead");
        assert_eq!(advance_part_limit(1.0 / 3.0), 9);
        assert_eq!(advance_part_limit(0.334), 9);
        assert_eq!(advance_part_limit(1.0), 3);
    }

    #[test]
    fn the_query_is_read_or_refused_with_a_reason() {
        assert_eq!(blocking_query(""), Ok(None));
        assert_eq!(blocking_query("_HLS_msn=12"), Ok(Some((12, None))));
        assert_eq!(blocking_query("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"), Ok(Some((12, Some(3)))));
        assert_eq!(blocking_query("_HLS_part=3").unwrap_err(), "_HLS_part needs _HLS_msn (RFC 8216bis 6.2.5.2)");
        assert!(blocking_query("_HLS_msn=x").unwrap_err().contains("not a segment number"));
    }
}
