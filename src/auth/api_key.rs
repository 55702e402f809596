//! API keys (SPEC §4): `sbx_live_` + 32 base32 characters that encode 16 random bytes
//! (128 bits) and the CRC32 of the prefix and those bytes. The checksum lets a typo or a
//! made-up key be refused without touching the database; the key's identity is the
//! SHA-256 of the whole string, the only form stored. `sbx_test_` is reserved.

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::random_bytes;

/// The prefix of every key minted by this server.
pub const LIVE_PREFIX: &str = "sbx_live_";
/// Reserved for sandbox keys; never minted, always refused.
pub const TEST_PREFIX: &str = "sbx_test_";
/// What every sealbox key starts with; how a Bearer value is told from a JWT.
pub const KEY_MARKER: &str = "sbx_";
/// How many leading characters are kept, in clear, to show which key is which.
pub const DISPLAY_PREFIX_CHARS: usize = 12;
const RANDOM_BYTES: usize = 16;
const BODY_CHARS: usize = 32;

/// A freshly minted key. `value` is shown to its owner once and then forgotten.
pub struct NewApiKey {
    pub value: Zeroizing<String>,
    pub display_prefix: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("display_prefix", &self.display_prefix)
            .finish_non_exhaustive()
    }
}

pub fn generate() -> NewApiKey {
    let random: Zeroizing<[u8; RANDOM_BYTES]> = Zeroizing::new(random_bytes());
    let mut payload = Zeroizing::new([0u8; RANDOM_BYTES + 4]);
    payload[..RANDOM_BYTES].copy_from_slice(&*random);
    payload[RANDOM_BYTES..].copy_from_slice(&checksum(&*random).to_be_bytes());
    let value = Zeroizing::new(format!(
        "{LIVE_PREFIX}{}",
        BASE32_NOPAD.encode(&*payload).to_lowercase()
    ));
    NewApiKey {
        display_prefix: value[..DISPLAY_PREFIX_CHARS].to_owned(),
        hash: hash(&value),
        value,
    }
}

/// Whether `candidate` is a well-formed live key whose checksum matches. Cheap and
/// local: call it before any lookup.
pub fn is_well_formed(candidate: &str) -> bool {
    let Some(body) = candidate.strip_prefix(LIVE_PREFIX) else {
        return false;
    };
    if body.len() != BODY_CHARS
        || !body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    {
        return false;
    }
    let Ok(payload) = BASE32_NOPAD.decode(body.to_ascii_uppercase().as_bytes()) else {
        return false;
    };
    let payload = Zeroizing::new(payload);
    let (random, sum) = payload.split_at(RANDOM_BYTES);
    sum == checksum(random).to_be_bytes()
}

/// The stored identity of a key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn checksum(random: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(LIVE_PREFIX.as_bytes());
    crc.update(random);
    crc.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_shape_and_pass_their_checksum() {
        let key = generate();
        assert!(key.value.starts_with(LIVE_PREFIX));
        assert_eq!(key.value.len(), LIVE_PREFIX.len() + BODY_CHARS);
        assert_eq!(key.display_prefix, key.value[..12]);
        assert!(is_well_formed(&key.value));
        assert_eq!(key.hash, hash(&key.value));
        assert_ne!(generate().value, key.value);
        assert!(!format!("{key:?}").contains(&key.value[12..]));
    }

    #[test]
    fn a_changed_character_or_another_prefix_fails_the_checksum() {
        let key = generate();
        let body = &key.value[LIVE_PREFIX.len()..];
        for index in 0..body.len() {
            let mut chars: Vec<char> = body.chars().collect();
            chars[index] = if chars[index] == 'a' { 'b' } else { 'a' };
            let typo = format!("{LIVE_PREFIX}{}", chars.into_iter().collect::<String>());
            assert!(!is_well_formed(&typo), "{index}");
        }
        assert!(!is_well_formed(&format!("{TEST_PREFIX}{body}")));
        assert!(!is_well_formed(&key.value.to_uppercase()));
        assert!(!is_well_formed(&key.value[..key.value.len() - 1]));
        assert!(!is_well_formed("sbx_live_"));
        assert!(!is_well_formed("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
}
