//! Finding every occurrence of one delimiter byte in a short slice.
//!
//! HL7 pieces are short and their delimiters dense (a field separator every
//! few bytes), where a vectorized search pays its setup on every hit and a
//! byte loop pays a branch on every byte. This scans eight bytes per step
//! in a `u64` (SWAR): the bytes equal to the delimiter are found with
//! carry-free arithmetic, so the mask is exact, and each hit costs a
//! trailing-zero count.
//!
//! Invariant: [`each`] reports exactly the positions `i` with
//! `bytes[i] == byte`, in increasing order.

const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const ONES: u64 = 0x0101_0101_0101_0101;

/// Calls `hit(i)` for every `i` with `bytes[i] == byte`, in order, until
/// `hit` returns false. Returns false when it was stopped early.
pub(crate) fn each(bytes: &[u8], byte: u8, mut hit: impl FnMut(usize) -> bool) -> bool {
    let pattern = ONES * u64::from(byte);
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut mask = zero_bytes(u64::from_le_bytes(word) ^ pattern);
        while mask != 0 {
            if !hit(base + (mask.trailing_zeros() / 8) as usize) {
                return false;
            }
            mask &= mask - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == byte && !hit(base + i) {
            return false;
        }
    }
    true
}

/// The first position of `a` or of `b` in `bytes` (pass the same byte
/// twice to look for one), eight bytes per step as in [`each`].
pub(crate) fn first_of(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let mask = zero_bytes(word ^ pa) | zero_bytes(word ^ pb);
        if mask != 0 {
            return Some(base + (mask.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == a || x == b)
        .map(|i| base + i)
}

/// The high bit of every byte of `x` that is zero, and no other bit.
fn zero_bytes(x: u64) -> u64 {
    // (x & 0x7F) + 0x7F sets a byte's high bit iff its low seven bits are
    // not all zero, and never carries into the next byte.
    !(((x & LOW7) + LOW7) | x | LOW7)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn positions(bytes: &[u8], byte: u8) -> Vec<usize> {
        let mut out = Vec::new();
        each(bytes, byte, |i| {
            out.push(i);
            true
        });
        out
    }

    #[test]
    fn every_delimiter_position_is_found_across_word_boundaries() {
        let bytes = b"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|||\x80|\xff\x7f|";
        let expected: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'|').collect();
        assert_eq!(positions(bytes, b'|'), expected);
        assert_eq!(positions(b"", b'|'), Vec::<usize>::new());
        assert_eq!(positions(b"\0\0\x01\0", 0), vec![0, 1, 3]);
    }

    #[test]
    fn the_first_of_two_bytes_is_found_across_word_boundaries() {
        let bytes = b"OBX|1|NM|2345-7^Glucose~LN||95\x80^~";
        for start in 0..bytes.len() {
            let tail = &bytes[start..];
            let expected = tail.iter().position(|&b| b == b'^' || b == b'~');
            assert_eq!(first_of(tail, b'^', b'~'), expected, "{start}");
            let caret = tail.iter().position(|&b| b == b'^');
            assert_eq!(first_of(tail, b'^', b'^'), caret, "{start}");
        }
        assert_eq!(first_of(b"", b'|', b'^'), None);
    }

    #[test]
    fn stopping_early_is_reported() {
        let mut seen = 0;
        assert!(!each(b"a|b|c|d|e|f|g|h|i", b'|', |_| {
            seen += 1;
            seen < 3
        }));
        assert_eq!(seen, 3);
    }

    proptest! {
        #[test]
        fn positions_match_a_byte_loop(bytes in proptest::collection::vec(any::<u8>(), 0..80), byte in any::<u8>()) {
            let expected: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == byte).collect();
            prop_assert_eq!(positions(&bytes, byte), expected);
        }
    }
}
