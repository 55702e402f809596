//! Recovery (the proxy reference's Recovery APIs): an owner leaves recovery material with
//! trustees of their organization, a trustee hands it back, and the owner restores their
//! private seed from it.
//!
//! Reading recovery material (one's trustees, what one holds) needs `kv:read`, as reading
//! the vault does; leaving, removing and restoring it need `keys:write`. For an API key
//! both are also scopes the key must carry.
//!
//! The material is ciphertext made by the owner's client; the server stores it as bytes
//! and never opens it. A restore is not trusted either: the restored seed is kept beside
//! the current seal until a rekey opens it with the recovery secret and finds that it
//! derives the user's public key (see [`KeyService::rekey`]).

use serde_json::json;

use super::keys::{KeyService, no_key_material};
use super::kv::decode_b64;
use super::{FieldError, Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::crypto::format::FORMAT_V1;
use crate::crypto::sealed_seed::SEALED_SEED_LEN;
use crate::ids::{UserId, now_rfc3339};
use crate::store::recovery::{self, RecoveryShare, RecoveryShareWithName};
use crate::store::{Store, StoreError, user_keys};

/// Largest recovery share a trustee holds, in bytes (each of the two).
pub const MAX_SHARE_BYTES: usize = 16 * 1024;
/// Longest XOR salt hint, in characters.
pub const MAX_HINT_CHARS: usize = 256;

/// Recovery material for a trustee, as the owner's client sent it.
#[derive(Clone)]
pub struct ShareInput {
    pub ecc_share_b64: String,
    pub kyber_share_b64: String,
    pub xor_applied: bool,
    pub xor_salt_hint: Option<String>,
}

/// A restored seed, as the recovered user's client sent it.
#[derive(Clone)]
pub struct RestoreInput {
    pub ecc_b64: String,
    pub kyber_b64: String,
    pub used_xor: bool,
    pub xor_salt_hint: Option<String>,
}

/// What a PUT of a trustee did.
#[derive(Debug, Clone)]
pub struct TrusteeSet {
    pub trustee: RecoveryShareWithName,
    pub created: bool,
}

#[derive(Clone)]
pub struct RecoveryService {
    store: Store,
    keys: KeyService,
}

impl RecoveryService {
    pub fn new(store: Store, keys: KeyService) -> Self {
        Self { store, keys }
    }

    /// Creates or replaces the material the caller leaves with `trustee`, an active member
    /// of the organization the call acts in.
    pub async fn set_trustee(
        &self,
        principal: &Principal,
        trustee: &str,
        input: ShareInput,
        ctx: RequestContext,
    ) -> Result<TrusteeSet, ServiceError> {
        let trustee: UserId = trustee
            .parse()
            .map_err(|_| ServiceError::NotFound("user"))?;
        if trustee == principal.user_id {
            return Err(ServiceError::BadRequest(
                "you cannot be your own recovery trustee".to_owned(),
            ));
        }
        let ecc_share = share_bytes(&input.ecc_share_b64, "encryptedPrivateKeyEccShareB64")?;
        let kyber_share = share_bytes(&input.kyber_share_b64, "encryptedPrivateKeyKyberShareB64")?;
        check_hint(input.xor_salt_hint.as_deref())?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KeysWrite)?;
            let owner = principal.user_id;
            if user_keys::find(tx, owner)?.is_none() {
                return Err(no_key_material());
            }
            let colleague = user_keys::colleague(tx, access.org_id, trustee)?
                .ok_or(ServiceError::NotFound("user"))?;
            let now = now_rfc3339();
            let existing = recovery::find(tx, access.org_id, owner, trustee)?;
            let created = existing.is_none();
            let share = RecoveryShare {
                owner_id: owner,
                trustee_id: trustee,
                org_id: access.org_id,
                ecc_share,
                kyber_share,
                xor_applied: input.xor_applied,
                xor_salt_hint: input.xor_salt_hint,
                created_at: existing.map_or_else(|| now.clone(), |e| e.created_at),
                updated_at: now,
            };
            if created {
                recovery::insert(tx, &share).map_err(|e| match e {
                    StoreError::Conflict => ServiceError::Conflict(
                        "this trustee already holds your recovery material in another \
                         organization; remove it there first"
                            .to_owned(),
                    ),
                    other => other.into(),
                })?;
            } else {
                recovery::update(tx, &share)?;
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let details = json!({"trusteeUserId": trustee, "xorApplied": share.xor_applied});
            if created {
                journal.audit("recovery.trustee_added", "user", owner, details)?;
                journal.event(
                    "recovery.trustee_added",
                    json!({"ownerUserId": owner, "trusteeUserId": trustee}),
                )?;
            } else {
                journal.audit("recovery.trustee_updated", "user", owner, details)?;
            }
            Ok(TrusteeSet {
                trustee: RecoveryShareWithName {
                    share,
                    name: colleague.display_name,
                },
                created,
            })
        })
        .await
    }

    /// The trustees the caller chose in the organization the call acts in.
    pub async fn trustees(
        &self,
        principal: &Principal,
    ) -> Result<Vec<RecoveryShareWithName>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            Ok(recovery::trustees_of(
                conn,
                access.org_id,
                principal.user_id,
            )?)
        })
        .await
    }

    /// Removes the material the caller left with `trustee`.
    pub async fn remove_trustee(
        &self,
        principal: &Principal,
        trustee: &str,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let trustee: UserId = trustee
            .parse()
            .map_err(|_| ServiceError::NotFound("recovery trustee"))?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KeysWrite)?;
            let owner = principal.user_id;
            if !recovery::delete(tx, access.org_id, owner, trustee)? {
                return Err(ServiceError::NotFound("recovery trustee"));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "recovery.trustee_removed",
                "user",
                owner,
                json!({"trusteeUserId": trustee}),
            )?;
            journal.event(
                "recovery.trustee_removed",
                json!({"ownerUserId": owner, "trusteeUserId": trustee}),
            )?;
            Ok(())
        })
        .await
    }

    /// The owners whose material the caller holds in the organization the call acts in.
    pub async fn held(
        &self,
        principal: &Principal,
    ) -> Result<Vec<RecoveryShareWithName>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            Ok(recovery::held_by(conn, access.org_id, principal.user_id)?)
        })
        .await
    }

    /// The material `owner` left with the caller, to hand back to them.
    pub async fn held_share(
        &self,
        principal: &Principal,
        owner: &str,
    ) -> Result<RecoveryShare, ServiceError> {
        let owner: UserId = owner
            .parse()
            .map_err(|_| ServiceError::NotFound("recovery share"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            recovery::find(conn, access.org_id, owner, principal.user_id)?
                .ok_or(ServiceError::NotFound("recovery share"))
        })
        .await
    }

    /// Keeps the caller's restored seed (sealed under a recovery secret) for the next
    /// rekey, which verifies it. The current seal stays until then.
    pub async fn restore(
        &self,
        principal: &Principal,
        owner: &str,
        input: RestoreInput,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let owner: UserId = owner.parse().map_err(|_| ServiceError::NotFound("user"))?;
        if owner != principal.user_id {
            return Err(ServiceError::NotFound("user"));
        }
        let sealed = decode_b64(&input.ecc_b64, "encryptedPrivateKeyEccB64")?;
        let kyber = decode_b64(&input.kyber_b64, "encryptedPrivateKeyKyberB64")?;
        if *sealed != *kyber {
            return Err(ServiceError::BadRequest(
                "encryptedPrivateKeyKyberB64 must carry the same sealed seed as \
                 encryptedPrivateKeyEccB64: one X-Wing seed covers both halves"
                    .to_owned(),
            ));
        }
        if sealed.len() != SEALED_SEED_LEN || sealed.first() != Some(&FORMAT_V1) {
            return Err(ServiceError::BadRequest(format!(
                "encryptedPrivateKeyEccB64 must be a sealed seed: {SEALED_SEED_LEN} bytes \
                 starting with format version {FORMAT_V1}"
            )));
        }
        check_hint(input.xor_salt_hint.as_deref())?;
        let principal = principal.clone();
        let keys = self.keys.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KeysWrite)?;
            keys.restore_in(tx, owner, &sealed, &now_rfc3339())?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "recovery.restored",
                "user",
                owner,
                json!({"usedXor": input.used_xor}),
            )?;
            journal.event("recovery.restored", json!({"userId": owner}))?;
            Ok(())
        })
        .await
    }
}

/// A share's bytes: 400 for invalid base64, 413 over [`MAX_SHARE_BYTES`].
fn share_bytes(text: &str, field: &str) -> Result<Vec<u8>, ServiceError> {
    let bytes = decode_b64(text, field)?;
    if bytes.len() > MAX_SHARE_BYTES {
        return Err(ServiceError::TooLarge(MAX_SHARE_BYTES as u64));
    }
    Ok(bytes.to_vec())
}

fn check_hint(hint: Option<&str>) -> Result<(), ServiceError> {
    match hint {
        Some(hint) if hint.chars().count() > MAX_HINT_CHARS => {
            Err(ServiceError::Invalid(vec![FieldError::new(
                "xorSaltHint",
                format!("at most {MAX_HINT_CHARS} characters"),
            )]))
        }
        _ => Ok(()),
    }
}
