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
