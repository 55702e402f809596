//! Envelopes: an object's DEK sealed to one recipient's public key with HPKE (RFC 9180)
//! base mode, KEM X-Wing (0x647a), KDF HKDF-SHA256 (0x0001), AEAD AES-256-GCM (0x0002).
//!
//! Layout (1169 bytes): `FORMAT_V1 || enc (1120, the X-Wing ciphertext) || ciphertext of the
//! DEK (32) || tag (16)`. HPKE `info` binds the envelope to what it opens:
//! `"sealbox/v1/envelope" || BE16(len) || kind || BE16(16) || object id || BE16(16) ||
//! recipient id`; the AEAD's associated data is empty. Sharing an object is sealing the
//! same DEK again to another recipient, so sealing and opening are separate calls.

use hpke::aead::{AeadTag, AesGcm256};
use hpke::inout::InOutBuf;
use hpke::kdf::HkdfSha256;
use hpke::kem::XWing;
use hpke::rand_core::{Infallible, TryCryptoRng, TryRng, utils};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use super::dek::{DEK_LEN, Dek};
use super::format::{self, OpenError, TAG_LEN};
use super::user_key::{UserKeyPair, UserPublicKey};
use crate::ids::UserId;

const ENVELOPE_LABEL: &str = "sealbox/v1/envelope";
/// Length of the X-Wing ciphertext (HPKE `enc`).
pub const ENCAPSULATED_KEY_LEN: usize = 1120;
/// Random bytes one X-Wing encapsulation consumes (the draft's `eseed`).
pub(crate) const ENCAPSULATION_SEED_LEN: usize = 64;
/// Length of an envelope: version, `enc`, sealed DEK, tag.
pub const ENVELOPE_LEN: usize = 1 + ENCAPSULATED_KEY_LEN + DEK_LEN + TAG_LEN;

// The ciphersuite, named once so sealing and opening cannot disagree on it.
type SuiteAead = AesGcm256;
type SuiteKdf = HkdfSha256;
type SuiteKem = XWing;

/// What an envelope is bound to. A DEK sealed for one (kind, object, recipient) does not
/// open for any other, so envelopes cannot be swapped between objects or users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeContext {
    /// The object's kind, a constant such as `"secret"`; never user input.
    pub kind: &'static str,
    pub object_id: Uuid,
    /// The user the envelope is sealed to.
    pub recipient_id: UserId,
}

impl EnvelopeContext {
    /// HPKE `info`: the label and the three fields, each length-prefixed.
    pub(crate) fn info(&self) -> Vec<u8> {
        format::encode_context(
            ENVELOPE_LABEL,
            &[
                self.kind.as_bytes(),
                self.object_id.as_bytes(),
                self.recipient_id.as_uuid().as_bytes(),
            ],
        )
    }
}

/// A DEK sealed to one recipient, as stored: opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope(Vec<u8>);

