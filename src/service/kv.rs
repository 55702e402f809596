//! KV secrets and their read-only shares (SPEC §6, the proxy reference's KV and KV
//! Sharing sections).
//!
//! A value is sealed under its own DEK (AES-256-GCM, bound to the entry, its version, its
//! organization, owner and name, so a row whose name was changed in the database fails to
//! open rather than answer for another key);
//! the DEK is sealed to the owner's public key, and again to each share's recipient. A PUT
//! needs only the owner's public key: without `X-User-Secret` it picks a new DEK, which
//! leaves earlier shares unreadable until the owner shares again; with the secret it keeps
//! the DEK, so shares follow the new value. Reading needs the reader's secret. Crypto runs
//! before the write transaction, which re-checks what it read (optimistic concurrency).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::json;
use zeroize::Zeroizing;

use super::keys::{KeyService, UserSecret, no_key_material};
use super::shares::{KV, Parties, check_terms, undecryptable};
use super::{FieldError, Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::crypto::{
    Binding, Dek, Envelope, EnvelopeContext, SealedValue, UserKeyPair, UserPublicKey, ValueContext,
    open_bound_value, open_dek, open_value, seal_bound_value, seal_dek, seal_value,
};
use crate::ids::{KvEntryId, OrgId, ShareId, UserId, now_rfc3339};
use crate::store::kv::{self, KvEntry};
use crate::store::shares::{self, ObjectKind, Share, ShareWithName};
use crate::store::{Store, user_keys};

/// Envelope kind of a KV secret's DEK (bound into the HPKE `info`).
const ENVELOPE_KIND: &str = "kv";
/// Value kind of a KV secret's value (bound into the AAD).
const VALUE_KIND: &str = "kv-value";
/// Value kind of a share's alias, sealed under the secret's DEK.
const ALIAS_KIND: &str = "kv-share-alias";
/// The name that `GET /v1/kv/shared` (the recipient's list) takes from the key space.
const RESERVED_NAME: &str = "shared";
const MAX_NAME_CHARS: usize = 256;
const MAX_ALIAS_CHARS: usize = 256;
/// Attempts of an optimistic write before answering 409.
const WRITE_ATTEMPTS: usize = 3;

/// What a PUT did.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub version: i64,
    pub created: bool,
    pub updated_at: String,
}

/// A new share as asked for.
#[derive(Debug, Clone)]
pub struct NewShare {
    pub recipient_user_id: String,
    pub permission: String,
    pub alias: Option<String>,
    pub expires_utc: Option<String>,
}

/// A share made to the caller, with its alias opened.
#[derive(Debug, Clone)]
pub struct ReceivedShare {
    pub share: Share,
    pub owner_name: String,
    pub alias: Option<String>,
}

/// A share's value as its recipient reads it.
pub struct SharedValue {
    pub share: Share,
    pub value: Zeroizing<Vec<u8>>,
}

#[derive(Clone)]
pub struct KvService {
    store: Store,
    keys: KeyService,
    value_limit: u64,
}

impl KvService {
    pub fn new(store: Store, keys: KeyService, value_limit: u64) -> Self {
        Self {
            store,
            keys,
            value_limit,
        }
    }

