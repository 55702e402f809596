//! Read-only shares of files (SPEC §6, the proxy reference's File Sharing section), under
//! the rules every share follows (`shares`).
//!
//! Sharing opens the file's DEK with the owner's secret and seals it again to the
//! recipient, bound to the file and the recipient (`EnvelopeContext` kind `file`, as the
//! owner's copy). Only files sealbox encrypted can be shared so: a client-encrypted file's
//! key never reached sealbox. A recipient reads a small file whole as JSON, or asks for a
//! download link of the same kind as the owner's (the DEK sealed by the master key inside
//! the link, which works until it expires, 15 minutes at most, even if the share is revoked
//! meanwhile). Either is recorded as an access.

use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::files::{
    FileService, decrypt_stored, envelope_context, open_file_dek, open_name, tampered,
};
use super::keys::{KeyService, UserSecret, no_key_material};
use super::shares::{FILE, Parties, check_terms, open_envelope, undecryptable};
use super::{Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::crypto::{Dek, UserKeyPair, seal_dek};
use crate::ids::{FileId, ShareId, now_rfc3339};
use crate::store::files::{self, Encryption, File};
use crate::store::shares::{self, Share, ShareWithName};
use crate::store::{Store, user_keys};

/// A new file share as asked for.
#[derive(Debug, Clone)]
pub struct NewFileShare {
    pub recipient_user_id: String,
    pub permission: String,
    pub expires_utc: Option<String>,
}

/// A file shared with the caller, with its name opened.
#[derive(Debug, Clone)]
pub struct ReceivedFile {
    pub share: Share,
    pub owner_name: String,
    pub file: File,
    pub name: String,
}

/// A shared file as its recipient reads it whole.
pub struct SharedFile {
    pub share: Share,
    pub file: File,
    pub name: String,
    pub content: Zeroizing<Vec<u8>>,
}

/// How a recipient read a shared file, for the audit log.
#[derive(Debug, Clone, Copy)]
enum Via {
    Json,
    DownloadLink,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Json => "json",
            Via::DownloadLink => "download_link",
        }
    }
}

#[derive(Clone)]
pub struct FileShareService {
    store: Store,
    keys: KeyService,
    files: FileService,
}

impl FileShareService {
    pub fn new(store: Store, keys: KeyService, files: FileService) -> Self {
        Self { store, keys, files }
    }

