//! Cryptographic building blocks: pure functions over bytes, no I/O (SPEC §5).
//!
//! Everything here composes maintained crates (`aes-gcm`, `blake3`, `getrandom`); nothing
//! implements a primitive. Secret material lives in zeroizing wrappers with redacted `Debug`.

pub mod master_key;

pub use master_key::{MasterKey, SealError};

/// Fills a fresh array with bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}
