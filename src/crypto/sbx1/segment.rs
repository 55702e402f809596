//! The payload key and the segments: a streaming encryptor that the server drives as an
//! upload arrives in chunks of any size (and can resume after a crash), and a decryptor that
//! opens any one segment, so a range read decrypts only what it touches.
//!
//! - payload key = HKDF-SHA256(ikm = DEK, salt = header salt, info = `"sealbox/v1/file" ||
//!   file id`), 32 bytes;
//! - segment `i` = AES-256-GCM(payload key, nonce = `prefix (7) || BE32(i) || last flag
//!   (0x00 or 0x01)`, aad = the 46 header bytes), ciphertext then 16-byte tag.

use std::cell::RefCell;

use hkdf::Hkdf;
use sha2_0_11::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use super::header::{HEADER_LEN, Header, NONCE_PREFIX_LEN, SALT_LEN};
use super::layout::Layout;
use super::{FileError, TAG_LEN};
use crate::crypto::aead::Aes256Gcm;
use crate::crypto::dek::Dek;
use crate::crypto::format::NONCE_LEN;

/// The HKDF `info` label; the file id's 16 bytes follow it.
const FILE_LABEL: &[u8] = b"sealbox/v1/file";
/// Length of a payload key: an AES-256 key.
pub const FILE_KEY_LEN: usize = 32;

/// The key one file's segments are sealed under. Zeroized on drop; `Debug` prints
/// `[redacted]`. A fresh salt per file makes it fresh per file even under one DEK.
pub struct FileKey(Zeroizing<[u8; FILE_KEY_LEN]>);

impl FileKey {
    /// HKDF-SHA256 with the DEK as input key material, the header's salt as salt and
    /// `"sealbox/v1/file" || file id` as info. The label is followed by one fixed-length
    /// field, so plain concatenation is already unambiguous.
    pub fn derive(dek: &Dek, salt: &[u8; SALT_LEN], file_id: Uuid) -> Self {
        let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        Hkdf::<Sha256>::new(Some(salt), dek.expose_bytes())
            .expand(&key_info(file_id), key.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(key)
    }

    /// The raw key, for the AEAD that uses it.
    pub fn expose_bytes(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey([redacted])")
    }
}

/// The HKDF `info` of a file's payload key.
pub(crate) fn key_info(file_id: Uuid) -> Vec<u8> {
    [FILE_LABEL, file_id.as_bytes()].concat()
}

/// The nonce of segment `index`: `prefix || BE32(index) || last flag`.
pub(crate) fn segment_nonce(
    prefix: &[u8; NONCE_PREFIX_LEN],
    index: u32,
    last: bool,
) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&index.to_be_bytes());
    nonce[NONCE_LEN - 1] = u8::from(last);
    nonce
}

/// What sealing and opening share: the keyed AEAD, the header and its bytes (the AAD).
struct SegmentCipher {
    aead: Aes256Gcm,
    header: Header,
    aad: [u8; HEADER_LEN],
}

