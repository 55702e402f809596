//! Download tokens whose secret the server does not keep: file download links
//! (`/v1/downloads/{token}`) and transfer download tokens (from unlock).
//!
//! Wire form: unpadded base64url of 49 bytes, `0x02 || id (16 random bytes) || secret (32
//! random bytes)`. The server stores, under `id`, only what the secret derives:
//!
//! - `verifier = HKDF-SHA256(ikm = secret, salt = id, info = "sealbox/v1/download-token/verifier")`,
//!   32 bytes, compared in constant time with the one derived from a presented token;
//! - the file's or transfer's key (when the token grants one) sealed as a sealed value
//!   (`docs/crypto.md`, kind `download-token-key`, object id = `id` read as a UUID,
//!   version 1) under `HKDF-SHA256(ikm = secret, salt = id, info = "sealbox/v1/download-token/key")`.
//!
//! The stored row is deleted when the token expires, so an expired token opens nothing,
//! whoever holds the master key: the key was never sealed by it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2_0_11::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Dek, SealedValue, ValueContext, open_value, seal_value};

/// The first byte of a token: this format. (The tokens before it were master-key sealed
/// strings, whose base64 decodes to `v1:...`, so they can never be mistaken for one.)
pub const TOKEN_VERSION: u8 = 0x02;
pub const ID_LEN: usize = 16;
pub const SECRET_LEN: usize = 32;
/// Bytes of a decoded token.
pub const TOKEN_LEN: usize = 1 + ID_LEN + SECRET_LEN;
const VERIFIER_INFO: &[u8] = b"sealbox/v1/download-token/verifier";
const KEY_INFO: &[u8] = b"sealbox/v1/download-token/key";
const KEY_KIND: &str = "download-token-key";

/// A token's id and secret. `Debug` hides the secret.
pub struct DownloadToken {
    id: [u8; ID_LEN],
    secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for DownloadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadToken")
            .field("id", &Uuid::from_bytes(self.id))
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl DownloadToken {
    /// A fresh token: random id and secret.
    pub fn generate() -> Self {
        Self::from_parts(super::random_bytes(), super::random_bytes())
    }

    pub(crate) fn from_parts(id: [u8; ID_LEN], secret: [u8; SECRET_LEN]) -> Self {
        Self {
            id,
            secret: Zeroizing::new(secret),
        }
    }

    /// Reads a presented token; `None` for anything that is not this format.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).ok()?);
        if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let id: [u8; ID_LEN] = bytes[1..1 + ID_LEN].try_into().ok()?;
        let secret: [u8; SECRET_LEN] = bytes[1 + ID_LEN..].try_into().ok()?;
        Some(Self::from_parts(id, secret))
    }

    /// The token as handed out.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(TOKEN_LEN));
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.id);
        bytes.extend_from_slice(self.secret.as_slice());
        Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice()))
    }

    /// The id the server stores the token's row under (also the download session).
    pub fn id(&self) -> [u8; ID_LEN] {
        self.id
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&self.id), self.secret.as_slice())
            .expand(info, out.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// What the server stores to recognise the token.
    pub fn verifier(&self) -> [u8; 32] {
        *self.derive(VERIFIER_INFO)
    }

    /// Whether `stored` is this token's verifier (constant time).
    pub fn verifies(&self, stored: &[u8]) -> bool {
        self.verifier().as_slice().ct_eq(stored).into()
    }

    fn context(&self) -> ValueContext {
        ValueContext {
            kind: KEY_KIND,
            object_id: Uuid::from_bytes(self.id),
            version: 1,
        }
    }

    /// Seals a 32-byte key (a DEK) so that only this token opens it.
    pub fn seal_key(&self, key: &[u8; 32]) -> SealedValue {
        let kek = Dek::from_bytes(*self.derive(KEY_INFO));
        seal_value(&kek, &self.context(), key)
    }

    /// Opens a key sealed by [`Self::seal_key`]; `None` if it is not this token's.
    pub fn open_key(&self, sealed: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let kek = Dek::from_bytes(*self.derive(KEY_INFO));
        let opened = open_value(
            &kek,
            &self.context(),
            &SealedValue::from_bytes(sealed.to_vec()),
        )
        .ok()?;
        let key: [u8; 32] = opened.as_slice().try_into().ok()?;
        Some(Zeroizing::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_opens_only_its_own_key() {
        let token = DownloadToken::generate();
        let text = token.encode();
        assert_eq!(text.len(), 66);
        let back = DownloadToken::decode(&text).unwrap();
        assert_eq!(back.id(), token.id());
        assert!(back.verifies(&token.verifier()));
        let sealed = token.seal_key(&[9u8; 32]);
        assert_eq!(*back.open_key(sealed.as_bytes()).unwrap(), [9u8; 32]);
        let other = DownloadToken::generate();
        assert!(!other.verifies(&token.verifier()));
        assert!(other.open_key(sealed.as_bytes()).is_none());
        // Same id, another secret: neither verifies nor opens.
        let forged = DownloadToken::from_parts(token.id(), [0u8; 32]);
        assert!(!forged.verifies(&token.verifier()));
        assert!(forged.open_key(sealed.as_bytes()).is_none());
        assert!(!format!("{token:?}").contains(&text[23..]));
    }

    #[test]
    fn other_formats_are_refused() {
        let token = DownloadToken::generate();
        let text = token.encode();
        assert!(DownloadToken::decode(&text[..text.len() - 1]).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(text.as_str()).unwrap();
        bytes[0] = 0x01;
        assert!(DownloadToken::decode(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        // A token of the old format (base64url of a master-key sealed string).
        assert!(DownloadToken::decode(&URL_SAFE_NO_PAD.encode(b"v1:abcd:AAAA")).is_none());
    }

    /// A vector an independent implementation can check (`docs/transfers.md`).
    #[test]
    fn vector() {
        let token = DownloadToken::from_parts([0x11; 16], [0x22; 32]);
        assert_eq!(
            token.encode().as_str(),
            "AhEREREREREREREREREREREiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIg"
        );
        assert_eq!(
            hex_of(&token.verifier()),
            "584bc09e3ed9d65a3d6565ea948df8d66e32430ca0a8bab1f1097bf7515ca264"
        );
        assert_eq!(
            hex_of(token.derive(KEY_INFO).as_slice()),
            "7480d9940993a9bb3ed7d04f187c15a8a968465a3643d6d9b8855ffffe0a6706"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