    /// Stores `value_b64` under `name` for the caller, as a new secret or a new version.
    pub async fn put(
        &self,
        principal: &Principal,
        name: String,
        value_b64: &str,
        secret: Option<UserSecret>,
        ctx: RequestContext,
    ) -> Result<Stored, ServiceError> {
        check_name(&name)?;
        let value = decode_b64(value_b64, "valueB64")?;
        if value.len() as u64 > self.value_limit {
            return Err(ServiceError::TooLarge(self.value_limit));
        }
        for _ in 0..WRITE_ATTEMPTS {
            let (reader, lookup) = (principal.clone(), name.clone());
            let (keys_row, existing) = read(&self.store, move |conn| {
                let access = access::in_requested_org(conn, &reader)?;
                access.require(Permission::KvWrite)?;
                let keys = user_keys::find(conn, reader.user_id)?.ok_or_else(no_key_material)?;
                let existing = kv::find_by_name(conn, access.org_id, reader.user_id, &lookup)?;
                Ok((keys, existing))
            })
            .await?;
            let owner_key = public_key_of(&keys_row.public_key)?;
            let owner = keys_row.user_id;
            // Keep the DEK (and so the shares) when the owner's secret can open it.
            let kept = match (&existing, &secret) {
                (Some(entry), Some(secret)) => {
                    let pair = self.keys.unlock_row(keys_row, secret).await?;
                    Some(open_entry_dek(&pair, entry)?)
                }
                _ => None,
            };
            let id = existing.as_ref().map_or_else(KvEntryId::new, |e| e.id);
            // The value is sealed inside the transaction, under the version it gets there:
            // writers of one key queue on the write lock instead of failing each other.
            // Only a change of the entry itself (created concurrently, or a new DEK under
            // a kept one) sends the loop round again.
            let keeps_dek = kept.is_some();
            let (dek, kept_generation, kept_envelope) = match (kept, &existing) {
                (Some(dek), Some(entry)) => (
                    dek,
                    Some(entry.dek_generation),
                    Some(entry.owner_envelope.clone()),
                ),
                _ => (Dek::generate(), None, None),
            };
            let owner_envelope = match kept_envelope {
                Some(envelope) => envelope,
                None => seal_dek(&owner_key, &envelope_context(id, owner), &dek)
                    .as_bytes()
                    .to_vec(),
            };
            let (principal, name_row) = (principal.clone(), name.clone());
            let ctx = ctx.clone();
            let value = value.clone();
            let outcome = write(&self.store, move |tx| {
                let access = access::in_requested_org(tx, &principal)?;
                access.require(Permission::KvWrite)?;
                let current = kv::find_by_name(tx, access.org_id, owner, &name_row)?;
                if current.as_ref().is_some_and(|c| c.id != id)
                    || (keeps_dek && current.as_ref().map(|c| c.dek_generation) != kept_generation)
                {
                    return Ok(None);
                }
                let version = current.as_ref().map_or(1, |c| c.version + 1);
                let dek_generation = match (kept_generation, &current) {
                    (Some(generation), _) => generation,
                    (None, Some(c)) => c.dek_generation + 1,
                    (None, None) => 1,
                };
                let sealed = seal_bound_value(
                    &dek,
                    &value_context(id, version),
                    &value_binding(access.org_id, owner, &name_row),
                    &value,
                );
                let now = now_rfc3339();
                let entry = KvEntry {
                    id,
                    org_id: access.org_id,
                    owner_id: owner,
                    name: name_row.clone(),
                    version,
                    dek_generation,
                    sealed_value: sealed.as_bytes().to_vec(),
                    owner_envelope,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                };
                let created = current.is_none();
                if created {
                    kv::insert(tx, &entry)?;
                } else {
                    kv::update(tx, &entry)?;
                }
                let journal = Journal::new(tx, &ctx, access.actor(), access.org());
                let action = if created { "kv.created" } else { "kv.updated" };
                let details = json!({"name": name_row, "version": version});
                journal.audit(action, "kv", id, details.clone())?;
                journal.event(
                    action,
                    json!({"id": id, "name": name_row, "version": version, "ownerUserId": owner}),
                )?;
                Ok(Some(Stored {
                    name: name_row,
                    version,
                    created,
                    updated_at: now,
                }))
            })
            .await?;
            if let Some(stored) = outcome {
                return Ok(stored);
            }
        }
        Err(ServiceError::Conflict(
            "the secret changed while it was being written; try again".to_owned(),
        ))
    }

