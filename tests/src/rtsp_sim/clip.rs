//! The canned video of the simulated cameras: a short H.264 clip encoded once by
//! gst-launch-1.0 (x264), split into NAL units and access units, and cut into RTP payloads
//! (RFC 6184) ahead of time, so that serving a frame costs a header and a copy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::SimError;

/// Frames per second of the clip, and the pace at which it is sent.
pub const FPS: u32 = 15;
/// Groups of pictures in the clip; it loops.
const GROUPS: u32 = 4;
/// The RTP clock of H.264 (RFC 6184).
pub const RTP_CLOCK_HZ: u32 = 90_000;
/// Largest RTP payload: an Ethernet MTU less IP, UDP and RTP headers, rounded down. Larger
/// NAL units go out as FU-A fragments.
pub const MAX_PAYLOAD: usize = 1400;
/// How long gst-launch-1.0 may take to encode the clip.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(60);

/// NAL unit types (H.264 table 7-1) this module looks at.
const NAL_NON_IDR_SLICE: u8 = 1;
const NAL_IDR_SLICE: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
/// FU-A (RFC 6184 section 5.8): the type of a fragment's first byte.
pub const NAL_FU_A: u8 = 28;

/// What to encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    /// Target bit rate in kbit/s.
    pub bitrate_kbps: u32,
    /// A detailed moving picture (a zone plate) instead of a ball on black: the encoder then
    /// spends the whole bit rate, with keyframes several times larger than the frames
    /// between them, as a camera filming a real scene does. A ball on black stays far
    /// below any bit rate.
    pub detailed: bool,
    /// Frames from one keyframe to the next (x264's `key-int-max`).
    pub keyframe_interval: u32,
}

impl ClipSpec {
    /// A small camera stream: 320x240, a ball on black (about 100 kbit/s whatever the
    /// target), a keyframe every second.
    pub const SMALL: ClipSpec =
        ClipSpec { width: 320, height: 240, bitrate_kbps: 400, detailed: false, keyframe_interval: FPS };

    /// A camera's substream as a fleet sends it to the monitor: 640×360, a detailed moving
    /// picture at 512 kbit/s, a keyframe every second.
    pub const FLEET: ClipSpec =
        ClipSpec { width: 640, height: 360, bitrate_kbps: 512, detailed: true, keyframe_interval: FPS };

    /// `WIDTHxHEIGHT@KBPS` (e.g. `1280x720@2000`): a detailed picture at that bit rate, a
    /// keyframe every second.
    pub fn parse(text: &str) -> Result<ClipSpec, SimError> {
        let bad = || SimError::Usage(format!("`{text}` is not a video size and bit rate like 1280x720@2000"));
        let (size, rate) = text.split_once('@').ok_or_else(bad)?;
        let (w, h) = size.split_once('x').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad);
        Ok(ClipSpec {
            width: number(w)?,
            height: number(h)?,
            bitrate_kbps: number(rate)?,
            detailed: true,
            keyframe_interval: FPS,
        })
    }

    fn source(&self) -> &'static str {
        if self.detailed { "pattern=zone-plate kx2=20 ky2=20 kt=1" } else { "pattern=ball" }
    }
}

impl Default for ClipSpec {
    fn default() -> Self {
        ClipSpec::SMALL
    }
}

/// One RTP payload and whether it ends its access unit (the RTP marker bit).
#[derive(Clone, Debug)]
pub struct Payload {
    pub data: Vec<u8>,
    pub marker: bool,
}

/// One frame (access unit), ready to send.
#[derive(Clone, Debug)]
pub struct Frame {
    pub keyframe: bool,
    pub payloads: Vec<Payload>,
}

/// The clip: its parameter sets (for the SDP) and its frames.
#[derive(Clone, Debug)]
pub struct Clip {
    sps: Vec<u8>,
    pps: Vec<u8>,
    frames: Vec<Frame>,
}