impl Envelope {
    /// Wraps stored bytes; they are checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Seals `dek` to `recipient` (the public key of `context.recipient_id`).
pub fn seal_dek(recipient: &UserPublicKey, context: &EnvelopeContext, dek: &Dek) -> Envelope {
    let mut randomness = Zeroizing::new(super::random_bytes::<ENCAPSULATION_SEED_LEN>());
    seal_dek_with_randomness(recipient, context, dek, &mut randomness)
}

/// [`seal_dek`] with the encapsulation's 64 random bytes given. Public sealing goes through
/// here too, so the test vectors exercise the exact production path. The bytes are the
/// X-Wing draft's `eseed`: the first 32 are ML-KEM's `m`, the last 32 the X25519 secret.
pub(crate) fn seal_dek_with_randomness(
    recipient: &UserPublicKey,
    context: &EnvelopeContext,
    dek: &Dek,
    randomness: &mut [u8; ENCAPSULATION_SEED_LEN],
) -> Envelope {
    let mut rng = GivenBytes(randomness);
    // Encrypted in place; zeroizing in case sealing panics with the DEK still in it.
    let mut buffer = Zeroizing::new(*dek.expose_bytes());
    let (enc, tag) =
        hpke::single_shot_seal_inout_detached_with_rng::<SuiteAead, SuiteKdf, SuiteKem>(
            &OpModeS::Base,
            recipient.hpke_key(),
            &context.info(),
            InOutBuf::from(buffer.as_mut_slice()),
            b"",
            &mut rng,
        )
        .expect("X-Wing encapsulation to a validated key and AES-GCM sealing cannot fail");
    // A different draw size would mean a different X-Wing version under the same format.
    assert!(
        rng.0.is_empty(),
        "X-Wing encapsulation must draw exactly 64 bytes"
    );
    let mut envelope = Vec::with_capacity(ENVELOPE_LEN);
    envelope.push(format::FORMAT_V1);
    envelope.extend_from_slice(&enc.to_bytes());
    envelope.extend_from_slice(buffer.as_slice());
    envelope.extend_from_slice(&tag.to_bytes());
    Envelope(envelope)
}

/// Opens an envelope sealed to `recipient` for the same context.
pub fn open_dek(
    recipient: &UserKeyPair,
    context: &EnvelopeContext,
    envelope: &Envelope,
) -> Result<Dek, OpenError> {
    let body = format::strip_version(&envelope.0)?;
    if body.len() != ENVELOPE_LEN - 1 {
        return Err(OpenError::Malformed);
    }
    let (enc, rest) = body.split_at(ENCAPSULATED_KEY_LEN);
    let (ciphertext, tag) = rest.split_at(DEK_LEN);
    let enc = <SuiteKem as Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError::Malformed)?;
    let tag = AeadTag::<SuiteAead>::from_bytes(tag).map_err(|_| OpenError::Malformed)?;
    let mut buffer = Zeroizing::new([0u8; DEK_LEN]);
    buffer.copy_from_slice(ciphertext);
    hpke::single_shot_open_inout_detached::<SuiteAead, SuiteKdf, SuiteKem>(
        &OpModeR::Base,
        recipient.hpke_private_key(),
        &enc,
        &context.info(),
        InOutBuf::from(buffer.as_mut_slice()),
        b"",
        &tag,
    )
    .map_err(|_| OpenError::Unauthentic)?;
    Ok(Dek::from_bytes(*buffer))
}

/// Hands hpke exactly the bytes it was given, zeroizing each as it goes, and panics if asked
/// for more: determinism for the vectors, and no hidden second source of randomness.
pub(crate) struct GivenBytes<'a>(pub(crate) &'a mut [u8]);

