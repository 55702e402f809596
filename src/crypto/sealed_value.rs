//! Small objects (KV values, names, aliases) sealed under their object's DEK:
//! `version || nonce || AES-256-GCM(DEK, nonce, plaintext, aad) || tag`, with a fresh
//! random 96-bit nonce.
//!
//! - Format 1: `aad = ctx("sealbox/v1/value", kind, object id, BE64(version))`, so a value
//!   cannot be moved to another object, another field, or replayed as another version.
//! - Format 2 (a [`Binding`]): `aad = ctx("sealbox/v2/value", kind, object id,
//!   BE64(version), field 1, ..., field n)`, which also binds what identifies the value
//!   where it is stored (a KV secret's organization, owner and name; a file's content
//!   type), so a row edited to name another value fails to open instead of being served
//!   under the wrong identity. Values written before format 2 existed still open as
//!   format 1; each new write uses format 2.

use uuid::Uuid;
use zeroize::Zeroizing;

use super::dek::Dek;
use super::format::{self, FORMAT_V1, FORMAT_V2, NONCE_LEN, OpenError};

const VALUE_LABEL: &str = "sealbox/v1/value";
const BOUND_VALUE_LABEL: &str = "sealbox/v2/value";

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

impl ValueContext {
    /// Format 2's associated data: the label, the three fields of format 1, then the
    /// binding's fields, each length-prefixed. Another label than format 1's, so that no
    /// format 2 AAD equals a format 1 AAD (the version byte itself is not authenticated).
    ///
    /// Panics if a binding field is over [`MAX_BINDING_FIELD`] bytes: sealing such a value
    /// is a caller's bug, and [`open_bound_value`] checks first (no such value exists).
    pub(crate) fn bound_aad(&self, binding: &Binding) -> Vec<u8> {
        let version = self.version.to_be_bytes();
        let mut fields: Vec<&[u8]> =
            vec![self.kind.as_bytes(), self.object_id.as_bytes(), &version];
        fields.extend(binding.0.iter().map(Vec::as_slice));
        format::encode_context(BOUND_VALUE_LABEL, &fields)
    }
}

/// What identifies a value where it is stored, beyond its object id and version, in a
/// fixed order that `docs/crypto.md` gives per kind (for a KV value: organization id,
/// owner id, name). Format 2 binds it into the associated data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding(Vec<Vec<u8>>);

/// The longest field a [`Binding`] takes: its length is encoded in two bytes.
pub const MAX_BINDING_FIELD: usize = u16::MAX as usize;

impl Binding {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an id: its 16 bytes.
    pub fn id(mut self, id: Uuid) -> Self {
        self.0.push(id.as_bytes().to_vec());
        self
    }

    /// Appends text: its UTF-8 bytes, as stored (no normalization). Sealing with a field
    /// over [`MAX_BINDING_FIELD`] bytes panics (callers bind fields they have checked);
    /// opening with one fails as unauthentic, since no value can have been sealed so.
    pub fn text(mut self, text: &str) -> Self {
        self.0.push(text.as_bytes().to_vec());
        self
    }