thread_local! {
    /// A copy of a last segment being opened in place, for the second attempt that tells a
    /// truncated file from a tampered one: ring wipes what it could not authenticate.
    /// Reused, so opening allocates nothing.
    static SECOND_TRY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A [`SECOND_TRY`] copy larger than this (segments past 256 KiB) is freed after use, so
/// an idle blocking thread does not keep megabytes.
const KEPT_COPY: usize = 256 * 1024;

impl SegmentCipher {
    fn new(dek: &Dek, file_id: Uuid, header: &Header) -> Self {
        let key = FileKey::derive(dek, header.salt(), file_id);
        Self {
            aead: Aes256Gcm::new(key.expose_bytes()),
            header: *header,
            aad: header.to_bytes(),
        }
    }

    fn nonce(&self, index: u32, last: bool) -> [u8; NONCE_LEN] {
        segment_nonce(self.header.nonce_prefix(), index, last)
    }

    /// Appends `plaintext` sealed (ciphertext, then the tag) to `out`. Room for both is
    /// reserved first, so `out` never reallocates with plaintext in it.
    fn seal_into(&self, index: u32, last: bool, plaintext: &[u8], out: &mut Vec<u8>) {
        out.reserve(plaintext.len() + TAG_LEN);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .seal_detached(&self.nonce(index, last), &self.aad, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Opens sealed segment `index`, stored at `buffer[from..]`; its plaintext ends up at
    /// the front of `buffer` (decrypted and moved in one pass) and the returned length says
    /// how far. On failure `buffer` holds no plaintext.
    ///
    /// `pristine` is an untouched copy of the sealed segment, if the caller has one: a
    /// failure is then named exactly. A segment that opens with the other last flag was
    /// cut off (`Truncated`) or extended (`TrailingData`), not tampered with. Without one,
    /// a full-size last segment is copied first, so a file cut at a segment boundary is
    /// still named; a middle segment is not (copying every segment would cost a pass over
    /// the bytes), so appended data reads as `Unauthentic` there.
    fn open_within(
        &self,
        index: u32,
        last: bool,
        buffer: &mut [u8],
        from: usize,
        pristine: Option<&[u8]>,
    ) -> Result<usize, FileError> {
        let full = self.header.sealed_segment_size();
        let len = buffer
            .len()
            .checked_sub(from)
            .ok_or(FileError::InvalidLength)?;
        let plausible = if last {
            // The last segment holds 1 ..= S bytes; only the empty file's is empty.
            len <= full && (len > TAG_LEN || (len == TAG_LEN && index == 0))
        } else {
            len == full
        };
        if !plausible {
            return Err(FileError::InvalidLength);
        }
        // A full-size segment is the only one that could have been sealed with the other
        // flag.
        let other_flag_possible = !last || len == full;
        let open = |flag: bool, buffer: &mut [u8], from: usize| {
            self.aead
                .open_within(&self.nonce(index, flag), &self.aad, buffer, from)
        };
        let named = |copy: &mut Vec<u8>| {
            let result = if open(!last, copy, 0).is_some() {
                Err(if last {
                    FileError::Truncated { segment: index }
                } else {
                    FileError::TrailingData { segment: index }
                })
            } else {
                Err(FileError::Unauthentic { segment: index })
            };
            copy.zeroize();
            result
        };
        match pristine {
            Some(pristine) => match open(last, buffer, from) {
                Some(len) => Ok(len),
                None if other_flag_possible => named(&mut pristine.to_vec()),
                None => Err(FileError::Unauthentic { segment: index }),
            },
            None if last && other_flag_possible => SECOND_TRY.with_borrow_mut(|copy| {
                copy.clear();
                copy.extend_from_slice(&buffer[from..]);
                let result = match open(last, buffer, from) {
                    Some(len) => Ok(len),
                    None => named(copy),
                };
                copy.clear();
                if copy.capacity() > KEPT_COPY {
                    *copy = Vec::new();
                }
                result
            }),
            None => open(last, buffer, from).ok_or(FileError::Unauthentic { segment: index }),
        }
    }
}

/// Seals a file's plaintext into segments as it arrives, in chunks of any size.
///
/// The caller writes [`Header::to_bytes`] first, then everything [`push`] and [`finish`]
/// append, in order. Since the last segment is sealed differently, a full segment is held
/// back until it is known whether more data follows: at most one segment of plaintext is
/// ever buffered.
///
/// [`push`]: SegmentEncryptor::push
/// [`finish`]: SegmentEncryptor::finish
pub struct SegmentEncryptor {
    cipher: SegmentCipher,
    /// The index the buffered plaintext will be sealed as.
    next_index: u32,
    /// Plaintext of the segment being filled.
    buffer: Zeroizing<Vec<u8>>,
}

impl SegmentEncryptor {
    /// Starts a new file with `header` (from [`Header::generate`]).
    pub fn new(dek: &Dek, file_id: Uuid, header: &Header) -> Self {
        Self::resume(dek, file_id, header, 0)
    }

    /// Continues a file of which segments `0 .. next_segment` are durably written (all of
    /// them middle segments), with the same DEK, file id and header. The file is first cut
    /// back to [`Header::segment_offset`]`(next_segment)` bytes, and the plaintext pushes
    /// on from [`Header::plaintext_offset`]`(next_segment)`.
    ///
    /// The plaintext from there must be the same as before the interruption: a segment
    /// sealed twice at one index with different contents reuses a nonce.
    pub fn resume(dek: &Dek, file_id: Uuid, header: &Header, next_segment: u32) -> Self {
        Self {
            cipher: SegmentCipher::new(dek, file_id, header),
            next_index: next_segment,
            buffer: Zeroizing::new(Vec::with_capacity(header.segment_size())),
        }
    }

    pub fn header(&self) -> &Header {
        &self.cipher.header
    }

    /// The number of segments sealed so far, counting those before a resume: once they are
    /// durably written, this is the `next_segment` to resume from.
    pub fn segments_sealed(&self) -> u32 {
        self.next_index
    }

    /// Takes the next `data` and appends every segment it completes to `out` (each exactly
    /// [`Header::sealed_segment_size`] bytes); returns how many. Refuses, before consuming
    /// anything, data that would take the file past 2^32 segments.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<u32, FileError> {
        let size = self.cipher.header.segment_size();
        // Everything but the last (possibly partial) segment of what is held is sealed now.
        let completes = (self.buffer.len() + data.len())
            .div_ceil(size)
            .saturating_sub(1);
        if u64::from(self.next_index) + completes as u64 > u64::from(u32::MAX) {
            return Err(FileError::TooLarge);
        }
        let mut sealed = 0;
        while !data.is_empty() {
            if self.buffer.len() == size {
                self.seal_buffer(false, out);
                self.next_index += 1;
                sealed += 1;
            }
            if self.buffer.is_empty() && data.len() > size {
                // A whole segment with more after it: sealed straight from the input,
                // without passing through the buffer.
                self.cipher
                    .seal_into(self.next_index, false, &data[..size], out);
                self.next_index += 1;
                sealed += 1;
                data = &data[size..];
                continue;
            }
            let take = (size - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(sealed)
    }

    /// Seals a held-back full segment as a middle one, for a caller that knows more data
    /// follows (an upload whose declared length is not reached yet), so those bytes can be
    /// written now rather than held until the next byte arrives. Returns whether a segment
    /// was sealed.
    pub fn seal_full_segment(&mut self, out: &mut Vec<u8>) -> bool {
        if self.buffer.len() != self.cipher.header.segment_size() {
            return false;
        }
        self.seal_buffer(false, out);
        self.next_index += 1;
        true
    }

    /// Seals what is left as the last segment and appends it to `out`. An empty file is one
    /// empty last segment. Fails only for a resumed encryptor that was given no data: the
    /// durable segments were sealed as middle ones, so the file cannot end after them.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), FileError> {
        if self.buffer.is_empty() && self.next_index > 0 {
            return Err(FileError::EmptyLastSegment);
        }
        self.seal_buffer(true, out);
        Ok(())
    }

    /// Seals the buffer in place (so no plaintext is left in it) and appends it.
    fn seal_buffer(&mut self, last: bool, out: &mut Vec<u8>) {
        let cipher = &self.cipher;
        let tag = cipher.aead.seal_detached(
            &cipher.nonce(self.next_index, last),
            &cipher.aad,
            &mut self.buffer,
        );
        out.reserve(self.buffer.len() + TAG_LEN);
        out.extend_from_slice(&self.buffer);
        out.extend_from_slice(&tag);
        self.buffer.clear();
    }
}

impl std::fmt::Debug for SegmentEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentEncryptor")
            .field("header", &self.cipher.header)
            .field("segments_sealed", &self.next_index)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

/// Opens the segments of one file, in any order: a range read opens only those it needs.
pub struct SegmentDecryptor {
    cipher: SegmentCipher,
}

impl SegmentDecryptor {
    /// The DEK and file id are the ones the file was encrypted with; `header` is parsed from
    /// the file's first 46 bytes.
    pub fn new(dek: &Dek, file_id: Uuid, header: &Header) -> Self {
        Self {
            cipher: SegmentCipher::new(dek, file_id, header),
        }
    }

    pub fn header(&self) -> &Header {
        &self.cipher.header
    }

    /// Opens sealed segment `index`. `is_last` comes from the file's length
    /// ([`Layout::is_last`](super::Layout::is_last)), never from the segment: that is what
    /// makes a file cut at a segment boundary fail.
    pub fn decrypt_segment(
        &self,
        index: u32,
        sealed: &[u8],
        is_last: bool,
    ) -> Result<Zeroizing<Vec<u8>>, FileError> {
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let len = self
            .cipher
            .open_within(index, is_last, &mut buffer, 0, Some(sealed))?;
        buffer.truncate(len);
        Ok(buffer)
    }

    /// Opens sealed segment `index` and appends its plaintext to `out`; returns its
    /// length. The copy a reader makes anyway (into the buffer it writes out) is the one
    /// that keeps `sealed` intact, so failures are named as by
    /// [`decrypt_segment`](Self::decrypt_segment). On failure `out` is as it was.
    pub fn decrypt_segment_into(
        &self,
        index: u32,
        sealed: &[u8],
        is_last: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, FileError> {
        let start = out.len();
        out.extend_from_slice(sealed);
        match self
            .cipher
            .open_within(index, is_last, &mut out[start..], 0, Some(sealed))
        {
            Ok(len) => {
                out.truncate(start + len);
                Ok(len)
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// [`decrypt_segment`](Self::decrypt_segment) without a copy: on success the plaintext
    /// is `sealed[..returned length]`; on failure `sealed` holds no plaintext. Without an
    /// intact copy, a middle segment that fails is `Unauthentic` even when it was sealed
    /// as the last one (data appended to the file); a cut-off file is still `Truncated`.
    pub fn decrypt_segment_in_place(
        &self,
        index: u32,
        sealed: &mut [u8],
        is_last: bool,
    ) -> Result<usize, FileError> {
        self.cipher.open_within(index, is_last, sealed, 0, None)
    }

    /// Opens the consecutive segments `first..=last`, stored back to back in `sealed` as
    /// they are in the file, in place: their plaintexts end up together at the front of
    /// the buffer, and the returned length says how far. On failure the buffer is zeroed,
    /// so no plaintext of the segments that did open is left in it.
    pub fn decrypt_segments_in_place(
        &self,
        layout: &Layout,
        first: u32,
        last: u32,
        sealed: &mut [u8],
    ) -> Result<usize, FileError> {
        let base = layout.segment_range(first).start;
        let mut opened = 0;
        for index in first..=last {
            let range = layout.segment_range(index);
            let start =
                usize::try_from(range.start - base).map_err(|_| FileError::InvalidLength)?;
            let end = usize::try_from(range.end - base).map_err(|_| FileError::InvalidLength)?;
            // Each segment's plaintext lands right after the previous one's: decrypted and
            // moved forward (over the tags before it) in one pass.
            let Some(segment) = sealed.get_mut(opened..end) else {
                sealed.zeroize();
                return Err(FileError::InvalidLength);
            };
            match self.cipher.open_within(
                index,
                layout.is_last(index),
                segment,
                start - opened,
                None,
            ) {
                Ok(len) => opened += len,
                Err(e) => {
                    sealed.zeroize();
                    return Err(e);
                }
            }
        }
        Ok(opened)
    }
}

impl std::fmt::Debug for SegmentDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentDecryptor")
            .field("header", &self.cipher.header)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sbx1::{HeaderError, Layout};

    const FILE_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_00000000f11e);

    fn dek() -> Dek {
        Dek::from_bytes([0x42; 32])
    }

    fn header(exponent: u8) -> Header {
        Header::new(exponent, [0x5a; SALT_LEN], [0xa5; NONCE_PREFIX_LEN]).unwrap()
    }

    /// Deterministic, non-repeating-per-segment plaintext.
    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Header and every segment, pushing `chunk` bytes at a time.
    fn encrypt(header: &Header, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = header.to_bytes().to_vec();
        let mut encryptor = SegmentEncryptor::new(&dek(), FILE_ID, header);
        for piece in data.chunks(chunk) {
            encryptor.push(piece, &mut out).unwrap();
        }
        encryptor.finish(&mut out).unwrap();
        out
    }

    /// Opens a whole file through the random-access path, the way a range read does.
    fn decrypt(file: &[u8]) -> Result<Vec<u8>, FileError> {
        let header = Header::parse(file)?;
        let layout = Layout::from_ciphertext_len(&header, file.len() as u64)?;
        let decryptor = SegmentDecryptor::new(&dek(), FILE_ID, &header);
        let mut plaintext = Vec::new();
        for index in 0..=layout.last_segment() {
            let range = layout.segment_range(index);
            let sealed = &file[range.start as usize..range.end as usize];
            plaintext.extend_from_slice(&decryptor.decrypt_segment(
                index,
                sealed,
                layout.is_last(index),
            )?);
        }
        Ok(plaintext)
    }

    fn sizes(segment: usize) -> [usize; 7] {
        [
            0,
            1,
            segment - 1,
            segment,
            segment + 1,
            3 * segment,
            3 * segment + 17,
        ]
    }

    #[test]
    fn round_trips_every_shape_with_4_and_64_kib_segments() {
        for exponent in [12, 16] {
            let header = header(exponent);
            for len in sizes(header.segment_size()) {
                let data = plaintext(len);
                let file = encrypt(&header, &data, usize::MAX);
                let layout = Layout::from_plaintext_len(&header, len as u64).unwrap();
                assert_eq!(file.len() as u64, layout.ciphertext_len(), "len {len}");
                assert_eq!(decrypt(&file).unwrap(), data, "len {len}");
            }
        }
    }

    #[test]
    fn any_chunking_gives_the_same_bytes() {
        let header = header(12);
        for len in [0, 4095, 4096, 3 * 4096 + 17] {
            let data = plaintext(len);
            let one_shot = encrypt(&header, &data, usize::MAX);
            for chunk in [1, 7, 4096, 100_000] {
                assert_eq!(
                    encrypt(&header, &data, chunk),
                    one_shot,
                    "len {len}/{chunk}"
                );
            }
        }
    }

    #[test]
    fn push_reports_segments_as_they_complete() {
        let header = header(12);
        let mut encryptor = SegmentEncryptor::new(&dek(), FILE_ID, &header);
        let mut out = Vec::new();
        // A full segment is held back until more data proves it is not the last.
        assert_eq!(encryptor.push(&[1; 4096], &mut out), Ok(0));
        assert!(out.is_empty());
        assert_eq!(encryptor.push(&[1], &mut out), Ok(1));
        assert_eq!(out.len(), header.sealed_segment_size());
        assert_eq!(encryptor.push(&[1; 3 * 4096], &mut out), Ok(3));
        assert_eq!(encryptor.segments_sealed(), 4);
        assert_eq!(encryptor.push(&[], &mut out), Ok(0));
        encryptor.finish(&mut out).unwrap();
        assert_eq!(out.len(), 4 * 4112 + 17);
    }

    #[test]
    fn a_resumed_encryptor_continues_byte_for_byte() {
        let header = header(12);
        let data = plaintext(5 * 4096 + 100);
        let whole = encrypt(&header, &data, usize::MAX);
        for durable in [1u32, 3, 5] {
            // Before the crash: pushes up to somewhere in segment `durable`, so exactly
            // `durable` segments were sealed; the held-back plaintext is lost.
            let mut first = SegmentEncryptor::new(&dek(), FILE_ID, &header);
            let mut out = header.to_bytes().to_vec();
            let cut = header.plaintext_offset(durable) as usize + 10;
            first.push(&data[..cut], &mut out).unwrap();
            assert_eq!(first.segments_sealed(), durable);
            assert_eq!(out.len() as u64, header.segment_offset(durable));
            drop(first);

            let mut resumed = SegmentEncryptor::resume(&dek(), FILE_ID, &header, durable);
            let from = header.plaintext_offset(durable) as usize;
            for piece in data[from..].chunks(1000) {
                resumed.push(piece, &mut out).unwrap();
            }
            resumed.finish(&mut out).unwrap();
            assert_eq!(out, whole, "resumed after {durable}");
        }
        // Resumed with nothing left to push: the file cannot end in a middle segment.
        let resumed = SegmentEncryptor::resume(&dek(), FILE_ID, &header, 2);
        assert_eq!(
            resumed.finish(&mut Vec::new()),
            Err(FileError::EmptyLastSegment)
        );
    }

    #[test]
    fn the_segment_index_cannot_overflow() {
        let header = header(12);
        let mut encryptor = SegmentEncryptor::resume(&dek(), FILE_ID, &header, u32::MAX);
        let mut out = Vec::new();
        assert_eq!(encryptor.push(&[0; 4096], &mut out), Ok(0));
        assert_eq!(encryptor.push(&[0], &mut out), Err(FileError::TooLarge));
        assert!(out.is_empty());
        encryptor.finish(&mut out).unwrap();
        assert_eq!(out.len(), 4112);

        let mut near = SegmentEncryptor::resume(&dek(), FILE_ID, &header, u32::MAX - 1);
        assert_eq!(near.push(&[0; 4097], &mut out), Ok(1));
        assert_eq!(near.segments_sealed(), u32::MAX);
    }

    #[test]
    fn nonce_is_prefix_index_and_last_flag() {
        let nonce = segment_nonce(&[9; NONCE_PREFIX_LEN], 0x0102_0304, true);
        assert_eq!(nonce, [9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 1]);
        let nonce = segment_nonce(&[9; NONCE_PREFIX_LEN], 5, false);
        assert_eq!(nonce, [9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 5, 0]);
    }

    #[test]
    fn the_payload_key_depends_on_dek_salt_and_file_id_and_is_redacted() {
        let key = |dek: u8, salt: u8, id: u128| {
            *FileKey::derive(
                &Dek::from_bytes([dek; 32]),
                &[salt; 32],
                Uuid::from_u128(id),
            )
            .expose_bytes()
        };
        let base = key(1, 2, 3);
        assert_ne!(base, key(9, 2, 3));
        assert_ne!(base, key(1, 9, 3));
        assert_ne!(base, key(1, 2, 9));
        let file_key = FileKey::derive(&dek(), &[0; 32], FILE_ID);
        assert_eq!(format!("{file_key:?}"), "FileKey([redacted])");
        let mut encryptor = SegmentEncryptor::new(&dek(), FILE_ID, &header(12));
        encryptor
            .push(b"secret plaintext", &mut Vec::new())
            .unwrap();
        let shown = format!("{encryptor:?}");
        assert!(
            shown.contains("buffered: 16") && !shown.contains("secret"),
            "{shown}"
        );
        assert_eq!(key_info(FILE_ID).len(), 15 + 16);
    }

    /// The sealed segments of a 3 * S + 17 byte file (4 segments), the header apart.
    fn four_segments() -> (Header, Vec<Vec<u8>>) {
        let header = header(12);
        let file = encrypt(&header, &plaintext(3 * 4096 + 17), usize::MAX);
        let segments = file[HEADER_LEN..]
            .chunks(4112)
            .map(<[u8]>::to_vec)
            .collect();
        (header, segments)
    }

    fn assemble(header: &Header, segments: &[Vec<u8>]) -> Vec<u8> {
        let mut file = header.to_bytes().to_vec();
        for segment in segments {
            file.extend_from_slice(segment);
        }
        file
    }

    #[test]
    fn truncation_is_detected() {
        let (header, segments) = four_segments();
        // Cut at a segment boundary: the new last segment was sealed as a middle one.
        assert_eq!(
            decrypt(&assemble(&header, &segments[..3])),
            Err(FileError::Truncated { segment: 2 })
        );
        assert_eq!(
            decrypt(&assemble(&header, &segments[..1])),
            Err(FileError::Truncated { segment: 0 })
        );
        // Down to the header alone, or cut inside a segment.
        assert_eq!(
            decrypt(&assemble(&header, &[])),
            Err(FileError::InvalidLength)
        );
        let whole = assemble(&header, &segments);
        assert_eq!(
            decrypt(&whole[..whole.len() - 20]),
            Err(FileError::InvalidLength)
        );
        assert_eq!(
            decrypt(&whole[..whole.len() - 1]),
            Err(FileError::Unauthentic { segment: 3 })
        );
        assert_eq!(
            decrypt(&whole[..HEADER_LEN - 1]),
            Err(FileError::Header(HeaderError::TooShort))
        );
    }

    #[test]
    fn removed_reordered_and_appended_segments_are_detected() {
        let (header, s) = four_segments();
        let removed = [s[0].clone(), s[2].clone(), s[3].clone()];
        assert_eq!(
            decrypt(&assemble(&header, &removed)),
            Err(FileError::Unauthentic { segment: 1 })
        );
        let swapped = [s[0].clone(), s[2].clone(), s[1].clone(), s[3].clone()];
        assert_eq!(
            decrypt(&assemble(&header, &swapped)),
            Err(FileError::Unauthentic { segment: 1 })
        );
        let duplicated = [s[0].clone(), s[0].clone(), s[2].clone(), s[3].clone()];
        assert_eq!(
            decrypt(&assemble(&header, &duplicated)),
            Err(FileError::Unauthentic { segment: 1 })
        );

        // Appending after a short last segment misaligns every later boundary.
        let appended = [
            s[0].clone(),
            s[1].clone(),
            s[2].clone(),
            s[3].clone(),
            s[1].clone(),
        ];
        assert_eq!(
            decrypt(&assemble(&header, &appended)),
            Err(FileError::Unauthentic { segment: 3 })
        );
        // Appending after a full last segment: that segment is found sealed as the last.
        let full = encrypt(&header, &plaintext(2 * 4096), usize::MAX);
        let mut extended = full.clone();
        extended.extend_from_slice(&s[1]);
        assert_eq!(
            decrypt(&extended),
            Err(FileError::TrailingData { segment: 1 })
        );
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let header = header(12);
        let file = encrypt(&header, &plaintext(4096 + 100), usize::MAX);
        for i in 0..file.len() {
            let mut tampered = file.clone();
            tampered[i] ^= 0x10;
            let error = decrypt(&tampered).unwrap_err();
            match i {
                0..4 => assert_eq!(error, FileError::Header(HeaderError::BadMagic)),
                4 => assert_eq!(
                    error,
                    FileError::Header(HeaderError::UnsupportedVersion(0x11))
                ),
                5 => assert_eq!(
                    error,
                    FileError::Header(HeaderError::UnsupportedAlgorithm(0x11))
                ),
                6 => assert_eq!(
                    error,
                    FileError::Header(HeaderError::UnsupportedSegmentExponent(28))
                ),
                7..HEADER_LEN => assert_eq!(error, FileError::Unauthentic { segment: 0 }),
                _ if i < HEADER_LEN + 4112 => {
                    assert_eq!(error, FileError::Unauthentic { segment: 0 }, "byte {i}")
                }
                _ => assert_eq!(error, FileError::Unauthentic { segment: 1 }, "byte {i}"),
            }
        }
    }

    #[test]
    fn another_header_dek_or_file_id_does_not_open() {
        let data = plaintext(100);
        let file = encrypt(&header(12), &data, usize::MAX);
        let sealed = &file[HEADER_LEN..];
        // Same salt and prefix, another segment size: the header is the AAD.
        let other_size = SegmentDecryptor::new(&dek(), FILE_ID, &header(13));
        // Another file's header (fresh salt and prefix).
        let other_file = SegmentDecryptor::new(&dek(), FILE_ID, &Header::generate());
        let other_dek = SegmentDecryptor::new(&Dek::from_bytes([1; 32]), FILE_ID, &header(12));
        let other_id = SegmentDecryptor::new(&dek(), Uuid::from_u128(1), &header(12));
        for decryptor in [other_size, other_file, other_dek, other_id] {
            assert_eq!(
                decryptor.decrypt_segment(0, sealed, true),
                Err(FileError::Unauthentic { segment: 0 })
            );
        }
        let right = SegmentDecryptor::new(&dek(), FILE_ID, &header(12));
        assert_eq!(
            right.decrypt_segment(0, sealed, true).unwrap().as_slice(),
            data
        );
        // The same segment claimed at another index.
        assert_eq!(
            right.decrypt_segment(1, sealed, true),
            Err(FileError::Unauthentic { segment: 1 })
        );
    }

    #[test]
    fn segment_lengths_are_checked_before_opening() {
        let header = header(12);
        let decryptor = SegmentDecryptor::new(&dek(), FILE_ID, &header);
        for (index, len, last) in [
            (0, 15, true),
            (1, 16, true),
            (0, 4113, true),
            (0, 4111, false),
            (0, 4113, false),
        ] {
            assert_eq!(
                decryptor.decrypt_segment(index, &vec![0; len], last),
                Err(FileError::InvalidLength),
                "{index}/{len}/{last}"
            );
        }
        // The empty file: one 16-byte last segment at index 0.
        let empty = encrypt(&header, &[], 1);
        assert_eq!(empty.len(), HEADER_LEN + 16);
        assert!(
            decryptor
                .decrypt_segment(0, &empty[HEADER_LEN..], true)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_open_leaves_no_plaintext_behind() {
        let header = header(12);
        let file = encrypt(&header, &plaintext(2 * 4096), usize::MAX);
        let decryptor = SegmentDecryptor::new(&dek(), FILE_ID, &header);
        // Segment 0 opened as the last: the diagnosis opens it, then wipes it.
        let mut sealed = file[HEADER_LEN..HEADER_LEN + 4112].to_vec();
        assert_eq!(
            decryptor.decrypt_segment_in_place(0, &mut sealed, true),
            Err(FileError::Truncated { segment: 0 })
        );
        assert!(sealed[..4096].iter().all(|&b| b == 0));
    }
    #[test]
    fn batches_of_segments_open_like_single_segments() {
        let header = header(12);
        let data = plaintext(5 * 4096 + 100);
        let file = encrypt(&header, &data, usize::MAX);
        let layout = Layout::from_ciphertext_len(&header, file.len() as u64).unwrap();
        let decryptor = SegmentDecryptor::new(&dek(), FILE_ID, &header);
        for (first, last) in [(0, 5), (0, 0), (1, 3), (4, 5), (5, 5)] {
            let cipher =
                layout.segment_range(first).start as usize..layout.segment_range(last).end as usize;
            let mut batch = file[cipher].to_vec();
            let len = decryptor
                .decrypt_segments_in_place(&layout, first, last, &mut batch)
                .unwrap();
            let plain = layout.segment_plaintext(first).start as usize
                ..layout.segment_plaintext(last).end as usize;
            assert_eq!(&batch[..len], &data[plain], "segments {first}..={last}");
        }
    }

    #[test]
    fn a_damaged_batch_fails_and_leaves_no_plaintext_behind() {
        let header = header(12);
        let mut file = encrypt(&header, &plaintext(4 * 4096), usize::MAX);
        let layout = Layout::from_ciphertext_len(&header, file.len() as u64).unwrap();
        let decryptor = SegmentDecryptor::new(&dek(), FILE_ID, &header);
        // Segment 2 of 0..=3 is damaged: 0 and 1 opened before it, and are wiped.
        let third = layout.segment_range(2).start as usize;
        file[third + 7] ^= 1;
        let mut batch = file[HEADER_LEN..].to_vec();
        assert_eq!(
            decryptor.decrypt_segments_in_place(&layout, 0, 3, &mut batch),
            Err(FileError::Unauthentic { segment: 2 })
        );
        assert!(batch.iter().all(|&b| b == 0));
        // A buffer shorter than the segments it should hold is refused.
        let mut short = file[HEADER_LEN..HEADER_LEN + 100].to_vec();
        assert_eq!(
            decryptor.decrypt_segments_in_place(&layout, 0, 0, &mut short),
            Err(FileError::InvalidLength)
        );
    }
}