/// The clip encoded into a temporary file, for server processes to load; removed when
/// dropped.
#[derive(Debug)]
pub struct ClipFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl ClipFile {
    pub fn encode(spec: &ClipSpec) -> Result<ClipFile, SimError> {
        let dir = tempfile::tempdir().map_err(|e| SimError::Io("create a temporary directory".into(), e))?;
        let path = dir.path().join("clip.h264");
        Clip::encode_to(&path, spec)?;
        Ok(ClipFile { _dir: dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Clip, SimError> {
        Clip::load(&self.path)
    }
}

impl Clip {
    /// Encodes the clip with gst-launch-1.0 into a temporary file and loads it.
    pub fn encode(spec: &ClipSpec) -> Result<Clip, SimError> {
        ClipFile::encode(spec)?.load()
    }

    /// Encodes the clip with gst-launch-1.0 into `path` (H.264 Annex B byte stream, SPS and
    /// PPS before every keyframe).
    pub fn encode_to(path: &Path, spec: &ClipSpec) -> Result<(), SimError> {
        let ClipSpec { width, height, bitrate_kbps, keyframe_interval, .. } = spec;
        let frames = GROUPS * keyframe_interval;
        let location = format!("location={}", path.display());
        let caps = format!("video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1");
        let encoder = format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={keyframe_interval} bitrate={bitrate_kbps}"
        );
        let pipeline = format!(
            "videotestsrc num-buffers={frames} {} ! {caps} ! {encoder} ! h264parse config-interval=-1 \
             ! video/x-h264,stream-format=byte-stream,alignment=au ! filesink {location}",
            spec.source()
        );
        let mut child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                SimError::Io("run gst-launch-1.0 (install gstreamer1.0-tools and gstreamer1.0-plugins-ugly)".into(), e)
            })?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < ENCODE_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SimError::Encode(format!("gst-launch-1.0 took longer than {ENCODE_TIMEOUT:?}")));
                }
                Err(e) => return Err(SimError::Io("wait for gst-launch-1.0".into(), e)),
            }
        };
        if !status.success() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return Err(SimError::Encode(format!("gst-launch-1.0 {pipeline} failed ({status}): {}", stderr.trim())));
        }
        Ok(())
    }

    /// Loads a clip written by [`Clip::encode_to`].
    pub fn load(path: &Path) -> Result<Clip, SimError> {
        let bytes = std::fs::read(path).map_err(|e| SimError::Io(format!("read the clip {}", path.display()), e))?;
        Clip::parse(&bytes)
    }

    /// Splits an Annex B byte stream into access units. The stream must start with a
    /// keyframe and carry an SPS and a PPS.
    pub fn parse(stream: &[u8]) -> Result<Clip, SimError> {
        let nals = split_nal_units(stream);
        let sps = nals.iter().find(|n| nal_type(n) == NAL_SPS).ok_or(SimError::Clip("no SPS"))?.to_vec();
        let pps = nals.iter().find(|n| nal_type(n) == NAL_PPS).ok_or(SimError::Clip("no PPS"))?.to_vec();
        if sps.len() < 4 {
            return Err(SimError::Clip("the SPS is too short"));
        }
        let frames: Vec<Frame> = access_units(&nals).iter().map(|au| packetize(au)).collect();
        if frames.len() < 2 {
            return Err(SimError::Clip("fewer than two frames"));
        }
        if !frames[0].keyframe {
            return Err(SimError::Clip("the first frame is not a keyframe"));
        }
        Ok(Clip { sps, pps, frames })
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Bit rate of the clip as sent, in kbit/s (RTP payloads only).
    pub fn kbps(&self) -> f64 {
        let bytes: usize = self.frames.iter().flat_map(|f| &f.payloads).map(|p| p.data.len()).sum();
        bytes as f64 * 8.0 / 1000.0 / (self.frames.len() as f64 / f64::from(FPS))
    }

    /// Average size of keyframes and of the other frames, in bytes.
    pub fn frame_sizes(&self) -> (usize, usize) {
        let average = |key: bool| {
            let sizes: Vec<usize> = self
                .frames
                .iter()
                .filter(|f| f.keyframe == key)
                .map(|f| f.payloads.iter().map(|p| p.data.len()).sum())
                .collect();
            sizes.iter().sum::<usize>() / sizes.len().max(1)
        };
        (average(true), average(false))
    }

    /// The keyframe at or before frame `index`.
    pub fn keyframe_at_or_before(&self, index: usize) -> usize {
        (0..=index.min(self.frames.len() - 1)).rev().find(|&i| self.frames[i].keyframe).unwrap_or(0)
    }

    /// RTP timestamp units between two frames.
    pub fn frame_ticks() -> u32 {
        RTP_CLOCK_HZ / FPS
    }

    /// The `a=fmtp` value of the SDP (RFC 6184 section 8.1).
    pub fn fmtp(&self) -> String {
        format!(
            "packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={},{}",
            self.sps[1],
            self.sps[2],
            self.sps[3],
            BASE64.encode(&self.sps),
            BASE64.encode(&self.pps)
        )
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// NAL units of an Annex B stream, without start codes and trailing zero bytes.
fn split_nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |&next| next - 3);
        let mut nal = &stream[start..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

/// Groups NAL units into access units (H.264 section 7.4.1.2.3): after a slice, an AUD,
/// SEI, SPS or PPS, or a slice whose `first_mb_in_slice` is 0, begins the next one.
fn access_units<'a>(nals: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut units = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut has_slice = false;
    for &nal in nals {
        let t = nal_type(nal);
        let is_slice = (NAL_NON_IDR_SLICE..=NAL_IDR_SLICE).contains(&t);
        // first_mb_in_slice is ue(v); it is 0 exactly when the first bit after the header is 1.
        let first_slice = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let begins = matches!(t, NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD | 14..=18) || first_slice;
        if begins && has_slice {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.push(nal);
        has_slice |= is_slice;
    }
    if has_slice {
        units.push(current);
    }
    units
}

/// RTP payloads of one access unit: single NAL unit packets, FU-A fragments for NAL units
/// larger than [`MAX_PAYLOAD`], the marker on the last.
fn packetize(au: &[&[u8]]) -> Frame {
    let mut payloads = Vec::new();
    for nal in au {
        if nal.len() <= MAX_PAYLOAD {
            payloads.push(Payload { data: nal.to_vec(), marker: false });
            continue;
        }
        let header = nal[0];
        let indicator = (header & 0xe0) | NAL_FU_A;
        let body = &nal[1..];
        let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == chunks.len() { 0x40 } else { 0 };
            let mut data = Vec::with_capacity(chunk.len() + 2);
            data.extend_from_slice(&[indicator, start | end | (header & 0x1f)]);
            data.extend_from_slice(chunk);
            payloads.push(Payload { data, marker: false });
        }
    }
    if let Some(last) = payloads.last_mut() {
        last.marker = true;
    }
    Frame { keyframe: au.iter().any(|n| nal_type(n) == NAL_IDR_SLICE), payloads }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUD, SPS, PPS, a 3000-byte IDR slice; AUD, a P slice; AUD, a P slice in two slices.
    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        let mut nal = |bytes: &[u8]| {
            s.extend_from_slice(&[0, 0, 0, 1]);
            s.extend_from_slice(bytes);
        };
        nal(&[0x09, 0x10]);
        nal(&[0x67, 0x42, 0xc0, 0x0d, 0xda]);
        nal(&[0x68, 0xce, 0x3c, 0x80]);
        let mut idr = vec![0x65, 0x88];
        idr.resize(3000, 0x5a);
        nal(&idr);
        nal(&[0x09, 0x30]);
        nal(&[0x41, 0x9a, 0x01]);
        nal(&[0x09, 0x30]);
        nal(&[0x41, 0x9a, 0x02]);
        nal(&[0x41, 0x44, 0x03]);
        s
    }

    #[test]
    fn a_stream_becomes_frames_of_rtp_payloads() {
        let clip = Clip::parse(&stream()).unwrap();
        let f = clip.frames();
        assert_eq!(f.len(), 3);
        assert!(f[0].keyframe && !f[1].keyframe && !f[2].keyframe);
        // AUD, SPS, PPS, then the IDR slice in three FU-A fragments.
        assert_eq!(f[0].payloads.len(), 6);
        let fu: Vec<&Payload> = f[0].payloads[3..].iter().collect();
        assert!(fu.iter().all(|p| p.data[0] == (0x60 | NAL_FU_A) && p.data.len() <= MAX_PAYLOAD));
        assert_eq!(fu.iter().map(|p| p.data[1]).collect::<Vec<_>>(), [0x85, 0x05, 0x45]);
        assert_eq!(fu.iter().map(|p| p.data.len() - 2).sum::<usize>(), 2999);
        assert_eq!(f[2].payloads.len(), 3, "the second slice of a picture stays in its access unit");
        for frame in f {
            let marks: Vec<bool> = frame.payloads.iter().map(|p| p.marker).collect();
            assert_eq!(marks.iter().filter(|m| **m).count(), 1);
            assert!(marks[marks.len() - 1]);
        }
        assert_eq!(clip.fmtp(), "packetization-mode=1;profile-level-id=42C00D;sprop-parameter-sets=Z0LADdo=,aM48gA==");
        assert_eq!(clip.keyframe_at_or_before(2), 0);
    }

    #[test]
    fn specs_are_read() {
        let spec = ClipSpec::parse("1280x720@2000").unwrap();
        assert_eq!(
            spec,
            ClipSpec { width: 1280, height: 720, bitrate_kbps: 2000, detailed: true, keyframe_interval: FPS }
        );
        for bad in ["1280x720", "1280@2000", "0x720@1", "ax720@2000"] {
            assert!(ClipSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stream_without_keyframe_first_is_refused() {
        let mut s = vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0, 0, 1, 0x68, 0xce];
        s.extend_from_slice(&[0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x41, 0x9a]);
        assert!(matches!(Clip::parse(&s), Err(SimError::Clip("the first frame is not a keyframe"))));
    }
}
