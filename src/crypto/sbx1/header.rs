//! The SBX1 header: 46 bytes at the start of every file that name the format and carry the
//! file's own randomness. It is also the associated data of every segment, so no byte of it
//! can change without every segment failing to open.
//!
//! ```text
//! offset  len  field
//!      0    4  magic "SBX1" (53 42 58 31)
//!      4    1  version, 0x01
//!      5    1  algorithm, 0x01 = AES-256-GCM segments under an HKDF-SHA256 payload key
//!      6    1  segment size exponent e: plaintext segments of 2^e bytes, 12 ..= 24
//!      7   32  salt: the HKDF salt of the payload key, random per file
//!     39    7  nonce prefix: the first 7 bytes of every segment nonce, random per file
//! ```

use super::FileError;

/// The first four bytes of every SBX1 file.
pub const MAGIC: [u8; 4] = *b"SBX1";
/// The only format version: it names the whole construction (labels, layout, algorithms).
pub const VERSION: u8 = 1;
/// Algorithm byte for AES-256-GCM segments under an HKDF-SHA256 payload key.
pub const ALGORITHM_AES_256_GCM: u8 = 1;
/// Smallest accepted segment size exponent (4 KiB segments).
pub const MIN_SEGMENT_EXPONENT: u8 = 12;
/// Largest accepted segment size exponent (16 MiB segments): a reader holds one segment in
/// memory, so the header must not be able to ask for more.
pub const MAX_SEGMENT_EXPONENT: u8 = 24;
/// The segment size exponent sealbox writes: 64 KiB segments.
pub const DEFAULT_SEGMENT_EXPONENT: u8 = 16;
/// Length of the payload key's HKDF salt.
pub const SALT_LEN: usize = 32;
/// Length of the random part of every segment nonce.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Length of the encoded header.
pub const HEADER_LEN: usize = MAGIC.len() + 3 + SALT_LEN + NONCE_PREFIX_LEN;

const SALT_AT: usize = 7;
const PREFIX_AT: usize = SALT_AT + SALT_LEN;

/// Why header bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum HeaderError {
    #[error("SBX1 header is shorter than {HEADER_LEN} bytes")]
    TooShort,
    #[error("not an SBX1 file")]
    BadMagic,
    #[error("unsupported SBX1 version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported SBX1 algorithm {0}")]
    UnsupportedAlgorithm(u8),
    #[error(
        "unsupported SBX1 segment size exponent {0} (accepted: {MIN_SEGMENT_EXPONENT} to {MAX_SEGMENT_EXPONENT})"
    )]
    UnsupportedSegmentExponent(u8),
}

/// A parsed SBX1 header. Version and algorithm are not stored: only one of each exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    segment_exponent: u8,
    salt: [u8; SALT_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl Header {
    /// A header from given parts; the exponent must be within 12 ..= 24. Production code
    /// wants [`Header::generate`]: a salt or prefix reused under the same DEK and file id
    /// reuses nonces.
    pub fn new(
        segment_exponent: u8,
        salt: [u8; SALT_LEN],
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
    ) -> Result<Self, HeaderError> {
        if !(MIN_SEGMENT_EXPONENT..=MAX_SEGMENT_EXPONENT).contains(&segment_exponent) {
            return Err(HeaderError::UnsupportedSegmentExponent(segment_exponent));
        }
        Ok(Self {
            segment_exponent,
            salt,
            nonce_prefix,
        })
    }

    /// A fresh header for a new file: 64 KiB segments, random salt and nonce prefix.
    pub fn generate() -> Self {
        Self::generate_with_exponent(DEFAULT_SEGMENT_EXPONENT)
            .expect("the default segment exponent is valid")
    }

    /// A fresh header with another segment size (2^`segment_exponent` bytes).
    pub fn generate_with_exponent(segment_exponent: u8) -> Result<Self, HeaderError> {
        Self::new(
            segment_exponent,
            crate::crypto::random_bytes(),
            crate::crypto::random_bytes(),
        )
    }

    /// Parses the header at the start of `bytes`; whatever follows it is ignored, so the
    /// first bytes of a file (or of an upload) can be passed as they are.
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderError> {
        let bytes: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(HeaderError::TooShort)?;
        if bytes[..4] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(HeaderError::UnsupportedVersion(bytes[4]));
        }
        if bytes[5] != ALGORITHM_AES_256_GCM {
            return Err(HeaderError::UnsupportedAlgorithm(bytes[5]));
        }
        let salt = bytes[SALT_AT..PREFIX_AT].try_into().expect("32 bytes");
        let prefix = bytes[PREFIX_AT..].try_into().expect("7 bytes");
        Self::new(bytes[6], salt, prefix)
    }

    /// The 46 header bytes, exactly as written at the start of the file and used as every
    /// segment's associated data.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = ALGORITHM_AES_256_GCM;
        out[6] = self.segment_exponent;
        out[SALT_AT..PREFIX_AT].copy_from_slice(&self.salt);
        out[PREFIX_AT..].copy_from_slice(&self.nonce_prefix);
        out
    }

    pub fn segment_exponent(&self) -> u8 {
        self.segment_exponent
    }

    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    pub fn nonce_prefix(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.nonce_prefix
    }

    /// Plaintext bytes in every segment but the last: 2^e.
    pub fn segment_size(&self) -> usize {
        1 << self.segment_exponent
    }

    /// Bytes of a sealed full segment: the segment size plus the 16-byte tag.
    pub fn sealed_segment_size(&self) -> usize {
        self.segment_size() + super::TAG_LEN
    }

    /// Where segment `index` starts in the file, which is also the file's length once
    /// `index` segments are written: a resumed upload truncates the file to this length.
    pub fn segment_offset(&self, index: u32) -> u64 {
        HEADER_LEN as u64 + u64::from(index) * self.sealed_segment_size() as u64
    }

    /// The plaintext offset where segment `index` starts: where a resumed upload continues.
    pub fn plaintext_offset(&self, index: u32) -> u64 {
        u64::from(index) << self.segment_exponent
    }
}

