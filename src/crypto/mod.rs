//! Cryptographic building blocks: pure functions over bytes, no I/O (SPEC §5).
//!
//! Everything here composes maintained crates (`hpke` with its X-Wing KEM, `ring`'s
//! AES-256-GCM, `argon2`, `sha2`, `blake3`, `getrandom`); nothing implements a primitive. Every byte
//! layout is in `docs/crypto.md`, with vectors in `tests/vectors/`. Secret material lives in zeroizing wrappers with redacted `Debug`.

pub mod aead;
pub mod argon2_memory;
pub mod dek;
pub mod download_token;
pub mod envelope;
pub mod format;
pub mod kek;
pub mod master_key;
pub mod sbx1;
pub mod sealed_seed;
pub mod sealed_value;
pub mod transfer_e2e;
pub mod user_key;
#[cfg(test)]
mod vectors;
pub mod webhook_signature;

pub use dek::Dek;
pub use envelope::{Envelope, EnvelopeContext, open_dek, seal_dek};
pub use format::OpenError;
pub use kek::{Argon2Params, InvalidArgon2Params, KEK_SALT_LEN, Kek, derive_kek};
pub use master_key::{MasterKey, SealError};
pub use sbx1::{FileError, SegmentDecryptor, SegmentEncryptor};
pub use sealed_seed::{SealedSeed, UnlockError, open_seed, seal_seed};
pub use sealed_value::{
    Binding, SealedValue, ValueContext, open_bound_value, open_value, seal_bound_value, seal_value,
};
pub use user_key::{InvalidPublicKey, UserKeyPair, UserPublicKey, UserSeed};

/// Fills a fresh array with bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}
