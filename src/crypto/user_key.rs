//! A user's key pair: one X-Wing key pair (ML-KEM-768 + X25519,
//! draft-connolly-cfrg-xwing-kem-06) derived from a 32-byte private seed, its public key
//! and the two halves the API returns separately, and the public key's fingerprint.
//!
//! The seed *is* the X-Wing decapsulation key (the draft's `sk`): X-Wing expands it with
//! SHAKE-256 into the ML-KEM-768 and X25519 secrets, so nothing else needs storing. It is
//! not passed through HPKE's `DeriveKeyPair`, which would add a second, HPKE-specific
//! expansion that independent implementations would have to reproduce.

use data_encoding::HEXLOWER;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of the private seed.
pub const SEED_LEN: usize = 32;
/// Length of a whole X-Wing public (encapsulation) key: the ML-KEM-768 part, then X25519.
pub const PUBLIC_KEY_LEN: usize = 1216;
/// Length of the ML-KEM-768 encapsulation key, the first part of the public key.
pub const ML_KEM_768_PUBLIC_KEY_LEN: usize = 1184;
/// Length of the X25519 public key, the last part of the public key.
pub const X25519_PUBLIC_KEY_LEN: usize = 32;
/// Hash input prefix of the fingerprint, so it can never collide with another SHA-256 use.
const FINGERPRINT_LABEL: &[u8] = b"sealbox/v1/fingerprint";
/// Bytes of SHA-256 kept in a fingerprint: 128 bits, printed as 32 hex characters.
const FINGERPRINT_LEN: usize = 16;

type XWingPrivateKey = <XWing as Kem>::PrivateKey;
type XWingPublicKey = <XWing as Kem>::PublicKey;

/// The 32-byte private seed of a user's key pair. Zeroized on drop; `Debug` prints
/// `[redacted]`. The server only ever stores it sealed (`crypto::sealed_seed`).
pub struct UserSeed(Zeroizing<[u8; SEED_LEN]>);

impl UserSeed {
    /// A fresh random seed.
    pub fn generate() -> Self {
        Self::from_bytes(super::random_bytes())
    }

    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw seed, for sealing it.
    pub fn expose_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for UserSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSeed([redacted])")
    }
}

/// Why bytes are not a usable X-Wing public key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an X-Wing public key (1216 bytes, valid ML-KEM-768 encapsulation key)")]
pub struct InvalidPublicKey;

/// A user's public key: anyone may seal an envelope to it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPublicKey {
    bytes: Box<[u8; PUBLIC_KEY_LEN]>,
    key: XWingPublicKey,
}

impl UserPublicKey {
    /// Parses a whole public key (`ML-KEM-768 key || X25519 key`, 1216 bytes), checking the
    /// ML-KEM-768 part as FIPS 203 requires before encapsulating to it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidPublicKey> {
        let array: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| InvalidPublicKey)?;
        let key = XWingPublicKey::from_bytes(bytes).map_err(|_| InvalidPublicKey)?;
        Ok(Self {
            bytes: Box::new(array),
            key,
        })
    }

    fn from_hpke(key: XWingPublicKey) -> Self {
        let bytes: [u8; PUBLIC_KEY_LEN] = key.to_bytes().into();
        Self {
            bytes: Box::new(bytes),
            key,
        }
    }

    /// The whole X-Wing public key, 1216 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// The ML-KEM-768 encapsulation key: the first 1184 bytes (`publicKeyKyberB64`).
    pub fn ml_kem_768(&self) -> &[u8] {
        &self.bytes[..ML_KEM_768_PUBLIC_KEY_LEN]
    }

    /// The X25519 public key: the last 32 bytes (`publicKeyB64`).
    pub fn x25519(&self) -> &[u8] {
        &self.bytes[ML_KEM_768_PUBLIC_KEY_LEN..]
    }

    /// A short, stable name for this key that people can compare: the first 16 bytes of
    /// `SHA-256("sealbox/v1/fingerprint" || public key)` as 32 lowercase hex characters.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_LABEL)
            .chain_update(self.bytes.as_slice())
            .finalize();
        HEXLOWER.encode(&digest[..FINGERPRINT_LEN])
    }

    pub(crate) fn hpke_key(&self) -> &XWingPublicKey {
        &self.key
    }
}