    /// Shares the caller's file read-only with a member of the organization.
    pub async fn share(
        &self,
        principal: &Principal,
        file_id: &str,
        input: NewFileShare,
        secret: UserSecret,
        ctx: RequestContext,
    ) -> Result<Share, ServiceError> {
        let expires_at = check_terms(&input.permission, input.expires_utc.as_deref())?;
        let recipient = FILE.recipient(&input.recipient_user_id, principal.user_id)?;
        let id = file_id_of(file_id)?;
        let principal = principal.clone();
        let lookup = principal.clone();
        let (parties, file) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::SharesWrite)?;
            let file = files::find_for_owner(conn, access.org_id, lookup.user_id, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            if file.encryption == Encryption::Client {
                return Err(ServiceError::BadRequest(
                    "only files sealbox encrypted can be shared: this file was encrypted by \
                     your client (encryption \"client\"), so sealbox holds no key to share"
                        .to_owned(),
                ));
            }
            let parties = FILE.parties(
                conn,
                access.org_id,
                lookup.user_id,
                recipient,
                &file.id.to_string(),
            )?;
            Ok((parties, file))
        })
        .await?;
        let Parties {
            owner_keys,
            recipient_key,
        } = parties;
        let pair = self.keys.unlock_row(owner_keys, &secret).await?;
        let dek = open_file_dek(&pair, &file)?;
        let envelope = seal_dek(&recipient_key, &envelope_context(file.id, recipient), &dek);
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::SharesWrite)?;
            // Deleted meanwhile: nothing to share.
            files::find_for_owner(tx, access.org_id, principal.user_id, file.id)?
                .ok_or(ServiceError::NotFound("file"))?;
            let now = now_rfc3339();
            let share = Share {
                id: ShareId::new(),
                object_id: file.id.to_string(),
                org_id: access.org_id,
                owner_id: principal.user_id,
                recipient_id: recipient,
                permission: "read".to_owned(),
                envelope: envelope.as_bytes().to_vec(),
                dek_generation: file.dek_generation,
                sealed_alias: None,
                created_at: now.clone(),
                updated_at: now.clone(),
                expires_at,
                first_access_at: None,
                last_access_at: None,
                revoked_at: None,
            };
            FILE.insert(tx, &share, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "file.shared",
                "file",
                file.id,
                json!({"recipientUserId": recipient, "shareId": share.id}),
            )?;
            journal.event(
                "file.shared",
                json!({"shareId": share.id, "fileId": file.id, "ownerUserId": principal.user_id,
                       "recipientUserId": recipient, "expiresUtc": share.expires_at}),
            )?;
            Ok(share)
        })
        .await
    }

    /// The active shares of the caller's file, with recipients' names.
    pub async fn shares_of(
        &self,
        principal: &Principal,
        file_id: &str,
    ) -> Result<Vec<ShareWithName>, ServiceError> {
        let id = file_id_of(file_id)?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::FilesRead)?;
            let file = files::find_for_owner(conn, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            Ok(shares::active_for_object(
                conn,
                FILE.kind,
                &file.id.to_string(),
                &now_rfc3339(),
            )?)
        })
        .await
    }

    /// Revokes the active share of the caller's file with `recipient`.
    pub async fn revoke(
        &self,
        principal: &Principal,
        file_id: &str,
        recipient: &str,
        ctx: RequestContext,
    ) -> Result<(ShareId, String), ServiceError> {
        let id = file_id_of(file_id)?;
        let recipient = super::shares::revoked_recipient(recipient)?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::SharesWrite)?;
            let file = files::find_for_owner(tx, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            let now = now_rfc3339();
            let share = FILE.revoke(tx, &file.id.to_string(), recipient, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "file.share_revoked",
                "file",
                file.id,
                json!({"shareId": share.id, "recipientUserId": recipient}),
            )?;
            journal.event(
                "file.share_revoked",
                json!({"shareId": share.id, "fileId": file.id, "ownerUserId": principal.user_id,
                       "recipientUserId": recipient}),
            )?;
            Ok((share.id, now))
        })
        .await
    }

    /// The active file shares made to the caller that their keys still open, with the
    /// files' names.
    pub async fn received(
        &self,
        principal: &Principal,
        secret: &UserSecret,
    ) -> Result<Vec<ReceivedFile>, ServiceError> {
        let principal = principal.clone();
        let (keys_row, found) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::FilesRead)?;
            let keys = user_keys::find(conn, principal.user_id)?.ok_or_else(no_key_material)?;
            let mut found = Vec::new();
            for share in shares::active_for_recipient(
                conn,
                FILE.kind,
                access.org_id,
                principal.user_id,
                &now_rfc3339(),
            )? {
                if let Some(file) = shared_file(conn, &share.share)? {
                    found.push((share, file));
                }
            }
            Ok((keys, found))
        })
        .await?;
        let pair = self.keys.unlock_row(keys_row, secret).await?;
        Ok(found
            .into_iter()
            .filter_map(|(s, file)| {
                let dek = open_share_dek(&pair, &s.share, &file)?;
                let name = open_name(&dek, &file, file.sealed_name.as_ref()?).ok()?;
                Some(ReceivedFile {
                    share: s.share,
                    owner_name: s.name,
                    file,
                    name,
                })
            })
            .collect())
    }

    /// Reads a file shared with the caller whole (up to `limits.json_file_bytes`, 413
    /// beyond) and records the access.
    pub async fn read_shared(
        &self,
        principal: &Principal,
        share_id: &str,
        secret: &UserSecret,
        ctx: RequestContext,
    ) -> Result<SharedFile, ServiceError> {
        let (share, file, dek) = self.open_received(principal, share_id, secret).await?;
        let limit = self.files.limits().json_file_bytes;
        if file.size as u64 > limit {
            return Err(ServiceError::TooLarge(limit));
        }
        let name = open_name(&dek, &file, file.sealed_name.as_ref().ok_or_else(tampered)?)?;
        let stored = self.files.stored_bytes(&file).await?;
        let content = decrypt_stored(&file, &dek, &stored)?;
        let share = self
            .record_access(principal, share.id, file.id, Via::Json, ctx)
            .await?;
        Ok(SharedFile {
            share,
            file,
            name,
            content,
        })
    }

    /// A short-lived download link to a file shared with the caller, of any size; issuing
    /// it is recorded as an access.
    pub async fn download_link(
        &self,
        principal: &Principal,
        share_id: &str,
        secret: &UserSecret,
        ctx: RequestContext,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let (share, file, dek) = self.open_received(principal, share_id, secret).await?;
        let link = self
            .files
            .issue_link(&file, principal.user_id, Some(&dek))
            .await?;
        self.record_access(principal, share.id, file.id, Via::DownloadLink, ctx)
            .await?;
        Ok(link)
    }

    /// The recipient gives up a file share made to them.
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
            let share =
                FILE.remove_received(tx, access.org_id, principal.user_id, share_id, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "file.share_removed",
                "file",
                &share.object_id,
                json!({"shareId": share.id, "ownerUserId": share.owner_id}),
            )?;
            journal.event(
                "file.share_removed",
                json!({"shareId": share.id, "fileId": share.object_id,
                       "ownerUserId": share.owner_id, "recipientUserId": principal.user_id}),
            )?;
            Ok((share.id, now))
        })
        .await
    }

    /// An active share made to the caller, its file and the DEK their keys open: 404 if
    /// there is no such share, 401 for a wrong secret, 403 if the share no longer opens.
    async fn open_received(
        &self,
        principal: &Principal,
        share_id: &str,
        secret: &UserSecret,
    ) -> Result<(Share, File, Dek), ServiceError> {
        let share_id = super::shares::share_id(share_id)?;
        let lookup = principal.clone();
        let (keys_row, share, file) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::FilesRead)?;
            let share = FILE.received(
                conn,
                access.org_id,
                lookup.user_id,
                share_id,
                &now_rfc3339(),
            )?;
            let file = shared_file(conn, &share)?.ok_or(ServiceError::NotFound("share"))?;
            let keys = user_keys::find(conn, lookup.user_id)?.ok_or_else(no_key_material)?;
            Ok((keys, share, file))
        })
        .await?;
        let pair = self.keys.unlock_row(keys_row, secret).await?;
        let dek = open_share_dek(&pair, &share, &file).ok_or_else(undecryptable)?;
        Ok((share, file, dek))
    }

    /// Records a read, if the share is still active now that the file is open.
    async fn record_access(
        &self,
        principal: &Principal,
        share_id: ShareId,
        file_id: FileId,
        via: Via,
        ctx: RequestContext,
    ) -> Result<Share, ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            let now = now_rfc3339();
            let share = FILE.record_access(tx, access.org_id, principal.user_id, share_id, &now)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "file.share_accessed",
                "file",
                file_id,
                json!({"shareId": share.id, "ownerUserId": share.owner_id, "via": via.as_str()}),
            )?;
            journal.event(
                "file.share_accessed",
                json!({"shareId": share.id, "fileId": file_id, "ownerUserId": share.owner_id,
                       "recipientUserId": principal.user_id}),
            )?;
            Ok(share)
        })
        .await
    }
}

/// A share's file id from a path; a malformed one names no file (404).
fn file_id_of(text: &str) -> Result<FileId, ServiceError> {
    text.parse().map_err(|_| ServiceError::NotFound("file"))
}

/// The owner's file a share opens, if it is still there.
fn shared_file(conn: &rusqlite::Connection, share: &Share) -> Result<Option<File>, ServiceError> {
    let Ok(id) = share.object_id.parse::<FileId>() else {
        return Ok(None);
    };
    Ok(files::find_for_owner(
        conn,
        share.org_id,
        share.owner_id,
        id,
    )?)
}

/// The file's DEK from the recipient's envelope, if it still opens with their keys and
/// matches the file's current key.
fn open_share_dek(pair: &UserKeyPair, share: &Share, file: &File) -> Option<Dek> {
    if file.encryption != Encryption::Server || share.dek_generation != file.dek_generation {
        return None;
    }
    open_envelope(pair, &envelope_context(file.id, share.recipient_id), share).ok()
}

impl std::fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFile")
            .field("share", &self.share.id)
            .field("file", &self.file.id)
            .field("content", &"[redacted]")
            .finish_non_exhaustive()
    }
}
