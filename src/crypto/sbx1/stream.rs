//! `std::io` helpers over whole SBX1 files, for the CLI and tests. Memory stays within a
//! couple of segments whatever the file's size.
//!
//! Decryption writes each segment's plaintext as soon as that segment authenticates, so a
//! file that fails later has already produced some output: a caller that must not keep a
//! partial result writes to a temporary file and discards it on error.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::header::{HEADER_LEN, Header};
use super::layout::{Layout, Span};
use super::segment::{SegmentDecryptor, SegmentEncryptor};
use super::{FileError, StreamError};
use crate::crypto::dek::Dek;

/// Plaintext read per call while encrypting (at most one segment).
const READ_CHUNK: usize = 16 * 1024;

/// Encrypts all of `reader` into `writer` as a new SBX1 file with a fresh header (64 KiB
/// segments). Returns the file's layout (plaintext and ciphertext lengths).
pub fn encrypt_stream<R: Read, W: Write>(
    reader: R,
    writer: W,
    dek: &Dek,
    file_id: Uuid,
) -> Result<Layout, StreamError> {
    encrypt_stream_with_header(reader, writer, dek, file_id, &Header::generate())
}

/// [`encrypt_stream`] with a given header: another segment size, or fixed randomness for
/// tests. A header must never be reused for different contents under the same DEK and id.
pub fn encrypt_stream_with_header<R: Read, W: Write>(
    mut reader: R,
    mut writer: W,
    dek: &Dek,
    file_id: Uuid,
    header: &Header,
) -> Result<Layout, StreamError> {
    writer.write_all(&header.to_bytes())?;
    let mut encryptor = SegmentEncryptor::new(dek, file_id, header);
    let mut chunk = Zeroizing::new(vec![0u8; READ_CHUNK.min(header.segment_size())]);
    let mut out = Vec::with_capacity(header.sealed_segment_size());
    let mut plaintext_len = 0u64;
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        plaintext_len += read as u64;
        encryptor.push(&chunk[..read], &mut out)?;
        writer.write_all(&out)?;
        out.clear();
    }
    encryptor.finish(&mut out)?;
    writer.write_all(&out)?;
    writer.flush()?;
    Ok(Layout::from_plaintext_len(header, plaintext_len)?)
}

/// Decrypts a whole SBX1 file from `reader` into `writer`, reading it once, front to back;
/// returns its layout. Truncation, reordering, tampering and trailing data all fail with a
/// [`FileError`].
pub fn decrypt_stream<R: Read, W: Write>(
    mut reader: R,
    mut writer: W,
    dek: &Dek,
    file_id: Uuid,
) -> Result<Layout, StreamError> {
    let header = read_header(&mut reader)?;
    let decryptor = SegmentDecryptor::new(dek, file_id, &header);
    let full = header.sealed_segment_size();
    // One sealed segment and one byte more: that byte says whether another segment follows,
    // so whether this one must open as the last.
    let mut buffer = vec![0u8; full + 1];
    // Opened out of `buffer`, so a failure is named exactly (see `decrypt_segment_into`).
    let mut plain = Zeroizing::new(Vec::with_capacity(full));
    let mut filled = read_full(&mut reader, &mut buffer)?;
    let mut index = 0u32;
    let mut plaintext_len = 0u64;
    while filled == full + 1 {
        plain.clear();
        let len = decryptor.decrypt_segment_into(index, &buffer[..full], false, &mut plain)?;
        writer.write_all(&plain)?;
        plaintext_len += len as u64;
        buffer[0] = buffer[full];
        index = index.checked_add(1).ok_or(FileError::InvalidLength)?;
        filled = 1 + read_full(&mut reader, &mut buffer[1..])?;
    }
    plain.clear();
    let len = decryptor.decrypt_segment_into(index, &buffer[..filled], true, &mut plain)?;
    writer.write_all(&plain)?;
    writer.flush()?;
    Ok(Layout::from_plaintext_len(
        &header,
        plaintext_len + len as u64,
    )?)
}

