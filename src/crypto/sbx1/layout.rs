//! Where things are in an SBX1 file of known length: the arithmetic between plaintext
//! offsets, segment indexes and ciphertext offsets, so that a range read touches only the
//! segments it needs. Integer arithmetic only; nothing here decrypts.
//!
//! With `S = 2^e` (the segment size), `T = S + 16` (a sealed full segment) and `H = 46`:
//!
//! - a plaintext of `P` bytes has `n = max(1, ceil(P / S))` segments; all but the last hold
//!   `S` bytes, the last `1 ..= S`, and only the empty file has an empty (last) segment;
//! - its ciphertext is `C = H + P + 16 n` bytes;
//! - back from a ciphertext length: `B = C - H`, `n = ceil(B / T)`, `P = B - 16 n`, valid
//!   only if the last sealed segment, `B - (n - 1) T` bytes, holds 17 ..= T bytes (exactly
//!   16 when `n = 1`: the empty file) and `n <= 2^32`.

use std::ops::{Range, RangeInclusive};

use super::header::{HEADER_LEN, Header};
use super::{FileError, TAG_LEN};

/// Segment indexes are 32-bit, so a file has at most 2^32 segments.
const MAX_SEGMENTS: u64 = 1 << 32;

/// The shape of one SBX1 file: its segment size, plaintext length and segment count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    segment_exponent: u8,
    plaintext_len: u64,
    segment_count: u64,
}

/// The segments a plaintext byte range touches, and the ciphertext bytes to read for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub first_segment: u32,
    pub last_segment: u32,
    /// Byte offsets in the whole file (header included) of segments `first ..= last`.
    pub ciphertext: Range<u64>,
    /// The plaintext range asked for.
    pub plaintext: Range<u64>,
    segment_exponent: u8,
}

impl Layout {
    /// The layout of a file of `plaintext_len` bytes written with `header`.
    pub fn from_plaintext_len(header: &Header, plaintext_len: u64) -> Result<Self, FileError> {
        let segment_count = plaintext_len.div_ceil(segment_size(header)).max(1);
        if segment_count > MAX_SEGMENTS {
            return Err(FileError::TooLarge);
        }
        Ok(Self {
            segment_exponent: header.segment_exponent(),
            plaintext_len,
            segment_count,
        })
    }

    /// The layout of a stored file from its total length (header included). A length no
    /// SBX1 file can have (cut inside a segment, bytes appended) is refused here, before
    /// anything is read.
    pub fn from_ciphertext_len(header: &Header, ciphertext_len: u64) -> Result<Self, FileError> {
        let tag = TAG_LEN as u64;
        let sealed_segment = segment_size(header) + tag;
        let body = ciphertext_len
            .checked_sub(HEADER_LEN as u64)
            .filter(|&body| body >= tag)
            .ok_or(FileError::InvalidLength)?;
        let segment_count = body.div_ceil(sealed_segment);
        let last_sealed = body - (segment_count - 1) * sealed_segment;
        if segment_count > MAX_SEGMENTS || (segment_count > 1 && last_sealed <= tag) {
            return Err(FileError::InvalidLength);
        }
        Ok(Self {
            segment_exponent: header.segment_exponent(),
            plaintext_len: body - segment_count * tag,
            segment_count,
        })
    }

    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// The file's total length: header, then every sealed segment.
    pub fn ciphertext_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plaintext_len + self.segment_count * TAG_LEN as u64
    }

    /// Number of segments, 1 ..= 2^32.
    pub fn segment_count(&self) -> u64 {
        self.segment_count
    }

    /// Index of the last segment, the one sealed with the last flag.
    pub fn last_segment(&self) -> u32 {
        u32::try_from(self.segment_count - 1).expect("at most 2^32 segments")
    }

    /// Whether segment `index` must be opened as the last one.
    pub fn is_last(&self, index: u32) -> bool {
        index == self.last_segment()
    }

    /// Byte offsets of sealed segment `index` in the whole file (header included).
    ///
    /// Panics if `index` is past the last segment.
    pub fn segment_range(&self, index: u32) -> Range<u64> {
        assert!(
            index <= self.last_segment(),
            "segment {index} is past the end"
        );
        let sealed_segment = (1u64 << self.segment_exponent) + TAG_LEN as u64;
        let start = HEADER_LEN as u64 + u64::from(index) * sealed_segment;
        start..(start + sealed_segment).min(self.ciphertext_len())
    }

    /// Plaintext offsets that segment `index` holds.
    ///
    /// Panics if `index` is past the last segment.
    pub fn segment_plaintext(&self, index: u32) -> Range<u64> {
        assert!(
            index <= self.last_segment(),
            "segment {index} is past the end"
        );
        let start = u64::from(index) << self.segment_exponent;
        start..(start + (1 << self.segment_exponent)).min(self.plaintext_len)
    }

    /// Maps the plaintext byte range `[start, end)` to the segments holding it. The range
    /// must be non-empty and inside the file; an HTTP layer clamps an open-ended or
    /// overlong `Range` first.
    pub fn span(&self, plaintext: Range<u64>) -> Result<Span, FileError> {
        if plaintext.start >= plaintext.end || plaintext.end > self.plaintext_len {
            return Err(FileError::RangeNotSatisfiable);
        }
        let index = |offset: u64| u32::try_from(offset >> self.segment_exponent).expect("< 2^32");
        let first_segment = index(plaintext.start);
        let last_segment = index(plaintext.end - 1);
        Ok(Span {
            first_segment,
            last_segment,
            ciphertext: self.segment_range(first_segment).start
                ..self.segment_range(last_segment).end,
            plaintext,
            segment_exponent: self.segment_exponent,
        })
    }
}

