//! The key-encryption key (KEK) that seals a user's seed: Argon2id over the user's secret
//! with a per-user salt and per-user stored cost parameters.
//!
//! Parameters are stored with each user rather than fixed in code, so raising the cost
//! later only affects users who rekey; existing seeds keep opening with what sealed them.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of the per-user Argon2id salt.
pub const KEK_SALT_LEN: usize = 16;
/// Length of the KEK: an AES-256 key.
pub const KEK_LEN: usize = 32;

/// Argon2id cost parameters, stored per user next to the salt and the sealed seed.
/// The default (m = 19456 KiB, t = 2, p = 1) is OWASP's recommended minimum and costs
/// roughly 80 ms on a server core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory in KiB (Argon2 `m`).
    pub m_cost_kib: u32,
    /// Passes over memory (Argon2 `t`).
    pub t_cost: u32,
    /// Lanes (Argon2 `p`).
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

/// Stored parameters that Argon2 refuses (for example `m < 8 * p`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Argon2id parameters are out of range: {0}")]
pub struct InvalidArgon2Params(argon2::Error);

/// A key-encryption key. Zeroized on drop; `Debug` prints `[redacted]`.
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl Kek {
    pub(crate) fn expose_bytes(&self) -> &[u8; KEK_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

/// Derives the KEK: Argon2id (version 0x13, no secret key, no associated data) over the
/// user's secret exactly as given (no normalization), 32 bytes of output.
pub fn derive_kek(
    secret: &[u8],
    salt: &[u8; KEK_SALT_LEN],
    params: &Argon2Params,
) -> Result<Kek, InvalidArgon2Params> {
    let argon_params = Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(KEK_LEN),
    )
    .map_err(InvalidArgon2Params)?;
    let mut kek = Zeroizing::new([0u8; KEK_LEN]);
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    super::argon2_memory::hash_into(&argon2, secret, salt, kek.as_mut())
        .map_err(InvalidArgon2Params)?;
    Ok(Kek(kek))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn same_inputs_same_kek_any_change_another() {
        let salt = [1; KEK_SALT_LEN];
        let kek = derive_kek(b"secret", &salt, &FAST).unwrap();
        assert_eq!(
            kek.expose_bytes(),
            derive_kek(b"secret", &salt, &FAST).unwrap().expose_bytes()
        );
        for other in [
            derive_kek(b"secreT", &salt, &FAST),
            derive_kek(b"secret", &[2; KEK_SALT_LEN], &FAST),
            derive_kek(b"secret", &salt, &Argon2Params { t_cost: 2, ..FAST }),
        ] {
            assert_ne!(kek.expose_bytes(), other.unwrap().expose_bytes());
        }
    }

    #[test]
    fn default_params_are_owasp_and_work() {
        let params = Argon2Params::default();
        assert_eq!(
            (params.m_cost_kib, params.t_cost, params.p_cost),
            (19_456, 2, 1)
        );
        derive_kek(b"secret", &[0; KEK_SALT_LEN], &params).unwrap();
    }

    #[test]
    fn params_round_trip_through_json_and_bad_ones_are_refused() {
        let json = serde_json::to_string(&Argon2Params::default()).unwrap();
        assert_eq!(json, r#"{"m_cost_kib":19456,"t_cost":2,"p_cost":1}"#);
        assert_eq!(
            serde_json::from_str::<Argon2Params>(&json).unwrap(),
            Argon2Params::default()
        );
        assert!(
            serde_json::from_str::<Argon2Params>(r#"{"m_cost_kib":1,"t_cost":1,"p_cost":1,"x":1}"#)
                .is_err()
        );
        let too_little = Argon2Params {
            m_cost_kib: 4,
            ..FAST
        };
        assert!(derive_kek(b"secret", &[0; KEK_SALT_LEN], &too_little).is_err());
    }

    #[test]
    fn debug_never_prints_the_key() {
        let kek = derive_kek(b"secret", &[0; KEK_SALT_LEN], &FAST).unwrap();
        assert_eq!(format!("{kek:?}"), "Kek([redacted])");
    }
}
