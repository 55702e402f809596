//! A user's seed sealed under their KEK, which is all the server stores of the private
//! key: `FORMAT_V1 || nonce || AES-256-GCM(KEK, nonce, seed, aad) || tag` (61 bytes), with
//! `aad = "sealbox/v1/user-key" || BE16(16) || user id` so a sealed seed copied to another
//! user's row does not open.

use zeroize::Zeroizing;

use super::format::{self, NONCE_LEN, OpenError};
use super::kek::Kek;
use super::user_key::{SEED_LEN, UserSeed};
use crate::ids::UserId;

const USER_KEY_LABEL: &str = "sealbox/v1/user-key";
/// Length of a sealed seed: version, nonce, seed, tag.
pub const SEALED_SEED_LEN: usize = 1 + NONCE_LEN + SEED_LEN + format::TAG_LEN;

/// A sealed seed as stored: opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSeed(Vec<u8>);

impl SealedSeed {
    /// Wraps stored bytes; they are checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Why a sealed seed did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnlockError {
    /// The KEK is wrong: a wrong secret (the usual case), or stored bytes altered or moved
    /// to another user. AES-GCM cannot tell these apart.
    #[error("wrong secret")]
    WrongSecret,
    #[error("sealed seed is malformed")]
    Malformed,
    #[error("sealed seed uses unsupported format version {0}")]
    UnsupportedVersion(u8),
}

/// The associated data binding a sealed seed to its user.
pub(crate) fn seed_aad(user_id: UserId) -> Vec<u8> {
    format::encode_context(USER_KEY_LABEL, &[user_id.as_uuid().as_bytes()])
}

/// Seals `seed` for `user_id` under `kek` with a fresh random nonce.
pub fn seal_seed(kek: &Kek, user_id: UserId, seed: &UserSeed) -> SealedSeed {
    seal_seed_with_nonce(kek, user_id, seed, super::random_bytes())
}

/// [`seal_seed`] with a given nonce: for reproducible test vectors only.
pub(crate) fn seal_seed_with_nonce(
    kek: &Kek,
    user_id: UserId,
    seed: &UserSeed,
    nonce: [u8; NONCE_LEN],
) -> SealedSeed {
    SealedSeed(format::seal_box(
        kek.expose_bytes(),
        nonce,
        &seed_aad(user_id),
        seed.expose_bytes(),
    ))
}

/// Opens a seed sealed by [`seal_seed`] for the same user.
pub fn open_seed(kek: &Kek, user_id: UserId, sealed: &SealedSeed) -> Result<UserSeed, UnlockError> {
    if sealed.0.first() == Some(&format::FORMAT_V1) && sealed.0.len() != SEALED_SEED_LEN {
        return Err(UnlockError::Malformed);
    }
    let plaintext = format::open_box(kek.expose_bytes(), &seed_aad(user_id), &sealed.0).map_err(
        |e| match e {
            OpenError::Malformed => UnlockError::Malformed,
            OpenError::UnsupportedVersion(v) => UnlockError::UnsupportedVersion(v),
            OpenError::Unauthentic => UnlockError::WrongSecret,
        },
    )?;
    let bytes: Zeroizing<[u8; SEED_LEN]> = Zeroizing::new(
        plaintext
            .as_slice()
            .try_into()
            .map_err(|_| UnlockError::Malformed)?,
    );
    Ok(UserSeed::from_bytes(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::kek::{Argon2Params, KEK_SALT_LEN, derive_kek};

    const FAST: Argon2Params = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn kek(secret: &[u8]) -> Kek {
        derive_kek(secret, &[9; KEK_SALT_LEN], &FAST).unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let user = UserId::new();
        let seed = UserSeed::generate();
        let sealed = seal_seed(&kek(b"right"), user, &seed);
        assert_eq!(sealed.as_bytes().len(), SEALED_SEED_LEN);
        assert_eq!(sealed.as_bytes()[0], format::FORMAT_V1);
        let opened = open_seed(&kek(b"right"), user, &sealed).unwrap();
        assert_eq!(opened.expose_bytes(), seed.expose_bytes());
        // Two seals of the same seed differ: the nonce is fresh each time.
        assert_ne!(seal_seed(&kek(b"right"), user, &seed), sealed);
    }

    #[test]
    fn wrong_secret_other_user_or_tampering_is_wrong_secret() {
        let user = UserId::new();
        let sealed = seal_seed(&kek(b"right"), user, &UserSeed::generate());
        assert_eq!(
            open_seed(&kek(b"wrong"), user, &sealed).unwrap_err(),
            UnlockError::WrongSecret
        );
        assert_eq!(
            open_seed(&kek(b"right"), UserId::new(), &sealed).unwrap_err(),
            UnlockError::WrongSecret
        );
        let mut bytes = sealed.as_bytes().to_vec();
        bytes[20] ^= 0x80;
        assert_eq!(
            open_seed(&kek(b"right"), user, &SealedSeed::from_bytes(bytes)).unwrap_err(),
            UnlockError::WrongSecret
        );
    }

    #[test]
    fn malformed_and_unknown_versions_are_not_wrong_secrets() {
        let user = UserId::new();
        let sealed = seal_seed(&kek(b"right"), user, &UserSeed::generate());
        let truncated = SealedSeed::from_bytes(sealed.as_bytes()[..SEALED_SEED_LEN - 1].to_vec());
        assert_eq!(
            open_seed(&kek(b"right"), user, &truncated).unwrap_err(),
            UnlockError::Malformed
        );
        let mut v2 = sealed.as_bytes().to_vec();
        v2[0] = 2;
        assert_eq!(
            open_seed(&kek(b"right"), user, &SealedSeed::from_bytes(v2)).unwrap_err(),
            UnlockError::UnsupportedVersion(2)
        );
        assert_eq!(
            open_seed(&kek(b"right"), user, &SealedSeed::from_bytes(Vec::new())).unwrap_err(),
            UnlockError::Malformed
        );
    }

    #[test]
    fn aad_is_label_length_and_user_id() {
        let user = UserId::new();
        let aad = seed_aad(user);
        assert_eq!(&aad[..19], b"sealbox/v1/user-key");
        assert_eq!(&aad[19..21], &[0, 16]);
        assert_eq!(&aad[21..], user.as_uuid().as_bytes());
    }
}