impl Span {
    /// The segment indexes to read and open, in order.
    pub fn segments(&self) -> RangeInclusive<u32> {
        self.first_segment..=self.last_segment
    }

    /// Which bytes of segment `index`'s plaintext belong to the range.
    ///
    /// Panics if `index` is not one of [`Span::segments`].
    pub fn within_segment(&self, index: u32) -> Range<usize> {
        assert!(
            self.segments().contains(&index),
            "segment {index} is not in the span"
        );
        let start = u64::from(index) << self.segment_exponent;
        let end = start + (1 << self.segment_exponent);
        let from = self.plaintext.start.max(start) - start;
        let to = self.plaintext.end.min(end) - start;
        usize::try_from(from).expect("within a segment")
            ..usize::try_from(to).expect("within a segment")
    }
}

fn segment_size(header: &Header) -> u64 {
    1 << header.segment_exponent()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sbx1::header::{NONCE_PREFIX_LEN, SALT_LEN};

    const S: u64 = 4096;
    const T: u64 = S + 16;
    const H: u64 = 46;

    fn header() -> Header {
        Header::new(12, [0; SALT_LEN], [0; NONCE_PREFIX_LEN]).unwrap()
    }

    #[test]
    fn lengths_round_trip_for_every_shape() {
        let cases = [
            (0, 1),
            (1, 1),
            (S - 1, 1),
            (S, 1),
            (S + 1, 2),
            (3 * S, 3),
            (3 * S + 17, 4),
        ];
        for (plaintext_len, segments) in cases {
            let layout = Layout::from_plaintext_len(&header(), plaintext_len).unwrap();
            assert_eq!(layout.segment_count(), segments, "P = {plaintext_len}");
            assert_eq!(layout.ciphertext_len(), H + plaintext_len + 16 * segments);
            assert_eq!(
                Layout::from_ciphertext_len(&header(), layout.ciphertext_len()),
                Ok(layout),
                "P = {plaintext_len}"
            );
        }
    }

    #[test]
    fn impossible_ciphertext_lengths_are_refused() {
        // Shorter than a header and an empty segment; an empty segment after a full one;
        // a partial segment too short to hold a tag and a byte.
        for len in [0, H, H + 15, H + T + 16, H + T + 1, H + 2 * T + 10] {
            assert_eq!(
                Layout::from_ciphertext_len(&header(), len),
                Err(FileError::InvalidLength),
                "C = {len}"
            );
        }
        for len in [H + 16, H + 17, H + T, H + T + 17, H + 2 * T] {
            assert!(
                Layout::from_ciphertext_len(&header(), len).is_ok(),
                "C = {len}"
            );
        }
    }

    #[test]
    fn segment_count_is_capped_at_2_pow_32() {
        let max = (1u64 << 32) * S;
        let layout = Layout::from_plaintext_len(&header(), max).unwrap();
        assert_eq!(layout.last_segment(), u32::MAX);
        assert_eq!(
            Layout::from_ciphertext_len(&header(), layout.ciphertext_len()),
            Ok(layout)
        );
        assert_eq!(
            Layout::from_plaintext_len(&header(), max + 1),
            Err(FileError::TooLarge)
        );
        assert_eq!(
            Layout::from_ciphertext_len(&header(), layout.ciphertext_len() + 17),
            Err(FileError::InvalidLength)
        );
    }

    #[test]
    fn segment_ranges_tile_the_file() {
        let layout = Layout::from_plaintext_len(&header(), 3 * S + 17).unwrap();
        assert_eq!(layout.segment_range(0), H..H + T);
        assert_eq!(layout.segment_range(2), H + 2 * T..H + 3 * T);
        assert_eq!(layout.segment_range(3), H + 3 * T..H + 3 * T + 33);
        assert_eq!(layout.segment_range(3).end, layout.ciphertext_len());
        assert_eq!(layout.segment_plaintext(3), 3 * S..3 * S + 17);
        assert!(layout.is_last(3) && !layout.is_last(2));

        let empty = Layout::from_plaintext_len(&header(), 0).unwrap();
        assert_eq!(empty.segment_range(0), H..H + 16);
        assert_eq!(empty.segment_plaintext(0), 0..0);
    }

    #[test]
    fn spans_touch_only_the_segments_they_need() {
        let layout = Layout::from_plaintext_len(&header(), 3 * S + 17).unwrap();
        let span = |r: Range<u64>| layout.span(r).unwrap();

        // Inside one segment.
        let s = span(10..20);
        assert_eq!((s.first_segment, s.last_segment), (0, 0));
        assert_eq!(s.ciphertext, H..H + T);
        assert_eq!(s.within_segment(0), 10..20);

        // Exactly one whole segment, by its boundaries.
        let s = span(S..2 * S);
        assert_eq!(s.segments(), 1..=1);
        assert_eq!(s.ciphertext, H + T..H + 2 * T);
        assert_eq!(s.within_segment(1), 0..S as usize);

        // The last byte of one segment and the first of the next.
        let s = span(S - 1..S + 1);
        assert_eq!(s.segments(), 0..=1);
        assert_eq!(s.ciphertext, H..H + 2 * T);
        assert_eq!(s.within_segment(0), S as usize - 1..S as usize);
        assert_eq!(s.within_segment(1), 0..1);

        // Into the short last segment, up to the end of the file.
        let s = span(2 * S + 5..3 * S + 17);
        assert_eq!(s.segments(), 2..=3);
        assert_eq!(s.ciphertext, H + 2 * T..layout.ciphertext_len());
        assert_eq!(s.within_segment(2), 5..S as usize);
        assert_eq!(s.within_segment(3), 0..17);

        // The whole file.
        let s = span(0..3 * S + 17);
        assert_eq!(s.segments(), 0..=3);
        assert_eq!(s.ciphertext, H..layout.ciphertext_len());

        let reversed = Range { start: 6, end: 5 };
        let empty_range = Range { start: 5, end: 5 };
        for bad in [empty_range, reversed, 0..3 * S + 18, 3 * S + 17..3 * S + 18] {
            assert_eq!(layout.span(bad), Err(FileError::RangeNotSatisfiable));
        }
        let empty = Layout::from_plaintext_len(&header(), 0).unwrap();
        assert_eq!(empty.span(0..1), Err(FileError::RangeNotSatisfiable));
    }
}