/// Decrypts the plaintext bytes `range` of the SBX1 file in `reader` into `writer`,
/// reading and opening only the segments the range touches. Returns the span read.
pub fn decrypt_range<R: Read + Seek, W: Write>(
    mut reader: R,
    mut writer: W,
    dek: &Dek,
    file_id: Uuid,
    range: Range<u64>,
) -> Result<Span, StreamError> {
    reader.seek(SeekFrom::Start(0))?;
    let header = read_header(&mut reader)?;
    let layout = Layout::from_ciphertext_len(&header, reader.seek(SeekFrom::End(0))?)?;
    let span = layout.span(range)?;
    let decryptor = SegmentDecryptor::new(dek, file_id, &header);
    let mut buffer = Zeroizing::new(vec![0u8; header.sealed_segment_size()]);
    reader.seek(SeekFrom::Start(span.ciphertext.start))?;
    for index in span.segments() {
        let sealed = &mut buffer[..segment_len(&layout, index)];
        reader.read_exact(sealed)?;
        let len = decryptor.decrypt_segment_in_place(index, sealed, layout.is_last(index))?;
        writer.write_all(&sealed[..len][span.within_segment(index)])?;
    }
    writer.flush()?;
    Ok(span)
}

fn segment_len(layout: &Layout, index: u32) -> usize {
    let range = layout.segment_range(index);
    usize::try_from(range.end - range.start).expect("a segment fits in memory")
}

fn read_header(reader: &mut impl Read) -> Result<Header, StreamError> {
    let mut bytes = [0u8; HEADER_LEN];
    let read = read_full(reader, &mut bytes)?;
    Ok(Header::parse(&bytes[..read]).map_err(FileError::from)?)
}

