//! The instance master key: 32 random bytes that seal what the server itself must read
//! later (webhook signing secrets, SMTP and OAuth client secrets, server-sealed transfer
//! keys) and derive purpose-bound subkeys (the JWT signing key).
//!
//! Sealed values are text: `v1:<key id>:<base64(nonce || ciphertext || tag)>`, AES-256-GCM
//! under a subkey derived with BLAKE3 `derive_key`, with caller-supplied associated data
//! that binds the value to where it is stored. The key id lets a later rotation tell which
//! key sealed a value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use super::aead::Aes256Gcm;

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
const SEAL_VERSION: &str = "v1";
const SEAL_CONTEXT: &str = "sealbox/v1/master-seal";
const KEY_ID_CONTEXT: &str = "sealbox/v1/master-key-id";
const NONCE_LEN: usize = super::aead::NONCE_LEN;

/// The master key. `Debug` prints only its id.
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; MASTER_KEY_LEN]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Why a sealed value could not be opened. Deliberately coarse: it never says more than
/// which check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value uses unsupported version `{0}`")]
    UnsupportedVersion(String),
    #[error("sealed value was made with master key `{0}`, which is not loaded")]
    UnknownKey(String),
    #[error("sealed value failed authentication")]
    Tampered,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        let key = Zeroizing::new(bytes);
        let digest = blake3::derive_key(KEY_ID_CONTEXT, key.as_ref());
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self { key, id }
    }

    /// Parses the contents of a master key file: exactly 32 raw bytes.
    pub fn from_file_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; MASTER_KEY_LEN]>::try_from(bytes)
            .ok()
            .map(Self::from_bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(super::random_bytes())
    }

    /// Short public identifier of this key (8 hex characters).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw bytes, for writing the key file.
    pub fn expose_bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.key
    }

    /// A 32-byte subkey bound to `context` (a string unique to its purpose, such as
    /// `"sealbox/v1/jwt"`), so no two features ever share key material.
    pub fn derive(&self, context: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(context, self.key.as_ref()))
    }

    /// Seals `plaintext`, binding it to `aad` (for example `b"webhook-secret:" || id`).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> String {
        self.seal_with_nonce(aad, plaintext, super::random_bytes())
    }

    /// [`MasterKey::seal`] with a given nonce: for reproducible test vectors only.
    pub(crate) fn seal_with_nonce(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> String {
        let ciphertext = self.cipher().seal(&nonce, aad, plaintext);
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{SEAL_VERSION}:{}:{}", self.id, BASE64.encode(blob))
    }

    /// Opens a value made by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        if version != SEAL_VERSION {
            return Err(SealError::UnsupportedVersion(version.to_owned()));
        }
        if key_id != self.id {
            return Err(SealError::UnknownKey(key_id.to_owned()));
        }
        let blob = BASE64.decode(body).map_err(|_| SealError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
        self.cipher()
            .open(nonce, aad, ciphertext)
            .ok_or(SealError::Tampered)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.derive(SEAL_CONTEXT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_bytes(core::array::from_fn(|i| i as u8))
    }

    #[test]
    fn seal_round_trips_and_binds_aad() {
        let k = key();
        let sealed = k.seal(b"webhook:1", b"whsec_secret");
        assert!(sealed.starts_with(&format!("v1:{}:", k.id())));
        assert_eq!(
            k.open(b"webhook:1", &sealed).unwrap().as_slice(),
            b"whsec_secret"
        );
        assert_eq!(k.open(b"webhook:2", &sealed), Err(SealError::Tampered));
    }

    #[test]
    fn tampering_and_foreign_keys_are_detected() {
        let k = key();
        let sealed = k.seal(b"a", b"payload");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            k.open(b"a", &String::from_utf8(bytes).unwrap()),
            Err(SealError::Tampered)
        );

        let other = MasterKey::generate();
        assert!(matches!(
            other.open(b"a", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        assert_eq!(
            k.open(b"a", "v2:x:y"),
            Err(SealError::UnsupportedVersion("v2".into()))
        );
        assert_eq!(k.open(b"a", "garbage"), Err(SealError::Malformed));
    }

    /// A fixed vector so an independent implementation can check the format:
    /// key = 00 01 .. 1f, nonce = 12 zero bytes, aad = "aad", plaintext = "sealbox".
    #[test]
    fn known_vector() {
        let k = key();
        let sealed = k.seal_with_nonce(b"aad", b"sealbox", [0; NONCE_LEN]);
        assert_eq!(k.id(), KNOWN_ID);
        assert_eq!(sealed, KNOWN_SEALED);
        assert_eq!(k.open(b"aad", KNOWN_SEALED).unwrap().as_slice(), b"sealbox");
    }

    // Computed independently with Python `blake3` and `cryptography` (AESGCM).
    const KNOWN_ID: &str = "ac80fd93";
    const KNOWN_SEALED: &str = "v1:ac80fd93:AAAAAAAAAAAAAAAASHNkGMBwk/EjdPeFBDcC1x8fys2IxZs=";

    #[test]
    fn debug_never_prints_the_key() {
        let printed = format!("{:?}", key());
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains("0, 1, 2"));
    }
}
