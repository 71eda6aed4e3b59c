//! Is this a complete JPEG, and how big is the picture? The start-of-image and end-of-image
//! markers prove the frame arrived whole; the frame header (SOFn) before the first scan gives
//! its size. Nothing is decoded: a camera that sends well-framed JPEGs of noise passes.

/// What a JPEG's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u32,
    pub height: u32,
}

/// Why bytes are not a complete JPEG; the text is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("does not start with a JPEG start-of-image marker (FF D8)")]
    NoStart,
    #[error("does not end with a JPEG end-of-image marker (FF D9); the frame is cut short")]
    NoEnd,
    #[error("has no frame header (SOFn) before its image data, so it has no size")]
    NoFrameHeader,
    #[error("has a broken marker segment at byte {0}")]
    BrokenSegment(usize),
    #[error("says its picture is {width}x{height}, which is empty")]
    EmptyPicture { width: u32, height: u32 },
}

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: [u8; 2] = [0xFF, 0xD9];
const SOS: u8 = 0xDA;

/// Checks that `data` is one complete JPEG (bytes after the end marker that are only line
/// ends, as multipart streams leave them, are allowed) and reads its size.
pub fn inspect(data: &[u8]) -> Result<JpegInfo, JpegError> {
    if !data.starts_with(&SOI) {
        return Err(JpegError::NoStart);
    }
    let end = data.iter().rposition(|b| !b"\r\n \t".contains(b)).map_or(0, |i| i + 1);
    if end < 4 || data[end - 2..end] != EOI {
        return Err(JpegError::NoEnd);
    }
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of fill bytes (FF).
        if data.get(i) != Some(&0xFF) {
            return Err(JpegError::BrokenSegment(i));
        }
        while data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = data.get(i + 1) else { return Err(JpegError::BrokenSegment(i)) };
        // Standalone markers carry no length.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2;
            continue;
        }
        if marker == SOS || marker == EOI[1] {
            return Err(JpegError::NoFrameHeader);
        }
        let len = match data.get(i + 2..i + 4) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(JpegError::BrokenSegment(i)),
        };
        if len < 2 || i + 2 + len > end {
            return Err(JpegError::BrokenSegment(i));
        }
        if is_sof(marker) {
            let seg = &data[i + 4..i + 2 + len];
            if seg.len() < 5 {
                return Err(JpegError::BrokenSegment(i));
            }
            let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            if width == 0 || height == 0 {
                return Err(JpegError::EmptyPicture { width, height });
            }
            return Ok(JpegInfo { width, height });
        }
        i += 2 + len;
    }
}

/// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal, well-framed baseline JPEG header of `w`x`h` (not decodable: no tables).
    pub(crate) fn tiny_jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46]); // APP0, 2 bytes of payload
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0x00, 0x56]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn reads_the_size_of_a_complete_jpeg() {
        assert_eq!(inspect(&tiny_jpeg(640, 480)), Ok(JpegInfo { width: 640, height: 480 }));
        let mut with_crlf = tiny_jpeg(2, 3);
        with_crlf.extend_from_slice(b"\r\n");
        assert_eq!(inspect(&with_crlf), Ok(JpegInfo { width: 2, height: 3 }));
    }

    #[test]
    fn refuses_what_is_not_a_whole_jpeg() {
        let j = tiny_jpeg(640, 480);
        assert_eq!(inspect(b"<html>nope</html>"), Err(JpegError::NoStart));
        assert_eq!(inspect(&j[..j.len() - 3]), Err(JpegError::NoEnd));
        let mut no_sof = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9];
        assert_eq!(inspect(&no_sof), Err(JpegError::NoFrameHeader));
        no_sof[3] = 0xE1; // a segment whose length runs past the end
        no_sof[5] = 0x40;
        assert_eq!(inspect(&no_sof), Err(JpegError::BrokenSegment(2)));
        assert_eq!(inspect(&tiny_jpeg(0, 480)), Err(JpegError::EmptyPicture { width: 0, height: 480 }));
    }
}
