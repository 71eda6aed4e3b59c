//! An RFC 8216 checker for live media playlists, used by the playlist's own tests and the
//! end-to-end tests: every published playlist is parsed and checked on its own, and a
//! [`Viewer`] reloading it like a player checks the rules between reloads.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The playlist's file name in the output directory.
pub const PLAYLIST_FILE: &str = "playlist.m3u8";

#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub extinf: String,
    pub discontinuity: bool,
}

impl Listed {
    pub fn rounded_secs(&self) -> u64 {
        self.extinf.parse::<f64>().unwrap().round() as u64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub target: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: Vec<Listed>,
}

impl Published {
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.extinf.parse::<f64>().unwrap()).sum()
    }

    pub fn names(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Parses `playlist.m3u8` and asserts what every live media playlist must satisfy on its own.
pub fn parse(dir: &Path, text: &str) -> Published {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "first line:\n{text}");
    assert!(text.ends_with('\n'), "a complete playlist ends with a newline:\n{text}");
    let mut header: HashMap<&str, u64> = HashMap::new();
    let mut segments = Vec::new();
    let mut discontinuity = false;
    let mut extinf: Option<String> = None;
    for line in lines {
        assert!(!line.starts_with("#EXT-X-ENDLIST"), "a live stream that will come back has no ENDLIST:\n{text}");
        if let Some(v) = line.strip_prefix("#EXTINF:") {
            let (d, _title) = v.split_once(',').expect("EXTINF needs a comma");
            assert_eq!(d.split_once('.').map(|(_, f)| f.len()), Some(3), "EXTINF with 3 decimals: {line}");
            extinf = Some(d.to_owned());
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if let Some((tag, value)) = line.split_once(':') {
            assert!(segments.is_empty() && extinf.is_none(), "{tag} after the first segment:\n{text}");
            assert!(header.insert(tag, value.parse().unwrap()).is_none(), "{tag} twice:\n{text}");
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}:\n{text}");
            let extinf = extinf.take().unwrap_or_else(|| panic!("URI {line} without EXTINF:\n{text}"));
            assert!(!line.contains('/'), "URIs are relative names: {line}");
            assert!(dir.join(line).is_file(), "listed segment {line} must exist on disk");
            segments.push(Listed { name: line.to_owned(), extinf, discontinuity: std::mem::take(&mut discontinuity) });
        }
    }
    assert!(extinf.is_none() && !discontinuity, "dangling segment tags:\n{text}");
    assert_eq!(header.get("#EXT-X-VERSION"), Some(&3), "{text}");
    Published {
        target: header["#EXT-X-TARGETDURATION"],
        media_sequence: header["#EXT-X-MEDIA-SEQUENCE"],
        discontinuity_sequence: header.get("#EXT-X-DISCONTINUITY-SEQUENCE").copied().unwrap_or(0),
        segments,
    }
}

pub fn read(dir: &Path) -> Published {
    parse(dir, &fs::read_to_string(dir.join(PLAYLIST_FILE)).expect("the playlist is always there"))
}

/// A player reloading the playlist after every change: checks the rules between reloads
/// (RFC 8216 §6.2.1, §6.2.2, §6.3.4) and that no name ever stands for two sequence numbers.
#[derive(Debug)]
pub struct Viewer {
    dir: PathBuf,
    last: Option<Published>,
    name_of: HashMap<u64, String>,
    sequence_of: HashMap<String, u64>,
}

impl Viewer {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), last: None, name_of: HashMap::new(), sequence_of: HashMap::new() }
    }

    /// How many distinct segment names this viewer has seen.
    pub fn names_seen(&self) -> usize {
        self.sequence_of.len()
    }

    pub fn reload(&mut self) -> Published {
        let p = read(&self.dir);
        for s in &p.segments {
            assert!(s.rounded_secs() <= p.target, "EXTINF {} rounds above target {}", s.extinf, p.target);
        }
        if let Some(prev) = &self.last {
            assert_eq!(p.target, prev.target, "EXT-X-TARGETDURATION changed");
            assert!(p.media_sequence >= prev.media_sequence, "media sequence went back: {prev:?} -> {p:?}");
            let removed = usize::try_from(p.media_sequence - prev.media_sequence).unwrap();
            let removed_tags = prev.segments.iter().take(removed).filter(|s| s.discontinuity).count() as u64;
            if removed <= prev.segments.len() {
                assert_eq!(
                    p.discontinuity_sequence,
                    prev.discontinuity_sequence + removed_tags,
                    "discontinuity sequence must count the tags that left: {prev:?} -> {p:?}"
                );
                let kept = &prev.segments[removed..];
                assert!(p.segments.len() >= kept.len(), "segments vanished from the end: {prev:?} -> {p:?}");
                assert_eq!(&p.segments[..kept.len()], kept, "segments changed in place: {prev:?} -> {p:?}");
            } else {
                assert!(p.discontinuity_sequence >= prev.discontinuity_sequence + removed_tags);
            }
        }
        for (i, s) in p.segments.iter().enumerate() {
            let seq = p.media_sequence + i as u64;
            let name = self.name_of.entry(seq).or_insert_with(|| s.name.clone());
            assert_eq!(name, &s.name, "sequence number {seq} names two segments");
            let first_seq = *self.sequence_of.entry(s.name.clone()).or_insert(seq);
            assert_eq!(first_seq, seq, "segment name {} reused", s.name);
        }
        self.last = Some(p.clone());
        p
    }
}