    /// The caller's value of `name`, opened with the caller's secret.
    pub async fn get(
        &self,
        principal: &Principal,
        name: String,
        secret: &UserSecret,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let principal = principal.clone();
        let (keys_row, entry) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            let entry = kv::find_by_name(conn, access.org_id, principal.user_id, &name)?
                .ok_or(ServiceError::NotFound("key"))?;
            let keys = user_keys::find(conn, principal.user_id)?.ok_or_else(no_key_material)?;
            Ok((keys, entry))
        })
        .await?;
        let pair = self.keys.unlock_row(keys_row, secret).await?;
        let dek = open_entry_dek(&pair, &entry)?;
        open_entry_value(&dek, &entry)
    }

    /// Deletes the caller's secret `name` and every share of it.
    pub async fn delete(
        &self,
        principal: &Principal,
        name: String,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KvDelete)?;
            let entry = kv::find_by_name(tx, access.org_id, principal.user_id, &name)?
                .ok_or(ServiceError::NotFound("key"))?;
            kv::delete(tx, entry.id)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit("kv.deleted", "kv", entry.id, json!({"name": entry.name}))?;
            journal.event(
                "kv.deleted",
                json!({"id": entry.id, "name": entry.name, "ownerUserId": entry.owner_id}),
            )?;
            Ok(())
        })
        .await
    }

    /// The caller's secret names in the organization they act in.
    pub async fn names(&self, principal: &Principal) -> Result<Vec<String>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            Ok(kv::names(conn, access.org_id, principal.user_id)?)
        })
        .await
    }

    /// Shares the caller's secret `name` read-only with a member of the organization.
    pub async fn share(
        &self,
        principal: &Principal,
        name: String,
        input: NewShare,
        secret: UserSecret,
        ctx: RequestContext,
    ) -> Result<Share, ServiceError> {
        let expires_at = check_terms(&input.permission, input.expires_utc.as_deref())?;
        if let Some(alias) = &input.alias
            && (alias.chars().count() > MAX_ALIAS_CHARS || alias.chars().any(char::is_control))
        {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "alias",
                format!("at most {MAX_ALIAS_CHARS} characters, no control characters"),
            )]));
        }
        let recipient = KV.recipient(&input.recipient_user_id, principal.user_id)?;
        let principal = principal.clone();
        let lookup = principal.clone();
        let (parties, entry) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::SharesWrite)?;
            let entry = kv::find_by_name(conn, access.org_id, lookup.user_id, &name)?
                .ok_or(ServiceError::NotFound("key"))?;
            let parties = KV.parties(
                conn,
                access.org_id,
                lookup.user_id,
                recipient,
                &entry.id.to_string(),
            )?;
            Ok((parties, entry))
        })
        .await?;
        let Parties {
            owner_keys,
            recipient_key,
        } = parties;
        let pair = self.keys.unlock_row(owner_keys, &secret).await?;
        let dek = open_entry_dek(&pair, &entry)?;
        let share_id = ShareId::new();
        let envelope = seal_dek(&recipient_key, &envelope_context(entry.id, recipient), &dek);
        let sealed_alias = input
            .alias
            .as_deref()
            .map(|alias| seal_value(&dek, &alias_context(share_id), alias.as_bytes()));
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::SharesWrite)?;
            let current = kv::find_in_org(tx, access.org_id, entry.id)?
                .filter(|e| e.owner_id == principal.user_id)
                .ok_or(ServiceError::NotFound("key"))?;
            if current.dek_generation != entry.dek_generation {
                return Err(ServiceError::Conflict(
                    "the secret was overwritten meanwhile; share it again".to_owned(),
                ));
            }
            let now = now_rfc3339();
            let share = Share {
                id: share_id,
                object_id: entry.id.to_string(),
                org_id: access.org_id,
                owner_id: principal.user_id,
                recipient_id: recipient,
                permission: "read".to_owned(),
                envelope: envelope.as_bytes().to_vec(),
                dek_generation: entry.dek_generation,
                sealed_alias: sealed_alias.map(|a| a.as_bytes().to_vec()),
                created_at: now.clone(),
                updated_at: now.clone(),
                expires_at,
                first_access_at: None,
                last_access_at: None,
                revoked_at: None,
            };
            KV.insert(tx, &share, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let details =
                json!({"name": entry.name, "recipientUserId": recipient, "shareId": share_id});
            journal.audit("kv.shared", "kv", entry.id, details)?;
            journal.event(
                "kv.shared",
                json!({"shareId": share_id, "kvId": entry.id, "ownerUserId": principal.user_id,
                       "recipientUserId": recipient, "expiresUtc": share.expires_at}),
            )?;
            Ok(share)
        })
        .await
    }

    /// The active shares of the caller's secret `name`, with recipients' names.
    pub async fn shares_of(
        &self,
        principal: &Principal,
        name: String,
    ) -> Result<Vec<ShareWithName>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            let entry = kv::find_by_name(conn, access.org_id, principal.user_id, &name)?
                .ok_or(ServiceError::NotFound("key"))?;
            Ok(shares::active_for_object(
                conn,
                ObjectKind::Kv,
                &entry.id.to_string(),
                &now_rfc3339(),
            )?)
        })
        .await
    }

    /// Revokes the active share of the caller's secret `name` with `recipient`.
    pub async fn revoke(
        &self,
        principal: &Principal,
        name: String,
        recipient: &str,
        ctx: RequestContext,
    ) -> Result<(ShareId, String), ServiceError> {
        let recipient = super::shares::revoked_recipient(recipient)?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::SharesWrite)?;
            let entry = kv::find_by_name(tx, access.org_id, principal.user_id, &name)?
                .ok_or(ServiceError::NotFound("key"))?;
            let now = now_rfc3339();
            let share = KV.revoke(tx, &entry.id.to_string(), recipient, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "kv.share_revoked",
                "kv",
                entry.id,
                json!({"shareId": share.id, "recipientUserId": recipient}),
            )?;
            journal.event(
                "kv.share_revoked",
                json!({"shareId": share.id, "kvId": entry.id, "ownerUserId": principal.user_id,
                       "recipientUserId": recipient}),
            )?;
            Ok((share.id, now))
        })
        .await
    }

    /// The active shares made to the caller that their keys still open, with aliases.
    pub async fn received(
        &self,
        principal: &Principal,
        secret: &UserSecret,
    ) -> Result<Vec<ReceivedShare>, ServiceError> {
        let principal = principal.clone();
        let (keys_row, found) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::KvRead)?;
            let keys = user_keys::find(conn, principal.user_id)?.ok_or_else(no_key_material)?;
            let mut found = Vec::new();
            for share in shares::active_for_recipient(
                conn,
                ObjectKind::Kv,
                access.org_id,
                principal.user_id,
                &now_rfc3339(),
            )? {
                let Ok(id) = share.share.object_id.parse::<KvEntryId>() else {
                    continue;
                };
                if let Some(entry) = kv::find_in_org(conn, access.org_id, id)? {
                    found.push((share, entry.dek_generation));
                }
            }
            Ok((keys, found))
        })
        .await?;
        let pair = self.keys.unlock_row(keys_row, secret).await?;
        Ok(found
            .into_iter()
            .filter(|(s, generation)| s.share.dek_generation == *generation)
            .filter_map(|(s, _)| {
                let dek = open_share_dek(&pair, &s.share).ok()?;
                let alias = s.share.sealed_alias.as_ref().and_then(|sealed| {
                    let bytes = open_value(
                        &dek,
                        &alias_context(s.share.id),
                        &SealedValue::from_bytes(sealed.clone()),
                    )
                    .ok()?;
                    String::from_utf8(bytes.to_vec()).ok()
                });
                Some(ReceivedShare {
                    share: s.share,
                    owner_name: s.name,
                    alias,
                })
            })
            .collect())
    }

    /// Reads a secret shared with the caller and records the access.
    pub async fn read_shared(
        &self,
        principal: &Principal,
        share_id: &str,
        secret: &UserSecret,
        ctx: RequestContext,
    ) -> Result<SharedValue, ServiceError> {
        let share_id = super::shares::share_id(share_id)?;
        let lookup = principal.clone();
        let (keys_row, share, entry) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::KvRead)?;
            let share = KV.received(
                conn,
                access.org_id,
                lookup.user_id,
                share_id,
                &now_rfc3339(),
            )?;
            let entry = share
                .object_id
                .parse::<KvEntryId>()
                .ok()
                .map(|id| kv::find_in_org(conn, access.org_id, id))
                .transpose()?
                .flatten()
                .ok_or(ServiceError::NotFound("share"))?;
            let keys = user_keys::find(conn, lookup.user_id)?.ok_or_else(no_key_material)?;
            Ok((keys, share, entry))
        })
        .await?;
        let pair = self.keys.unlock_row(keys_row, secret).await?;
        if share.dek_generation != entry.dek_generation {
            return Err(undecryptable());
        }
        let dek = open_share_dek(&pair, &share).map_err(|_| undecryptable())?;
        let value = open_entry_value(&dek, &entry)?;
        let principal = principal.clone();
        let share = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            let now = now_rfc3339();
            let share = KV.record_access(tx, access.org_id, principal.user_id, share.id, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "kv.share_accessed",
                "kv",
                entry.id,
                json!({"shareId": share.id, "ownerUserId": share.owner_id}),
            )?;
            journal.event(
                "kv.share_accessed",
                json!({"shareId": share.id, "kvId": entry.id, "ownerUserId": share.owner_id,
                       "recipientUserId": principal.user_id}),
            )?;
            Ok(share)
        })
        .await?;
        Ok(SharedValue { share, value })
    }

    /// The recipient gives up a share made to them.
    pub async fn remove_received(
        &self,
        principal: &Principal,
        share_id: &str,
        ctx: RequestContext,
    ) -> Result<(ShareId, String), ServiceError> {
        let share_id = super::shares::share_id(share_id)?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            let now = now_rfc3339();
            let share = KV.remove_received(tx, access.org_id, principal.user_id, share_id, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "kv.share_removed",
                "kv",
                &share.object_id,
                json!({"shareId": share.id, "ownerUserId": share.owner_id}),
            )?;
            journal.event(
                "kv.share_removed",
                json!({"shareId": share.id, "kvId": share.object_id, "ownerUserId": share.owner_id,
                       "recipientUserId": principal.user_id}),
            )?;
            Ok((share.id, now))
        })
        .await
    }
}

