//! The data-encryption key (DEK): 32 random bytes per vault object. It encrypts the
//! object's contents (`crypto::sealed_value`, later files) and is itself only stored sealed
//! to each recipient (`crypto::envelope`).

use zeroize::Zeroizing;

/// Length of a DEK: an AES-256 key.
pub const DEK_LEN: usize = 32;

/// A data-encryption key. Zeroized on drop; `Debug` prints `[redacted]`.
pub struct Dek(Zeroizing<[u8; DEK_LEN]>);

impl Dek {
    /// A fresh random DEK, one per object.
    pub fn generate() -> Self {
        Self::from_bytes(super::random_bytes())
    }

    pub fn from_bytes(bytes: [u8; DEK_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key, for the AEAD that uses it.
    pub fn expose_bytes(&self) -> &[u8; DEK_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_deks_differ_and_debug_is_redacted() {
        let dek = Dek::generate();
        assert_ne!(dek.expose_bytes(), Dek::generate().expose_bytes());
        assert_eq!(format!("{dek:?}"), "Dek([redacted])");
    }
}
