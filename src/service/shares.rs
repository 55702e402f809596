//! The rules every read-only share follows, whatever it opens (SPEC §6, the proxy
//! reference's KV Sharing and File Sharing sections): permission `read` only, an expiry in
//! the future when one is given, recipients who are active members of the owner's
//! organization and have keys, one active share per recipient and object (an expired one
//! makes way), owner revocation, recipient removal and recorded access.
//!
//! `kv` and `file_shares` add what their object needs: its DEK, where it is stored, and
//! the names of its audit actions and events. These functions run inside their callers'
//! transactions.

use rusqlite::Connection;

use super::ServiceError;
use crate::crypto::{Dek, Envelope, EnvelopeContext, OpenError, UserKeyPair, UserPublicKey};
use crate::ids::{OrgId, ShareId, UserId, format_rfc3339};
use crate::store::shares::{self, ObjectKind, Share};
use crate::store::user_keys::{self, UserKeys};
use crate::store::{StoreError, organizations};

/// What a share opens, and how error messages name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shared {
    pub kind: ObjectKind,
    /// The object in 404 and 409 messages: `key`, `file`.
    pub object: &'static str,
    /// The object in prose: `a secret`, `a file`.
    pub a_thing: &'static str,
}

/// KV secrets.
pub(crate) const KV: Shared = Shared {
    kind: ObjectKind::Kv,
    object: "key",
    a_thing: "a secret",
};

/// Files sealbox encrypted.
pub(crate) const FILE: Shared = Shared {
    kind: ObjectKind::File,
    object: "file",
    a_thing: "a file",
};

/// What a new share must say: permission `read` (400) and, if it expires, a future
/// RFC 3339 instant (400). Returns the expiry in the stored format.
pub(crate) fn check_terms(
    permission: &str,
    expires_utc: Option<&str>,
) -> Result<Option<String>, ServiceError> {
    if permission != "read" {
        return Err(ServiceError::BadRequest(
            "permission must be \"read\": shares are read-only".to_owned(),
        ));
    }
    expires_utc.map(future_instant).transpose()
}

/// A share id from a path; a malformed one names no share (404).
pub(crate) fn share_id(text: &str) -> Result<ShareId, ServiceError> {
    text.parse().map_err(|_| ServiceError::NotFound("share"))
}

/// A recipient id from a revocation path; a malformed one names no share (404).
pub(crate) fn revoked_recipient(text: &str) -> Result<UserId, ServiceError> {
    text.parse().map_err(|_| ServiceError::NotFound("share"))
}

/// Whether a share still opens at `now` (stored RFC 3339 strings compare in time order).
pub(crate) fn is_active(share: &Share, now: &str) -> bool {
    share.revoked_at.is_none() && share.expires_at.as_deref().is_none_or(|at| at > now)
}

/// The recipient's current keys do not open the share: the reference's 403.
pub(crate) fn undecryptable() -> ServiceError {
    ServiceError::Forbidden(
        "this share can no longer be decrypted with your current keys".to_owned(),
    )
}

/// Opens the DEK a share sealed to its recipient.
pub(crate) fn open_envelope(
    pair: &UserKeyPair,
    context: &EnvelopeContext,
    share: &Share,
) -> Result<Dek, OpenError> {
    crate::crypto::open_dek(pair, context, &Envelope::from_bytes(share.envelope.clone()))
}

/// Who may receive a new share: its owner's keys and the recipient's public key.
pub(crate) struct Parties {
    pub owner_keys: UserKeys,
    pub recipient_key: UserPublicKey,
}

impl Shared {
    /// The recipient of a new share: a user id (404 otherwise), not the owner (400).
    pub fn recipient(self, text: &str, owner: UserId) -> Result<UserId, ServiceError> {
        let recipient: UserId = text.parse().map_err(|_| ServiceError::NotFound("user"))?;
        if recipient == owner {
            return Err(ServiceError::BadRequest(format!(
                "you cannot share {} with yourself",
                self.a_thing
            )));
        }
        Ok(recipient)
    }