pub(super) fn envelope_context(id: KvEntryId, recipient: UserId) -> EnvelopeContext {
    EnvelopeContext {
        kind: ENVELOPE_KIND,
        object_id: id.as_uuid(),
        recipient_id: recipient,
    }
}

pub(super) fn value_context(id: KvEntryId, version: i64) -> ValueContext {
    ValueContext {
        kind: VALUE_KIND,
        object_id: id.as_uuid(),
        version: version as u64,
    }
}

/// What a KV value is bound to besides its id and version: where it is found by name.
pub(super) fn value_binding(org: OrgId, owner: UserId, name: &str) -> Binding {
    Binding::new()
        .id(org.as_uuid())
        .id(owner.as_uuid())
        .text(name)
}

fn alias_context(share: ShareId) -> ValueContext {
    ValueContext {
        kind: ALIAS_KIND,
        object_id: share.as_uuid(),
        version: 0,
    }
}

fn open_entry_dek(pair: &UserKeyPair, entry: &KvEntry) -> Result<Dek, ServiceError> {
    open_dek(
        pair,
        &envelope_context(entry.id, entry.owner_id),
        &Envelope::from_bytes(entry.owner_envelope.clone()),
    )
    .map_err(|_| {
        ServiceError::BadRequest(
            "the stored key envelope is tampered or does not match your keys".to_owned(),
        )
    })
}

