//! What a camera's picture shows, from the frames a probe already has: the keyframe it
//! waited for and the last frame it kept after it (RTSP, decoded together since that frame
//! refers back to the keyframe), or the two JPEGs of an MJPEG probe. They are decoded at a
//! reduced size ([`MAX_WIDTH`]) by GStreamer (`avdec_h264`, `avdec_h265` from
//! gstreamer1.0-libav, `jpegdec`: the Debian packages the preview already needs; no crate
//! decodes H.265, and one C decoder per codec in-process would add what GStreamer has), on a
//! small pool of threads off the async runtime ([`Decoder`], which keeps one pipeline per
//! codec and thread), with a bounded queue: a job that finds the queue full is not decoded
//! (the heartbeat is judged without a picture, at once, see [`crate::verdict`]) rather than
//! waiting, and [`budget`] counts such heartbeats for the page.
//!
//! The rules that use the pictures ([`Look`]):
//!
//! - **Within a probe** the first and last picture are a few frames (0.1–1 s) apart from one
//!   encoder session. A live sensor changes between them: motion, or at least its noise (a
//!   quiet room at night). A picture that stands still and is encoded afresh, or whose coded
//!   frame is repeated, does not change. The picture moved when the mean absolute difference
//!   of the luma exceeds [`MOVED_MEAN_LEVELS`].
//! - **Across heartbeats** the keyframes of two sessions are compared when neither probe saw
//!   its picture move: a still picture encoded afresh, or by an encoder that ran on, comes
//!   back with only requantisation noise, which shifts block averages little; another scene
//!   (something moved between the heartbeats, a light went on) shifts them a lot. The scene
//!   is the same while no 8×8 block's mean luma moved by more than [`SAME_SCENE_LEVELS`].
//! - **Black**: the picture is almost uniformly dark when its mean luma is below
//!   [`BLACK_MEAN_LEVELS`] and its standard deviation below [`BLACK_SPREAD_LEVELS`]. A dark
//!   but detailed scene spreads more and is not black.
//!
//! Measured on the test cameras (x264 at 300 kbit/s, 320×240, decoded keyframe against the
//! third frame after it): a still picture, encoded afresh or by an encoder that ran on, 0.00
//! levels apart; a moving ball 0.8–1.4; colour bars under sensor noise of a few levels 3.0.
//! An encoder at such a rate drops most noise from its predicted frames (they copy the
//! keyframe), so the noise shows between the keyframe and the frames after it.
//!
//! Limits. A camera whose encoder spends so few bits that it smooths the sensor noise of a
//! still scene away entirely, keyframes included, sends the same picture as a hung sensor,
//! and is reported frozen after `frozen_seconds` (raising the camera's bit rate, or
//! `frozen_seconds: 0`, helps); a scene that changes only slowly and only by light (dusk)
//! moves the block means slowly, so over heartbeats it may count as the same scene, though
//! within a probe its noise shows.

pub mod budget;
mod decoder;

use std::time::Duration;

pub use decoder::{DecodeError, Decoder, decode_blocking};

/// Widest decoded picture: enough to see a person in a thumbnail, little to compare.
pub const MAX_WIDTH: u32 = 320;
/// The luma of two pictures of one probe differs by more than this on average (levels of
/// 255): the picture moved, or a live sensor's noise changed it.
pub const MOVED_MEAN_LEVELS: f64 = 0.6;
/// Two keyframes of different heartbeats show the same scene while no 8×8 block's mean luma
/// differs by more than this.
pub const SAME_SCENE_LEVELS: f64 = 6.0;
/// Mean luma below this (of 255; video black is 16) …
pub const BLACK_MEAN_LEVELS: f64 = 28.0;
/// … with a standard deviation below this is an almost uniformly dark picture.
pub const BLACK_SPREAD_LEVELS: f64 = 6.0;
/// Side of the blocks whose means [`Look::same_scene`] compares.
const BLOCK: usize = 8;
/// JPEG quality of thumbnails (jpegenc's 0..=100): small files, faces still recognisable.
const THUMBNAIL_QUALITY: i32 = 80;

