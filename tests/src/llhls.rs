//! An RFC 8216bis checker for the low-latency playlist (`ll.m3u8`): every playlist is parsed
//! and checked on its own ([`parse`]); the end-to-end tests compare it with the plain playlist
//! and the parts with their segments.

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// A complete segment and its parts (none for the older ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    pub name: String,
    pub extinf: f64,
    pub discontinuity: bool,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LowLatency {
    pub target: u64,
    pub part_target: f64,
    pub part_hold_back: f64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: Vec<Segment>,
    /// The parts of the segment being built (media sequence number `next_msn()`).
    pub building: Vec<Part>,
    pub preload_hint: Option<String>,
}

impl LowLatency {
    /// The media sequence number of the segment being built.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }
}

fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    attributes.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Parses a low-latency playlist and asserts what every one must satisfy on its own.
pub fn parse(text: &str) -> LowLatency {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "first line:\n{text}");
    assert!(text.ends_with('\n'), "a complete playlist ends with a newline:\n{text}");
    let mut p = LowLatency {
        target: 0,
        part_target: 0.0,
        part_hold_back: 0.0,
        media_sequence: 0,
        discontinuity_sequence: 0,
        segments: Vec::new(),
        building: Vec::new(),
        preload_hint: None,
    };
    let mut can_block = false;
    let mut parts = Vec::new();
    let mut discontinuity = false;
    let mut extinf = None;
    for line in lines {
        assert!(p.preload_hint.is_none(), "the preload hint comes last:\n{text}");
        assert!(!line.starts_with("#EXT-X-ENDLIST"), "a live stream has no ENDLIST:\n{text}");
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            can_block = attribute(v, "CAN-BLOCK-RELOAD") == Some("YES");
            p.part_hold_back = attribute(v, "PART-HOLD-BACK").expect("PART-HOLD-BACK").parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
            p.part_target = attribute(v, "PART-TARGET").expect("PART-TARGET").parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            p.discontinuity_sequence = v.parse().unwrap();
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            let duration: f64 = attribute(v, "DURATION").expect("DURATION").parse().unwrap();
            let uri = attribute(v, "URI").expect("URI").trim_matches('"').to_owned();
            assert!(duration <= p.part_target, "part {uri} of {duration} s is longer than PART-TARGET:\n{text}");
            parts.push(Part { duration, uri, independent: attribute(v, "INDEPENDENT") == Some("YES") });
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            assert_eq!(attribute(v, "TYPE"), Some("PART"), "{line}");
            p.preload_hint = Some(attribute(v, "URI").expect("URI").trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.strip_suffix(',').expect("EXTINF ends with a comma");
            assert_eq!(d.split_once('.').map(|(_, f)| f.len()), Some(3), "EXTINF with 3 decimals: {line}");
            extinf = Some(d.parse::<f64>().unwrap());
        } else if line.starts_with("#EXT-X-VERSION:") {
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}:\n{text}");
            let extinf = extinf.take().unwrap_or_else(|| panic!("URI {line} without EXTINF:\n{text}"));
            assert!((extinf.round() as u64) <= p.target, "EXTINF {extinf} rounds above the target:\n{text}");
            let msn = p.media_sequence + p.segments.len() as u64;
            let segment = Segment {
                msn,
                name: line.to_owned(),
                extinf,
                discontinuity: std::mem::take(&mut discontinuity),
                parts: std::mem::take(&mut parts),
            };
            if !segment.parts.is_empty() {
                let sum: f64 = segment.parts.iter().map(|x| x.duration).sum();
                // Each part is written to a millisecond.
                let slack = 0.0005 * segment.parts.len() as f64 + 0.0005;
                assert!((sum - extinf).abs() <= slack, "parts of {line} last {sum} s, the segment {extinf} s:\n{text}");
                assert!(segment.parts[0].independent, "the first part of {line} starts with a keyframe:\n{text}");
            }
            p.segments.push(segment);
        }
    }
    p.building = parts;
    assert!(extinf.is_none(), "dangling EXTINF:\n{text}");
    assert!(can_block, "CAN-BLOCK-RELOAD=YES:\n{text}");
    assert!(p.part_target > 0.0 && p.target > 0, "{text}");
    assert!(p.part_hold_back >= 3.0 * p.part_target - 1e-9, "PART-HOLD-BACK at least three part targets:\n{text}");
    // Parts are listed only for the newest segments: those with parts end the list.
    let first_with_parts = p.segments.iter().position(|s| !s.parts.is_empty()).unwrap_or(p.segments.len());
    assert!(
        p.segments[first_with_parts..].iter().all(|s| !s.parts.is_empty()),
        "only the newest segments carry parts:\n{text}"
    );
    assert!(p.segments.len() - first_with_parts <= 3, "parts of at most three complete segments:\n{text}");
    p
}

/// A player following the low-latency playlist: checks the rules between reloads (RFC 8216bis
/// §6.2.1, §6.2.2) for segments and parts alike: the media sequence and the discontinuity
/// sequence never go back, a number never names two segments, and the parts a playlist listed
/// for a segment are never changed: later playlists only add to them (while it is built) or
/// leave them out (once it is old).
#[derive(Debug, Default)]
pub struct Follower {
    last: Option<LowLatency>,
    name_of: std::collections::HashMap<u64, String>,
    parts_of: std::collections::HashMap<u64, Vec<Part>>,
}

impl Follower {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and checks `text`, the next playlist this player loaded.
    pub fn reload(&mut self, text: &str) -> LowLatency {
        let p = parse(text);
        if let Some(prev) = &self.last {
            assert_eq!(p.target, prev.target, "EXT-X-TARGETDURATION changed");
            assert_eq!(p.part_target, prev.part_target, "PART-TARGET changed");
            assert!(p.media_sequence >= prev.media_sequence, "media sequence went back:\n{text}");
            assert!(p.discontinuity_sequence >= prev.discontinuity_sequence, "discontinuity sequence went back");
            assert!(p.next_msn() >= prev.next_msn(), "segments vanished from the end:\n{text}");
        }
        let building = (p.next_msn(), &p.building);
        let all = p.segments.iter().map(|s| (s.msn, Some(&s.name), &s.parts)).chain([(building.0, None, building.1)]);
        for (msn, name, parts) in all {
            if let Some(name) = name {
                let first = self.name_of.entry(msn).or_insert_with(|| name.clone());
                assert_eq!(first, name, "sequence number {msn} names two segments:\n{text}");
            }
            if parts.is_empty() {
                continue;
            }
            let known = self.parts_of.entry(msn).or_default();
            let common = known.len().min(parts.len());
            assert_eq!(known[..common], parts[..common], "parts of {msn} changed in place:\n{text}");
            if parts.len() > known.len() {
                *known = parts.clone();
            }
        }
        self.last = Some(p.clone());
        p
    }
}
