//! AES-256-GCM, the one symmetric AEAD of sealbox's own formats (SBX1 segments, vault
//! boxes, master-key seals), on `ring`: the implementation rustls already brings for TLS,
//! with the hardware paths (AES-NI, VAES and carry-less multiply) that make it several
//! times faster per core than a portable one. Only the byte layouts around it live
//! elsewhere; this module owns the calls.
//!
//! ring opens in place and, when a tag does not match, wipes the bytes it decrypted, so a
//! failed open leaves no unauthenticated plaintext behind (and no ciphertext either: a
//! caller that wants a second attempt keeps its own copy).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroizing;

/// AES-GCM nonce length: 96 bits.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM key, expanded once. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Aes256Gcm(LessSafeKey);

impl Aes256Gcm {
    pub fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key fits AES-256-GCM");
        Self(LessSafeKey::new(key))
    }

    /// Encrypts `buffer` in place and returns the tag.
    pub fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                buffer,
            )
            .expect("AES-GCM seals any in-memory buffer");
        tag.as_ref().try_into().expect("a 16-byte tag")
    }

    /// `plaintext` sealed into a new buffer: ciphertext, then the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = self.seal_detached(nonce, aad, &mut out);
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypts `ciphertext` in place if `tag` authenticates it; otherwise wipes it and
    /// returns false.
    pub fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                ciphertext,
                0..,
            )
            .is_ok()
    }

    /// Opens the ciphertext and tag at `buffer[from..]`, writing the plaintext to the front
    /// of `buffer` (decrypting and moving in one pass); returns its length. On failure the
    /// bytes are wiped.
    pub fn open_within(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        from: usize,
    ) -> Option<usize> {
        self.0
            .open_within(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                buffer,
                from..,
            )
            .ok()
            .map(|plaintext| plaintext.len())
    }

    /// `sealed` (ciphertext, then the tag) opened into a new buffer.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let len = self.open_within(nonce, aad, &mut buffer, 0)?;
        buffer.truncate(len);
        Some(buffer)
    }
}

impl std::fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256Gcm([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST GCM test vector (gcmEncryptExtIV256, Count 0 with 128-bit plaintext): AES-256,
    /// zero key, zero nonce, no AAD.
    #[test]
    fn matches_the_nist_vector() {
        let key = Aes256Gcm::new(&[0; 32]);
        let sealed = key.seal(&[0; NONCE_LEN], b"", &[0; 16]);
        assert_eq!(
            sealed,
            [
                0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3,
                0x9d, 0x18, // ciphertext
                0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a,
                0xb9, 0x19, // tag
            ]
        );
        assert_eq!(
            key.open(&[0; NONCE_LEN], b"", &sealed).unwrap().as_slice(),
            [0; 16]
        );
    }

    #[test]
    fn a_failed_open_wipes_and_a_shifted_open_moves() {
        let key = Aes256Gcm::new(&[7; 32]);
        let nonce = [1; NONCE_LEN];
        let sealed = key.seal(&nonce, b"aad", b"sealbox plaintext");
        assert!(key.open(&nonce, b"other", &sealed).is_none());
        let (mut ciphertext, tag) = (sealed[..17].to_vec(), [0u8; TAG_LEN]);
        assert!(!key.open_detached(&nonce, b"aad", &mut ciphertext, &tag));
        assert!(ciphertext.iter().all(|&b| b == 0));

        let mut buffer = [&[0xee; 5][..], &sealed].concat();
        assert_eq!(key.open_within(&nonce, b"aad", &mut buffer, 5), Some(17));
        assert_eq!(&buffer[..17], b"sealbox plaintext");
        assert!(format!("{key:?}").contains("redacted"));
    }
}