impl From<HeaderError> for FileError {
    fn from(error: HeaderError) -> Self {
        FileError::Header(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::new(16, [0xaa; SALT_LEN], [0xbb; NONCE_PREFIX_LEN]).unwrap()
    }

    #[test]
    fn layout_is_fixed_and_round_trips() {
        assert_eq!(HEADER_LEN, 46);
        let bytes = header().to_bytes();
        let mut expected = b"SBX1".to_vec();
        expected.extend_from_slice(&[1, 1, 16]);
        expected.extend_from_slice(&[0xaa; 32]);
        expected.extend_from_slice(&[0xbb; 7]);
        assert_eq!(bytes.as_slice(), expected);
        assert_eq!(Header::parse(&bytes), Ok(header()));
        // Bytes after the header are not the header's business.
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(b"segments");
        assert_eq!(Header::parse(&longer), Ok(header()));
    }

    #[test]
    fn sizes_and_offsets() {
        let h = header();
        assert_eq!(h.segment_size(), 65536);
        assert_eq!(h.sealed_segment_size(), 65552);
        assert_eq!(h.segment_offset(0), 46);
        assert_eq!(h.segment_offset(3), 46 + 3 * 65552);
        assert_eq!(h.plaintext_offset(3), 3 * 65536);
        assert_eq!(h.segment_offset(u32::MAX), 46 + u64::from(u32::MAX) * 65552);
    }

    #[test]
    fn parsing_refuses_each_bad_field() {
        let good = header().to_bytes();
        let with = |at: usize, value: u8| {
            let mut bytes = good;
            bytes[at] = value;
            Header::parse(&bytes)
        };
        assert_eq!(Header::parse(&good[..45]), Err(HeaderError::TooShort));
        assert_eq!(Header::parse(&[]), Err(HeaderError::TooShort));
        assert_eq!(with(0, b'X'), Err(HeaderError::BadMagic));
        assert_eq!(with(3, b'2'), Err(HeaderError::BadMagic));
        assert_eq!(with(4, 2), Err(HeaderError::UnsupportedVersion(2)));
        assert_eq!(with(4, 0), Err(HeaderError::UnsupportedVersion(0)));
        assert_eq!(with(5, 2), Err(HeaderError::UnsupportedAlgorithm(2)));
        assert_eq!(
            with(6, 11),
            Err(HeaderError::UnsupportedSegmentExponent(11))
        );
        assert_eq!(
            with(6, 25),
            Err(HeaderError::UnsupportedSegmentExponent(25))
        );
        assert_eq!(with(6, 12).unwrap().segment_size(), 4096);
        assert_eq!(with(6, 24).unwrap().segment_size(), 16 << 20);
    }

    #[test]
    fn generated_headers_are_fresh() {
        let (a, b) = (Header::generate(), Header::generate());
        assert_eq!(a.segment_exponent(), DEFAULT_SEGMENT_EXPONENT);
        assert_ne!(a.salt(), b.salt());
        assert_ne!(a.nonce_prefix(), b.nonce_prefix());
        assert_eq!(
            Header::generate_with_exponent(30),
            Err(HeaderError::UnsupportedSegmentExponent(30))
        );
    }
}
