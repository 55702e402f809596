//! Opaque bearer secrets (refresh tokens, setup and reset tokens): 32 random bytes as
//! unpadded base64url, stored only as their SHA-256 so a database leak reveals none.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A freshly generated token: the value to hand out once and the hash to store.
pub struct NewToken {
    pub value: Zeroizing<String>,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewToken([redacted])")
    }
}

pub fn generate() -> NewToken {
    let value = Zeroizing::new(URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>()));
    let hash = hash(&value);
    NewToken { value, hash }
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two token hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