/// What to decode.
#[derive(Clone, PartialEq, Eq)]
pub enum Coded {
    /// H.264 or H.265 access units in Annex B form, the first a keyframe with its parameter
    /// sets, each with its presentation time.
    H26x { h265: bool, frames: Vec<(Duration, Vec<u8>)> },
    /// Complete JPEG files.
    Jpeg(Vec<Vec<u8>>),
}

/// Sizes only: the bytes would flood a log or a failed assertion.
impl std::fmt::Debug for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Coded::H26x { h265, frames } => {
                let sizes: Vec<usize> = frames.iter().map(|(_, d)| d.len()).collect();
                write!(f, "{} frames of {sizes:?} bytes", if *h265 { "H.265" } else { "H.264" })
            }
            Coded::Jpeg(jpegs) => write!(f, "JPEGs of {:?} bytes", jpegs.iter().map(Vec::len).collect::<Vec<_>>()),
        }
    }
}

/// One decoded picture at reduced size: its luma (one byte a pixel, rows without padding).
#[derive(Clone, PartialEq, Eq)]
pub struct Look {
    pub width: u32,
    pub height: u32,
    pub luma: Vec<u8>,
}

impl std::fmt::Debug for Look {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mean, spread) = self.brightness();
        write!(f, "Look({}x{}, mean {mean:.1}, spread {spread:.1})", self.width, self.height)
    }
}

/// The first and last picture of a probe, and the last as a thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pictures {
    pub first: Look,
    pub last: Look,
    /// The last picture in colour, as a JPEG; `None` if it could not be encoded.
    pub thumbnail: Option<Thumbnail>,
}

/// A camera's picture as people see it in the grid: a JPEG at most [`MAX_WIDTH`] wide.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbnail({}x{}, {} bytes of JPEG)", self.width, self.height, self.jpeg.len())
    }
}

impl Pictures {
    /// The picture moved between the first and the last frame of the probe.
    pub fn moved(&self) -> bool {
        self.first.mean_difference(&self.last) > MOVED_MEAN_LEVELS
    }
}

/// What a keyframe is remembered by between heartbeats: its size and the mean luma of each
/// 8×8 block, a sixty-fourth of the picture (1 KB at 320×180 where the luma is 57 KB, which
/// for a thousand cameras was most of the prober's memory).
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    width: u32,
    height: u32,
    means: Vec<f32>,
}

impl Scene {
    /// The largest difference of the mean luma of any block (levels); scenes of other sizes
    /// differ completely (255).
    pub fn largest_change(&self, other: &Scene) -> f64 {
        if (self.width, self.height) != (other.width, other.height) {
            return 255.0;
        }
        self.means.iter().zip(&other.means).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max)
    }

    /// No block's mean moved by more than [`SAME_SCENE_LEVELS`].
    pub fn same_as(&self, other: &Scene) -> bool {
        self.largest_change(other) <= SAME_SCENE_LEVELS
    }
}

impl Look {
    /// Mean absolute difference of the luma, in levels; pictures of other sizes differ
    /// completely (255).
    pub fn mean_difference(&self, other: &Look) -> f64 {
        if (self.width, self.height) != (other.width, other.height) || self.luma.is_empty() {
            return 255.0;
        }
        let sum: u64 = self.luma.iter().zip(&other.luma).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        sum as f64 / self.luma.len() as f64
    }

    /// The largest difference of the mean luma of any 8×8 block (levels).
    pub fn largest_block_change(&self, other: &Look) -> f64 {
        self.scene().largest_change(&other.scene())
    }

    /// Whether `other` (a keyframe of another heartbeat) shows the same scene.
    pub fn same_scene(&self, other: &Look) -> bool {
        self.scene().same_as(&other.scene())
    }

