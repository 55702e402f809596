//! Webhook signing secrets and the signatures computed with them (SPEC §7).
//!
//! Two signatures travel on every delivery, both HMAC-SHA256 under the same key:
//!
//! - Standard Webhooks 1.0 (`webhook-signature`): `v1,<base64 of HMAC(key,
//!   "{msg_id}.{timestamp}.{body}")>`. During a secret rotation's grace window several
//!   signatures are sent, separated by a single space, the newest secret first; a receiver
//!   accepts the delivery if any of them verifies.
//! - The legacy sealbox header (`X-Sealbox-Signature`): `t=<timestamp>,v1=<lowercase hex of
//!   HMAC(key, "{timestamp}.{body}")>`. During rotation it carries one `v1=` entry per
//!   secret, newest first (`t=..,v1=<new>,v1=<old>`, the layout Stripe-style verifiers
//!   already loop over); a receiver accepts if any `v1` entry verifies.
//!
//! A secret is `whsec_` followed by the standard base64 (with padding) of its key bytes:
//! 32 random bytes when sealbox generates it. The HMAC key is the decoded bytes, not the
//! text. The key is zeroized on drop and never printed; verification compares in constant
//! time.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2_0_11::Sha256;
use zeroize::Zeroizing;

/// Prefix of every webhook signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret sealbox generates.
pub const GENERATED_SECRET_LEN: usize = 32;
/// Key lengths accepted when parsing: Standard Webhooks asks for secrets "between 24 bytes
/// (192 bits) and 64 bytes (512 bits)".
pub const SECRET_LEN_RANGE: std::ops::RangeInclusive<usize> = 24..=64;
/// The signature scheme version both headers use.
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// A webhook signing secret. `Debug` prints `[redacted]`; the key is zeroized on drop.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Why a string is not a webhook secret. Never contains the string itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    #[error("a webhook secret is `whsec_` followed by standard base64")]
    NotBase64,
    #[error("a webhook secret must decode to 24 to 64 bytes, not {0}")]
    Length(usize),
}

