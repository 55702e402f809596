//! Idempotency keys (SPEC §3): the first response to a POST or PATCH sent with an
//! `Idempotency-Key` is kept for 24 hours against (principal, key, request fingerprint)
//! and replayed to retries, so a retried request never acts twice.
//!
//! Responses are stored sealed with the instance master key (they may carry a secret shown
//! once, such as a new API key), bound to the principal and key. Server errors are not
//! stored: their transaction rolled back, so a retry runs again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ServiceError, write};
use crate::auth::{Credential, Principal};
use crate::crypto::MasterKey;
use crate::ids::{format_rfc3339, now_rfc3339};
use crate::store::idempotency::{self, Claim};
use crate::store::{Store, StoreError};

/// How long a key and its response are kept.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// What to do with a request that carries an idempotency key.
#[derive(Debug)]
pub enum Begin {
    /// First use: run the request, then [`IdempotencyService::finish`] or `release`.
    Run,
    /// Already answered: send this again.
    Replay(StoredResponse),
    /// The first request with this key has not finished.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// The name keys are scoped to: the user for session tokens, the key for API keys.
pub fn principal_scope(principal: &Principal) -> String {
    match &principal.credential {
        Credential::Session(_) => format!("user:{}", principal.user_id),
        Credential::ApiKey(grant) => format!("api_key:{}", grant.key_id),
    }
}

#[derive(Clone)]
pub struct IdempotencyService {
    store: Store,
    master_key: MasterKey,
}

impl IdempotencyService {
    pub fn new(store: Store, master_key: MasterKey) -> Self {
        Self { store, master_key }
    }

    /// Claims `key` for this request, or says how it was used before.
    pub async fn begin(
        &self,
        scope: String,
        key: String,
        fingerprint: [u8; 32],
    ) -> Result<Begin, ServiceError> {
        let aad = binding(&scope, &key);
        let claimed = write(&self.store, move |tx| {
            let now = time::OffsetDateTime::now_utc();
            let expires = format_rfc3339(now + KEY_TTL);
            Ok(idempotency::claim(
                tx,
                &scope,
                &key,
                &fingerprint,
                &format_rfc3339(now),
                &expires,
            )?)
        })
        .await?;
        Ok(match claimed {
            Claim::Claimed => Begin::Run,
            Claim::InFlight => Begin::InFlight,
            Claim::Mismatch => Begin::Mismatch,
            Claim::Done { response, .. } => {
                let opened = self.master_key.open(&aad, &response).map_err(|e| {
                    StoreError::Task(format!(
                        "a stored idempotent response cannot be opened: {e}"
                    ))
                })?;
                let stored: StoredResponse = serde_json::from_slice(&opened).map_err(|e| {
                    StoreError::Task(format!("a stored idempotent response is malformed: {e}"))
                })?;
                Begin::Replay(stored)
            }
        })
    }

    /// Stores the response of the request that claimed `key`.
    pub async fn finish(
        &self,
        scope: String,
        key: String,
        response: &StoredResponse,
    ) -> Result<(), ServiceError> {
        let json = serde_json::to_vec(response).expect("a stored response serializes");
        let sealed = self.master_key.seal(&binding(&scope, &key), &json);
        let status = response.status;
        write(&self.store, move |tx| {
            Ok(idempotency::complete(tx, &scope, &key, status, &sealed)?)
        })
        .await
    }

    /// Frees `key` so that a retry runs the request again.
    pub async fn release(&self, scope: String, key: String) -> Result<(), ServiceError> {
        write(&self.store, move |tx| {
            Ok(idempotency::release(tx, &scope, &key)?)
        })
        .await
    }

    /// Removes expired keys; at start, also claims a stopped process left running.
    pub async fn sweep(&self, at_start: bool) -> Result<usize, ServiceError> {
        write(&self.store, move |tx| {
            Ok(idempotency::sweep(tx, &now_rfc3339(), at_start)?)
        })
        .await
    }
}

/// The associated data that binds a sealed response to its principal and key.
fn binding(scope: &str, key: &str) -> Vec<u8> {
    let mut aad = b"sealbox/v1/idempotent-response\0".to_vec();
    aad.extend_from_slice(scope.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key.as_bytes());
    aad
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