    fn fits(&self) -> bool {
        self.0.iter().all(|field| field.len() <= MAX_BINDING_FIELD)
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

/// Seals `plaintext` in format 2: bound to `context` and to `binding`, with a fresh random
/// nonce.
pub fn seal_bound_value(
    dek: &Dek,
    context: &ValueContext,
    binding: &Binding,
    plaintext: &[u8],
) -> SealedValue {
    seal_bound_value_with_nonce(dek, context, binding, plaintext, super::random_bytes())
}

/// [`seal_bound_value`] with a given nonce: for reproducible test vectors only.
pub(crate) fn seal_bound_value_with_nonce(
    dek: &Dek,
    context: &ValueContext,
    binding: &Binding,
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> SealedValue {
    SealedValue(format::seal_box_as(
        FORMAT_V2,
        dek.expose_bytes(),
        nonce,
        &context.bound_aad(binding),
        plaintext,
    ))
}

/// Opens a value of a kind that [`seal_bound_value`] writes: format 2 must match
/// `binding` as well as `context`; format 1, written before the binding existed, opens
/// against `context` alone.
pub fn open_bound_value(
    dek: &Dek,
    context: &ValueContext,
    binding: &Binding,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    match sealed.0.split_first() {
        Some((&FORMAT_V2, _)) if !binding.fits() => Err(OpenError::Unauthentic),
        Some((&FORMAT_V2, body)) => {
            format::open_box_body(dek.expose_bytes(), &context.bound_aad(binding), body)
        }
        Some((&FORMAT_V1, _)) => open_value(dek, context, sealed),
        Some((&other, _)) => Err(OpenError::UnsupportedVersion(other)),
        None => Err(OpenError::Malformed),
    }
}

/// Opens a value sealed by [`seal_value`] (format 1) under the same DEK and context.
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

    fn binding() -> Binding {
        Binding::new()
            .id(Uuid::from_u128(7))
            .id(Uuid::from_u128(8))
            .text("db-password")
    }

    #[test]
    fn bound_values_round_trip_and_need_the_same_binding() {
        let dek = Dek::generate();
        let sealed = seal_bound_value(&dek, &CTX, &binding(), b"hunter2");
        assert_eq!(sealed.as_bytes()[0], FORMAT_V2);
        assert_eq!(sealed.as_bytes().len(), 1 + NONCE_LEN + 7 + format::TAG_LEN);
        assert_eq!(
            open_bound_value(&dek, &CTX, &binding(), &sealed)
                .unwrap()
                .as_slice(),
            b"hunter2"
        );
        for wrong in [
            Binding::new()
                .id(Uuid::from_u128(7))
                .id(Uuid::from_u128(8))
                .text("db-passwore"),
            Binding::new()
                .id(Uuid::from_u128(9))
                .id(Uuid::from_u128(8))
                .text("db-password"),
            Binding::new().id(Uuid::from_u128(7)).id(Uuid::from_u128(8)),
            Binding::new(),
        ] {
            assert_eq!(
                open_bound_value(&dek, &CTX, &wrong, &sealed).unwrap_err(),
                OpenError::Unauthentic
            );
        }
        assert_eq!(
            open_bound_value(
                &dek,
                &ValueContext { version: 4, ..CTX },
                &binding(),
                &sealed
            )
            .unwrap_err(),
            OpenError::Unauthentic
        );
        // Format 2 is not format 1: neither the plain opener nor a changed version byte
        // gets past the binding.
        assert_eq!(
            open_value(&dek, &CTX, &sealed).unwrap_err(),
            OpenError::UnsupportedVersion(FORMAT_V2)
        );
        let mut downgraded = sealed.as_bytes().to_vec();
        downgraded[0] = FORMAT_V1;
        assert_eq!(
            open_bound_value(&dek, &CTX, &Binding::new(), &SealedValue(downgraded)).unwrap_err(),
            OpenError::Unauthentic
        );
    }

    #[test]
    fn an_oversized_binding_field_fails_to_open_rather_than_panic() {
        let dek = Dek::generate();
        let sealed = seal_bound_value(&dek, &CTX, &binding(), b"hunter2");
        let huge = Binding::new().text(&"x".repeat(MAX_BINDING_FIELD + 1));
        assert_eq!(
            open_bound_value(&dek, &CTX, &huge, &sealed).unwrap_err(),
            OpenError::Unauthentic
        );
        // A format 1 value never looks at the binding.
        let legacy = seal_value(&dek, &CTX, b"old");
        assert_eq!(
            open_bound_value(&dek, &CTX, &huge, &legacy)
                .unwrap()
                .as_slice(),
            b"old"
        );
    }

    #[test]
    fn format_1_values_still_open_where_bound_ones_are_expected() {
        let dek = Dek::generate();
        let legacy = seal_value(&dek, &CTX, b"hunter2");
        assert_eq!(
            open_bound_value(&dek, &CTX, &binding(), &legacy)
                .unwrap()
                .as_slice(),
            b"hunter2"
        );
        let mut future = legacy.as_bytes().to_vec();
        future[0] = 3;
        assert_eq!(
            open_bound_value(&dek, &CTX, &binding(), &SealedValue(future)).unwrap_err(),
            OpenError::UnsupportedVersion(3)
        );
        assert_eq!(
            open_bound_value(&dek, &CTX, &binding(), &SealedValue(Vec::new())).unwrap_err(),
            OpenError::Malformed
        );
    }

    #[test]
    fn bound_aad_is_the_v2_label_then_every_field() {
        let mut expected = b"sealbox/v2/value".to_vec();
        expected.extend_from_slice(&[0, 8]);
        expected.extend_from_slice(b"kv-value");
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&7u128.to_be_bytes());
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&8u128.to_be_bytes());
        expected.extend_from_slice(&[0, 11]);
        expected.extend_from_slice(b"db-password");
        assert_eq!(CTX.bound_aad(&binding()), expected);
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
