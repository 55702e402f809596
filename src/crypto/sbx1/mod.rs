//! SBX1, the encrypted file format (SPEC §5 "Files"): a 46-byte header, then the plaintext
//! cut into segments of 2^e bytes, each sealed with AES-256-GCM under a per-file payload
//! key, with nonce `prefix || BE32(index) || last flag` and the header as associated data
//! (the STREAM construction). The CLI, the browser and the server all write this format.
//!
//! - [`header`]: the header's bytes.
//! - [`layout`]: the arithmetic between plaintext offsets, segments and ciphertext offsets,
//!   so a range read touches only the segments it needs.
//! - [`segment`]: the payload key, the streaming (and resumable) encryptor and the
//!   random-access decryptor.
//! - [`stream`]: `std::io` helpers over whole files.
//!
//! Pure functions over bytes and `Read`/`Write`; `docs/crypto.md` ("Files (SBX1)")
//! describes every byte.

pub mod header;
pub mod layout;
pub mod segment;
pub mod stream;

pub use header::{
    DEFAULT_SEGMENT_EXPONENT, HEADER_LEN, Header, HeaderError, NONCE_PREFIX_LEN, SALT_LEN,
};
pub use layout::{Layout, Span};
pub use segment::{FileKey, SegmentDecryptor, SegmentEncryptor};
pub use stream::{decrypt_range, decrypt_stream, encrypt_stream, encrypt_stream_with_header};

/// AES-GCM tag length: every sealed segment is its plaintext plus this.
pub const TAG_LEN: usize = crate::crypto::format::TAG_LEN;

/// Why an SBX1 file, or one segment of it, could not be read (or written).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum FileError {
    #[error(transparent)]
    Header(HeaderError),
    /// No SBX1 file has this length: cut inside a segment, bytes appended to it, or a
    /// segment handed to the decryptor with a size its position cannot have.
    #[error("SBX1 data has an impossible length")]
    InvalidLength,
    /// Tampered bytes, a segment moved, removed or duplicated, another file's header, or
    /// the wrong DEK or file id. AES-GCM cannot tell these apart.
    #[error("SBX1 segment {segment} failed authentication")]
    Unauthentic { segment: u32 },
    /// The file ends with a segment sealed as a middle one: it was cut at a segment
    /// boundary.
    #[error("SBX1 file is truncated after segment {segment}")]
    Truncated { segment: u32 },
    /// More data follows the segment sealed as the last one.
    #[error("SBX1 file has data after its last segment {segment}")]
    TrailingData { segment: u32 },
    /// A resumed encryptor was finished without data after its durable segments; those were
    /// sealed as middle segments, so the file cannot end there.
    #[error("SBX1 file cannot end with an empty segment after full ones")]
    EmptyLastSegment,
    /// Segment indexes are 32-bit: at most 2^32 segments (16 TiB with 4 KiB segments).
    #[error("SBX1 file would have more than 2^32 segments")]
    TooLarge,
    /// The plaintext range is empty or reaches past the end of the file.
    #[error("range is not within the file")]
    RangeNotSatisfiable,
}

/// Why a stream could not be encrypted or decrypted: the file, or the reader or writer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