/// Reads until `buffer` is full or the input ends; returns how much was read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::crypto::sbx1::HeaderError;
    use crate::crypto::sbx1::header::{NONCE_PREFIX_LEN, SALT_LEN};

    const FILE_ID: Uuid = Uuid::from_u128(0x0192f0a0_0000_7000_8000_0000000000f5);

    fn dek() -> Dek {
        Dek::from_bytes([0x17; 32])
    }

    fn header(exponent: u8) -> Header {
        Header::new(exponent, [3; SALT_LEN], [4; NONCE_PREFIX_LEN]).unwrap()
    }

    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn encrypt(header: &Header, data: &[u8]) -> Vec<u8> {
        let mut file = Vec::new();
        encrypt_stream_with_header(data, &mut file, &dek(), FILE_ID, header).unwrap();
        file
    }

    fn decrypt(file: &[u8]) -> Result<Vec<u8>, FileError> {
        let mut out = Vec::new();
        match decrypt_stream(file, &mut out, &dek(), FILE_ID) {
            Ok(layout) => {
                assert_eq!(layout.plaintext_len(), out.len() as u64);
                assert_eq!(layout.ciphertext_len(), file.len() as u64);
                Ok(out)
            }
            Err(StreamError::File(error)) => Err(error),
            Err(StreamError::Io(error)) => panic!("{error}"),
        }
    }

    /// A reader that hands out at most `n` bytes per call and is interrupted in between.
    struct Trickle<'a>(&'a [u8], usize, bool);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.2 = !self.2;
            if self.2 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streams_round_trip_every_shape() {
        for exponent in [12, 16] {
            let header = header(exponent);
            let segment = header.segment_size();
            for len in [
                0,
                1,
                segment - 1,
                segment,
                segment + 1,
                3 * segment,
                3 * segment + 17,
            ] {
                let data = plaintext(len);
                let file = encrypt(&header, &data);
                assert_eq!(decrypt(&file).unwrap(), data, "2^{exponent}, len {len}");
                // Short reads give the same bytes both ways.
                let mut trickled = Vec::new();
                encrypt_stream_with_header(
                    Trickle(&data, 1000, false),
                    &mut trickled,
                    &dek(),
                    FILE_ID,
                    &header,
                )
                .unwrap();
                assert_eq!(trickled, file);
                let mut out = Vec::new();
                decrypt_stream(Trickle(&file, 333, false), &mut out, &dek(), FILE_ID).unwrap();
                assert_eq!(out, data);
            }
        }
    }

    #[test]
    fn the_default_stream_uses_a_fresh_64_kib_header() {
        let data = plaintext(70_000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let layout = encrypt_stream(data.as_slice(), &mut a, &dek(), FILE_ID).unwrap();
        encrypt_stream(data.as_slice(), &mut b, &dek(), FILE_ID).unwrap();
        assert_eq!(Header::parse(&a).unwrap().segment_exponent(), 16);
        assert_eq!(layout.segment_count(), 2);
        assert_eq!(layout.ciphertext_len(), a.len() as u64);
        assert_ne!(a, b);
        assert_eq!(decrypt(&a).unwrap(), data);
        assert_eq!(decrypt(&b).unwrap(), data);
    }

    #[test]
    fn stream_decryption_detects_every_kind_of_damage() {
        let header = header(12);
        let full = header.sealed_segment_size();
        let file = encrypt(&header, &plaintext(3 * 4096 + 17));
        let body = &file[HEADER_LEN..];
        let segment = |i: usize| &body[i * full..((i + 1) * full).min(body.len())];
        let join = |parts: &[&[u8]]| [&file[..HEADER_LEN], &parts.concat()].concat();

        assert_eq!(
            decrypt(&join(&[segment(0), segment(1), segment(2)])),
            Err(FileError::Truncated { segment: 2 })
        );
        assert_eq!(
            decrypt(&join(&[segment(0), segment(2), segment(3)])),
            Err(FileError::Unauthentic { segment: 1 })
        );
        assert_eq!(
            decrypt(&join(&[segment(1), segment(0), segment(2), segment(3)])),
            Err(FileError::Unauthentic { segment: 0 })
        );
        assert_eq!(
            decrypt(&join(&[
                segment(0),
                segment(1),
                segment(2),
                segment(3),
                segment(3)
            ])),
            Err(FileError::Unauthentic { segment: 3 })
        );
        assert_eq!(decrypt(&file[..HEADER_LEN]), Err(FileError::InvalidLength));
        assert_eq!(
            decrypt(&file[..file.len() - 30]),
            Err(FileError::InvalidLength)
        );
        assert_eq!(
            decrypt(&file[..10]),
            Err(FileError::Header(HeaderError::TooShort))
        );
        let mut flipped = file.clone();
        flipped[HEADER_LEN + 2 * full + 5] ^= 1;
        assert_eq!(
            decrypt(&flipped),
            Err(FileError::Unauthentic { segment: 2 })
        );
        let mut flipped = file.clone();
        flipped[20] ^= 1;
        assert_eq!(
            decrypt(&flipped),
            Err(FileError::Unauthentic { segment: 0 })
        );

        // A full last segment followed by an appended copy of itself.
        let even = encrypt(&header, &plaintext(2 * 4096));
        let mut extended = even.clone();
        extended.extend_from_slice(&even[HEADER_LEN + full..]);
        assert_eq!(
            decrypt(&extended),
            Err(FileError::TrailingData { segment: 1 })
        );
    }

    #[test]
    fn ranges_decrypt_only_what_they_touch() {
        let header = header(12);
        let data = plaintext(3 * 4096 + 17);
        let file = encrypt(&header, &data);
        let read = |range: Range<u64>| {
            let mut out = Vec::new();
            let span = decrypt_range(Cursor::new(&file), &mut out, &dek(), FILE_ID, range.clone())?;
            assert_eq!(out, data[range.start as usize..range.end as usize]);
            Ok::<_, StreamError>(span)
        };
        let len = data.len() as u64;
        for range in [
            0..1,
            0..len,
            4095..4096,
            4095..4097,
            4096..8192,
            100..9000,
            3 * 4096..len,
            len - 1..len,
        ] {
            read(range).unwrap();
        }

        // Damage outside the span is not seen; inside it, it is.
        let mut damaged = file.clone();
        damaged[HEADER_LEN + 5] ^= 1;
        let mut out = Vec::new();
        decrypt_range(Cursor::new(&damaged), &mut out, &dek(), FILE_ID, 5000..6000).unwrap();
        assert_eq!(out, data[5000..6000]);
        assert!(matches!(
            decrypt_range(Cursor::new(&damaged), &mut out, &dek(), FILE_ID, 4000..5000),
            Err(StreamError::File(FileError::Unauthentic { segment: 0 }))
        ));
        // A truncated file fails on a range that reaches its (new) last segment.
        let truncated = &file[..HEADER_LEN + 3 * header.sealed_segment_size()];
        assert!(matches!(
            decrypt_range(
                Cursor::new(truncated),
                &mut out,
                &dek(),
                FILE_ID,
                9000..9001
            ),
            Err(StreamError::File(FileError::Truncated { segment: 2 }))
        ));
        assert!(matches!(
            decrypt_range(Cursor::new(&file), &mut out, &dek(), FILE_ID, len..len + 1),
            Err(StreamError::File(FileError::RangeNotSatisfiable))
        ));
    }
}