impl std::fmt::Debug for UserPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPublicKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// A user's unlocked key pair: the seed, the X-Wing private key expanded from it, and the
/// public key. Only exists in memory after the seed was opened with the user's secret.
pub struct UserKeyPair {
    seed: UserSeed,
    // The expanded X-Wing decapsulation key; `x-wing` zeroizes it on drop.
    private: XWingPrivateKey,
    public: UserPublicKey,
}

impl UserKeyPair {
    /// A key pair from a fresh random seed.
    pub fn generate() -> Self {
        Self::from_seed(UserSeed::generate())
    }

    /// The key pair a seed determines (X-Wing `GenerateKeyPairDerand`): the same seed always
    /// gives the same public key.
    pub fn from_seed(seed: UserSeed) -> Self {
        let private = XWingPrivateKey::from_bytes(seed.expose_bytes())
            .expect("any 32 bytes are an X-Wing decapsulation key");
        let public = UserPublicKey::from_hpke(XWing::sk_to_pk(&private));
        Self {
            seed,
            private,
            public,
        }
    }

    pub fn seed(&self) -> &UserSeed {
        &self.seed
    }

    pub fn public_key(&self) -> &UserPublicKey {
        &self.public
    }

    pub(crate) fn hpke_private_key(&self) -> &XWingPrivateKey {
        &self.private
    }
}

impl std::fmt::Debug for UserKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKeyPair")
            .field("fingerprint", &self.public.fingerprint())
            .field("seed", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> UserSeed {
        UserSeed::from_bytes(core::array::from_fn(|i| i as u8))
    }

    #[test]
    fn the_seed_determines_the_key_pair() {
        let a = UserKeyPair::from_seed(seed());
        let b = UserKeyPair::from_seed(seed());
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), UserKeyPair::generate().public_key());
    }

    #[test]
    fn halves_split_the_whole_key_ml_kem_first() {
        let pair = UserKeyPair::from_seed(seed());
        let key = pair.public_key();
        assert_eq!(key.ml_kem_768().len(), ML_KEM_768_PUBLIC_KEY_LEN);
        assert_eq!(key.x25519().len(), X25519_PUBLIC_KEY_LEN);
        assert_eq!([key.ml_kem_768(), key.x25519()].concat(), key.as_bytes());
    }

    #[test]
    fn public_keys_parse_back_and_bad_ones_are_refused() {
        let key = UserKeyPair::from_seed(seed()).public_key().clone();
        assert_eq!(UserPublicKey::from_bytes(key.as_bytes()).unwrap(), key);
        assert_eq!(
            UserPublicKey::from_bytes(&key.as_bytes()[1..]),
            Err(InvalidPublicKey)
        );
        // An ML-KEM coefficient of 0xfff is not reduced mod q = 3329: the FIPS 203 check fails.
        let mut unreduced = *key.as_bytes();
        unreduced[0] = 0xff;
        unreduced[1] |= 0x0f;
        assert_eq!(UserPublicKey::from_bytes(&unreduced), Err(InvalidPublicKey));
    }

    #[test]
    fn fingerprint_is_32_hex_characters_of_the_labelled_hash() {
        let key = UserKeyPair::from_seed(seed()).public_key().clone();
        let fingerprint = key.fingerprint();
        assert_eq!(fingerprint.len(), 32);
        let expected = Sha256::digest([FINGERPRINT_LABEL, key.as_bytes()].concat());
        assert_eq!(fingerprint, HEXLOWER.encode(&expected[..16]));
    }

    #[test]
    fn debug_never_prints_the_seed() {
        let pair = UserKeyPair::from_seed(seed());
        for printed in [format!("{pair:?}"), format!("{:?}", pair.seed())] {
            assert!(printed.contains("[redacted]"), "{printed}");
            assert!(!printed.contains("0, 1, 2"), "{printed}");
        }
        assert!(format!("{:?}", pair.public_key()).contains(&pair.public_key().fingerprint()));
    }
}