    /// Checks a new share before any crypto: the recipient is an active member of `org`
    /// (404), both parties have keys (400), and the recipient has no active share of
    /// `object_id` yet (409).
    pub fn parties(
        self,
        conn: &Connection,
        org: OrgId,
        owner: UserId,
        recipient: UserId,
        object_id: &str,
    ) -> Result<Parties, ServiceError> {
        active_member(conn, org, recipient)?;
        let owner_keys = user_keys::find(conn, owner)?.ok_or_else(|| {
            ServiceError::BadRequest(
                "no owner private keys: generate keys first (POST /v1/keys/generate)".to_owned(),
            )
        })?;
        let recipient_keys = user_keys::find(conn, recipient)?.ok_or_else(|| {
            ServiceError::BadRequest(
                "the recipient has no public keys yet: they must generate keys first".to_owned(),
            )
        })?;
        if let Some(existing) = shares::unrevoked_for(conn, self.kind, object_id, recipient)?
            && is_active(&existing, &crate::ids::now_rfc3339())
        {
            return Err(self.active_share_exists());
        }
        let recipient_key =
            UserPublicKey::from_bytes(&recipient_keys.public_key).map_err(|_| {
                ServiceError::BadRequest("the recipient's public keys are invalid".to_owned())
            })?;
        Ok(Parties {
            owner_keys,
            recipient_key,
        })
    }

    /// Stores a new share; an expired share of the same recipient and object is revoked
    /// to make way, an active one is a 409.
    pub fn insert(self, tx: &Connection, share: &Share, now: &str) -> Result<(), ServiceError> {
        if let Some(existing) =
            shares::unrevoked_for(tx, self.kind, &share.object_id, share.recipient_id)?
        {
            if is_active(&existing, now) {
                return Err(self.active_share_exists());
            }
            shares::revoke(tx, existing.id, now)?;
        }
        shares::insert(tx, self.kind, share).map_err(|e| match e {
            StoreError::Conflict => self.active_share_exists(),
            other => other.into(),
        })
    }

    /// The owner revokes the recipient's active share of `object_id` (404 if none).
    pub fn revoke(
        self,
        tx: &Connection,
        object_id: &str,
        recipient: UserId,
        now: &str,
    ) -> Result<Share, ServiceError> {
        let share = shares::unrevoked_for(tx, self.kind, object_id, recipient)?
            .filter(|s| is_active(s, now))
            .ok_or(ServiceError::NotFound("share"))?;
        shares::revoke(tx, share.id, now)?;
        Ok(share)
    }

    /// An active share made to `recipient` in `org`: 404 if it does not exist, expired,
    /// was revoked or is someone else's.
    pub fn received(
        self,
        conn: &Connection,
        org: OrgId,
        recipient: UserId,
        id: ShareId,
        now: &str,
    ) -> Result<Share, ServiceError> {
        shares::find_active_for_recipient(conn, self.kind, org, recipient, id, now)?
            .ok_or(ServiceError::NotFound("share"))
    }

    /// Records a read of a share that is still active now that its content is open (404
    /// if it was revoked meanwhile).
    pub fn record_access(
        self,
        tx: &Connection,
        org: OrgId,
        recipient: UserId,
        id: ShareId,
        now: &str,
    ) -> Result<Share, ServiceError> {
        let share = self.received(tx, org, recipient, id, now)?;
        shares::record_access(tx, share.id, now)?;
        Ok(share)
    }

    /// The recipient gives up an active share made to them (404 if none).
    pub fn remove_received(
        self,
        tx: &Connection,
        org: OrgId,
        recipient: UserId,
        id: ShareId,
        now: &str,
    ) -> Result<Share, ServiceError> {
        let share = self.received(tx, org, recipient, id, now)?;
        shares::revoke(tx, share.id, now)?;
        Ok(share)
    }

    pub fn active_share_exists(self) -> ServiceError {
        ServiceError::Conflict(format!(
            "an active share already exists for this recipient and {}",
            self.object
        ))
    }
}

/// An RFC 3339 instant in the future, in the stored format; 400 otherwise.
fn future_instant(text: &str) -> Result<String, ServiceError> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ServiceError::BadRequest("expiresUtc must be an RFC 3339 timestamp".to_owned())
        })?;
    if at <= time::OffsetDateTime::now_utc() {
        return Err(ServiceError::BadRequest(
            "expiresUtc must be in the future".to_owned(),
        ));
    }
    Ok(format_rfc3339(at))
}

/// 404 unless `user` is an active member of `org` (recipients must be colleagues).
fn active_member(conn: &Connection, org: OrgId, user: UserId) -> Result<(), ServiceError> {
    organizations::member_access(conn, org, user)?
        .filter(|m| m.membership_status == "active")
        .map(|_| ())
        .ok_or(ServiceError::NotFound("user"))
}