    /// What [`Look::same_scene`] compares: the mean luma of each 8×8 block.
    pub fn scene(&self) -> Scene {
        // Block means are multiples of 1/64 below 256: exact in an f32.
        let means = self.block_means().into_iter().map(|m| m as f32).collect();
        Scene { width: self.width, height: self.height, means }
    }

    /// Mean and standard deviation of the luma.
    pub fn brightness(&self) -> (f64, f64) {
        let n = self.luma.len().max(1) as f64;
        let mean = self.luma.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        let var = self.luma.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// Almost uniformly dark (see the module doc).
    pub fn is_black(&self) -> bool {
        let (mean, spread) = self.brightness();
        mean < BLACK_MEAN_LEVELS && spread < BLACK_SPREAD_LEVELS
    }

    fn block_means(&self) -> Vec<f64> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut means = Vec::with_capacity(w.div_ceil(BLOCK) * h.div_ceil(BLOCK));
        for by in (0..h).step_by(BLOCK) {
            for bx in (0..w).step_by(BLOCK) {
                let (mut sum, mut n) = (0u32, 0u32);
                for y in by..(by + BLOCK).min(h) {
                    for v in &self.luma[y * w + bx..y * w + (bx + BLOCK).min(w)] {
                        sum += u32::from(*v);
                        n += 1;
                    }
                }
                means.push(f64::from(sum) / f64::from(n.max(1)));
            }
        }
        means
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Look {
        let luma = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        Look { width: w, height: h, luma }
    }

    /// A fixed pseudo-random sequence, so the tests do not depend on chance.
    fn noise(seed: u32) -> impl Fn(u32, u32) -> i32 {
        move |x, y| {
            let mut v = x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed.wrapping_mul(83_492_791);
            v ^= v >> 13;
            v = v.wrapping_mul(0x5bd1_e995);
            v ^= v >> 15;
            (v % 7) as i32 - 3
        }
    }

    #[test]
    fn motion_and_sensor_noise_move_the_picture_and_a_repeat_does_not() {
        let scene = |x: u32, y: u32| ((x * 3 + y * 5) % 200) as u8 + 20;
        let still = look(160, 90, scene);
        let same = Pictures { first: still.clone(), last: still.clone(), thumbnail: None };
        assert!(!same.moved());
        // A ball of 10×10 moved by 10 pixels on 160×90: 200 pixels changed by ~100 levels.
        let ball = |at: u32| {
            move |x: u32, y: u32| if (at..at + 10).contains(&x) && (40..50).contains(&y) { 250 } else { scene(x, y) }
        };
        let moving = Pictures { first: look(160, 90, ball(20)), last: look(160, 90, ball(30)), thumbnail: None };
        assert!(moving.moved(), "{}", moving.first.mean_difference(&moving.last));
        // Sensor noise of ±3 levels changes every pixel a little.
        let (n1, n2) = (noise(1), noise(2));
        let noisy = Pictures {
            first: look(160, 90, |x, y| (i32::from(scene(x, y)) + n1(x, y)) as u8),
            last: look(160, 90, |x, y| (i32::from(scene(x, y)) + n2(x, y)) as u8),
            thumbnail: None,
        };
        assert!(noisy.moved(), "{}", noisy.first.mean_difference(&noisy.last));
        // ... but leaves the scene the same across heartbeats, which a moved ball does not.
        assert!(noisy.first.same_scene(&noisy.last));
        assert!(!moving.first.same_scene(&moving.last));
        assert!(!still.same_scene(&look(80, 45, scene)), "another size is another scene");
    }

    #[test]
    fn only_a_dark_and_flat_picture_is_black() {
        assert!(look(64, 36, |_, _| 16).is_black(), "video black");
        let n = noise(3);
        assert!(look(64, 36, |x, y| (18 + n(x, y)) as u8).is_black(), "black with a little noise");
        assert!(!look(64, 36, |_, _| 128).is_black(), "grey");
        // A dark scene with detail: a dim room with a lit doorway.
        assert!(!look(64, 36, |x, _| if (30..36).contains(&x) { 90 } else { 14 }).is_black());
    }
}