impl WebhookSecret {
    /// A fresh secret of 32 random bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let bytes = Zeroizing::new(super::random_bytes::<GENERATED_SECRET_LEN>());
        Self {
            key: Zeroizing::new(bytes.to_vec()),
        }
    }

    /// Parses `whsec_<base64>`. The prefix and the base64 padding are optional, as in the
    /// official Standard Webhooks libraries, so a secret pasted without them still works.
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        let key = Zeroizing::new(
            BASE64
                .decode(encoded)
                .or_else(|_| STANDARD_NO_PAD.decode(encoded))
                .map_err(|_| InvalidSecret::NotBase64)?,
        );
        if !SECRET_LEN_RANGE.contains(&key.len()) {
            return Err(InvalidSecret::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// The secret as text (`whsec_...`), for the one-time display at creation and for
    /// sealing with the master key. Zeroized when the returned value is dropped.
    pub fn expose(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(
            SECRET_PREFIX.len() + self.key.len().div_ceil(3) * 4,
        ));
        text.push_str(SECRET_PREFIX);
        BASE64.encode_string(self.key.as_slice(), &mut text);
        text
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// HMAC-SHA256 of the Standard Webhooks signed content `"{msg_id}.{timestamp}.{body}"`.
    fn standard_mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// HMAC-SHA256 of the legacy signed content `"{timestamp}.{body}"`.
    fn legacy_mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// One Standard Webhooks signature: `v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")>`.
pub fn standard_signature(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let tag = secret
        .standard_mac(msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("{VERSION},{}", BASE64.encode(tag))
}

/// The `webhook-signature` header value: one signature per secret, newest first, separated
/// by a single space (Standard Webhooks' rotation layout).
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| standard_signature(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The legacy `X-Sealbox-Signature` header value: `t=<timestamp>` then one
/// `v1=<lowercase hex HMAC-SHA256(key, "{timestamp}.{body}")>` per secret, newest first.
pub fn legacy_signature_header(secrets: &[&WebhookSecret], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = secret.legacy_mac(timestamp, body).finalize().into_bytes();
        header.push_str(",v1=");
        header.push_str(&data_encoding::HEXLOWER.encode(&tag));
    }
    header
}

/// Whether any `v1,` signature in a `webhook-signature` header value verifies under
/// `secret`, compared in constant time. Checks only the signature: a receiver also refuses
/// stale timestamps (Standard Webhooks suggests five minutes of tolerance).
pub fn verify_standard(
    secret: &WebhookSecret,
    header: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> bool {
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|tag| {
            secret
                .standard_mac(msg_id, timestamp, body)
                .verify_slice(&tag)
                .is_ok()
        })
}

/// Whether any `v1=` entry of an `X-Sealbox-Signature` header value verifies under
/// `secret` for the header's own `t=`, compared in constant time. Returns the verified
/// timestamp so the caller can refuse a stale one.
pub fn verify_legacy(secret: &WebhookSecret, header: &str, body: &[u8]) -> Option<i64> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for entry in header.split(',') {
        match entry.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => tags.extend(
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode(value.as_bytes())
                    .ok(),
            ),
            _ => {}
        }
    }
    let timestamp = timestamp?;
    tags.iter()
        .any(|tag| secret.legacy_mac(timestamp, body).verify_slice(tag).is_ok())
        .then_some(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vector from the official Standard Webhooks Rust library,
    // standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs, test `test_sign`
    // (the same secret, id and payload appear in the other official libraries' tests).
    const KAT_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const KAT_MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const KAT_TIMESTAMP: i64 = 1649367553;
    const KAT_PAYLOAD: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const KAT_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn standard_signature_matches_the_official_known_answer() {
        let secret = WebhookSecret::parse(KAT_SECRET).unwrap();
        assert_eq!(
            standard_signature(&secret, KAT_MSG_ID, KAT_TIMESTAMP, KAT_PAYLOAD),
            KAT_SIGNATURE
        );
        assert!(verify_standard(
            &secret,
            KAT_SIGNATURE,
            KAT_MSG_ID,
            KAT_TIMESTAMP,
            KAT_PAYLOAD
        ));
        // The prefix is optional, as in the official libraries.
        let bare = WebhookSecret::parse(KAT_SECRET.trim_start_matches(SECRET_PREFIX)).unwrap();
        assert_eq!(
            standard_signature(&bare, KAT_MSG_ID, KAT_TIMESTAMP, KAT_PAYLOAD),
            KAT_SIGNATURE
        );
    }

    #[test]
    fn the_legacy_signature_is_the_hex_hmac_of_timestamp_dot_body() {
        // Expected value computed independently with Python's standard library:
        // hmac.new(b64decode(key), b"1649367553." + payload, sha256).hexdigest()
        let secret = WebhookSecret::parse(KAT_SECRET).unwrap();
        let header = legacy_signature_header(&[&secret], KAT_TIMESTAMP, KAT_PAYLOAD);
        assert_eq!(
            header,
            "t=1649367553,v1=eb70928360506878ca31e5efad1cfb93500fea3a18186f0202024e2429fa23f5"
        );
        assert_eq!(
            verify_legacy(&secret, &header, KAT_PAYLOAD),
            Some(KAT_TIMESTAMP)
        );
        assert_eq!(verify_legacy(&secret, &header, b"tampered"), None);
    }

    #[test]
    fn hmac_sha256_itself_matches_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?": the
        // primitive under both headers is plain HMAC-SHA256.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn during_rotation_both_secrets_sign_newest_first() {
        let new = WebhookSecret::generate();
        let old = WebhookSecret::generate();
        let header = signature_header(&[&new, &old], "msg_1", 1_700_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            standard_signature(&new, "msg_1", 1_700_000_000, b"{}")
        );
        assert_eq!(
            parts[1],
            standard_signature(&old, "msg_1", 1_700_000_000, b"{}")
        );
        for secret in [&new, &old] {
            assert!(verify_standard(
                secret,
                &header,
                "msg_1",
                1_700_000_000,
                b"{}"
            ));
        }
        assert!(!verify_standard(
            &WebhookSecret::generate(),
            &header,
            "msg_1",
            1_700_000_000,
            b"{}"
        ));
        assert!(!verify_standard(
            &new,
            &header,
            "msg_2",
            1_700_000_000,
            b"{}"
        ));
        assert!(!verify_standard(
            &new,
            &header,
            "msg_1",
            1_700_000_001,
            b"{}"
        ));

        let legacy = legacy_signature_header(&[&new, &old], 1_700_000_000, b"{}");
        assert_eq!(legacy.matches(",v1=").count(), 2);
        assert!(legacy.starts_with("t=1700000000,v1="));
        for secret in [&new, &old] {
            assert_eq!(verify_legacy(secret, &legacy, b"{}"), Some(1_700_000_000));
        }
        assert_eq!(
            verify_legacy(&WebhookSecret::generate(), &legacy, b"{}"),
            None
        );
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_round_trip() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with(SECRET_PREFIX));
        let decoded = BASE64.decode(&text[SECRET_PREFIX.len()..]).unwrap();
        assert_eq!(decoded.len(), GENERATED_SECRET_LEN);
        let again = WebhookSecret::parse(&text).unwrap();
        assert_eq!(*again.expose(), *text);
        assert_ne!(*WebhookSecret::generate().expose(), *text);
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        let too_long = format!("whsec_{}", BASE64.encode([7u8; 65]));
        for (text, expected) in [
            ("whsec_not base64!", InvalidSecret::NotBase64),
            ("whsec_", InvalidSecret::Length(0)),
            ("whsec_c2hvcnQ=", InvalidSecret::Length(5)),
            (too_long.as_str(), InvalidSecret::Length(65)),
        ] {
            let err = WebhookSecret::parse(text).unwrap_err();
            assert_eq!(err, expected);
            assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        }
        assert!(WebhookSecret::parse(&format!("whsec_{}", BASE64.encode([7u8; 64]))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", BASE64.encode([7u8; 24]))).is_ok());
        // Unpadded base64 is the same secret.
        let secret = WebhookSecret::generate();
        let unpadded = secret.expose().trim_end_matches('=').to_owned();
        assert_ne!(unpadded, *secret.expose());
        assert_eq!(
            *WebhookSecret::parse(&unpadded).unwrap().expose(),
            *secret.expose()
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = WebhookSecret::parse(KAT_SECRET).unwrap();
        let shown = format!("{secret:?} {secret:#?}");
        assert!(!shown.contains("C2FV"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn malformed_signature_headers_verify_nothing() {
        let secret = WebhookSecret::parse(KAT_SECRET).unwrap();
        for header in [
            "",
            "v1,",
            "v1,!!!",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kk==",
        ] {
            assert!(
                !verify_standard(&secret, header, KAT_MSG_ID, KAT_TIMESTAMP, KAT_PAYLOAD),
                "{header}"
            );
        }
        for header in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz"] {
            assert_eq!(verify_legacy(&secret, header, b"{}"), None, "{header}");
        }
    }
}
