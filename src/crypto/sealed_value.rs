//! Small objects (KV values, names, aliases) sealed under their object's DEK:
//! `FORMAT_V1 || nonce || AES-256-GCM(DEK, nonce, plaintext, aad) || tag`, with a fresh
//! random 96-bit nonce and `aad = "sealbox/v1/value" || BE16(len) || kind || BE16(16) ||
//! object id || BE16(8) || BE64(version)`, so a value cannot be moved to another object,
//! another field, or replayed as another version.

use uuid::Uuid;
use zeroize::Zeroizing;

use super::dek::Dek;
use super::format::{self, NONCE_LEN, OpenError};

const VALUE_LABEL: &str = "sealbox/v1/value";

/// What a sealed value is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueContext {
    /// What the value is, a constant such as `"kv-value"` or `"name"`; never user input.
    pub kind: &'static str,
    pub object_id: Uuid,
    /// The object's version this value belongs to.
    pub version: u64,
}

impl ValueContext {
    /// AES-GCM associated data: the label and the three fields, each length-prefixed.
    pub(crate) fn aad(&self) -> Vec<u8> {
        format::encode_context(
            VALUE_LABEL,
            &[
                self.kind.as_bytes(),
                self.object_id.as_bytes(),
                &self.version.to_be_bytes(),
            ],
        )
    }
}

/// A sealed value as stored: opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue(Vec<u8>);

impl SealedValue {
    /// Wraps stored bytes; they are checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Seals `plaintext` under `dek` for `context` with a fresh random nonce.
pub fn seal_value(dek: &Dek, context: &ValueContext, plaintext: &[u8]) -> SealedValue {
    seal_value_with_nonce(dek, context, plaintext, super::random_bytes())
}

/// [`seal_value`] with a given nonce: for reproducible test vectors only.
pub(crate) fn seal_value_with_nonce(
    dek: &Dek,
    context: &ValueContext,
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> SealedValue {
    SealedValue(format::seal_box(
        dek.expose_bytes(),
        nonce,
        &context.aad(),
        plaintext,
    ))
}

/// Opens a value sealed by [`seal_value`] under the same DEK and context.
pub fn open_value(
    dek: &Dek,
    context: &ValueContext,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    format::open_box(dek.expose_bytes(), &context.aad(), &sealed.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ValueContext = ValueContext {
        kind: "kv-value",
        object_id: Uuid::from_u128(1),
        version: 3,
    };

    #[test]
    fn round_trip_and_fresh_nonces() {
        let dek = Dek::generate();
        let sealed = seal_value(&dek, &CTX, b"hunter2");
        assert_eq!(sealed.as_bytes().len(), 1 + NONCE_LEN + 7 + format::TAG_LEN);
        assert_eq!(
            open_value(&dek, &CTX, &sealed).unwrap().as_slice(),
            b"hunter2"
        );
        assert_ne!(seal_value(&dek, &CTX, b"hunter2"), sealed);
        let empty = seal_value(&dek, &CTX, b"");
        assert!(open_value(&dek, &CTX, &empty).unwrap().is_empty());
    }

    #[test]
    fn wrong_key_or_any_context_field_fails() {
        let dek = Dek::generate();
        let sealed = seal_value(&dek, &CTX, b"hunter2");
        assert_eq!(
            open_value(&Dek::generate(), &CTX, &sealed).unwrap_err(),
            OpenError::Unauthentic
        );
        for wrong in [
            ValueContext {
                kind: "name",
                ..CTX
            },
            ValueContext {
                object_id: Uuid::from_u128(2),
                ..CTX
            },
            ValueContext { version: 4, ..CTX },
        ] {
            assert_eq!(
                open_value(&dek, &wrong, &sealed).unwrap_err(),
                OpenError::Unauthentic
            );
        }
    }

    #[test]
    fn tampered_bytes_fail() {
        let dek = Dek::generate();
        let sealed = seal_value(&dek, &CTX, b"hunter2");
        let mut bytes = sealed.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            open_value(&dek, &CTX, &SealedValue::from_bytes(bytes)).unwrap_err(),
            OpenError::Unauthentic
        );
    }

    #[test]
    fn aad_is_label_then_length_prefixed_fields() {
        let mut expected = b"sealbox/v1/value".to_vec();
        expected.extend_from_slice(&[0, 8]);
        expected.extend_from_slice(b"kv-value");
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(CTX.aad(), expected);
    }
}
