//! What the streamer reads of H.264 itself: the NAL unit types of an Annex B access unit.

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The NAL unit types of an Annex B access unit, in order.
pub fn nal_types(annex_b: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut zeros = 0usize;
    annex_b.iter().enumerate().filter_map(move |(i, &b)| {
        let header = if b == 1 && zeros >= 2 { annex_b.get(i + 1).map(|h| h & 0x1f) } else { None };
        zeros = if b == 0 { zeros + 1 } else { 0 };
        header
    })
}

/// Whether an access unit holds an IDR slice: decoding can start there. Read from the bytes,
/// which say it whatever flags the buffer carries.
pub fn is_idr(annex_b: &[u8]) -> bool {
    nal_types(annex_b).any(|t| t == NAL_IDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_types_are_read_in_order() {
        let au = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0, 0, 1, 0x65, 0x88];
        assert_eq!(nal_types(&au).collect::<Vec<_>>(), [9, 7, 8, 5]);
    }

    #[test]
    fn idr_pictures_are_told_from_their_nal_units() {
        // SPS, PPS, IDR slice, with 4- and 3-byte start codes.
        assert!(is_idr(&[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88]));
        // A non-IDR slice, and an access unit delimiter.
        assert!(!is_idr(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a]));
        // A 0x65 byte that is not a NAL header.
        assert!(!is_idr(&[0, 0, 0, 1, 0x41, 0x65, 0x00, 0x65]));
        assert!(!is_idr(&[]));
    }
}
