//! MPEG transport stream (ISO/IEC 13818-1) for one H.264 video stream: what an HLS segment or
//! partial segment holds, written from the [feed](crate::feed)'s access units in the streamer
//! process, so that segments and low-latency parts come from the one encoder without a muxer
//! per output.
//!
//! Kept to what HLS players need and check (RFC 8216 §3.2; Apple's HLS authoring spec):
//! - a PAT and a PMT in front of every keyframe, so any part starting at a keyframe can be
//!   decoded on its own (`INDEPENDENT=YES`);
//! - one PES packet per access unit with its PTS (no B-frames: the decode time is the
//!   presentation time, so no DTS is written), an access unit delimiter in front when the
//!   encoder gave none;
//! - a PCR in the first packet of every PES (at 15 fps that is every 67 ms, within the
//!   standard's 100 ms), the random access indicator on keyframes;
//! - continuity counters per PID that run on across segments, as one stream.

use crate::h264::{NAL_AUD, nal_types};

/// Bytes in a transport stream packet.
pub const PACKET: usize = 188;
/// The PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// The PID of the video elementary stream (and of the PCR).
pub const VIDEO_PID: u16 = 0x0100;
/// H.264 video in the PMT.
const STREAM_TYPE_H264: u8 = 0x1b;
/// PES stream id of the first video stream.
const STREAM_ID_VIDEO: u8 = 0xe0;
/// An access unit delimiter NAL (primary_pic_type 7: any slice type).
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];
/// The PCR runs this far (in 90 kHz ticks) behind the PTS, so a decoder has the frame before
/// it is due: 100 ms, what GStreamer's mpegtsmux leaves too.
const PCR_LEAD: u64 = 9_000;
/// 33-bit timestamps.
const TS_MASK: u64 = (1 << 33) - 1;

/// Continuity counters of one stream; write every segment of a stream with the same muxer.
#[derive(Debug, Default)]
pub struct TsMuxer {
    pat_cc: u8,
    pmt_cc: u8,
    video_cc: u8,
}

impl TsMuxer {
    pub fn new() -> TsMuxer {
        TsMuxer::default()
    }

    /// Appends one access unit (Annex B) presented at `pts` (90 kHz ticks) to `out`, with the
    /// PAT and PMT in front when it is a `keyframe`.
    pub fn write_unit(&mut self, out: &mut Vec<u8>, pts: u64, keyframe: bool, annex_b: &[u8]) {
        if keyframe {
            self.write_tables(out);
        }
        let starts_with_aud = nal_types(annex_b).next() == Some(NAL_AUD);
        let mut pes = Vec::with_capacity(annex_b.len() + 20);
        pes.extend_from_slice(&[0, 0, 1, STREAM_ID_VIDEO, 0, 0]);
        // '10' marker, no scrambling, data alignment; PTS only; 5 bytes of header data.
        pes.extend_from_slice(&[0x84, 0x80, 5]);
        pes.extend_from_slice(&timestamp(0b0010, pts));
        if !starts_with_aud {
            pes.extend_from_slice(&AUD);
        }
        pes.extend_from_slice(annex_b);
        let pcr = pts.wrapping_sub(PCR_LEAD) & TS_MASK;
        self.write_payload(out, &pes, Some((pcr, keyframe)));
    }

