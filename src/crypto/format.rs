//! The byte layout every sealed vault object shares: the leading format version, the
//! length-prefixed context encoding that builds associated data and HPKE `info`, the
//! AES-256-GCM box (`version || nonce || ciphertext || tag`) used by sealed seeds and
//! sealed values, and the error for bytes that do not open.
//!
//! `docs/crypto.md` describes each of these byte for byte.

use zeroize::Zeroizing;

use super::aead::Aes256Gcm;

/// The first byte of every sealed vault object in this format. It names the whole
/// construction (labels, layout, algorithms), so a later format can coexist with this one.
pub const FORMAT_V1: u8 = 1;
/// The first byte of a sealed value in format 2: the layout of [`FORMAT_V1`], with
/// associated data that also binds where the value is stored (`crypto::sealed_value`).
pub const FORMAT_V2: u8 = 2;
/// AES-GCM nonce length: 96 bits, chosen at random per seal.
pub(crate) const NONCE_LEN: usize = super::aead::NONCE_LEN;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = super::aead::TAG_LEN;

/// Why sealed bytes could not be opened. Deliberately coarse: AES-GCM cannot tell a wrong
/// key from a wrong context or a tampered byte, and nothing here tries to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data uses unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Wrong key, wrong context (kind, id, version, recipient), or tampered bytes.
    #[error("sealed data failed authentication")]
    Unauthentic,
}

/// Encodes a context: the ASCII `label`, then each field as its length (big-endian u16)
/// followed by its bytes. The length prefixes make the encoding injective, so two
/// different (kind, id, ...) tuples can never produce the same associated data.
///
/// Panics if a field is longer than 65535 bytes; fields are constants and fixed-size ids.
pub(crate) fn encode_context(label: &str, fields: &[&[u8]]) -> Vec<u8> {
    let len = label.len() + fields.iter().map(|f| 2 + f.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(label.as_bytes());
    for field in fields {
        let field_len = u16::try_from(field.len()).expect("context fields are short");
        out.extend_from_slice(&field_len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Returns the bytes after the version byte, refusing anything but [`FORMAT_V1`].
pub(crate) fn strip_version(sealed: &[u8]) -> Result<&[u8], OpenError> {
    match sealed.split_first() {
        None => Err(OpenError::Malformed),
        Some((&FORMAT_V1, rest)) => Ok(rest),
        Some((&other, _)) => Err(OpenError::UnsupportedVersion(other)),
    }
}

/// Seals `plaintext` as `FORMAT_V1 || nonce || ciphertext || tag`.
pub(crate) fn seal_box(
    key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    seal_box_as(FORMAT_V1, key, nonce, aad, plaintext)
}

/// Seals `plaintext` as `version || nonce || ciphertext || tag`. The version byte is not
/// authenticated itself: each version must use associated data no other version can
/// produce, so that changing the byte makes the tag fail.
pub(crate) fn seal_box_as(
    version: u8,
    key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let ciphertext = Aes256Gcm::new(key).seal(&nonce, aad, plaintext);
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(version);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// Opens a box made by [`seal_box`] with the same key and associated data.
pub(crate) fn open_box(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    open_box_body(key, aad, strip_version(sealed)?)
}

/// Opens the bytes after the version byte (`nonce || ciphertext || tag`) of a box.
pub(crate) fn open_box_body(
    key: &[u8; 32],
    aad: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
    Aes256Gcm::new(key)
        .open(nonce, aad, ciphertext)
        .ok_or(OpenError::Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fields_are_length_prefixed() {
        assert_eq!(
            encode_context("L", &[b"ab", b""]),
            [b'L', 0, 2, b'a', b'b', 0, 0]
        );
        // Moving a byte from one field to the next changes the encoding.
        assert_ne!(
            encode_context("L", &[b"ab", b"c"]),
            encode_context("L", &[b"a", b"bc"])
        );
    }

    #[test]
    fn box_round_trips_and_refuses_other_versions_and_short_input() {
        let key = [7; 32];
        let sealed = seal_box(&key, [1; NONCE_LEN], b"aad", b"payload");
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(
            open_box(&key, b"aad", &sealed).unwrap().as_slice(),
            b"payload"
        );
        assert_eq!(open_box(&key, b"aaa", &sealed), Err(OpenError::Unauthentic));
        assert_eq!(
            open_box(&[8; 32], b"aad", &sealed),
            Err(OpenError::Unauthentic)
        );

        let mut other_version = sealed.clone();
        other_version[0] = 2;
        assert_eq!(
            open_box(&key, b"aad", &other_version),
            Err(OpenError::UnsupportedVersion(2))
        );
        assert_eq!(open_box(&key, b"aad", &[]), Err(OpenError::Malformed));
        assert_eq!(
            open_box(&key, b"aad", &sealed[..NONCE_LEN + TAG_LEN]),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let key = [7; 32];
        let sealed = seal_box(&key, [1; NONCE_LEN], b"aad", b"payload");
        for i in 1..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                open_box(&key, b"aad", &tampered),
                Err(OpenError::Unauthentic),
                "byte {i}"
            );
        }
    }
}
