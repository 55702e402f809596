//! The size limits of messaging input, each defined once (docs/messaging.md lists them),
//! and the checks that apply them. Sizes are of the decoded bytes; base64 that does not
//! decode and anything over a limit is `422 VALIDATION` naming the field.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::service::FieldError;

/// Largest message ciphertext, decoded (the JSON body limit bounds the whole request too).
pub const MAX_CIPHERTEXT_BYTES: usize = 64 * 1024;
/// Largest envelope header (one sealed message key), decoded: room for an X-Wing
/// ciphertext (1120 bytes) with a ratchet header around it.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Most envelopes in one message (the most devices a chat can have).
pub const MAX_ENVELOPES: usize = 1000;
pub const MAX_CONTENT_TYPE_CHARS: usize = 100;
pub const MAX_DEVICE_NAME_CHARS: usize = 100;
pub const MAX_CHAT_NAME_CHARS: usize = 200;
/// Most devices one user registers in one organization.
pub const MAX_DEVICES_PER_USER: i64 = 10;
/// Most one-time pre-keys one registration or one top-up uploads.
pub const MAX_ONE_TIME_PREKEYS: usize = 100;
/// Most unclaimed one-time pre-keys a device holds after a top-up.
pub const MAX_PREKEYS_HELD: i64 = 200;
/// Most files one message names in `attachments`.
pub const MAX_ATTACHMENTS: usize = 10;
/// Largest signature over the signed pre-key, decoded (ML-DSA-87 signatures are 4627).
pub const MAX_SIGNATURE_BYTES: usize = 4627;
/// Most participants of a group chat, its creator included.
pub const MAX_CHAT_MEMBERS: usize = 100;
/// Largest reaction: an opaque short string (an emoji, possibly with modifiers).
pub const MAX_REACTION_BYTES: usize = 32;
/// Furthest `expiresAt` may lie ahead.
pub const MAX_EXPIRY_DAYS: i64 = 365;
/// Open event streams at once, per device and per user.
pub const MAX_STREAMS_PER_DEVICE: usize = 3;
pub const MAX_STREAMS_PER_USER: usize = 10;

/// Identity key algorithms and their public key sizes.
pub const IDENTITY_KEY_ALGS: &[(&str, usize)] = &[
    ("ed25519", 32),
    ("x25519", 32),
    ("ml-dsa-65", 1952),
    ("x-wing", 1216),
];
/// Pre-key (key agreement) algorithms and their public key sizes.
pub const PREKEY_ALGS: &[(&str, usize)] = &[("x25519", 32), ("x-wing", 1216), ("ml-kem-768", 1184)];

/// Standard base64, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks that `text` is base64 of 1 to `max` bytes; records the problem under `path`.
pub fn check_b64(text: &str, max: usize, path: &str, problems: &mut Vec<FieldError>) {
    // Refuse before decoding what cannot fit: 4 characters carry 3 bytes.
    if text.len() > max.div_ceil(3) * 4 + 4 {
        problems.push(FieldError::new(path, format!("at most {max} bytes")));
        return;
    }
    match BASE64.decode(text) {
        Err(_) => problems.push(FieldError::new(path, "must be standard base64")),
        Ok(bytes) if bytes.is_empty() => problems.push(FieldError::new(path, "must not be empty")),
        Ok(bytes) if bytes.len() > max => {
            problems.push(FieldError::new(path, format!("at most {max} bytes")))
        }
        Ok(_) => {}
    }
}

/// Checks a public key: a known algorithm label and base64 of exactly its size.
pub fn check_key(
    alg: &str,
    key: &str,
    algs: &[(&str, usize)],
    path: &str,
    problems: &mut Vec<FieldError>,
) {
    let Some(&(_, size)) = algs.iter().find(|(name, _)| *name == alg) else {
        let known: Vec<&str> = algs.iter().map(|(name, _)| *name).collect();
        problems.push(FieldError::new(
            format!("{path}.alg"),
            format!("must be one of {}", known.join(", ")),
        ));
        return;
    };
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == size => {}
        Ok(_) => problems.push(FieldError::new(
            format!("{path}.publicKey"),
            format!("an {alg} public key is {size} bytes"),
        )),
        Err(_) => problems.push(FieldError::new(
            format!("{path}.publicKey"),
            "must be standard base64",
        )),
    }
}

/// Checks a short display text: not blank, no control characters, at most `max` chars.
pub fn check_text(text: &str, max: usize, path: &str, problems: &mut Vec<FieldError>) {
    if text.trim().is_empty() {
        problems.push(FieldError::new(path, "must not be empty"));
    } else if text.chars().count() > max {
        problems.push(FieldError::new(path, format!("at most {max} characters")));
    } else if text.chars().any(char::is_control) {
        problems.push(FieldError::new(path, "must not contain control characters"));
    }
}

/// A content type such as `text/plain`: printable ASCII, at most the limit.
pub fn check_content_type(text: &str, problems: &mut Vec<FieldError>) {
    if text.is_empty()
        || text.len() > MAX_CONTENT_TYPE_CHARS
        || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        problems.push(FieldError::new(
            "contentType",
            format!("1 to {MAX_CONTENT_TYPE_CHARS} printable ASCII characters, such as text/plain"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_checked_for_form_and_size() {
        let mut problems = Vec::new();
        check_b64("aGVsbG8=", 5, "a", &mut problems);
        check_b64("aGVsbG8", 5, "b", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        check_b64("aGVsbG8=", 4, "c", &mut problems);
        check_b64("not base64!", 100, "d", &mut problems);
        check_b64("", 100, "e", &mut problems);
        check_b64(&"A".repeat(10_000), 100, "f", &mut problems);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["c", "d", "e", "f"]);
    }

    #[test]
    fn keys_need_a_known_label_and_their_size() {
        let mut problems = Vec::new();
        let k32 = BASE64.encode([7u8; 32]);
        check_key("x25519", &k32, PREKEY_ALGS, "p", &mut problems);
        assert!(problems.is_empty());
        check_key("x-wing", &k32, PREKEY_ALGS, "q", &mut problems);
        check_key("rsa", &k32, PREKEY_ALGS, "r", &mut problems);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["q.publicKey", "r.alg"]);
    }
}