    fn write_tables(&mut self, out: &mut Vec<u8>) {
        let pat = section(0x00, 1, &[0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        let cc = next(&mut self.pat_cc);
        out.extend_from_slice(&table_packet(0, cc, &pat));
        let pmt_body = [
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8, // PCR PID
            0xf0,
            0x00, // no program descriptors
            STREAM_TYPE_H264,
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8,
            0xf0,
            0x00, // no stream descriptors
        ];
        let pmt = section(0x02, 1, &pmt_body);
        let cc = next(&mut self.pmt_cc);
        out.extend_from_slice(&table_packet(PMT_PID, cc, &pmt));
    }

    /// Splits a PES packet into transport packets; the first carries the PCR (and the random
    /// access indicator), the last is padded with adaptation-field stuffing.
    fn write_payload(&mut self, out: &mut Vec<u8>, pes: &[u8], pcr: Option<(u64, bool)>) {
        let mut rest = pes;
        let mut first = true;
        while !rest.is_empty() {
            // The adaptation field's content (after its length byte), when there is one.
            let mut field: Option<Vec<u8>> = match pcr {
                Some((pcr, random_access)) if first => Some(pcr_field(pcr, random_access)),
                _ => None,
            };
            let room = PACKET - 4 - field.as_ref().map_or(0, |f| 1 + f.len());
            if rest.len() < room {
                // Stuff the last packet so the payload ends the packet.
                let missing = room - rest.len();
                match &mut field {
                    Some(f) => f.resize(f.len() + missing, 0xff),
                    // A field of `missing` bytes: its length byte, then flags and stuffing.
                    None if missing == 1 => field = Some(Vec::new()),
                    None => field = Some([0x00].into_iter().chain(std::iter::repeat_n(0xff, missing - 2)).collect()),
                }
            }
            let take = rest.len().min(room);
            let (chunk, after) = rest.split_at(take);
            let cc = next(&mut self.video_cc);
            out.push(0x47);
            out.push(if first { 0x40 } else { 0x00 } | (VIDEO_PID >> 8) as u8);
            out.push(VIDEO_PID as u8);
            out.push(if field.is_some() { 0x30 } else { 0x10 } | cc);
            if let Some(f) = &field {
                out.push(f.len() as u8);
                out.extend_from_slice(f);
            }
            out.extend_from_slice(chunk);
            rest = after;
            first = false;
        }
    }
}

/// An adaptation field's content with a PCR (base only, extension 0) and, for a keyframe,
/// the random access indicator.
fn pcr_field(pcr: u64, random_access: bool) -> Vec<u8> {
    let base = pcr & TS_MASK;
    let flags = 0x10 | if random_access { 0x40 } else { 0 };
    vec![
        flags,
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7e,
        0,
    ]
}

/// The next continuity counter (4 bits).
fn next(cc: &mut u8) -> u8 {
    let now = *cc;
    *cc = (*cc + 1) & 0x0f;
    now
}

/// A PSI section: table id, the fixed header with `id` (transport stream or program number),
/// version 0, current, section 0 of 0, `body`, and its CRC.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    // After the length field: id (2), version (1), section numbers (2), body, CRC (4).
    let length = 5 + body.len() + 4;
    let mut s = vec![table_id, 0xb0 | (length >> 8) as u8, length as u8, (id >> 8) as u8, id as u8, 0xc1, 0, 0];
    s.extend_from_slice(body);
    let crc = crc32_mpeg(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A transport packet carrying one whole PSI section, padded with 0xff.
fn table_packet(pid: u16, cc: u8, section: &[u8]) -> [u8; PACKET] {
    let mut p = [0xff; PACKET];
    p[..5].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0]);
    p[5..5 + section.len()].copy_from_slice(section);
    p
}

/// A PES timestamp: 4-bit prefix, 33 bits with marker bits.
fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TS_MASK;
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7f) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7f) << 1) | 1,
    ]
}

/// CRC-32/MPEG-2: polynomial 0x04c11db7, initial 0xffffffff, no reflection, no final xor.
fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// 90 kHz ticks of a duration.
pub fn ticks(d: std::time::Duration) -> u64 {
    (d.as_nanos() * 9 / 100_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_mpeg2s() {
        // The check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn timestamps_carry_33_bits_and_their_markers() {
        let t = timestamp(0b0010, (1 << 33) - 1);
        assert_eq!(t, [0x2f, 0xff, 0xff, 0xff, 0xff]);
        let t = timestamp(0b0010, 0);
        assert_eq!(t, [0x21, 0x00, 0x01, 0x00, 0x01]);
    }

    /// Every packet is 188 bytes starting with the sync byte, each PID's counter runs on by
    /// one, and the PES fills its packets exactly, for sizes around every boundary.
    #[test]
    fn packets_are_whole_and_counted_for_every_payload_size() {
        for size in [1usize, 2, 150, 160, 161, 162, 163, 164, 170, 176, 177, 178, 183, 184, 185, 400, 5000] {
            let mut m = TsMuxer::new();
            let mut out = Vec::new();
            let unit: Vec<u8> = [0, 0, 0, 1, 0x65].iter().copied().chain(std::iter::repeat_n(0xab, size)).collect();
            m.write_unit(&mut out, 90_000, true, &unit);
            m.write_unit(&mut out, 96_000, false, &unit);
            assert_eq!(out.len() % PACKET, 0, "size {size}");
            let mut counters: std::collections::HashMap<u16, u8> = Default::default();
            let mut payload = Vec::new();
            for p in out.chunks(PACKET) {
                assert_eq!(p[0], 0x47, "size {size}");
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                let cc = p[3] & 0x0f;
                if let Some(last) = counters.insert(pid, cc) {
                    assert_eq!(cc, (last + 1) & 0x0f, "size {size} pid {pid}");
                }
                if pid == VIDEO_PID {
                    let start = if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 };
                    payload.extend_from_slice(&p[start..]);
                }
            }
            // Two PES packets: header (9) + PTS (5) + AUD (6) + the unit, each.
            assert_eq!(payload.len(), 2 * (9 + 5 + 6 + unit.len()), "size {size}");
        }
    }
}
