//! Looking at produced video as a person would: decode a segment with ffmpeg and read its
//! pixels.

use std::path::Path;
use std::process::Command;

/// The first frame of a segment as RGB24, `width`×`height`.
pub fn first_frame_rgb(segment: &Path, width: u32, height: u32) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(segment)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs (tests/deps.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}: {}",
        segment.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (width * height * 3) as usize, "{} is not {width}x{height}", segment.display());
    out.stdout
}

/// The colour at (x, y) of an RGB24 frame `width` pixels wide, as 0xRRGGBB.
pub fn pixel(rgb: &[u8], width: u32, x: u32, y: u32) -> u32 {
    let i = ((y * width + x) * 3) as usize;
    u32::from(rgb[i]) << 16 | u32::from(rgb[i + 1]) << 8 | u32::from(rgb[i + 2])
}

/// Whether two colours are the same after a trip through H.264 (each channel within `tolerance`).
pub fn close(a: u32, b: u32, tolerance: u8) -> bool {
    (0..3).all(|shift| {
        let (ca, cb) = ((a >> (shift * 8)) & 0xff, (b >> (shift * 8)) & 0xff);
        ca.abs_diff(cb) <= u32::from(tolerance)
    })
}

/// Checks a segment plays on its own: ffmpeg decodes it without a complaint, its first frame
/// is a keyframe, and it has exactly one random access point (a player seeking into it must
/// land on that keyframe). Returns what is wrong, if anything.
pub fn segment_problem(segment: &Path) -> Option<String> {
    let decode =
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(segment).args(["-f", "null", "-"]).output().ok()?;
    if !decode.status.success() || !decode.stderr.is_empty() {
        return Some(format!("ffmpeg: {}", String::from_utf8_lossy(&decode.stderr)));
    }
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
        ])
        .arg(segment)
        .output()
        .ok()?;
    let first = String::from_utf8_lossy(&probe.stdout).lines().next().unwrap_or_default().to_owned();
    if !first.starts_with("1,I") {
        return Some(format!("first frame is not a keyframe: {first:?}"));
    }
    let keys = random_access_points(&std::fs::read(segment).ok()?);
    (keys != 1).then(|| format!("{keys} random access points, expected 1"))
}

/// MPEG-TS packets whose adaptation field sets `random_access_indicator` (ISO 13818-1
/// 2.4.3.5). ffprobe does not report these, so a wrongly marked P-frame needs this look.
pub fn random_access_points(ts: &[u8]) -> usize {
    ts.chunks_exact(188)
        .filter(|p| {
            let adaptation = (p[3] >> 4) & 0b11;
            p[0] == 0x47 && matches!(adaptation, 2 | 3) && p[4] > 0 && p[5] & 0x40 != 0
        })
        .count()
}