impl TryRng for GivenBytes<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        assert!(
            dest.len() <= self.0.len(),
            "asked for more randomness than given"
        );
        let taken = std::mem::take(&mut self.0);
        let (head, rest) = taken.split_at_mut(dest.len());
        dest.copy_from_slice(head);
        head.zeroize();
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for GivenBytes<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::user_key::UserSeed;

    fn pair(byte: u8) -> UserKeyPair {
        UserKeyPair::from_seed(UserSeed::from_bytes([byte; 32]))
    }

    fn context(recipient: &UserId) -> EnvelopeContext {
        EnvelopeContext {
            kind: "secret",
            object_id: Uuid::from_u128(42),
            recipient_id: *recipient,
        }
    }

    #[test]
    fn round_trip_and_sharing_to_a_second_recipient() {
        let (alice, bob) = (pair(1), pair(2));
        let (alice_id, bob_id) = (UserId::new(), UserId::new());
        let dek = Dek::generate();

        let to_alice = seal_dek(alice.public_key(), &context(&alice_id), &dek);
        assert_eq!(to_alice.as_bytes().len(), ENVELOPE_LEN);
        assert_eq!(to_alice.as_bytes()[0], format::FORMAT_V1);
        let opened = open_dek(&alice, &context(&alice_id), &to_alice).unwrap();
        assert_eq!(opened.expose_bytes(), dek.expose_bytes());

        // Sharing: Alice opens the DEK and seals it again to Bob.
        let to_bob = seal_dek(bob.public_key(), &context(&bob_id), &opened);
        let bobs = open_dek(&bob, &context(&bob_id), &to_bob).unwrap();
        assert_eq!(bobs.expose_bytes(), dek.expose_bytes());
        // Bob cannot open Alice's envelope, even claiming her context.
        for ctx in [context(&alice_id), context(&bob_id)] {
            assert_eq!(
                open_dek(&bob, &ctx, &to_alice).unwrap_err(),
                OpenError::Unauthentic
            );
        }
    }

    #[test]
    fn every_context_field_is_bound() {
        let alice = pair(1);
        let ctx = context(&UserId::new());
        let envelope = seal_dek(alice.public_key(), &ctx, &Dek::generate());
        for wrong in [
            EnvelopeContext {
                kind: "file",
                ..ctx
            },
            EnvelopeContext {
                object_id: Uuid::from_u128(43),
                ..ctx
            },
            EnvelopeContext {
                recipient_id: UserId::new(),
                ..ctx
            },
        ] {
            assert_eq!(
                open_dek(&alice, &wrong, &envelope).unwrap_err(),
                OpenError::Unauthentic
            );
        }
    }

    #[test]
    fn tampering_anywhere_is_refused() {
        let alice = pair(1);
        let ctx = context(&UserId::new());
        let envelope = seal_dek(alice.public_key(), &ctx, &Dek::generate());
        // A byte in the ML-KEM ciphertext, the X25519 part, the sealed DEK and the tag.
        for i in [1, 1000, 1 + 1088 + 5, ENVELOPE_LEN - 20, ENVELOPE_LEN - 1] {
            let mut bytes = envelope.as_bytes().to_vec();
            bytes[i] ^= 0x04;
            assert_eq!(
                open_dek(&alice, &ctx, &Envelope::from_bytes(bytes)).unwrap_err(),
                OpenError::Unauthentic,
                "byte {i}"
            );
        }
        let short = Envelope::from_bytes(envelope.as_bytes()[..ENVELOPE_LEN - 1].to_vec());
        assert_eq!(
            open_dek(&alice, &ctx, &short).unwrap_err(),
            OpenError::Malformed
        );
        let mut v9 = envelope.as_bytes().to_vec();
        v9[0] = 9;
        assert_eq!(
            open_dek(&alice, &ctx, &Envelope::from_bytes(v9)).unwrap_err(),
            OpenError::UnsupportedVersion(9)
        );
    }

    #[test]
    fn given_randomness_makes_sealing_deterministic_and_is_wiped() {
        let alice = pair(1);
        let ctx = context(&UserId::new());
        let dek = Dek::from_bytes([5; 32]);
        let mut first = [7u8; ENCAPSULATION_SEED_LEN];
        let mut second = [7u8; ENCAPSULATION_SEED_LEN];
        let a = seal_dek_with_randomness(alice.public_key(), &ctx, &dek, &mut first);
        let b = seal_dek_with_randomness(alice.public_key(), &ctx, &dek, &mut second);
        assert_eq!(a, b);
        assert_eq!(first, [0; ENCAPSULATION_SEED_LEN]);
    }

    #[test]
    fn info_is_label_then_length_prefixed_fields() {
        let recipient = UserId::from(Uuid::from_u128(7));
        let info = context(&recipient).info();
        let mut expected = b"sealbox/v1/envelope".to_vec();
        expected.extend_from_slice(&[0, 6]);
        expected.extend_from_slice(b"secret");
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&42u128.to_be_bytes());
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&7u128.to_be_bytes());
        assert_eq!(info, expected);
    }
}