fn open_share_dek(pair: &UserKeyPair, share: &Share) -> Result<Dek, crate::crypto::OpenError> {
    let id: KvEntryId = share
        .object_id
        .parse()
        .map_err(|_| crate::crypto::OpenError::Malformed)?;
    super::shares::open_envelope(pair, &envelope_context(id, share.recipient_id), share)
}

fn open_entry_value(dek: &Dek, entry: &KvEntry) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    open_bound_value(
        dek,
        &value_context(entry.id, entry.version),
        &value_binding(entry.org_id, entry.owner_id, &entry.name),
        &SealedValue::from_bytes(entry.sealed_value.clone()),
    )
    .map_err(|_| {
        ServiceError::BadRequest("the stored ciphertext is invalid or tampered".to_owned())
    })
}

fn public_key_of(bytes: &[u8]) -> Result<UserPublicKey, ServiceError> {
    UserPublicKey::from_bytes(bytes)
        .map_err(|_| ServiceError::BadRequest("the stored public key is invalid".to_owned()))
}

/// Key names: 1 to 256 characters, printable (no control characters), not `shared`.
fn check_name(name: &str) -> Result<(), ServiceError> {
    let chars = name.chars().count();
    let problem = if chars == 0 || chars > MAX_NAME_CHARS {
        Some(format!("must be 1 to {MAX_NAME_CHARS} characters"))
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if name == RESERVED_NAME {
        Some(format!(
            "`{RESERVED_NAME}` is reserved (GET /v1/kv/shared lists shares)"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(ServiceError::Invalid(vec![FieldError::new("key", message)])),
        None => Ok(()),
    }
}

/// Standard base64 with or without padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard base64 (padding optional); the reference's 400 otherwise.
pub fn decode_b64(text: &str, field: &str) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    LENIENT_BASE64
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|_| ServiceError::BadRequest(format!("{field} is not valid base64")))
}

impl std::fmt::Debug for SharedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedValue")
            .field("share", &self.share.id)
            .field("value", &"[redacted]")
            .finish()
    }
}
